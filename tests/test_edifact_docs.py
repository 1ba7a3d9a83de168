"""The examples in docs/dialects/medvri.md and medlab.md are golden files, byte for byte (line ends aside)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.golden_util import GOLDEN

DOCS = Path(__file__).resolve().parent.parent / "docs" / "dialects"
BLOCK = re.compile(r"\(golden case `([a-z0-9-]+)`[^)]*\):?\n\n```edifact\n(.*?)```", re.S)


@pytest.mark.parametrize("doc,area", [("medvri.md", "edifact-medvri"), ("medlab.md", "edifact-medlab")])
def test_examples_are_golden_files(doc: str, area: str) -> None:
    text = (DOCS / doc).read_text("utf-8")
    examples = BLOCK.findall(text)
    assert len(examples) == 2
    for case, block in examples:
        golden = (GOLDEN / area / case / "message.edi").read_bytes().decode("latin-1")
        assert block == golden.replace("\r\n", "\n"), case
