"""SIU^S12-S15 scheduling information unsolicited (HL7 v2.5 §10.4, structure SIU_S12) <-> Appointment.

S12 a new appointment booked, S13 rescheduled, S14 modified, S15 cancelled; a video consult is an
appointment whose service (AIS-3) says so. Read (any other segment is reported, ``HL7-054``)::

    SIU_S12  MSH SCH [TQ1] [{NTE}] [PID [PV1 [PV2]]] {RGS [{AIS}] [{AIG}] [{AIL}] [{AIP}]}

SCH-1/-2 placer and filler appointment id (EI.1), SCH-6 event reason, SCH-7 appointment reason, SCH-8
appointment type (CWE), SCH-26/-27 placer and filler order number (the order the appointment is
for), SCH-9/-10 duration and its units, SCH-11 timing (TQ.4 start, TQ.5 end; withdrawn
in v2.7, where TQ1-7/-8 carry them), SCH-25 filler status (table 0278). Each AIS/AIG/AIL/AIP is a
:class:`~mappings.hl7v2.canonical.Resource`: AIS-3 service, AIG-3 resource, AIL-3 location (PL), AIP-3
person (XCN), their role/type (AIG-4, AIL-4, AIP-4), start, duration with units and filler status.
Written: the timing where it came from (TQ1 or SCH-11), one RGS holding every resource.
"""

from __future__ import annotations

from mappings.hl7v2 import datatypes as t
from mappings.hl7v2 import msh, nte, pid, pv1
from mappings.hl7v2.canonical import Appointment, Resource, SiuMessage
from mappings.hl7v2.er7 import FieldValue, Message, Segment, build
from mappings.hl7v2.orm import read_coded, write_coded
from mappings.hl7v2.trace import warn_unread, warn_unread_segments
from mappings.problems import ProblemSink

EVENTS = {"S12": "SIU_S12", "S13": "SIU_S12", "S14": "SIU_S12", "S15": "SIU_S12"}
"""Trigger event -> message structure (MSH-9.3)."""
SCH_READ = frozenset({1, 2, 6, 7, 8, 9, 10, 11, 25, 26, 27})
SCH_LISTED = frozenset({3, 5, *range(12, 25)})
"""SCH fields not mapped by design, listed as information (``HL7-060``): occurrence number, schedule id,
the placer and filler contacts (person, phone, address, location), entered-by person, phone and location
(SCH-12..24). SCH-4 placer group number and SCH-28+ (identifiers) refuse the message (``HL7-053``)."""
TQ1_READ = frozenset({1, 7, 8})
TQ1_LISTED = frozenset({2, 3, 4, 5, 6, 9, *range(10, 15)})
AIX_LISTED = {
    "AIS": frozenset({5, 6, 9, 11, 12}),
    "AIG": frozenset({5, 6, 7, 9, 10, 13}),
    "AIL": frozenset({5, 7, 8, 11}),
    "AIP": frozenset({5, 7, 8, 11}),
}
"""Resource fields not mapped by design (HL7-060): start offsets and their units, resource group,
quantities, allow substitution, supplemental service information."""
# segment -> (resource field, role field, start, duration, duration units, filler status) (v2.5 §10.6)
LAYOUT = {
    "AIS": (3, None, 4, 7, 8, 10),
    "AIG": (3, 4, 8, 11, 12, 14),
    "AIL": (3, 4, 6, 9, 10, 12),
    "AIP": (3, 4, 6, 9, 10, 12),
}


def _resource(seg: Segment, sink: ProblemSink) -> Resource | None:
    kind = seg.fields[0]
    what, role, start, duration, units, status = LAYOUT[kind]
    warn_unread(seg, frozenset({1, 2, *(n for n in LAYOUT[kind] if n)}), sink, AIX_LISTED[kind])
    fields: dict = {
        "role": read_coded(seg.components(role)) if role else None,
        "start": t.parse_dtm(seg.get(start), seg.loc(start), sink),
        "duration": t.opt(seg.get(duration)),
        "duration_units": t.opt(seg.get(units)),
        "status": t.opt(seg.get(status)),
        "action": t.opt(seg.get(2)),
    }
    if kind == "AIL":
        fields["location"] = pv1.read_pl(seg.components(what))
    elif kind == "AIP":
        people = t.read_xcn(seg.all_components(what), seg.loc(what), sink)
        fields["professional"] = people[0] if people else None
    else:
        fields["code"] = read_coded(seg.components(what))
    if not any(fields.get(k) for k in ("location", "professional", "code")):
        sink.error("HL7-010", seg.loc(what), f"{kind}-{what}: the resource is required")
        return None
    return Resource(kind=kind, **fields)


def read(msg: Message, sink: ProblemSink) -> SiuMessage | None:
    header = msh.from_segment(msg.msh, sink)
    sch = tq1 = pid_seg = pv1_seg = pv2_seg = None
    notes: list[Segment] = []
    resources: list[Resource] = []
    unread = []
    failed = False
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        if name == "SCH" and sch is None:
            sch = seg
        elif name == "TQ1" and tq1 is None and sch is not None and pid_seg is None and not resources:
            tq1 = seg
        elif name == "NTE" and sch is not None and pid_seg is None and not resources:
            notes.append(seg)
        elif name == "PID" and pid_seg is None:
            pid_seg = seg
        elif name == "PV1" and pv1_seg is None and pid_seg is not None:
            pv1_seg = seg
        elif name == "PV2" and pv2_seg is None and pv1_seg is not None and not resources:
            pv2_seg = seg
        elif name == "RGS":
            warn_unread(seg, frozenset({1}), sink, frozenset({2, 3}))  # RGS-2 action, RGS-3 resource group
        elif name in LAYOUT:
            r = _resource(seg, sink)
            failed = failed or r is None
            if r is not None:
                resources.append(r)
        else:
            unread.append(seg)
    warn_unread_segments(unread, sink)
    if sch is None:
        sink.error("HL7-015", "SCH", "segment SCH is required")
        return None
    warn_unread(sch, SCH_READ, sink, SCH_LISTED)
    start = end = None
    if tq1 is not None:
        warn_unread(tq1, TQ1_READ, sink, TQ1_LISTED)
        start = t.parse_dtm(tq1.get(7), tq1.loc(7), sink)
        end = t.parse_dtm(tq1.get(8), tq1.loc(8), sink)
    else:
        start = t.parse_dtm(sch.get(11, 4), sch.loc(11, comp=4), sink)
        end = t.parse_dtm(sch.get(11, 5), sch.loc(11, comp=5), sink)
    appointment = Appointment(
        placer_id=t.opt(sch.get(1)),
        filler_id=t.opt(sch.get(2)),
        event_reason=read_coded(sch.components(6)),
        reason=read_coded(sch.components(7)),
        type=read_coded(sch.components(8)),
        duration=t.opt(sch.get(9)),
        duration_units=t.opt(sch.get(10)),
        start=start,
        end=end,
        timing_in_tq1=tq1 is not None,
        filler_status=t.opt(sch.get(25)),
        placer_order=t.opt(sch.get(26)),
        filler_order=t.opt(sch.get(27)),
        notes=nte.lines_from(notes, sink),
        resources=tuple(resources),
    )
    if appointment.placer_id is None and appointment.filler_id is None:
        sink.error("HL7-010", sch.loc(2), "SCH-1 or SCH-2: the appointment needs an identifier")
        return None
    patient = identifiers = None
    if pid_seg is not None:
        patient, identifiers = pid.from_segment(pid_seg, sink, None)
        if patient is None:
            return None
    visit = pv1.from_segment(pv1_seg, sink) if pv1_seg else None
    if pv2_seg is not None:
        visit = pv1.with_pv2(visit, pv2_seg, sink)
    if header is None or failed:
        return None
    return SiuMessage(
        header=header, appointment=appointment, patient=patient, identifiers=identifiers or (), visit=visit
    )


def _sch(a: Appointment) -> tuple[str, list[FieldValue]]:
    fields: list[FieldValue] = [None] * 27
    fields[0] = a.placer_id  # SCH-1
    fields[1] = a.filler_id  # SCH-2
    fields[5] = write_coded(a.event_reason)  # SCH-6
    fields[6] = write_coded(a.reason)  # SCH-7
    fields[7] = write_coded(a.type)  # SCH-8
    fields[8] = a.duration  # SCH-9
    fields[9] = a.duration_units  # SCH-10
    if not a.timing_in_tq1 and (a.start or a.end):
        fields[10] = (None, None, None, t.fmt_dtm(a.start), t.fmt_dtm(a.end))  # SCH-11
    fields[24] = a.filler_status  # SCH-25
    fields[25] = a.placer_order  # SCH-26
    fields[26] = a.filler_order  # SCH-27
    return "SCH", fields


def _resource_segment(r: Resource, set_id: int) -> tuple[str, list[FieldValue]]:
    what, role, start, duration, units, status = LAYOUT[r.kind]
    fields: list[FieldValue] = [None] * status
    fields[0] = str(set_id)
    fields[1] = r.action
    if r.kind == "AIL":
        fields[what - 1] = pv1.write_pl(r.location)
    elif r.kind == "AIP":
        fields[what - 1] = t.write_xcn(r.professional) if r.professional else None
    else:
        fields[what - 1] = write_coded(r.code)
    if role:
        fields[role - 1] = write_coded(r.role)
    fields[start - 1] = t.fmt_dtm(r.start)
    fields[duration - 1] = r.duration
    fields[units - 1] = r.duration_units
    fields[status - 1] = r.status
    return r.kind, fields


def write(x: SiuMessage) -> Message:
    codec = msh.codec_for(x.header)
    a = x.appointment
    segments: list[tuple[str, list[FieldValue]]] = [_sch(a)]
    if a.timing_in_tq1:
        segments.append(("TQ1", ["1", None, None, None, None, None, t.fmt_dtm(a.start), t.fmt_dtm(a.end)]))
    if a.notes is not None:
        segments += nte.to_segments(a.notes)
    if x.patient is not None:
        segments.append(pid.to_segment(x.patient, x.identifiers))
        if x.visit is not None:
            segments.append(pv1.to_segment(x.visit))
            pv2 = pv1.pv2_segment(x.visit)
            if pv2 is not None:
                segments.append(pv2)
    if a.resources:
        segments.append(("RGS", ["1"]))
        counts: dict[str, int] = {}
        for r in a.resources:
            counts[r.kind] = counts.get(r.kind, 0) + 1
            segments.append(_resource_segment(r, counts[r.kind]))
    return build(segments, codec, msh=msh.to_segment(x.header, codec))
