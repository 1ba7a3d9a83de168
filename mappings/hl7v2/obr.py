"""OBR[ServiceRequest/DiagnosticReport] (HL7 v2.5 §7.4.1), reduced to the :class:`LabOrder` header.

OBR-2 placer and OBR-3 filler order number (EI.1), OBR-4 universal service identifier (CE, required),
OBR-7 observation date/time (the default for OBX-14), OBR-16 ordering provider (XCN), OBR-25 result
status.
"""

from __future__ import annotations

from mappings.hl7v2 import datatypes as t
from mappings.hl7v2.canonical import LabOrder
from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3, 4, 7, 16, 25})


def from_segment(seg: Segment, sink: ProblemSink) -> LabOrder | None:
    """The order without its measurements (the ORU mapping adds them)."""
    warn_unread(seg, READ, sink)
    code, text, system = t.read_cwe(seg.components(4))
    if not code:
        sink.error("HL7-010", seg.loc(4), "OBR-4 universal service identifier is required")
        return None
    return LabOrder(
        service_code=code,
        service_text=t.opt(text),
        service_system=t.opt(system),
        placer_number=t.opt(seg.get(2)),
        filler_number=t.opt(seg.get(3)),
        observed=t.dtm_at(seg.get(7), seg, 7, sink),
        ordering=tuple(t.read_xcn(seg.all_components(16), seg.loc(16), sink)),
        result_status=t.opt(seg.get(25)),
    )


def to_segment(o: LabOrder, set_id: int) -> tuple[str, list[FieldValue]]:
    fields: list[FieldValue] = [
        str(set_id),
        o.placer_number,
        o.filler_number,
        (o.service_code, o.service_text, o.service_system),
        None,
        None,
        t.fmt_dtm(o.observed),
    ]
    fields += [None] * 8 + [[r for p in o.ordering for r in t.write_xcn(p)]] + [None] * 8 + [o.result_status]
    return "OBR", fields
