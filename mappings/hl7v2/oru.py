"""ORU^R01 unsolicited observation result (HL7 v2.5 §7.3.1, structure ORU_R01) and ORU^R30 unsolicited
point-of-care observation without an existing order (§7.3.4, ORU_R30: one ORC and one OBR) -> Patient +
Measurements.

One patient per message (``HL7-017`` otherwise): PID [PV1], then one or more OBR each with its OBX.
Each OBX becomes a Measurement (:mod:`mappings.hl7v2.obx`), never merged with another (ids by position);
OBX-14 defaults to OBR-7. NTE after PID, OBR and OBX are the notes of the patient, the order and the
result; an ORC in front of an OBR is its common order. Other segments are reported as not read
(``HL7-054``). Written: MSH PID [PV1] {[ORC] OBR {OBX}}; outbound
results are built from a patient and measurements by :func:`from_measurements`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from mappings import model as m
from mappings.codetables import code_tables
from mappings.hl7v2 import er7, in1, msh, nte, obr, obx, orc, pid, pv1
from mappings.hl7v2.canonical import Hd, LabOrder, MessageHeader, OruMessage
from mappings.hl7v2.er7 import Message, Segment, build
from mappings.hl7v2.trace import warn_unread_segments
from mappings.problems import ProblemSink

EVENTS = {"R01": "ORU_R01", "R30": "ORU_R30"}
"""Trigger event -> message structure (MSH-9.3)."""


def sender_of(msg: Message) -> str:
    """``MSH-3.1/MSH-4.1``: whose local codes these are (:func:`mappings.hl7v2.vocab.local_system`)."""
    return f"{msg.msh.get(3)}/{msg.msh.get(4)}"


def read(msg: Message, sink: ProblemSink) -> OruMessage | None:
    """ORU_R01: PID [PD1] [NTE] [PV1] [IN1] {[ORC] OBR [NTE] {OBX [NTE]}}. NTE after an OBX are its notes,
    after an OBR the order's notes; an ORC in front of an OBR its common order (:mod:`.orc`); ids are
    positional (OBR position, OBX position under it)."""
    header = msh.from_segment(msg.msh, sink)
    control = msg.msh.get(10)
    sender = sender_of(msg)
    pid_seg = pv1_seg = in1_seg = None
    orders: list[LabOrder] = []
    obr_seg = None
    tables = code_tables()
    unread = []
    failed = False
    # per OBR: the order, and its OBX segments each with the NTE after it
    groups: list[tuple[Segment, list[tuple[Segment, list[Segment]]], list[Segment]]] = []
    patient_notes: list[Segment] = []
    orc_seg: Segment | None = None  # an ORC waiting for its OBR
    orcs: dict[int, Segment] = {}  # group index -> the ORC in front of its OBR
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        if name == "OBX" and obr_seg is not None:  # first: 30 of a report's 35 segments
            groups[-1][1].append((seg, []))
        elif name == "NTE":
            if groups and groups[-1][1]:
                groups[-1][1][-1][1].append(seg)
            elif groups:
                groups[-1][2].append(seg)
            elif pid_seg is not None:
                patient_notes.append(seg)
            else:
                unread.append(seg)
        elif name == "PID":
            if pid_seg is not None:
                sink.error("HL7-017", seg.loc(), "one patient per ORU^R01 message")
                return None
            pid_seg = seg
        elif name == "PV1" and pv1_seg is None and obr_seg is None:
            pv1_seg = seg
        elif name == "IN1" and in1_seg is None and obr_seg is None:
            in1_seg = seg
        elif name == "OBR":
            obr_seg = seg
            if orc_seg is not None:
                orcs[len(groups)] = orc_seg
                orc_seg = None
            groups.append((seg, [], []))
        elif name == "ORC" and orc_seg is None:
            orc_seg = seg
        else:
            unread.append(seg)
    if orc_seg is not None:
        unread.append(orc_seg)  # an ORC without its OBR
    ids: set[str] = set()
    for i, (oseg, obxs, onotes) in enumerate(groups, 1):
        order = obr.from_segment(oseg, sink)
        if order is None:
            failed = True
            continue
        observed = order.observed
        precision = obx.precision_of(oseg.get(7)) if oseg.get(7) else "second"
        prefix = obx.safe_id(f"{control}-{i}")
        measurements = []
        for j, (xseg, notes) in enumerate(obxs, 1):
            text = nte.lines_from(notes, sink)
            x = obx.from_segment(
                xseg,
                sink,
                default_time=observed,
                default_id=f"{prefix}-{j}",
                tables=tables,
                sender=sender,
                default_precision=precision,
                notes=(text,) if text is not None else (),
            )
            if x is None:
                failed = True
            elif x.id in ids:
                sink.error("HL7-064", xseg.loc(21), f"observation id {x.id!r} (OBX-21) is given twice")
                failed = True
            else:
                ids.add(x.id)
                measurements.append(x)
        note = nte.lines_from(onotes, sink)
        common = orc.from_segment(orcs[i - 1], sink) if i - 1 in orcs else None
        failed = failed or (i - 1 in orcs and common is None)
        orders.append(
            msgspec.structs.replace(
                order, measurements=tuple(measurements), notes=(note,) if note else (), common=common
            )
        )
    warn_unread_segments(unread, sink)
    if pid_seg is None:
        sink.error("HL7-015", "PID", "segment PID is required")
        return None
    if obr_seg is None:
        sink.error("HL7-015", "OBR", "segment OBR is required")
        return None
    insurance = in1.from_segment(in1_seg, sink) if in1_seg else None
    patient, identifiers = pid.from_segment(pid_seg, sink, insurance)
    visit = pv1.from_segment(pv1_seg, sink) if pv1_seg else None
    if header is None or patient is None or failed:
        return None
    pnote = nte.lines_from(patient_notes, sink)
    return OruMessage(
        header=header,
        patient=patient,
        orders=tuple(orders),
        identifiers=identifiers,
        visit=visit,
        patient_notes=(pnote,) if pnote else (),
    )


def write(o: OruMessage) -> Message:
    codec = msh.codec_for(o.header)
    segments = [pid.to_segment(o.patient, o.identifiers)]
    for text in o.patient_notes:
        segments += nte.to_segments(text)
    if o.visit is not None:
        segments.append(pv1.to_segment(o.visit))
    if o.patient.insurance:
        segments.append(in1.to_segment(o.patient.insurance))
    for i, order in enumerate(o.orders, 1):
        if order.common is not None:
            segments.append(orc.to_segment(order.common))
        segments.append(obr.to_segment(order, i))
        for text in order.notes:
            segments += nte.to_segments(text)
        prefix = obx.safe_id(f"{o.header.control_id}-{i}")
        for j, x in enumerate(order.measurements, 1):
            segments.append(obx.to_segment(x, j, order.observed, f"{prefix}-{j}"))
            for text in x.notes:
                segments += nte.to_segments(text)
    return build(segments, codec, msh=msh.to_segment(o.header, codec))


def lab_result(x: m.Measurement) -> m.LabResult:
    """A HIS measurement as a lab result (every field a lab result adds at its default)."""
    return x if isinstance(x, m.LabResult) else m.LabResult(**msgspec.structs.asdict(x))


def from_measurements(
    patient: m.Patient,
    measurements: Sequence[m.Measurement],
    *,
    sender: Hd,
    receiver: Hd | None = None,
    order: LabOrder | None = None,
    control_id: str | None = None,
    now: dt.datetime | None = None,
    charset: str = "UNICODE UTF-8",
) -> OruMessage:
    """An outbound ORU^R01 for measurements of one patient, under one OBR (by default the gateway's own
    ``MEASUREMENTS`` order)."""
    header = MessageHeader(
        message_type="ORU",
        trigger_event="R01",
        message_structure="ORU_R01",
        control_id=control_id or er7.new_control_id(),
        sending_application=Hd(namespace="HISGW"),
        sending_facility=sender,
        receiving_facility=receiver,
        timestamp=(now or dt.datetime.now()).replace(microsecond=0),
        country="NLD",
        charset=charset,
    )
    base = order or LabOrder(service_code="MEASUREMENTS", service_text="Metingen", service_system="HISGW")
    full = msgspec.structs.replace(base, measurements=tuple(map(lab_result, measurements)))
    return OruMessage(header=header, patient=patient, orders=(full,))
