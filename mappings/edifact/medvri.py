"""MEDVRI (vrij bericht, a free-text letter) <-> :class:`MedvriMessage` (``docs/dialects/medvri.md``).

Read and written::

    UNH+<ref>+MEDVRI:1'
    GGA+<sender organisation>+<discipline>+<writer's name>'    sender (parties.py)
    DET:1+<YY>:<MM>:<DD>+<HH>:<MM>'                          the letter's date
    PID+<birth date>+<sex>+<name>+<sender's patient ref>+BSN<bsn>'
    [PAD+...']                                              read, not kept (a postbox item has no address)
    TXT:1+<line>' ... TXT:n+<line>'                           the letter, one line each (txt.py)
    GGO+<addressee name>'                                   addressee
    UNT+<count>+<ref>'

UNB-3 (the interchange recipient) is the practice's AGB (8 digits; ``EDI-030`` otherwise). A MEDVRI says
nothing about a certain patient match, so the item waits for manual filing; its id is
``<UNB-5>-<UNH-1>`` and its creation time UNB-4.
"""

from __future__ import annotations

import datetime as dt

from mappings import model as m
from mappings.edifact import det, parties, pid, txt
from mappings.edifact.canonical import Envelope, MedvriMessage
from mappings.edifact.common import safe_id
from mappings.edifact.envelope import chars_of, prepared
from mappings.edifact.syntax import Message, Writer
from mappings.problems import ProblemSink

TYPE = "MEDVRI"
VERSION = "1"
MANUAL_REASON = "Edifact MEDVRI: the patient match is made by hand"
ORDER = ("GGA", "DET", "PID", "PAD", "TXT", "GGO")
"""The segment order; a segment out of it is read with warning ``EDI-017``."""


def read(msg: Message, env: Envelope, sink: ProblemSink) -> MedvriMessage | None:
    seen: dict[str, int] = {}
    sender_org = discipline = sender_name = addressee = None
    when: dt.datetime | None = None
    data: pid.PidData | None = None
    lines: list[str] = []
    last = -1
    for seg in msg.body:
        tag = seg.tag
        rank = ORDER.index(tag) if tag in ORDER else None
        if rank is None:
            sink.error("EDI-018", seg.loc(), f"segment {tag} is not part of a MEDVRI")
            continue
        if rank < last:
            sink.warning("EDI-017", seg.loc(), f"segment {tag} out of order (MEDVRI: {' '.join(ORDER)})")
        last = max(last, rank)
        seen[tag] = seen.get(tag, 0) + 1
        if tag != "TXT" and seen[tag] > 1:
            sink.error("EDI-019", seg.loc(), f"a second {tag} in one MEDVRI")
            continue
        if tag == "GGA":
            sender_org, discipline, sender_name = parties.gga_from_segment(seg, sink)
        elif tag == "DET":
            when = det.from_segment(seg, sink)
        elif tag == "PID":
            data = pid.from_segment(seg, sink)
        elif tag == "PAD":
            pid.address_from_segment(seg, sink)
            sink.warning("EDI-014", seg.loc(), "the patient's address is not kept: a postbox item has none")
        elif tag == "TXT":
            lines.append(txt.from_segment(seg, sink))
        elif tag == "GGO":
            addressee = parties.ggo_from_segment(seg, sink)
    for need in ("GGA", "PID"):
        if need not in seen:
            sink.error("EDI-026", msg.unh.loc(), f"a MEDVRI needs a {need} segment")
    agb = env.recipient
    if not (len(agb) == 8 and agb.isdigit() and agb.isascii()):
        sink.error(
            "EDI-030",
            f"{msg.unh.source} UNB element 3",
            f"the recipient {agb!r} is not a practice AGB (8 digits)",
        )
    created = prepared(env)
    if created is None:
        sink.error("EDI-020", f"{msg.unh.source} UNB element 4", "UNB-4 is not YYMMDD:HHMM")
    if sink.has_errors or data is None or created is None:
        return None
    ident = safe_id(f"{env.reference}-{msg.reference}")
    try:
        item = m.PostboxItem(
            id=ident,
            kind="letter",
            created=created,
            practice_agb=agb,
            patient=m.PatientMatch(
                bsn=data.bsn, birth_date=data.birth_date, name=data.name, sender_reference=data.reference
            ),
            correspondence=m.Correspondence(
                id=ident,
                date=when or created,
                direction="in",
                text="\n".join(lines),
                sender_name=sender_name,
                sender_discipline=discipline,
                addressee_name=addressee,
            ),
            sender_organization=sender_org,
            manual_reason=MANUAL_REASON,
        )
    except ValueError as exc:
        sink.error("EDI-026", msg.unh.loc(), str(exc))
        return None
    return MedvriMessage(envelope=env, reference=msg.reference, item=item, gender=data.gender)


def write(x: MedvriMessage) -> tuple[str, str, str, list[str]]:
    """(reference, type, version, body segments) for :func:`mappings.edifact.syntax.write_interchange`."""
    w = Writer(chars_of(x.envelope))
    item, k = x.item, x.item.correspondence
    body = [parties.gga_to_segment(w, item.sender_organization, k.sender_discipline, k.sender_name)]
    body.append(det.to_segment(w, k.date))
    p = item.patient
    body.append(
        pid.to_segment(
            w, birth_date=p.birth_date, gender=x.gender, name=p.name, reference=p.sender_reference, bsn=p.bsn
        )
    )
    if k.text:
        body += txt.to_segments(w, k.text)
    body.append(parties.ggo_to_segment(w, k.addressee_name))
    return x.reference, TYPE, VERSION, body


def from_postbox(
    item: m.PostboxItem, env: Envelope, reference: str, gender: m.Gender | None = None
) -> MedvriMessage:
    """An outbound MEDVRI for a postbox item (the envelope from :func:`mappings.edifact.envelope.new`)."""
    return MedvriMessage(envelope=env, reference=reference, item=item, gender=gender)
