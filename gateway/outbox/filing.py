"""Auto-filing: a ready filing only when the match is certain, otherwise the reason (DOMAIN.md §6,
``docs/postbox-delivery.md`` §5). Never guess.

Certain means, all of:

1. the item names a BSN and the practice has exactly one patient with it (``OUT-101``, ``OUT-102``);
2. the item's birth date equals that patient's (``OUT-103``);
3. the item carries the sender's reference and it is one the practice knows for that patient: the
   reference of its own request (the consult or referral) the answer belongs to (``OUT-104``);
4. the patient is alive (``OUT-105``) and still registered with the practice (``OUT-106``);
5. the episode is known: the episode id the item names (the letter's ``episode_id``, else the proposed
   filing's) is one of the patient's episodes; or, when no id is named or the id is not one the practice
   knows (a sender's own episode id), exactly one *active* episode carries the ICPC of the proposed
   journal entry (``OUT-107`` none, ``OUT-108`` more than one).

The facts (:class:`PatientFacts`) come from what the gateway holds for the practice: the FHIR store
(``gateway/outbox/storefacts.py``: the practice's Patient by BSN, its EpisodeOfCare/Condition resources,
the sender's references as identifiers of the practice's ServiceRequests for that patient) or, for a consult
answer, the summary the practice attached to its question (the consult module passes its own lookup).
No facts at all is ``OUT-100``.

A certain match yields ``PostboxItem.filing``: the journal entry the producer proposed (placed under the
resolved episode) or, without a proposal, a concept entry with an E line (episode title and ICPC) and a P
line pointing to the letter. The correspondence -- the letter text above all -- is never altered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from mappings import model as m

NO_FACTS = "OUT-100"
NO_BSN = "OUT-101"
BSN_UNKNOWN = "OUT-102"
BIRTH_DATE = "OUT-103"
SENDER_REFERENCE = "OUT-104"
DECEASED = "OUT-105"
MOVED = "OUT-106"
EPISODE_UNKNOWN = "OUT-107"
EPISODE_AMBIGUOUS = "OUT-108"


@dataclass(frozen=True)
class EpisodeFact:
    id: str
    title: str
    icpc: str | None = None
    active: bool = True


@dataclass(frozen=True)
class PatientFacts:
    """What the practice's record says about the patients with the item's BSN (usually one)."""

    candidates: int
    """How many of the practice's patients carry the BSN (certain only when exactly 1)."""
    birth_date: dt.date | None = None
    deceased: bool = False
    deregistered: bool = False
    sender_references: frozenset[str] = frozenset()
    episodes: tuple[EpisodeFact, ...] = field(default=())


def _manual(item: m.PostboxItem, code: str, why: str) -> m.PostboxItem:
    return m.PostboxItem(**{**_fields(item), "filing": None, "manual_reason": f"{code}: {why}"})


def _fields(item: m.PostboxItem) -> dict:
    return {f: getattr(item, f) for f in item.__struct_fields__}


def auto_file(item: m.PostboxItem, facts: PatientFacts | None) -> m.PostboxItem:
    """The item with a ready filing if the match is certain, else with the reason for manual filing."""
    p = item.patient
    if facts is None:
        return _manual(item, NO_FACTS, "the practice's record is not known to the gateway")
    if not p.bsn:
        return _manual(item, NO_BSN, "the item names no BSN")
    if facts.candidates != 1:
        return _manual(item, BSN_UNKNOWN, f"{facts.candidates} patients of the practice carry the BSN")
    if p.birth_date is None or facts.birth_date != p.birth_date:
        return _manual(item, BIRTH_DATE, "the birth date is missing or differs from the practice's record")
    if not p.sender_reference or p.sender_reference not in facts.sender_references:
        return _manual(
            item, SENDER_REFERENCE, "the sender's reference is missing or not the practice's request"
        )
    if facts.deceased:
        return _manual(item, DECEASED, "the patient is deceased")
    if facts.deregistered:
        return _manual(item, MOVED, "the patient has left the practice")
    proposal = item.filing.journal_entry if item.filing is not None else None
    named = item.correspondence.episode_id or (item.filing.episode_id if item.filing is not None else None)
    found = [e for e in facts.episodes if named is not None and e.id == named]
    if found:
        episode = found[0]
    else:  # no id, or the sender's own id the practice does not know: only the ICPC can tell
        icpc = proposal.icpc if proposal is not None else None
        found = [e for e in facts.episodes if e.active and icpc is not None and e.icpc == icpc]
        if not found:
            return _manual(
                item,
                EPISODE_UNKNOWN,
                "no episode of the patient is named, nor one active episode with the ICPC",
            )
        if len(found) > 1:
            return _manual(item, EPISODE_AMBIGUOUS, f"{len(found)} active episodes carry the ICPC")
        episode = found[0]
    if proposal is not None:
        entry = m.JournalEntry(
            date=proposal.date,
            episode_id=episode.id,
            icpc=proposal.icpc or episode.icpc,
            lines=proposal.lines,
            contact_type=proposal.contact_type,
        )
    else:
        c = item.correspondence
        about = (
            c.subject
            or {
                "feedback": "Terugkoppeling",
                "consult-answer": "Consultantwoord",
                "letter": "Brief",
                "result": "Uitslag",
            }[item.kind]
        )
        entry = m.JournalEntry(
            date=c.date,
            episode_id=episode.id,
            icpc=episode.icpc,
            lines=(
                m.SoepLine(type="E", text=episode.title, icpc=episode.icpc),
                m.SoepLine(
                    type="P", text=f"{about}: zie brief" + (f" van {c.sender_name}" if c.sender_name else "")
                ),
            ),
        )
    return m.PostboxItem(
        **{
            **_fields(item),
            "manual_reason": None,
            "filing": m.AutoFiling(episode_id=episode.id, journal_entry=entry),
        }
    )
