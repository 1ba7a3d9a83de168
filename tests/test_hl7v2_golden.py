"""Golden HL7 v2 messages (tests/golden/hl7v2/<message-type>/<case>/): read, write, cross-parser checks.

Inbound cases hold ``message.hl7`` (the native input) and the expected ``canonical.json`` and
``warnings.txt``; outbound cases (``*-outbound``) hold ``canonical.json`` (the native input) and the
expected ``message.hl7``. Every case proves both directions: v2 -> canonical equals the canonical JSON,
canonical -> v2 equals the message after normalising (segments split, values decoded, trailing empties
dropped, MSH-7 and MSH-10 masked, and whatever a warning says was not kept masked or dropped: the trace
of unconsumed input). Every message also parses to the same fields and components with python-hl7 and,
where hl7apy accepts it, with hl7apy.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import hl7
import pytest

from mappings.fhir.common import dumps
from mappings.fhir.format import decode
from mappings.fhir.r4b import validate_with_models
from mappings.hl7v2 import canonical as c
from mappings.hl7v2 import fhir, messages
from mappings.hl7v2.er7 import Message, decode_bytes, parse, parse_bytes
from mappings.problems import Problem, ProblemSink
from tests.golden_util import GOLDEN, check_or_write

AREA = GOLDEN / "hl7v2"
TYPES = [
    *(f"adt-a{n:02d}" for n in range(1, 14)),
    "adt-a28",
    "adt-a31",
    "adt-a40",
    "oru-r01",
    "oru-r30",
    *(f"mdm-t{n:02d}" for n in range(1, 12)),
    "orm-o01",
    "oml-o21",
    *(f"siu-s{n}" for n in range(12, 16)),
    "ref-i12",
    "mdm-t02-outbound",
    "oru-r01-outbound",
    "rri-i12-outbound",
    "ack-outbound",
]
CASES = sorted(p for t in TYPES if (AREA / t).is_dir() for p in (AREA / t).iterdir() if p.is_dir())
MASKED = "<masked>"
_LOC = re.compile(r"([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?)?\Z")
DROPS_SEGMENT = {"HL7-054", "HL7-055", "HL7-057"}
MASKS_VALUE = {"HL7-050", "HL7-053", "HL7-059"}


def pretty(obj: c.Hl7Canonical) -> str:
    return json.dumps(json.loads(c.to_json(obj)), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _trim(values: list) -> list:
    while values and values[-1] in ("", [], [""], [[""]], [[[""]]]):
        values.pop()
    return values


def tree(msg: Message, problems: list[Problem] = (), *, original: bool = False) -> list:
    """Segments as (name, fields) with decoded leaves; MSH-7/MSH-10 and warned values masked, and in the
    ``original`` the segments a warning says were not read dropped. Delimiters (MSH-1/MSH-2) are not
    compared: values are."""
    drop, mask = set(), []
    for p in problems:
        mt = _LOC.match(p.location)
        if p.code in DROPS_SEGMENT and mt and original:
            drop.add((mt.group(1), int(mt.group(2) or 1)))
        elif p.code in MASKS_VALUE and mt and mt.group(3):
            mask.append(tuple(int(x) if x else None for x in mt.groups()[1:]) + (mt.group(1),))
        elif p.code == "HL7-060" and mt:  # fields not mapped by design, listed in the message
            for name, n in re.findall(r"([A-Z][A-Z0-9]{2})-(\d+)", p.message):
                occurrence = int(mt.group(2)) if mt.group(2) else None
                mask.append((occurrence, int(n), None, None, None, name))
    out = []
    for seg in msg.segments:
        name = seg.fields[0]
        if (name, seg.occurrence) in drop:
            continue
        fields = []
        for n in range(1, len(seg.fields)):
            if name == "MSH" and n in (1, 2, 7, 10):
                fields.append(MASKED)
                continue
            reps = [
                _trim(
                    [
                        _trim(
                            [
                                ("" if s == '""' else seg.codec.decode(s))
                                for s in comp.split(seg.codec.delims.subcomponent)
                            ]
                        )
                        for comp in rep.split(seg.codec.delims.component)
                    ]
                )
                for rep in seg.reps(n)
            ]
            fields.append(_trim(reps))
        for occ, field, rep, comp, _sub, mname in mask:
            if mname != name or (occ or 1) != seg.occurrence:
                continue
            while len(fields) < field:
                fields.append([])
            if comp is None:
                fields[field - 1] = fields[field - 1][: (rep or 1) - 1] if rep else MASKED
            else:
                fields[field - 1] = MASKED
        out.append((name, _trim(fields)))
    return out


def _read_case(case: Path) -> tuple[bytes, c.Hl7Canonical, ProblemSink]:
    sink = ProblemSink()
    if case.parent.name.endswith("-outbound"):
        obj = c.from_json((case / "canonical.json").read_bytes())
        check_or_write(case / "message.hl7", messages.write(obj).to_bytes())
        data = (case / "message.hl7").read_bytes()
        assert messages.read(parse_bytes(data), sink) == obj
    else:
        data = (case / "message.hl7").read_bytes()
        obj = messages.read(parse_bytes(data), sink)
        check_or_write(case / "canonical.json", pretty(obj))
        assert obj == c.from_json((case / "canonical.json").read_bytes())
    check_or_write(case / "warnings.txt", "".join(p.render_line() + "\n" for p in sink.problems))
    return data, obj, sink


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_round_trip(case: Path):
    data, obj, sink = _read_case(case)
    written = messages.write(obj)
    original = parse_bytes(data)
    assert tree(written, sink.problems) == tree(original, sink.problems, original=True)
    assert pretty(messages.read(parse_bytes(written.to_bytes()))) == pretty(obj)


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_golden_round_trip_through_fhir(case: Path):
    """v2 -> FHIR message Bundle (golden ``fhir.json``) -> v2: the same message after normalising."""
    data, obj, sink = _read_case(case)
    bundle = fhir.to_fhir(obj)
    check_or_write(case / "fhir.json", dumps(bundle, pretty=True) + b"\n")
    validate_with_models(bundle)  # a second opinion on the structure (fhir.resources R4B)
    read_sink = ProblemSink()
    back = fhir.from_fhir(decode(dumps(bundle), "fhir.json", read_sink), read_sink)
    assert back == obj
    original = parse_bytes(data)
    assert tree(messages.write(back), sink.problems) == tree(original, sink.problems, original=True)
    # reading the Bundle back warns only what reading the v2 message warned about the same codes
    assert [p.code for p in read_sink.problems] == [p.code for p in sink.problems if p.code == "CODE-001"]


def test_at_least_six_cases_per_message_type():
    for t in TYPES:
        assert len([p for p in (AREA / t).iterdir() if p.is_dir()]) >= 6, t


def test_golden_cases_cover_terminators_charsets_and_escapes():
    raw = [(p / "message.hl7").read_bytes() for p in CASES]
    assert any(b"\r\n" in r for r in raw) and any(b"\n" in r and b"\r" not in r for r in raw)
    assert any(b"\r" in r and b"\n" not in r for r in raw)
    charsets = {decode_bytes(r)[1] for r in raw}
    assert {"", "8859/1", "8859/15", "UNICODE UTF-8"} <= charsets
    assert all(
        any(e in r for r in raw)
        for e in (b"\\F\\", b"\\S\\", b"\\T\\", b"\\R\\", b"\\E\\", b"\\X", b"\\.br\\")
    )


# --------------------------------------------------------------------------- the same fields as other parsers


def _ours(seg, n: int) -> list:
    raw = seg.fields[n]
    if seg.fields[0] == "MSH" and n in (1, 2):
        return [[[raw]]]
    d = seg.codec.delims
    return [
        [comp.split(d.subcomponent) for comp in rep.split(d.component)] for rep in raw.split(d.repetition)
    ]


def _nest(x, depth: int):
    """python-hl7 containers as repetitions > components > subcomponents (it only splits what it must)."""
    if isinstance(x, str):
        return x if depth == 0 else [_nest(x, depth - 1)]
    kids = list(x)
    if depth == 1:
        return [str(k) for k in kids]
    if len(kids) == 1 and isinstance(kids[0], str):
        return [_nest(kids[0], depth - 1)]
    return [_nest(k, depth - 1) for k in kids]


def _text(case: Path) -> str:
    text, _ = decode_bytes((case / "message.hl7").read_bytes())
    return text.replace("\r\n", "\r").replace("\n", "\r")


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_python_hl7_parses_the_same_fields_and_components(case: Path):
    text = _text(case)
    ours = parse(text)
    theirs = hl7.parse(text.rstrip("\r"))
    assert len(theirs) == len(ours.segments)
    for seg, pseg in zip(ours.segments, theirs, strict=True):
        assert str(pseg[0]) == seg.fields[0]
        assert len(pseg) == len(seg.fields)
        for n in range(1, len(seg.fields)):
            assert _nest(pseg[n], 3) == _ours(seg, n), f"{seg.loc(n)}"


def _hl7apy(text: str):
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
        except Exception:  # noqa: BLE001 - hl7apy refuses what it does not know; those cases are skipped
            return None


def test_hl7apy_parses_the_same_fields_where_it_accepts_the_message():
    accepted = []
    compared = 0
    for case in CASES:
        text = _text(case)
        theirs = _hl7apy(text)
        if theirs is None:
            continue
        accepted.append(case)
        ours = parse(text)
        assert [s.name for s in theirs.children] == [s.fields[0] for s in ours.segments], case
        for seg, hseg in zip(ours.segments, theirs.children, strict=True):
            # Fields beyond those hl7apy's version defines (TXA-24.. of v2.6, OBX-21, Z segments) come
            # unnamed and without their position: compared in order.
            defined = len(hseg.structure_by_name) or len(seg.fields)  # Z segments: hl7apy numbers every field
            extra = [f.to_er7() for f in hseg.children if f.name is None]
            ours_extra = [seg.fields[n] for n in range(defined + 1, len(seg.fields)) if seg.fields[n]]
            if seg.codec.delims.escape not in "".join(ours_extra):
                assert extra == ours_extra, f"{case.parent.name}/{case.name} {seg.loc()}"
                compared += len(extra)
            fields: dict[int, list[str]] = {}
            for f in hseg.children:
                if f.name is not None:
                    fields.setdefault(int(f.name.split("_")[1]), []).append(f.to_er7())
            expected = {
                n: ([seg.fields[n]] if seg.fields[0] == "MSH" and n <= 2 else seg.reps(n))
                for n in range(1, min(len(seg.fields), defined + 1))
                if seg.fields[n]
            }
            # hl7apy knows only \F\ \S\ \T\ \R\ \E\ and re-escapes the rest (\Xhh\, \.br\, \H\):
            # fields with escape sequences are compared by python-hl7 above, not here.
            esc = seg.codec.delims.escape
            skip = {n for n in expected if esc in seg.fields[n] and not (seg.fields[0] == "MSH" and n <= 2)}
            compared += len(expected) - len(skip)
            assert {n: v for n, v in fields.items() if n not in skip} == {
                n: v for n, v in expected.items() if n not in skip
            }, f"{case.parent.name}/{case.name} {seg.loc()}"
    assert len(accepted) >= len(CASES) // 2, f"hl7apy accepted only {len(accepted)} of {len(CASES)}"
    assert compared > 1000
