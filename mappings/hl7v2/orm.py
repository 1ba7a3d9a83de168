"""ORM^O01 general order (HL7 v2.5 §4.4.1) and OML^O21 laboratory order (§4.4.6) <-> orders.

Structures (the segments read here; any other is reported as not read, ``HL7-054``)::

    ORM_O01  MSH [{NTE}] [PID [PV1] [IN1]] {ORC [OBR [{NTE}] [{OBX}]]}
    OML_O21  MSH [{NTE}] [PID [PV1] [IN1]] {ORC [{TQ1}] [OBR [{NTE}] [{OBX}]]}

Each ORC starts an :class:`~mappings.hl7v2.canonical.Order` (the IG's ``ORC[ServiceRequest]`` with
``OBR[ServiceRequest]``): ORC-1 order control (required), ORC-2/-3 placer and filler order number (else
OBR-2/-3), ORC-4 placer group, ORC-5 order status, ORC-9 transaction time, ORC-12 ordering provider (else
OBR-16); OBR-4 the service, OBR-5/TQ1-9 priority, OBR-6/TQ1-7 the requested time, OBR-15 specimen source,
OBR-31 reason; NTE after the OBR its notes; OBX after it observations sent with the order. The gateway
needs the patient: a message without PID is ``HL7-015``. Written: the timing in TQ1 for version 2.5 and
later (where OBR-5 and OBR-6 are withdrawn), in OBR-5/-6 before; placer, filler and orderer in both ORC
and OBR.
"""

from __future__ import annotations

from mappings import model as m
from mappings.codetables import code_tables
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2 import in1, msh, nte, obx, pid, pv1
from mappings.hl7v2.canonical import Coded, Order, OrderMessage
from mappings.hl7v2.er7 import FieldValue, Message, Segment, build
from mappings.hl7v2.trace import warn_unread, warn_unread_segments
from mappings.problems import ProblemSink

EVENTS = {"ORM": {"O01": "ORM_O01"}, "OML": {"O21": "OML_O21"}}
"""Message type -> trigger event -> message structure (MSH-9.3)."""
ORC_READ = frozenset({1, 2, 3, 4, 5, 9, 12})
OBR_READ = frozenset({1, 2, 3, 4, 5, 6, 15, 16, 31})
TQ1_READ = frozenset({1, 7, 9})
TQ1_VERSIONS = frozenset({"2.5", "2.5.1", "2.6", "2.7", "2.7.1", "2.8", "2.8.1", "2.8.2"})
"""Versions with TQ1 (and OBR-5/-6 withdrawn): the order's timing is written there."""


def read_coded(comps: list[list[str]]) -> Coded | None:
    """CWE/CE: CWE.1 code, CWE.2 text, CWE.3 coding system (``None`` when all empty)."""
    code, text, system = t.read_cwe(comps)
    got = Coded(code=t.opt(code), text=t.opt(text), system=t.opt(system))
    return None if got == Coded() else got


def write_coded(c: Coded | None) -> FieldValue:
    return (c.code, c.text, c.system) if c is not None else None


def _same(seg: Segment, n: int, kept: str | None, what: str, sink: ProblemSink) -> None:
    """OBR-2/-3 must agree with ORC-2/-3 when both are sent (else the OBR value is reported, not kept)."""
    got = t.opt(seg.get(n))
    if got is not None and kept is not None and got != kept:
        sink.warning("HL7-053", seg.loc(n), f"OBR-{n} {what} differs from the ORC's; not kept")


class _OrderReader:
    """One ORC and what follows it, up to the next ORC."""

    def __init__(self, orc: Segment, sink: ProblemSink) -> None:
        warn_unread(orc, ORC_READ, sink)
        self.sink = sink
        self.orc = orc
        self.control = orc.get(1)
        if not self.control:
            sink.error("HL7-010", orc.loc(1), "ORC-1 order control is required")
        self.fields: dict = {
            "placer_number": t.opt(orc.get(2)),
            "filler_number": t.opt(orc.get(3)),
            "group_number": t.opt(orc.get(4)),
            "status": t.opt(orc.get(5)),
            "transaction_time": t.parse_dtm(orc.get(9), orc.loc(9), sink),
            "ordering": tuple(t.read_xcn(orc.all_components(12), orc.loc(12), sink)),
        }
        self.obr: Segment | None = None
        self.notes: list[Segment] = []
        self.observations: list[m.LabResult] = []
        self.tq1 = False

    def take_tq1(self, seg: Segment) -> None:
        warn_unread(seg, TQ1_READ, self.sink)
        self.tq1 = True
        self.fields["requested"] = t.parse_dtm(seg.get(7), seg.loc(7), self.sink)
        self.fields["priority"] = t.opt(seg.get(9))

    def take_obr(self, seg: Segment) -> None:
        warn_unread(seg, OBR_READ, self.sink)
        self.obr = seg
        f = self.fields
        for n, key, what in ((2, "placer_number", "placer order number"), (3, "filler_number", "filler")):
            _same(seg, n, f[key], what, self.sink)
            f[key] = f[key] or t.opt(seg.get(n))
        f["service"] = read_coded(seg.components(4))
        if not self.tq1:
            f["priority"] = t.opt(seg.get(5))
            f["requested"] = t.parse_dtm(seg.get(6), seg.loc(6), self.sink)
        elif seg.get(5) or seg.get(6):
            for n in (5, 6):
                if seg.get(n):
                    self.sink.warning("HL7-053", seg.loc(n), f"OBR-{n} next to TQ1 is not kept (TQ1 is)")
        f["specimen_source"] = t.opt(seg.get(15))
        f["reason"] = read_coded(seg.components(31))
        if not f["ordering"]:
            f["ordering"] = tuple(t.read_xcn(seg.all_components(16), seg.loc(16), self.sink))

    def order(self) -> Order | None:
        if not self.control:
            return None
        if self.obr is None and self.fields.get("service") is None:
            self.fields.pop("service", None)
        try:
            return Order(
                control=self.control,
                notes=nte.lines_from(self.notes, self.sink),
                observations=tuple(self.observations),
                **self.fields,
            )
        except ValueError as exc:
            self.sink.error("HL7-020", self.orc.loc(), str(exc))
            return None


def read(msg: Message, sink: ProblemSink) -> OrderMessage | None:
    header = msh.from_segment(msg.msh, sink)
    pid_seg = pv1_seg = in1_seg = None
    message_notes: list[Segment] = []
    readers: list[_OrderReader] = []
    unread = []
    tables = code_tables()
    control = msg.msh.get(10)
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        cur = readers[-1] if readers else None
        if name == "ORC":
            readers.append(_OrderReader(seg, sink))
        elif cur is None:
            if name == "NTE" and pid_seg is None:
                message_notes.append(seg)
            elif name == "PID" and pid_seg is None:
                pid_seg = seg
            elif name == "PV1" and pv1_seg is None and pid_seg is not None:
                pv1_seg = seg
            elif name == "IN1" and in1_seg is None and pid_seg is not None:
                in1_seg = seg
            else:
                unread.append(seg)
        elif name == "TQ1" and cur.obr is None and not cur.tq1:
            cur.take_tq1(seg)
        elif name == "OBR" and cur.obr is None:
            cur.take_obr(seg)
        elif name == "NTE" and cur.obr is not None and not cur.observations:
            cur.notes.append(seg)
        elif name == "OBX" and cur.obr is not None:
            set_id = seg.get(1) or str(seg.occurrence)
            x = obx.from_segment(
                seg,
                sink,
                default_time=cur.fields.get("requested") or cur.fields["transaction_time"],
                default_id=obx.safe_id(f"{control}-{len(readers)}-{set_id}"),
                tables=tables,
            )
            if x is not None:
                cur.observations.append(x)
        else:
            unread.append(seg)
    warn_unread_segments(unread, sink)
    if pid_seg is None:
        sink.error("HL7-015", "PID", "segment PID is required: the gateway files orders for a patient")
        return None
    if not readers:
        sink.error("HL7-015", "ORC", "segment ORC is required: an order message holds at least one order")
        return None
    insurance = in1.from_segment(in1_seg, sink) if in1_seg else None
    patient, identifiers = pid.from_segment(pid_seg, sink, insurance)
    visit = pv1.from_segment(pv1_seg, sink) if pv1_seg else None
    orders = [r.order() for r in readers]
    notes = nte.lines_from(message_notes, sink)
    if header is None or patient is None or any(o is None for o in orders):
        return None
    return OrderMessage(
        header=header,
        patient=patient,
        orders=tuple(o for o in orders if o is not None),
        identifiers=identifiers,
        visit=visit,
        notes=notes,
    )


def _orc(o: Order) -> tuple[str, list[FieldValue]]:
    fields: list[FieldValue] = [None] * 12
    fields[0] = o.control  # ORC-1
    fields[1] = o.placer_number  # ORC-2
    fields[2] = o.filler_number  # ORC-3
    fields[3] = o.group_number  # ORC-4
    fields[4] = o.status  # ORC-5
    fields[8] = t.fmt_dtm(o.transaction_time)  # ORC-9
    fields[11] = [r for p in o.ordering for r in t.write_xcn(p)]  # ORC-12
    return "ORC", fields


def _obr(o: Order, set_id: int, tq1: bool) -> tuple[str, list[FieldValue]]:
    fields: list[FieldValue] = [None] * 31
    fields[0] = str(set_id)  # OBR-1
    fields[1] = o.placer_number  # OBR-2
    fields[2] = o.filler_number  # OBR-3
    fields[3] = write_coded(o.service)  # OBR-4
    if not tq1:
        fields[4] = o.priority  # OBR-5
        fields[5] = t.fmt_dtm(o.requested)  # OBR-6
    fields[14] = o.specimen_source  # OBR-15
    fields[15] = [r for p in o.ordering for r in t.write_xcn(p)]  # OBR-16
    fields[30] = write_coded(o.reason)  # OBR-31
    return "OBR", fields


def write(x: OrderMessage) -> Message:
    codec = msh.codec_for(x.header)
    tq1 = x.header.version in TQ1_VERSIONS
    segments: list[tuple[str, list[FieldValue]]] = []
    if x.notes is not None:
        segments += nte.to_segments(x.notes)
    segments.append(pid.to_segment(x.patient, x.identifiers))
    if x.visit is not None:
        segments.append(pv1.to_segment(x.visit))
    if x.patient.insurance:
        segments.append(in1.to_segment(x.patient.insurance))
    for i, o in enumerate(x.orders, 1):
        segments.append(_orc(o))
        if tq1 and (o.requested is not None or o.priority is not None):
            segments.append(
                ("TQ1", ["1", None, None, None, None, None, t.fmt_dtm(o.requested), None, o.priority])
            )
        if o.service is None and not o.notes and not o.observations:
            continue
        segments.append(_obr(o, i, tq1))
        if o.notes is not None:
            segments += nte.to_segments(o.notes)
        prefix = obx.safe_id(f"{x.header.control_id}-{i}")
        default = o.requested or o.transaction_time  # what OBX-14 defaults to on reading
        segments += [obx.to_segment(v, j, default, f"{prefix}-{j}") for j, v in enumerate(o.observations, 1)]
    return build(segments, codec, msh=msh.to_segment(x.header, codec))
