"""ADT^A04 (register), ADT^A08 (update), ADT^A28 (add person), ADT^A31 (update person) -> Patient.

HL7 v2.5 §3.3.4, §3.3.8 (structure ADT_A01) and §3.3.28, §3.3.31 (ADT_A05). Read: MSH, EVN, PID, PV1, the
first IN1; every other segment is reported as not read (``HL7-054``). Written: MSH EVN PID PV1 [IN1].
"""

from __future__ import annotations

from mappings.hl7v2 import evn, in1, msh, pid, pv1
from mappings.hl7v2.canonical import AdtMessage
from mappings.hl7v2.er7 import Message, Segment, build
from mappings.hl7v2.trace import warn_unread_segments
from mappings.problems import ProblemSink

EVENTS = {"A04": "ADT_A01", "A08": "ADT_A01", "A28": "ADT_A05", "A31": "ADT_A05"}


def read(msg: Message, sink: ProblemSink) -> AdtMessage | None:
    header = msh.from_segment(msg.msh, sink)
    seen: dict[str, Segment | None] = {"EVN": None, "PID": None, "PV1": None, "IN1": None}
    unread = []
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        if name in seen and seen[name] is None:
            seen[name] = seg
        else:
            unread.append(seg)
    warn_unread_segments(unread, sink)
    for name in ("EVN", "PV1"):
        if seen[name] is None:
            sink.warning("HL7-016", name, f"segment {name} required by ADT is missing; read anyway")
    if seen["PID"] is None:
        sink.error("HL7-015", "PID", "segment PID is required")
        return None
    event_time = evn.from_segment(seen["EVN"], sink) if seen["EVN"] else None
    insurance = in1.from_segment(seen["IN1"], sink) if seen["IN1"] else None
    patient, identifiers = pid.from_segment(seen["PID"], sink, insurance)
    visit = pv1.from_segment(seen["PV1"], sink) if seen["PV1"] else None
    if header is None or patient is None:
        return None
    return AdtMessage(
        header=header, patient=patient, event_time=event_time, identifiers=identifiers, visit=visit
    )


def write(a: AdtMessage) -> Message:
    codec = msh.codec_for(a.header)
    segments = [
        evn.to_segment(a.header.trigger_event, a.event_time, a.header.version),
        pid.to_segment(a.patient, a.identifiers),
        pv1.to_segment(a.visit),
    ]
    if a.patient.insurance:
        segments.append(in1.to_segment(a.patient.insurance))
    return build(segments, codec, msh=msh.to_segment(a.header, codec))
