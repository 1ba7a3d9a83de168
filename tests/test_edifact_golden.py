"""Golden Edifact messages (tests/golden/edifact-medvri/<case>/, tests/golden/edifact-medlab/<case>/).

Each case holds ``message.edi`` (the native input) and the expected ``canonical.json`` (the message
structs, one per message), ``fhir.json`` (one message Bundle per message), ``warnings.txt`` and, for
MEDLAB, ``oru.hl7`` (the ORU^R01 projection). ``written.edi`` is there when the gateway writes the
message differently from how it came (what a warning says was not kept, a renumbering).

Every case proves: Edifact -> canonical equals the canonical JSON; canonical -> Edifact and
Edifact -> FHIR -> Edifact give the input bytes (``written.edi`` if present) after masking the
interchange date and the interchange and message numbers; MEDLAB -> ORU^R01 -> canonical and
-> FHIR -> canonical keep every measurement (value, unit, range, flag) equal.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from mappings.edifact import canonical as ec
from mappings.edifact.fhir import from_fhir, to_fhir, to_oru
from mappings.edifact.format import read_interchange, write_messages
from mappings.fhir.common import dumps
from mappings.hl7v2 import fhir as v2fhir
from mappings.hl7v2 import messages
from mappings.hl7v2.er7 import parse_bytes
from mappings.problems import ProblemSink
from tests.golden_util import GOLDEN, check_or_write

AREAS = ("edifact-medvri", "edifact-medlab")
CASES = sorted(p for a in AREAS for p in (GOLDEN / a).iterdir() if p.is_dir())


def mask(data: bytes) -> bytes:
    """Interchange date (UNB-4), interchange reference (UNB-5, UNZ-2) and message references (UNH-1,
    UNT-2) replaced by ``#``, whatever the service characters."""
    text = data.decode("latin-1")
    el = "+"
    seg = "'"
    if text.startswith("UNA"):
        el, seg = text[4], text[8]
    out = []
    for raw in text.split(seg):
        parts = raw.split(el)
        tag = parts[0].lstrip("\r\n")
        if tag == "UNB" and len(parts) > 5:
            parts[4] = parts[5] = "#"
        elif tag in ("UNH", "UNZ") and len(parts) > 1:
            parts[1 if tag == "UNH" else 2 if len(parts) > 2 else 1] = "#"
        elif tag == "UNT" and len(parts) > 2:
            parts[2] = "#"
        out.append(el.join(parts))
    return seg.join(out).encode("latin-1")


def pretty(items: list[ec.EdifactMessage]) -> str:
    return "".join(
        json.dumps(json.loads(ec.to_json(x)), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        for x in items
    )


def _read(case: Path) -> tuple[list[ec.EdifactMessage], ProblemSink]:
    sink = ProblemSink()
    items = read_interchange((case / "message.edi").read_bytes(), source="message.edi", sink=sink)
    return items, sink


def _expected_edi(case: Path) -> bytes:
    written = case / "written.edi"
    return written.read_bytes() if written.exists() else (case / "message.edi").read_bytes()


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_read_matches_canonical_and_warnings(case: Path) -> None:
    items, sink = _read(case)
    check_or_write(case / "canonical.json", pretty(items))
    check_or_write(case / "warnings.txt", "".join(p.render_line() + "\n" for p in sink.problems))
    assert ec.from_json(ec.to_json(items[0])) == items[0]


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_canonical_to_edifact_byte_identical(case: Path) -> None:
    items = [ec.from_json(json.dumps(d)) for d in _objects((case / "canonical.json").read_text("utf-8"))]
    out = write_messages(items)
    if (case / "written.edi").exists() or not (case / "message.edi").exists():
        check_or_write(case / "written.edi", out)
    assert mask(out) == mask(_expected_edi(case))


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.name}" for p in CASES])
def test_fhir_both_directions(case: Path) -> None:
    items, _ = _read(case)
    bundles = [to_fhir(x) for x in items]
    check_or_write(case / "fhir.json", "".join(dumps(b, pretty=True).decode() + "\n" for b in bundles))
    back = [from_fhir(b) for b in _objects((case / "fhir.json").read_text("utf-8"))]
    assert back == items
    assert mask(write_messages(back)) == mask(_expected_edi(case))


MEDLAB = [c for c in CASES if c.parent.name == "edifact-medlab"]


@pytest.mark.parametrize("case", MEDLAB, ids=[p.name for p in MEDLAB])
def test_medlab_oru_and_fhir_give_the_same_observations(case: Path) -> None:
    """Acceptance 2: MEDLAB <-> ORU^R01 <-> FHIR: the same measurements (value, unit, range, flag)."""
    items, _ = _read(case)
    er7 = b"".join(
        messages.write(to_oru(x)).to_bytes() + b"\n" for x in items if isinstance(x, ec.MedlabMessage)
    )
    check_or_write(case / "oru.hl7", er7)
    for x in items:
        assert isinstance(x, ec.MedlabMessage)
        v2 = messages.read(parse_bytes(messages.write(to_oru(x)).to_bytes()))
        assert _values(v2.measurements) == _values(x.measurements)  # type: ignore[union-attr]
        via_fhir = v2fhir.from_fhir(v2fhir.to_fhir(v2))
        assert _values(via_fhir.measurements) == _values(x.measurements)  # type: ignore[union-attr]
        assert from_fhir(to_fhir(x)).measurements == x.measurements  # type: ignore[union-attr]


def _objects(text: str) -> list:
    """Concatenated pretty-printed JSON documents."""
    dec = json.JSONDecoder()
    out, i = [], 0
    text = text.strip()
    while i < len(text):
        obj, i = dec.raw_decode(text, i)
        out.append(obj)
        while i < len(text) and text[i].isspace():
            i += 1
    return out


def test_mask_hides_only_dates_and_numbers() -> None:
    a = b"UNB+UNOC:1+A+01234567+260105:1432+IC1'UNH+1+MEDVRI:1'UNT+2+1'UNZ+1+IC1'"
    b = b"UNB+UNOC:1+A+01234567+270101:0000+IC9'UNH+5+MEDVRI:1'UNT+2+5'UNZ+1+IC9'"
    assert mask(a) == mask(b)
    assert mask(a) != mask(a.replace(b"+A+", b"+B+"))
    assert re.search(rb"UNZ\+1\+#", mask(a))


ORU = sorted(p for p in (GOLDEN / "hl7v2" / "oru-r01").iterdir() if p.is_dir())


def _values(xs) -> list[tuple]:
    return [
        (x.code, x.value_quantity, x.value_text, x.unit, x.reference_low, x.reference_high, x.interpretation)
        for x in xs
    ]


@pytest.mark.parametrize("case", ORU, ids=[p.name for p in ORU])
def test_hl7v2_oru_written_as_medlab_keeps_values_units_ranges_and_flags(case: Path) -> None:
    """Acceptance 2, the other way: every golden ORU^R01 -> MEDLAB -> read back (and -> FHIR) gives the
    same results; a multi-line text result, which BEP-3 cannot hold, is refused with EDI-035."""
    from mappings.edifact.fhir import from_oru
    from mappings.problems import InputError

    v2 = messages.read(parse_bytes((case / "message.hl7").read_bytes()))
    lab = from_oru(v2)  # type: ignore[arg-type]
    if any(x.value_text and "\n" in x.value_text for x in v2.measurements):  # type: ignore[union-attr]
        with pytest.raises(InputError) as info:
            write_messages([lab])
        assert info.value.problems[0].code == "EDI-035"
        return
    (back,) = read_interchange(write_messages([lab]), source="oru.edi")
    assert _values(back.measurements) == _values(v2.measurements)  # type: ignore[union-attr]
    assert _values(from_fhir(to_fhir(back)).measurements) == _values(v2.measurements)  # type: ignore[union-attr]
