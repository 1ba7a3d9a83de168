"""MDM^T01-T11 document notifications (HL7 v2.5 §9.5, structures MDM_T01 and MDM_T02) <-> PostboxItem.

The events (:data:`EVENTS`): T01 original document notification, T02 the same with content, T03/T04
status change, T05/T06 addendum, T07/T08 edit, T09/T10 replacement (TXA-13 the parent document), T11
cancel. The odd events (MDM_T01) carry no content: no OBX, the item's text is empty. TXA-13 parent
document, TXA-17 completion status and TXA-19 availability are kept as sent (:class:`MdmMessage`).

Inbound (a letter, feedback or consult answer for a practice) and outbound (a postbox item delivered to
a HIS with an HL7 interface) use the same form::

    MSH  MSH-4.1 the sender organisation, MSH-6.1 the practice's AGB (``HL7-023`` if not 8 digits)
    EVN  EVN-2 the item's creation time (MSH-7 when empty)
    PID  the patient match: BSN, name, birth date; a PID-3 of type PI is the sender's reference
    PV1  PV1-2 ``N``
    TXA  the correspondence metadata (:mod:`mappings.hl7v2.txa`)
    OBX  the letter text, one OBX per line (value type TX, FT or ST; OBX-3 ``TEXT^Brieftekst^HISGW``)
    OBX  with OBX-4 sub-id ``filing``: the auto-filing or the reason for manual filing

The filing OBX codes (system ``HISGW`` unless noted; documented in docs/hl7v2.md §5): ``EPISODE`` (ST,
episode id; OBX-14 the journal entry date), ``ICPC`` (CWE ``K78^^ICPC1NL``), ``CONTACT-TYPE`` (CWE
``09^^NHG14``), ``CORR-EPISODE`` (ST, the letter's episode), ``MANUAL-REASON`` (FT), and one OBX per SOEP line
with OBX-3 ``S``/``O``/``E``/``P`` in system ``JRT`` (FT text; an E line with an ICPC is CWE
``K78^^ICPC1NL^^^^^^<text>``, the text in CWE.9 original text). The letter text is never altered.
"""

from __future__ import annotations

import datetime as dt
import re

from mappings import model as m
from mappings.hl7v2 import datatypes as t
from mappings.hl7v2 import er7, evn, msh, pid, pv1, txa
from mappings.hl7v2.canonical import Hd, MdmMessage, MessageHeader
from mappings.hl7v2.er7 import FieldValue, Message, Segment, build
from mappings.hl7v2.trace import warn_unread, warn_unread_segments
from mappings.problems import ProblemSink

NO_FILING = "the HL7 v2 message carries no filing"
"""The manual-filing reason of an inbound MDM without filing OBX segments (never written back)."""
JRT = "JRT"
HISGW = "HISGW"
ICPC_SYSTEM = "ICPC1NL"
SOEP_NAMES = {"S": "Subjectief", "O": "Objectief", "E": "Evaluatie", "P": "Plan"}
TEXT_CODE = ("TEXT", "Brieftekst", HISGW)
OBX_READ = frozenset({1, 2, 3, 4, 5, 11, 14})
EVENTS = {f"T{n:02d}": "MDM_T01" if n % 2 else "MDM_T02" for n in range(1, 12)}
"""Trigger event -> message structure (v2.5 §9.5: the odd events notify, the even ones carry content)."""
_AGB = re.compile(r"[0-9]{8}\Z")


def _text(seg: Segment) -> str:
    vtype = seg.get(2)
    if vtype == "CWE":
        return seg.get(5, 9)
    return "\n".join(seg.codec.decode(r, seg.loc(5, i)) for i, r in enumerate(seg.reps(5), 1))


def _filing(obxs: list[Segment], sink: ProblemSink) -> tuple[m.AutoFiling | None, str | None, str | None]:
    """(filing, manual reason, correspondence episode id) from the ``filing`` OBX segments."""
    episode = date = icpc = contact_type = reason = corr_episode = None
    lines: list[m.SoepLine] = []
    for seg in obxs:
        warn_unread(seg, OBX_READ, sink)
        code, system = seg.get(3, 1), seg.get(3, 3)
        if system == JRT and code in SOEP_NAMES:
            line_icpc = t.opt(seg.get(5, 1)) if seg.get(2) == "CWE" else None
            try:
                lines.append(m.SoepLine(type=code, text=_text(seg), icpc=line_icpc))  # type: ignore[arg-type]
            except ValueError as exc:
                sink.error("HL7-020", seg.loc(5), str(exc))
        elif system == HISGW and code == "EPISODE":
            episode = seg.get(5)
            date = t.parse_dtm(seg.get(14), seg.loc(14), sink)
        elif system == HISGW and code == "ICPC":
            icpc = t.opt(seg.get(5, 1))
        elif system == HISGW and code == "CONTACT-TYPE":
            contact_type = t.opt(seg.get(5, 1))
        elif system == HISGW and code == "CORR-EPISODE":
            corr_episode = t.opt(seg.get(5))
        elif system == HISGW and code == "MANUAL-REASON":
            reason = _text(seg)
        else:
            sink.warning(
                "HL7-055",
                seg.loc(3),
                f"filing observation {code!r} of system {system!r} is not known; not kept",
            )
    if episode is None:
        if lines or icpc or contact_type:
            sink.error("HL7-010", "OBX", "a filing needs the EPISODE observation")
        return None, reason, corr_episode
    if reason is not None:
        sink.error("HL7-011", "OBX", "a message has either a filing or a reason for manual filing, not both")
    if date is None:
        sink.error("HL7-010", "OBX", "the EPISODE observation needs OBX-14, the journal entry date")
        return None, None, corr_episode
    try:
        entry = m.JournalEntry(
            date=date, episode_id=episode, icpc=icpc, lines=tuple(lines), contact_type=contact_type
        )
        return m.AutoFiling(episode_id=episode, journal_entry=entry), None, corr_episode
    except ValueError as exc:
        sink.error("HL7-020", "OBX", str(exc))
        return None, None, corr_episode


def read(msg: Message, sink: ProblemSink) -> MdmMessage | None:
    header = msh.from_segment(msg.msh, sink)
    seen: dict[str, Segment | None] = {"EVN": None, "PID": None, "PV1": None, "TXA": None}
    body: list[Segment] = []
    filing: list[Segment] = []
    unread = []
    for seg in msg.segments[1:]:
        name = seg.fields[0]
        if name in seen and seen[name] is None:
            seen[name] = seg
        elif name == "OBX" and seg.get(4) == "filing":
            filing.append(seg)
        elif name == "OBX" and seg.get(2) in ("TX", "FT", "ST", ""):
            body.append(seg)
        else:
            unread.append(seg)
    warn_unread_segments(unread, sink)
    for name in ("PID", "TXA"):
        if seen[name] is None:
            sink.error("HL7-015", name, f"segment {name} is required")
            return None
    if seen["EVN"] is None or seen["PV1"] is None:
        sink.warning(
            "HL7-016",
            "EVN" if seen["EVN"] is None else "PV1",
            "segment required by MDM is missing; read anyway",
        )
    agb = msg.msh.get(6)
    if not _AGB.match(agb):
        sink.error(
            "HL7-023",
            msg.msh.loc(6, comp=1),
            f"receiving facility {agb!r} is not the practice's AGB (8 digits)",
        )
    created = evn.from_segment(seen["EVN"], sink) if seen["EVN"] else None
    created = created or (header.timestamp if header else None)
    parts = pid.read_parts(seen["PID"], sink)  # type: ignore[arg-type]
    refs = [i for i in parts["identifiers"] if i.type == "PI"]
    identifiers = tuple(i for i in parts["identifiers"] if i is not (refs[0] if refs else None))
    visit = pv1.from_segment(seen["PV1"], sink) if seen["PV1"] else None
    doc = txa.read_parts(seen["TXA"], sink)  # type: ignore[arg-type]
    for seg in body:
        warn_unread(seg, OBX_READ, sink)
    text = "\n".join(_text(s) for s in body)
    auto, reason, corr_episode = _filing(filing, sink)
    if created is None:
        sink.error("HL7-010", "EVN-2", "EVN-2 (or MSH-7) is required: the time the item was created")
    if sink.has_errors or header is None or created is None or doc["date"] is None:
        return None
    item_id = doc.pop("item_id") or doc["id"]
    kind = doc.pop("item_kind")
    try:
        match = m.PatientMatch(
            bsn=parts["bsn"],
            birth_date=parts["birth_date"],
            name=parts["name"],
            sender_reference=refs[0].value if refs else None,
        )
        corr = m.Correspondence(direction="in", text=text, episode_id=corr_episode, **doc)
        item = m.PostboxItem(
            id=item_id,
            kind=kind,
            created=created,
            practice_agb=agb,
            patient=match,
            correspondence=corr,
            sender_organization=t.opt(msg.msh.get(4)),
            filing=auto,
            manual_reason=None if auto else (reason or NO_FILING),
        )
    except ValueError as exc:
        sink.error("HL7-020", "TXA", str(exc))
        return None
    status, availability = seen["TXA"].get(17), seen["TXA"].get(19)  # type: ignore[union-attr]
    return MdmMessage(
        header=header,
        item=item,
        identifiers=identifiers,
        visit=visit,
        parent_document=t.opt(seen["TXA"].get(13)),  # type: ignore[union-attr]
        completion_status=None if status in ("", "AU") else status,
        availability=None if availability in ("", "AV") else availability,
    )


def _obx(
    n: int,
    vtype: str,
    code: tuple,
    value: FieldValue,
    sub: str | None = None,
    time: dt.datetime | None = None,
) -> tuple[str, list[FieldValue]]:
    return "OBX", [
        str(n),
        vtype,
        code,
        sub,
        value,
        None,
        None,
        None,
        None,
        None,
        "F",
        None,
        None,
        t.fmt_dtm(time),
    ]


def write(d: MdmMessage) -> Message:
    item = d.item
    c = item.correspondence
    codec = msh.codec_for(d.header)
    segments = [
        evn.to_segment(d.header.trigger_event, item.created, d.header.version),
        pid.to_segment(item.patient, d.identifiers, item.patient.sender_reference),
        pv1.to_segment(d.visit),
        txa.to_segment(
            c,
            item.id if item.id != c.id else None,
            item.kind,
            parent=d.parent_document,
            status=d.completion_status or "AU",
            availability=d.availability or "AV",
        ),
    ]
    n = 0
    if c.text or EVENTS.get(d.header.trigger_event) != "MDM_T01":  # a notice without content: no OBX
        for text_line in c.text.split("\n"):
            n += 1
            segments.append(_obx(n, "TX", TEXT_CODE, text_line))
    f = item.filing
    if f is not None:
        e = f.journal_entry
        n += 1
        segments.append(_obx(n, "ST", ("EPISODE", "Episode", HISGW), f.episode_id, "filing", e.date))
        if e.icpc:
            n += 1
            segments.append(_obx(n, "CWE", ("ICPC", "ICPC", HISGW), (e.icpc, None, ICPC_SYSTEM), "filing"))
        if e.contact_type:
            n += 1
            segments.append(
                _obx(
                    n,
                    "CWE",
                    ("CONTACT-TYPE", "Contactwijze", HISGW),
                    (e.contact_type, None, "NHG14"),
                    "filing",
                )
            )
        for line in e.lines:
            n += 1
            code = (line.type, SOEP_NAMES[line.type], JRT)
            if line.icpc:
                segments.append(
                    _obx(
                        n,
                        "CWE",
                        code,
                        (line.icpc, None, ICPC_SYSTEM, None, None, None, None, None, line.text),
                        "filing",
                    )
                )
            else:
                segments.append(_obx(n, "FT", code, line.text, "filing"))
    if c.episode_id:
        n += 1
        segments.append(
            _obx(n, "ST", ("CORR-EPISODE", "Episode van de brief", HISGW), c.episode_id, "filing")
        )
    if item.manual_reason and item.manual_reason != NO_FILING:
        n += 1
        segments.append(
            _obx(
                n, "FT", ("MANUAL-REASON", "Reden handmatig archiveren", HISGW), item.manual_reason, "filing"
            )
        )
    return build(segments, codec, msh=msh.to_segment(d.header, codec))


def from_postbox(
    item: m.PostboxItem,
    *,
    control_id: str | None = None,
    now: dt.datetime | None = None,
    charset: str = "UNICODE UTF-8",
) -> MdmMessage:
    """An outbound MDM^T02 delivering a postbox item to a HIS (MSH-4 the sender organisation, MSH-6 the
    practice's AGB)."""
    header = MessageHeader(
        message_type="MDM",
        trigger_event="T02",
        message_structure="MDM_T02",
        control_id=control_id or er7.new_control_id(),
        sending_application=Hd(namespace="HISGW"),
        sending_facility=Hd(namespace=item.sender_organization) if item.sender_organization else None,
        receiving_facility=Hd(namespace=item.practice_agb),
        timestamp=(now or dt.datetime.now()).replace(microsecond=0),
        country="NLD",
        charset=charset,
    )
    return MdmMessage(header=header, item=item)
