"""REF^I12 patient referral and RRI^I12 return referral information (HL7 v2.5 §11.3.1, §11.4.1).

A REF^I12 is a consult request (e-consult): RF1 (the consult id in RF1-6), PRD ``RP`` the requesting GP
and PRD ``RT`` the specialist or vakgroep asked, PID, an optional IN1, and the question as the
message's closing NTE segments (NTE under an OBR/OBX belong to that result and are not read).
An RRI^I12 answers it: MSA-2 names the REF's MSH-10, RF1-6 the same consult id, PRD ``RT`` the
responder, the answer as closing NTE segments.
"""

from __future__ import annotations

import datetime as dt

from mappings.hl7v2 import er7, in1, msa, msh, nte, pid, prd, rf1
from mappings.hl7v2.canonical import (
    ConsultParty,
    ConsultReply,
    ConsultRequest,
    Hd,
    MessageHeader,
    RefMessage,
    RriMessage,
)
from mappings.hl7v2.er7 import Message, Segment, build
from mappings.hl7v2.trace import warn_unread_segments
from mappings.problems import ProblemSink


def _walk(msg: Message, sink: ProblemSink, want_msa: bool) -> dict | None:
    found: dict = {"RF1": None, "PID": None, "IN1": None, "MSA": None, "PRD": [], "NTE": []}
    unread: list[Segment] = []
    last = "MSH"
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        if name == "NTE":  # the closing NTEs are the text; NTEs under an OBR or OBX belong to that result
            (unread if last in ("OBR", "OBX") else found["NTE"]).append(seg)
            continue
        last = name
        if name == "PRD":
            found["PRD"].append(seg)
        elif (name in ("RF1", "PID", "IN1") or (name == "MSA" and want_msa)) and found[name] is None:
            found[name] = seg
        else:
            unread.append(seg)
    warn_unread_segments(unread, sink)
    for name in ("RF1", "PID") + (("MSA",) if want_msa else ()):
        if found[name] is None:
            sink.error("HL7-015", name, f"segment {name} is required")
            return None
    if not found["PRD"]:
        sink.error("HL7-015", "PRD", "segment PRD is required")
        return None
    return found


def _parties(segs: list[Segment], sink: ProblemSink) -> dict[str, ConsultParty]:
    out: dict[str, ConsultParty] = {}
    for seg in segs:
        party = prd.from_segment(seg, sink)
        if party is None:
            continue
        if party.role in out:
            sink.warning(
                "HL7-054", seg.loc(), f"a second PRD with role {party.role!r}; only the first is read"
            )
        elif party.role not in ("RP", "RT"):
            sink.warning(
                "HL7-054", seg.loc(), f"provider role {party.role!r} is not RP or RT; segment not read"
            )
        else:
            out[party.role] = party
    return out


def read_ref(msg: Message, sink: ProblemSink) -> RefMessage | None:
    header = msh.from_segment(msg.msh, sink)
    found = _walk(msg, sink, want_msa=False)
    if found is None:
        return None
    referral = rf1.from_segment(found["RF1"], sink)
    parties = _parties(found["PRD"], sink)
    insurance = in1.from_segment(found["IN1"], sink) if found["IN1"] else None
    patient, identifiers = pid.from_segment(found["PID"], sink, insurance)
    question = nte.lines_from(found["NTE"], sink)
    for role in ("RP", "RT"):
        if role not in parties:
            sink.error("HL7-015", "PRD", f"a PRD with role {role} is required")
    if question is None:
        sink.error("HL7-015", "NTE", "the question (NTE segments) is required")
    if sink.has_errors or header is None or patient is None or question is None or not referral["id"]:
        return None
    return RefMessage(
        header=header,
        consult=ConsultRequest(
            patient=patient,
            requester=parties["RP"],
            recipient=parties["RT"],
            question=question,
            identifiers=identifiers,
            **referral,
        ),
    )


def write_ref(r: RefMessage) -> Message:
    c = r.consult
    codec = msh.codec_for(r.header)
    reason = (c.reason_code, c.reason_text, c.reason_system) if c.reason_code or c.reason_text else None
    segments = [
        rf1.to_segment(
            c.id,
            c.status,
            priority=c.priority,
            type=c.type,
            disposition=c.disposition,
            category=c.category,
            effective=c.effective,
            expires=c.expires,
            reason=reason,
        ),
        prd.to_segment(c.requester),
        prd.to_segment(c.recipient),
        pid.to_segment(c.patient, c.identifiers),
    ]
    if c.patient.insurance:
        segments.append(in1.to_segment(c.patient.insurance))
    segments += nte.to_segments(c.question)
    return build(segments, codec, msh=msh.to_segment(r.header, codec))


def read_rri(msg: Message, sink: ProblemSink) -> RriMessage | None:
    header = msh.from_segment(msg.msh, sink)
    found = _walk(msg, sink, want_msa=True)
    if found is None:
        return None
    ack = msa.from_segment(found["MSA"], sink)
    referral = rf1.from_segment(found["RF1"], sink)
    parties = _parties(found["PRD"], sink)
    insurance = in1.from_segment(found["IN1"], sink) if found["IN1"] else None
    patient, identifiers = pid.from_segment(found["PID"], sink, insurance)
    answer = nte.lines_from(found["NTE"], sink)
    if "RT" not in parties:
        sink.error("HL7-015", "PRD", "a PRD with role RT (the responder) is required")
    if answer is None:
        sink.error("HL7-015", "NTE", "the answer (NTE segments) is required")
    if sink.has_errors or header is None or patient is None or answer is None or ack is None:
        return None
    return RriMessage(
        header=header,
        reply=ConsultReply(
            referral_id=referral["id"],
            in_reply_to=ack[1],
            patient=patient,
            responder=parties["RT"],
            requester=parties.get("RP"),
            answer=answer,
            status=referral["status"],
            answered=referral["effective"],
            identifiers=identifiers,
        ),
    )


def write_rri(r: RriMessage) -> Message:
    c = r.reply
    codec = msh.codec_for(r.header)
    segments = [
        msa.to_segment("AA", c.in_reply_to),
        rf1.to_segment(c.referral_id, c.status, effective=c.answered),
        prd.to_segment(c.responder),
    ]
    if c.requester is not None:
        segments.append(prd.to_segment(c.requester))
    segments.append(pid.to_segment(c.patient, c.identifiers))
    if c.patient.insurance:
        segments.append(in1.to_segment(c.patient.insurance))
    segments += nte.to_segments(c.answer)
    return build(segments, codec, msh=msh.to_segment(r.header, codec))


def reply_to(
    request: RefMessage,
    *,
    answer: str,
    responder: ConsultParty,
    control_id: str | None = None,
    now: dt.datetime | None = None,
    status: str = "A",
) -> RriMessage:
    """The outbound RRI^I12 answering a REF^I12: addressed back to its sender, naming its MSH-10."""
    now = (now or dt.datetime.now()).replace(microsecond=0)
    h = request.header
    header = MessageHeader(
        message_type="RRI",
        trigger_event="I12",
        message_structure="RRI_I12",
        control_id=control_id or er7.new_control_id(),
        sending_application=h.receiving_application or Hd(namespace="HISGW"),
        sending_facility=h.receiving_facility,
        receiving_application=h.sending_application,
        receiving_facility=h.sending_facility,
        timestamp=now,
        version=h.version,
        processing_id=h.processing_id,
        country=h.country,
        charset=h.charset or "UNICODE UTF-8",
    )
    c = request.consult
    return RriMessage(
        header=header,
        reply=ConsultReply(
            referral_id=c.id,
            in_reply_to=h.control_id,
            patient=c.patient,
            responder=responder,
            requester=c.requester,
            answer=answer,
            status=status,
            answered=now,
            identifiers=c.identifiers,
        ),
    )
