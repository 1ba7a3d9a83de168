"""ORU^R01 unsolicited observation result (HL7 v2.5 §7.3.1, structure ORU_R01) and ORU^R30 unsolicited
point-of-care observation without an existing order (§7.3.4, ORU_R30: one ORC and one OBR) -> Patient +
Measurements.

One patient per message (``HL7-017`` otherwise): PID [PV1], then one or more OBR each with its OBX.
Each OBX becomes a Measurement (:mod:`mappings.hl7v2.obx`); OBX-14 defaults to OBR-7. ORC, NTE and
other segments are reported as not read (``HL7-054``). Written: MSH PID [PV1] {OBR {OBX}}; outbound
results are built from a patient and measurements by :func:`from_measurements`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import msgspec

from mappings import model as m
from mappings.codetables import code_tables
from mappings.hl7v2 import er7, in1, msh, obr, obx, pid, pv1
from mappings.hl7v2.canonical import Hd, LabOrder, MessageHeader, OruMessage
from mappings.hl7v2.er7 import Message, build
from mappings.hl7v2.trace import warn_unread_segments
from mappings.problems import ProblemSink

EVENTS = {"R01": "ORU_R01", "R30": "ORU_R30"}
"""Trigger event -> message structure (MSH-9.3)."""


def read(msg: Message, sink: ProblemSink) -> OruMessage | None:
    header = msh.from_segment(msg.msh, sink)
    control = msg.msh.get(10)
    pid_seg = pv1_seg = in1_seg = None
    orders: list[LabOrder] = []
    order: LabOrder | None = None
    obr_seg = None
    id_prefix = ""
    tables = code_tables()
    measurements: list[m.Measurement] = []
    unread = []
    failed = False

    def close() -> None:
        nonlocal order
        if order is not None:
            orders.append(msgspec.structs.replace(order, measurements=tuple(measurements)))
        order = None

    observed = None
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        if name == "OBX" and obr_seg is not None:  # first: 30 of a report's 35 segments
            set_id = seg.fields[1] if len(seg.fields) > 1 and seg.fields[1].isdigit() else str(seg.occurrence)
            x = obx.from_segment(
                seg, sink, default_time=observed, default_id=f"{id_prefix}-{set_id}", tables=tables
            )
            if x is not None:
                measurements.append(x)
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
            close()
            measurements = []
            obr_seg = seg
            order = obr.from_segment(seg, sink)
            observed = order.observed if order else None
            id_prefix = obx.safe_id(f"{control}-{seg.get(1) or seg.occurrence}")
            failed = failed or order is None
        else:
            unread.append(seg)
    close()
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
    return OruMessage(
        header=header, patient=patient, orders=tuple(orders), identifiers=identifiers, visit=visit
    )


def write(o: OruMessage) -> Message:
    codec = msh.codec_for(o.header)
    segments = [pid.to_segment(o.patient, o.identifiers)]
    if o.visit is not None:
        segments.append(pv1.to_segment(o.visit))
    if o.patient.insurance:
        segments.append(in1.to_segment(o.patient.insurance))
    for i, order in enumerate(o.orders, 1):
        segments.append(obr.to_segment(order, i))
        prefix = obx.safe_id(f"{o.header.control_id}-{i}")
        segments += [
            obx.to_segment(x, j, order.observed, f"{prefix}-{j}") for j, x in enumerate(order.measurements, 1)
        ]
    return build(segments, codec, msh=msh.to_segment(o.header, codec))


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
    full = msgspec.structs.replace(base, measurements=tuple(measurements))
    return OruMessage(header=header, patient=patient, orders=(full,))
