"""Issue 13, acceptance 1: HL7 v2 messages written by others (``tests/corpus/hl7v2/``).

Each message either converts -- and then the walker (:mod:`tests.hl7v2_walker`) counts the values of it
that the FHIR Bundle neither carries nor lists as deliberately not mapped -- or is refused with the
problem codes recorded. ``EXPECTED.tsv`` holds the outcome per message; a change in either direction
fails here and has to be looked at (a lower count of unaccounted values is progress: update the table).
The refusal codes must be among those ``docs/hl7v2.md`` §9a explains.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from mappings.hl7v2 import fhir, messages
from mappings.hl7v2.er7 import Hl7ParseError, parse_bytes, split_messages
from mappings.problems import InputError, ProblemSink, Severity
from tests.hl7v2_walker import unaccounted

ROOT = Path(__file__).parent / "corpus" / "hl7v2"
FILES = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("*/*.hl7"))
DOCS = Path(__file__).parent.parent / "docs" / "hl7v2.md"


def _expected() -> dict[tuple[str, str], str]:
    out = {}
    for line in (ROOT / "EXPECTED.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        file, number, outcome = line.split("\t")
        out[(file, number)] = outcome
    return out


def outcomes(file: str) -> dict[tuple[str, str], str]:
    """(file, message number) -> ``converted <n unaccounted>`` or ``refused <codes>``."""
    try:
        parts = list(split_messages((ROOT / file).read_bytes()))
    except Hl7ParseError as exc:
        codes = sorted({p.code for p in exc.problems if p.severity is Severity.ERROR})
        return {(file, "-"): "refused " + ",".join(codes)}
    out = {}
    for part in parts:
        sink = ProblemSink()
        try:
            msg = parse_bytes(part.data)
            obj = messages.read(msg, sink)
        except (InputError, Hl7ParseError) as exc:
            codes = sorted({p.code for p in exc.problems if p.severity is Severity.ERROR})
            out[(file, str(part.number))] = "refused " + ",".join(codes)
            continue
        lost = unaccounted(msg, fhir.to_fhir(obj), sink.problems)
        out[(file, str(part.number))] = f"converted {len(lost)}"
    return out


def test_at_least_60_messages_each_with_source_and_licence():
    sources = tomllib.loads((ROOT / "SOURCES.toml").read_text(encoding="utf-8"))["message"]
    listed = {s["file"] for s in sources}
    assert len(FILES) >= 60
    assert listed == set(FILES)
    for s in sources:
        assert s["repository"].startswith("https://github.com/") and s["licence"] and s["path"]
        assert re.fullmatch(r"[0-9a-f]{40}", s["commit"])


@pytest.mark.parametrize("file", FILES)
def test_each_message_converts_or_is_refused_as_recorded(file):
    expected = {k: v for k, v in _expected().items() if k[0] == file}
    assert outcomes(file) == expected


def test_every_refusal_reason_is_explained_in_the_docs():
    documented = set(
        re.findall(r"`(HL7-\d{3}|CODE-\d{3})`", DOCS.read_text(encoding="utf-8").split("## 9a.")[1])
    )
    used = {c for v in _expected().values() if v.startswith("refused") for c in v.split(" ", 1)[1].split(",")}
    assert used <= documented, used - documented
