"""Every stable problem code the code can emit is documented once in docs/problem-codes.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CODE_RE = re.compile(r"""["']([A-Z][A-Z0-9]{1,5}-\d{3})["']""")


def _codes_in_source() -> set[str]:
    found: set[str] = set()
    for folder in ("adapters", "mappings", "gateway", "conformance"):
        for py in (ROOT / folder).rglob("*.py"):
            found.update(CODE_RE.findall(py.read_text("utf-8")))
    return found


def test_every_emitted_code_is_documented():
    doc = (ROOT / "docs" / "problem-codes.md").read_text("utf-8")
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9]{1,5}-\d{3})` \|", doc, re.M))
    missing = sorted(_codes_in_source() - documented)
    assert not missing, f"codes used in the source but not in docs/problem-codes.md: {missing}"


def test_no_code_documented_twice():
    doc = (ROOT / "docs" / "problem-codes.md").read_text("utf-8")
    codes = re.findall(r"^\| `([A-Z][A-Z0-9]{1,5}-\d{3})` \|", doc, re.M)
    assert len(codes) == len(set(codes))
