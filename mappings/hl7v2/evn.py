"""EVN (HL7 v2.5 §3.4.1): EVN-1 event type (written as the trigger for versions before 2.7, which
withdrew it) and EVN-2 recorded date/time, the moment the event happened in the sending system."""

from __future__ import annotations

import datetime as dt

from mappings.hl7v2.datatypes import fmt_dtm, parse_dtm
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2})


def from_segment(seg: Segment, sink: ProblemSink) -> dt.datetime | None:
    warn_unread(seg, READ, sink)
    return parse_dtm(seg.get(2), seg.loc(2), sink)


WITHDRAWN_EVN_1 = frozenset({"2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"})


def to_segment(
    trigger: str, recorded: dt.datetime | None, version: str = "2.5"
) -> tuple[str, list[FieldValue]]:
    return "EVN", [None if version in WITHDRAWN_EVN_1 else trigger, fmt_dtm(recorded)]
