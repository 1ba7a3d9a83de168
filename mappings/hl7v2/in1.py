"""IN1[Coverage] (HL7 v2.5 §6.5.6), reduced to what the canonical Insurance holds.

IN1-3 the insurer's UZOVI code as ``<uzovi>^^^VEKTIS&2.16.840.1.113883.2.4.6.4&ISO^UZOVI``, IN1-4 the
insurer's name, IN1-36 the policy number. The first IN1 of a message is read. An ADT's IN1 whose IN1-3 is
no UZOVI code (a foreign or private insurer, or none given) is kept as an
:class:`~mappings.hl7v2.canonical.OtherInsurance` with warning ``HL7-065`` (:func:`other_from_segment`).
"""

from __future__ import annotations

import re

from mappings import model as m
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.canonical import OtherInsurance
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 3, 4, 36})
_UZOVI = re.compile(r"[0-9]{4}\Z")


def is_uzovi(seg: Segment) -> bool:
    """True when IN1-3.1 has the shape of a UZOVI code (4 digits)."""
    return bool(_UZOVI.match(seg.get(3)))


def other_from_segment(seg: Segment, sink: ProblemSink) -> OtherInsurance:
    """The insurer of an IN1 without a UZOVI code, kept as sent (``HL7-065``)."""
    warn_unread(seg, READ, sink)
    other = OtherInsurance(
        insurer_id=t.opt(seg.get(3)),
        insurer_authority=t.opt(seg.get(3, 4)),
        insurer_name=t.opt(seg.get(4)),
        policy_number=t.opt(seg.get(36)),
    )
    sink.warning(
        "HL7-065",
        seg.loc(3),
        f"insurer {other.insurer_id or other.insurer_name or '(none)'!r} has no UZOVI code: kept as another "
        "insurer (Coverage without a UZOVI payor)",
    )
    return other


def other_to_segment(o: OtherInsurance) -> tuple[str, list[FieldValue]]:
    fields: list[FieldValue] = ["1", None, (o.insurer_id, None, None, o.insurer_authority), o.insurer_name]
    if o.policy_number:
        fields += [None] * 31 + [o.policy_number]
    return "IN1", fields


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
