"""RF1 referral information (HL7 v2.5 §11.6.1) for REF^I12 and RRI^I12.

RF1-1 status (P A R E), RF1-2 priority (S A R), RF1-3 type, RF1-4 disposition (first repetition),
RF1-5 category, RF1-6 originating referral identifier (EI.1, required: the consult id), RF1-7 effective,
RF1-8 expiration date/time, RF1-10 referral reason (CE: an ICPC code with system ``ICPC1NL``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 5, 6, 7, 8, 10})


def from_segment(seg: Segment, sink: ProblemSink) -> dict[str, Any]:
    warn_unread(seg, READ, sink)
    rid = seg.get(6)
    if not rid:
        sink.error("HL7-010", seg.loc(6), "RF1-6 originating referral identifier is required")
    code, text, system = t.read_cwe(seg.components(10))
    return {
        "id": rid,
        "status": seg.get(1) or "P",
        "priority": t.opt(seg.get(2)),
        "type": t.opt(seg.get(3)),
        "disposition": t.opt(seg.get(4)),
        "category": t.opt(seg.get(5)),
        "effective": t.parse_dtm(seg.get(7), seg.loc(7), sink),
        "expires": t.parse_dtm(seg.get(8), seg.loc(8), sink),
        "reason_code": t.opt(code),
        "reason_text": t.opt(text),
        "reason_system": t.opt(system),
    }


def to_segment(
    referral_id: str,
    status: str,
    *,
    priority: str | None = None,
    type: str | None = None,
    disposition: str | None = None,
    category: str | None = None,
    effective: dt.datetime | None = None,
    expires: dt.datetime | None = None,
    reason: tuple | None = None,
) -> tuple[str, list[FieldValue]]:
    return "RF1", [
        status,
        priority,
        type,
        disposition,
        category,
        referral_id,
        t.fmt_dtm(effective),
        t.fmt_dtm(expires),
        None,
        reason,
    ]
