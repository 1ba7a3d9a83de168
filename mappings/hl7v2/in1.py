"""IN1[Coverage] (HL7 v2.5 §6.5.6), reduced to what the canonical Insurance holds.

IN1-3 the insurer's UZOVI code as ``<uzovi>^^^VEKTIS&2.16.840.1.113883.2.4.6.4&ISO^UZOVI``, IN1-4 the
insurer's name, IN1-36 the policy number. The first IN1 of a message is read.
"""

from __future__ import annotations

from mappings import model as m
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 3, 4, 36})


def from_segment(seg: Segment, sink: ProblemSink) -> m.Insurance | None:
    warn_unread(seg, READ, sink)
    uzovi = seg.get(3)
    if not uzovi:
        sink.error("HL7-010", seg.loc(3), "IN1-3 insurer (UZOVI) is required")
        return None
    try:
        return m.Insurance(uzovi=uzovi, insurer_name=t.opt(seg.get(4)), policy_number=t.opt(seg.get(36)))
    except ValueError as exc:
        sink.error("HL7-020", seg.loc(3), str(exc))
        return None


def to_segment(i: m.Insurance) -> tuple[str, list[FieldValue]]:
    fields: list[FieldValue] = [
        "1",
        None,
        (i.uzovi, None, None, t.hd("VEKTIS", t.UZOVI_OID), "UZOVI"),
        i.insurer_name,
    ]
    if i.policy_number:
        fields += [None] * 31 + [i.policy_number]
    return "IN1", fields
