"""ADT^A01-A13, A28, A31, A40 (HL7 v2.5 §3.3) <-> Patient, visit and merge.

The events and their message structures are data (``tables/adt-events.csv``: event, structure, the FHIR
Encounter status the event means, its meaning). Every structure read here is MSH EVN PID [PD1] [PV1] ...
with the segments this mapping reads: MSH, EVN, PID, PV1, PV2, the first IN1 and, for A40 (ADT_A39),
MRG.
One patient per message: a second PID (A40 with several patient groups) is ``HL7-017``. Every other
segment is reported as not read (``HL7-054``). Written: MSH EVN PID PV1 [IN1] [MRG].
"""

from __future__ import annotations

import csv
from pathlib import Path

from mappings.hl7v2 import evn, in1, msh, pid, pv1
from mappings.hl7v2.canonical import AdtMessage, Identifier, PriorPatient
from mappings.hl7v2.datatypes import opt
from mappings.hl7v2.er7 import FieldValue, Message, Segment, build
from mappings.hl7v2.trace import warn_unread, warn_unread_segments
from mappings.problems import ProblemSink


def _load() -> dict[str, tuple[str, str]]:
    with (Path(__file__).parent / "tables" / "adt-events.csv").open(encoding="utf-8", newline="") as fh:
        return {r["event"]: (r["structure"], r["encounter_status"]) for r in csv.DictReader(fh)}


_TABLE = _load()
EVENTS = {event: structure for event, (structure, _) in _TABLE.items()}
"""Trigger event -> message structure (MSH-9.3)."""
ENCOUNTER_STATUS = {event: status for event, (_, status) in _TABLE.items() if status}
"""Trigger event -> the FHIR Encounter.status it implies (events that only touch the person: none)."""
MRG_READ = frozenset({1, 3, 5})
MRG_LISTED = frozenset({7})
"""MRG-7 prior patient name: not mapped by design (the surviving PID names the patient), listed as
information (``HL7-060``); MRG-2/-4/-6, identifiers of the prior record, refuse the message (``HL7-053``)
rather than merge without them."""


def _mrg(seg: Segment, sink: ProblemSink) -> PriorPatient | None:
    """MRG-1 prior patient identifier list (CX: value, CX.4 authority, CX.5 type), MRG-3 prior patient
    account number, MRG-5 prior visit number."""
    warn_unread(seg, MRG_READ, sink, MRG_LISTED)
    ids = []
    for comps in seg.all_components(1):
        value = opt(comps[0][0]) if comps and comps[0] else None
        if value is None:
            continue
        authority = comps[3][0] if len(comps) > 3 and comps[3] else ""
        ids.append(
            Identifier(
                value=value, authority=opt(authority), type=opt(comps[4][0]) if len(comps) > 4 else None
            )
        )
    if not ids:
        sink.error("HL7-010", seg.loc(1), "MRG-1 prior patient identifier is required: which record merges")
        return None
    return PriorPatient(identifiers=tuple(ids), account_number=opt(seg.get(3)), visit_number=opt(seg.get(5)))


def _mrg_segment(p: PriorPatient) -> tuple[str, list[FieldValue]]:
    ids: list[FieldValue] = [(i.value, None, None, i.authority, i.type) for i in p.identifiers]
    return "MRG", [ids, None, p.account_number, None, p.visit_number]


def read(msg: Message, sink: ProblemSink) -> AdtMessage | None:
    header = msh.from_segment(msg.msh, sink)
    seen: dict[str, Segment | None] = {
        "EVN": None,
        "PID": None,
        "PV1": None,
        "PV2": None,
        "IN1": None,
        "MRG": None,
    }
    unread = []
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        if name == "PID" and seen["PID"] is not None:
            sink.error("HL7-017", seg.loc(), "one patient per ADT message (send each merge in its own)")
            return None
        if name in seen and seen[name] is None and (name != "MRG" or msg.msh.get(9, 2) == "A40"):
            seen[name] = seg
        else:
            unread.append(seg)
    warn_unread_segments(unread, sink)
    for name in ("EVN", "PV1"):
        if seen[name] is None and not (name == "PV1" and msg.msh.get(9, 2) == "A40"):
            sink.warning("HL7-016", name, f"segment {name} required by ADT is missing; read anyway")
    if seen["PID"] is None:
        sink.error("HL7-015", "PID", "segment PID is required")
        return None
    if msg.msh.get(9, 2) == "A40" and seen["MRG"] is None:
        sink.error("HL7-015", "MRG", "segment MRG is required by A40: the record that is merged")
        return None
    event_time = evn.from_segment(seen["EVN"], sink) if seen["EVN"] else None
    insurance = other = None
    if seen["IN1"] is not None and in1.is_uzovi(seen["IN1"]):
        insurance = in1.from_segment(seen["IN1"], sink)
    elif seen["IN1"] is not None:
        other = in1.other_from_segment(seen["IN1"], sink)
    patient, identifiers = pid.from_segment(seen["PID"], sink, insurance)
    visit = pv1.from_segment(seen["PV1"], sink) if seen["PV1"] else None
    if seen["PV2"] is not None:
        visit = pv1.with_pv2(visit, seen["PV2"], sink)
    merged = _mrg(seen["MRG"], sink) if seen["MRG"] else None
    if header is None or patient is None or (seen["MRG"] is not None and merged is None):
        return None
    return AdtMessage(
        header=header,
        patient=patient,
        event_time=event_time,
        identifiers=identifiers,
        visit=visit,
        merged=merged,
        other_insurance=other,
    )


def write(a: AdtMessage) -> Message:
    codec = msh.codec_for(a.header)
    segments = [
        evn.to_segment(a.header.trigger_event, a.event_time, a.header.version),
        pid.to_segment(a.patient, a.identifiers),
    ]
    if a.merged is not None:
        segments.append(_mrg_segment(a.merged))
    if a.visit is not None or a.merged is None:
        segments.append(pv1.to_segment(a.visit))
        pv2 = pv1.pv2_segment(a.visit)
        if pv2 is not None:
            segments.append(pv2)
    if a.patient.insurance:
        segments.append(in1.to_segment(a.patient.insurance))
    elif a.other_insurance is not None:
        segments.append(in1.other_to_segment(a.other_insurance))
    return build(segments, codec, msh=msh.to_segment(a.header, codec))
