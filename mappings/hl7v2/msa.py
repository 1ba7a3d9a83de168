"""MSA message acknowledgment (HL7 v2.5 §2.14.8): MSA-1 code, MSA-2 the acknowledged MSH-10, MSA-3 text.

Codes: original mode ``AA`` accept, ``AE`` error, ``AR`` reject; enhanced mode accept acknowledgements
``CA`` commit accept, ``CE`` commit error, ``CR`` commit reject (HL7 table 0008).
"""

from __future__ import annotations

from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.problems import ProblemSink

CODES = frozenset({"AA", "AE", "AR", "CA", "CE", "CR"})


def from_segment(seg: Segment, sink: ProblemSink) -> tuple[str, str, str | None] | None:
    code = seg.get(1)
    if code not in CODES:
        sink.error(
            "HL7-011", seg.loc(1), f"acknowledgment code {code!r} is not one of {', '.join(sorted(CODES))}"
        )
        return None
    return code, seg.get(2), seg.get(3) or None


def to_segment(code: str, control_id: str, text: str | None = None) -> tuple[str, list[FieldValue]]:
    return "MSA", [code, control_id, text]
