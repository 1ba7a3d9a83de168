"""ORM^O01 general order (HL7 v2.5 §4.4.1) and OML^O21 laboratory order (§4.4.6) <-> orders.

Structures (the segments read here; any other is reported as not read, ``HL7-054``)::

    ORM_O01  MSH [{NTE}] [PID [PV1 [PV2]] [IN1]] {ORC [OBR [{NTE}] [{OBX [{NTE}]}]]}
    OML_O21  MSH [{NTE}] [PID [PV1 [PV2]] [IN1]] {ORC [{TQ1}] [OBR [{NTE}] [{OBX [{NTE}]}] [{SPM}]]}

Each ORC starts an :class:`~mappings.hl7v2.canonical.Order` (the IG's ``ORC[ServiceRequest]`` with
``OBR[ServiceRequest]``): ORC-1 order control (required), ORC-2/-3 placer and filler order number (else
OBR-2/-3), ORC-4 placer group, ORC-5 order status, ORC-9 transaction time, ORC-12 ordering provider (else
OBR-16); OBR-4 the service, OBR-5/TQ1-9 priority, OBR-6/TQ1-7 the requested time, OBR-15 specimen source,
OBR-31 reason; NTE after the OBR its notes; OBX after it observations sent with the order (each with the
NTE after it as its notes, :mod:`mappings.hl7v2.obx`); SPM-2 (placer and filler specimen id), SPM-4 type
SPM-17.1 collection time, SPM-18 received time, SPM-20 availability and SPM-21 reject reason the specimens
(an OBX after an SPM is about the specimen: not read, ``HL7-054``). The gateway needs the patient: a
message without PID is ``HL7-015``. Written: the timing in TQ1 for version 2.5 and later (where OBR-5 and
OBR-6 are withdrawn), in OBR-5/-6 before; placer, filler and orderer in both ORC and OBR.
"""

from __future__ import annotations

import msgspec

from mappings import model as m
from mappings.codetables import code_tables
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2 import in1, msh, nte, obx, orc, oru, pid, pv1
from mappings.hl7v2.canonical import Coded, Order, OrderCommon, OrderMessage, Specimen
from mappings.hl7v2.er7 import FieldValue, Message, Segment, build
from mappings.hl7v2.trace import warn_unread, warn_unread_segments
from mappings.problems import ProblemSink

EVENTS = {"ORM": {"O01": "ORM_O01"}, "OML": {"O21": "OML_O21"}}
"""Message type -> trigger event -> message structure (MSH-9.3)."""
OBR_READ = frozenset({1, 2, 3, 4, 5, 6, 15, 16, 31})
TQ1_READ = frozenset({1, 7, 9})
TQ1_LISTED = frozenset({2, 3, 4, 5, 6, 8, *range(10, 15)})
"""TQ1 fields beyond start and priority (quantity, repeat pattern, explicit/relative time, service
duration, end, condition and text instructions, conjunction, occurrence duration, total occurrences):
listed as information (``HL7-060``)."""
SPM_READ = frozenset({1, 2, 4, 17, 18, 20, 21})
SPM_LISTED = frozenset({*range(5, 17), 19, *range(22, 30)})
"""SPM fields not mapped by design, listed as information (``HL7-060``): type modifier, additives,
collection method, source site and its modifier, collection site, role, amounts, description, handling
and risk codes, expiration, quality, appropriateness, condition, quantities and containers. SPM-3 parent
ids and SPM-30+ (identifiers) refuse the message (``HL7-053``)."""
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

    def __init__(self, seg: Segment, sink: ProblemSink) -> None:
        self.sink = sink
        self.orc = seg
        common = orc.from_segment(seg, sink)
        self.control = common.control if common is not None else ""
        self.fields: dict = msgspec.structs.asdict(common) if common is not None else {}
        self.fields.pop("control", None)
        self.fields.setdefault("transaction_time", None)
        self.fields.setdefault("ordering", ())
        for key in ("placer_number", "filler_number"):
            self.fields.setdefault(key, None)
        self.obr: Segment | None = None
        self.notes: list[Segment] = []
        self.obx: list[tuple[Segment, list[Segment]]] = []  # each OBX with the NTE after it
        self.tq1 = False
        self.specimens: list[Specimen] = []

    def take_tq1(self, seg: Segment) -> None:
        warn_unread(seg, TQ1_READ, self.sink, TQ1_LISTED)
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

    def take_spm(self, seg: Segment) -> None:
        warn_unread(seg, SPM_READ, self.sink, SPM_LISTED)
        eip = seg.components(2)
        self.specimens.append(
            Specimen(
                placer_id=t.opt(t.comp(eip, 1, 1)),
                placer_namespace=t.opt(t.comp(eip, 1, 2)),
                filler_id=t.opt(t.comp(eip, 2, 1)),
                type=read_coded(seg.components(4)),
                collected=t.parse_dtm(seg.get(17), seg.loc(17), self.sink),
                received=t.parse_dtm(seg.get(18), seg.loc(18), self.sink),
                available=t.opt(seg.get(20)),
                reject_reason=read_coded(seg.components(21)),
            )
        )

    def observations(self, prefix: str, sender: str) -> list[m.LabResult] | None:
        """The OBX after the OBR as lab results (``None`` when one cannot be kept whole)."""
        tables = code_tables()
        default = self.fields.get("requested") or self.fields["transaction_time"]
        out = []
        for j, (seg, notes) in enumerate(self.obx, 1):
            text = nte.lines_from(notes, self.sink)
            x = obx.from_segment(
                seg,
                self.sink,
                default_time=default,
                default_id=f"{prefix}-{j}",
                tables=tables,
                sender=sender,
                notes=(text,) if text is not None else (),
            )
            if x is None:
                return None
            out.append(x)
        return out

    def order(self, prefix: str, sender: str) -> Order | None:
        observations = self.observations(prefix, sender)
        if not self.control or observations is None:
            return None
        try:
            return Order(
                control=self.control,
                notes=nte.lines_from(self.notes, self.sink),
                observations=tuple(observations),
                specimens=tuple(self.specimens),
                **self.fields,
            )
        except ValueError as exc:
            self.sink.error("HL7-020", self.orc.loc(), str(exc))
            return None


def read(msg: Message, sink: ProblemSink) -> OrderMessage | None:
    header = msh.from_segment(msg.msh, sink)
    pid_seg = pv1_seg = pv2_seg = in1_seg = None
    message_notes: list[Segment] = []
    readers: list[_OrderReader] = []
    unread = []
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
            elif name == "PV2" and pv2_seg is None and pv1_seg is not None:
                pv2_seg = seg
            elif name == "IN1" and in1_seg is None and pid_seg is not None:
                in1_seg = seg
            else:
                unread.append(seg)
        elif name == "TQ1" and cur.obr is None and not cur.tq1:
            cur.take_tq1(seg)
        elif name == "OBR" and cur.obr is None:
            cur.take_obr(seg)
        elif name == "NTE" and cur.obr is not None and not cur.specimens:
            (cur.obx[-1][1] if cur.obx else cur.notes).append(seg)
        elif name == "OBX" and cur.obr is not None and not cur.specimens:
            cur.obx.append((seg, []))
        elif name == "SPM" and cur.obr is not None:
            cur.take_spm(seg)
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
    if pv2_seg is not None:
        visit = pv1.with_pv2(visit, pv2_seg, sink)
    sender = oru.sender_of(msg)
    orders = [r.order(obx.safe_id(f"{control}-{i}"), sender) for i, r in enumerate(readers, 1)]
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
    return orc.to_segment(
        OrderCommon(
            control=o.control,
            placer_number=o.placer_number,
            filler_number=o.filler_number,
            group_number=o.group_number,
            status=o.status,
            transaction_time=o.transaction_time,
            ordering=o.ordering,
        )
    )


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
        pv2 = pv1.pv2_segment(x.visit)
        if pv2 is not None:
            segments.append(pv2)
    if x.patient.insurance:
        segments.append(in1.to_segment(x.patient.insurance))
    for i, o in enumerate(x.orders, 1):
        segments.append(_orc(o))
        if tq1 and (o.requested is not None or o.priority is not None):
            segments.append(
                ("TQ1", ["1", None, None, None, None, None, t.fmt_dtm(o.requested), None, o.priority])
            )
        if o.service is None and not o.notes and not o.observations and not o.specimens:
            continue
        segments.append(_obr(o, i, tq1))
        if o.notes is not None:
            segments += nte.to_segments(o.notes)
        prefix = obx.safe_id(f"{x.header.control_id}-{i}")
        default = o.requested or o.transaction_time  # what OBX-14 defaults to on reading
        for j, v in enumerate(o.observations, 1):
            segments.append(obx.to_segment(v, j, default, f"{prefix}-{j}"))
            for text in v.notes:
                segments += nte.to_segments(text)
        for j, sp in enumerate(o.specimens, 1):
            eip = ((sp.placer_id, sp.placer_namespace), sp.filler_id)
            spm: list[FieldValue] = [None] * 21
            spm[0], spm[1], spm[3] = str(j), eip, write_coded(sp.type)  # SPM-1, -2, -4
            spm[16], spm[17] = t.fmt_dtm(sp.collected), t.fmt_dtm(sp.received)  # SPM-17, -18
            spm[19], spm[20] = sp.available, write_coded(sp.reject_reason)  # SPM-20, -21
            segments.append(("SPM", spm))
    return build(segments, codec, msh=msh.to_segment(x.header, codec))
