"""ERR error segment (HL7 v2.5 §2.14.5): one ERR per problem, naming segment and field.

v2.5 and later: ERR-2 error location (ERL ``segment^sequence^field^repetition^component^subcomponent``),
ERR-3 HL7 error code (table 0357), ERR-4 severity (E W I), ERR-5 our stable problem code
(``HL7-011^^HISGW``), ERR-7 the location as the gateway writes it, ERR-8 the message for people.
v2.3 and v2.4: ERR-1 ELD ``segment^sequence^field^code&text&HL70357`` (what those versions define).
"""

from __future__ import annotations

import re

from mappings.hl7v2.canonical import AckError
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.problems import Problem, ProblemSink, Severity

HL7_CODES = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}
"""HL7 table 0357, message error condition codes."""

PROBLEM_TO_HL7 = {
    "HL7-002": "100",
    "HL7-003": "102",
    "HL7-004": "102",
    "HL7-005": "102",
    "HL7-006": "102",
    "HL7-007": "100",
    "HL7-010": "101",
    "HL7-011": "102",
    "HL7-012": "200",
    "HL7-013": "203",
    "HL7-014": "201",
    "HL7-015": "100",
    "HL7-020": "102",
    "HL7-021": "102",
    "HL7-022": "102",
    "HL7-041": "100",
    "CODE-001": "103",
}
"""Our problem code -> table 0357 (anything else: 207, application internal error; warnings: 0)."""

SEVERITY = {Severity.ERROR: "E", Severity.WARNING: "W", Severity.INFORMATION: "I"}
SEVERITY_BACK = {"E": "error", "F": "error", "W": "warning", "I": "information"}
_LOC = re.compile(r"([A-Z][A-Z0-9]{2})(?:\[(\d+)\])?(?:-(\d+)(?:\[(\d+)\])?(?:\.(\d+)(?:\.(\d+))?)?)?\Z")
_SEG = re.compile(r"segment (\d+)(?: \(([A-Z][A-Z0-9]{2})\))?")
OLD_VERSIONS = frozenset({"2.1", "2.2", "2.3", "2.3.1", "2.4"})


def hl7_code(p: Problem) -> str:
    if p.severity is not Severity.ERROR:
        return "0"
    return PROBLEM_TO_HL7.get(p.code, "207")


def erl(location: str) -> tuple:
    """ERL components for a location (``OBX[2]-5.1`` -> ``OBX^2^5^1^1``); empty when not a field location."""
    mt = _LOC.match(location)
    if mt:
        name, occ, field, rep, comp, sub = mt.groups()
        return (name, occ or "1", field, (rep or "1") if field else None, comp, sub)
    mt = _SEG.search(location)
    if mt:
        return (mt.group(2) or None, None)
    return ()


def to_segment(p: Problem, version: str, code: str | None = None) -> tuple[str, list[FieldValue]]:
    """One ERR for a problem; ``code`` overrides the table 0357 code derived from the problem code."""
    code = code if code in HL7_CODES else hl7_code(p)
    loc = erl(p.location)
    if version in OLD_VERSIONS:
        eld = (
            loc[0] if loc else None,
            loc[1] if len(loc) > 1 else None,
            loc[2] if len(loc) > 2 else None,
            (code, HL7_CODES[code], "HL70357"),
        )
        return "ERR", [eld]
    return "ERR", [
        None,
        loc or None,
        (code, HL7_CODES[code], "HL70357"),
        SEVERITY[p.severity],
        (p.code, None, "HISGW"),
        None,
        p.location,
        p.message,
    ]


def from_segment(seg: Segment, sink: ProblemSink) -> AckError:
    if seg.raw(3) or seg.raw(4):
        return AckError(
            severity=SEVERITY_BACK.get(seg.get(4), "error"),
            code=seg.get(5) or seg.get(3),
            location=seg.get(7) or "-".join(x for x in (seg.get(2, 1), seg.get(2, 3)) if x),
            message=seg.get(8) or seg.get(3, 2),
            hl7_code=seg.get(3) or "207",
        )
    code = seg.get(1, 4, 1)
    location = "-".join(x for x in (seg.get(1, 1), seg.get(1, 3)) if x)
    return AckError(
        severity="error", code=code, location=location, message=seg.get(1, 4, 2), hl7_code=code or "207"
    )
