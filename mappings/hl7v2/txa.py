"""TXA[DocumentReference] (HL7 v2.5 §9.6.1) -> the canonical Correspondence of a postbox item.

TXA-2 document type carries the NHG Tabel 69 kind of correspondence (the Dutch use of this user-defined
table 0270), TXA-3 ``TX``, TXA-4 activity date/time -> ``date``, TXA-5 primary activity provider ->
``sender_name`` (FN.1 of XCN.2 when written by us; composed from the name parts otherwise), TXA-12 unique
document number -> ``id``, TXA-13 parent document (kept by the MDM message), TXA-14 placer order number ->
``sender_reference``, TXA-16 unique document file name -> the postbox item id, TXA-17 completion status
(``AU`` written unless another was read; ``IP``/``IN``/``DI`` refused, ``HL7-058``), TXA-19 availability
(``AV`` unless another was read), TXA-23 distributed copies -> ``addressee_name``. Three v2.6 fields are
used in any version (a v2.5 receiver ignores fields it does not know, §2.5.5): TXA-24 folder assignment ->
the postbox item kind (``consult-answer^^HISGW``), TXA-25 document title -> ``subject``, TXA-28 creating
specialty -> ``sender_discipline``."""

from __future__ import annotations

from typing import Any

from mappings import model as m
from mappings.codetables import code_tables
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 5, 12, 13, 14, 16, 17, 19, 23, 24, 25, 28})
LISTED = frozenset({6, 7, 8, 9, 10, 11, 20, 21, 22, 26, 27, 29, 30, 31, 32})
"""Not mapped by design, listed as information (``HL7-060``): origination, transcription and edit times,
originator, authenticators, transcriptionist, storage status, change reason, authentication, v2.6+
administrative fields. TXA-15 filler order number (an identifier) and TXA-18 confidentiality status (a
status the postbox must honour) refuse the message (``HL7-053``)."""
KINDS = frozenset({"feedback", "consult-answer", "letter", "result"})
NOT_FINAL = frozenset({"IP", "IN", "DI"})
HISGW = "HISGW"


def _person_text(comps: list[list[str]]) -> str | None:
    """A one-line name from an XCN: FN.1 as we write it, else the parts in Dutch display order."""
    fn = comps[1] if len(comps) > 1 else []
    if len(fn) == 1 and not any(t.comp(comps, i) for i in (3, 4, 6)):
        return t.opt(fn[0])
    parts = [
        t.comp(comps, 6),
        t.comp(comps, 3) or t.comp(comps, 4),
        t.comp(comps, 2, 2),
        t.comp(comps, 2, 3) or t.comp(comps, 2, 1),
    ]
    text = " ".join(p for p in parts if p)
    return text or t.opt(t.comp(comps, 1))


def read_parts(seg: Segment, sink: ProblemSink) -> dict[str, Any]:
    """Correspondence keyword arguments plus ``item_id`` and ``item_kind``."""
    warn_unread(seg, READ, sink, LISTED)
    status = seg.get(17)
    if status in NOT_FINAL:
        sink.error(
            "HL7-058",
            seg.loc(17),
            f"document completion status {status!r}: only finished documents are delivered to a postbox",
        )
    kind = t.opt(seg.get(2))
    code_tables().check("tabel69", kind, seg.loc(2), sink)
    folder = seg.get(24)
    if folder and folder not in KINDS:
        sink.error("HL7-011", seg.loc(24), f"folder {folder!r} is not one of {', '.join(sorted(KINDS))}")
    date = t.parse_dtm(seg.get(4), seg.loc(4), sink)
    if date is None and not seg.get(4):
        sink.error("HL7-010", seg.loc(4), "TXA-4 activity date/time is required")
    sender = seg.components(5)
    copies = seg.components(23)
    return {
        "id": seg.get(12),
        "date": date,
        "kind": kind,
        "subject": t.opt(seg.get(25)),
        "sender_name": _person_text(sender) if sender else None,
        "sender_discipline": t.opt(seg.get(28)),
        "addressee_name": _person_text(copies) if copies else None,
        "sender_reference": t.opt(seg.get(14)),
        "item_id": t.opt(seg.get(16)),
        "item_kind": folder if folder in KINDS else "letter",
    }


def to_segment(
    c: m.Correspondence,
    item_id: str | None,
    item_kind: str,
    *,
    parent: str | None = None,
    status: str = "AU",
    availability: str = "AV",
) -> tuple[str, list[FieldValue]]:
    fields: list[FieldValue] = [
        "1",  # TXA-1
        c.kind,  # TXA-2
        "TX",  # TXA-3
        t.fmt_dtm(c.date),  # TXA-4
        (None, c.sender_name) if c.sender_name else None,  # TXA-5
        None,
        None,
        None,
        None,
        None,
        None,  # TXA-6 .. TXA-11
        c.id,  # TXA-12
        parent,  # TXA-13 parent document number
        c.sender_reference,  # TXA-14
        None,  # TXA-15
        item_id,  # TXA-16
        status,  # TXA-17
        None,  # TXA-18
        availability,  # TXA-19
        None,
        None,
        None,  # TXA-20 .. TXA-22
        (None, c.addressee_name) if c.addressee_name else None,  # TXA-23
        (item_kind, None, HISGW),  # TXA-24
        c.subject,  # TXA-25
        None,
        None,  # TXA-26, TXA-27
        c.sender_discipline,  # TXA-28
    ]
    return "TXA", fields
