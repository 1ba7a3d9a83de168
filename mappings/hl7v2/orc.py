"""ORC[ServiceRequest] common order (HL7 v2.5 §4.5.1; V2-to-FHIR IG "ORC[ServiceRequest]").

ORC-1 order control (required, table 0119), ORC-2 placer and ORC-3 filler order number (EI.1), ORC-4
placer group number, ORC-5 order status (table 0038), ORC-9 date/time of transaction, ORC-12 ordering
provider (XCN, Dutch identifiers). Used by the order messages (ORM^O01, OML^O21: :mod:`.orm`) and in front
of an OBR of a result (ORU^R01, ORU^R30: :mod:`.oru`).
"""

from __future__ import annotations

from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.canonical import OrderCommon
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 5, 9, 12})
LISTED = frozenset({6, 7, *range(10, 12), *range(13, 25), *range(26, 33)})
"""Not mapped by design, listed as information (``HL7-060``): response flag, quantity/timing (withdrawn;
TQ1 in its place), entered/verified by, enterer's location, call back phone, order effective date/time,
control code reason, entering organization/device, action by, advanced beneficiary notice, ordering
facility and provider addresses, ORC-26..32. ORC-8 parent order and ORC-25 order status modifier and any
field beyond ORC-32 (an identifier, a status) refuse the message (``HL7-053``)."""


def from_segment(seg: Segment, sink: ProblemSink) -> OrderCommon | None:
    """The common order; ``None`` (with ``HL7-010`` in ``sink``) without ORC-1 or with a field it must not
    drop (:data:`LISTED`)."""
    warn_unread(seg, READ, sink, LISTED)
    control = seg.get(1)
    if not control:
        sink.error("HL7-010", seg.loc(1), "ORC-1 order control is required")
        return None
    return OrderCommon(
        control=control,
        placer_number=t.opt(seg.get(2)),
        filler_number=t.opt(seg.get(3)),
        group_number=t.opt(seg.get(4)),
        status=t.opt(seg.get(5)),
        transaction_time=t.parse_dtm(seg.get(9), seg.loc(9), sink),
        ordering=tuple(t.read_xcn(seg.all_components(12), seg.loc(12), sink)),
    )


def to_segment(o: OrderCommon) -> tuple[str, list[FieldValue]]:
    fields: list[FieldValue] = [None] * 12
    fields[0] = o.control  # ORC-1
    fields[1] = o.placer_number  # ORC-2
    fields[2] = o.filler_number  # ORC-3
    fields[3] = o.group_number  # ORC-4
    fields[4] = o.status  # ORC-5
    fields[8] = t.fmt_dtm(o.transaction_time)  # ORC-9
    fields[11] = [r for p in o.ordering for r in t.write_xcn(p)]  # ORC-12
    return "ORC", fields
