"""Answers and feedback for the GP's HIS postbox (DOMAIN.md §2 "the specialist's advice is recorded in the
patient's HIS record", §3 terugkoppeling, §6).

The item is handed to the delivery outbox (:func:`gateway.outbox.enqueue`, issue 7) in the caller's
transaction, so it exists exactly when the answer or feedback does. The letter text is delivered as
written; the item waits for manual filing in the postbox (the gateway never guesses an episode).
"""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Connection

from gateway.api import interactions as ix
from gateway.fhir.outcome import FhirError
from mappings import model as m

BSN_SYSTEMS = ("http://fhir.nl/fhir/NamingSystem/bsn", "urn:oid:2.16.840.1.113883.2.4.6.3")


def _patient_match(patient: dict, reference: str) -> m.PatientMatch:
    bsn = next(
        (
            i.get("value")
            for i in patient.get("identifier", [])
            if isinstance(i, dict) and i.get("system") in BSN_SYSTEMS
        ),
        None,
    )
    birth = patient.get("birthDate")
    return m.PatientMatch(
        bsn=bsn,
        birth_date=dt.date.fromisoformat(birth) if isinstance(birth, str) and len(birth) == 10 else None,
        sender_reference=reference[:64],
    )


def queue_for_postbox(
    conn: Connection,
    ctx: ix.Ctx,
    *,
    kind: str,
    practice_agb: str | None,
    patient_id: str,
    text: str,
    subject: str,
    sender_name: str | None,
    sender_discipline: str | None,
    reference: str,
    source: str,
    now: dt.datetime,
    tz: ZoneInfo,
    episode: tuple[str, str | None, str | None] | None = None,
) -> str | None:
    """Enqueue a postbox item for the practice (by AGB); its id, or None for a practice without AGB.

    ``episode`` (id, ICPC, title): the HIS episode the question was about, when the GP chose exactly one.
    The item then names it and proposes a filing (a concept journal entry: an E line with the ICPC, a P
    line with the advice); the delivery worker files it only when the match is certain
    (``gateway/outbox/filing.py``), otherwise it waits in the postbox. Without an episode it waits."""
    if not practice_agb:
        return None  # the postbox is addressed by AGB (DOMAIN.md §6); nothing to deliver to
    from gateway.outbox import enqueue

    patient = orjson.loads(ctx.store.read(conn, ctx.orgs, "Patient", patient_id).body or b"{}")
    local = now.astimezone(tz).replace(tzinfo=None, microsecond=0)
    item_id = f"{kind}-{uuid.uuid4().hex}"
    filing = None
    if episode is not None:
        eid, icpc, title = episode
        lines = [m.SoepLine(type="E", text=title or subject, icpc=icpc)] if (title or icpc) else []
        lines.append(m.SoepLine(type="P", text=text))
        filing = m.AutoFiling(
            episode_id=eid,
            journal_entry=m.JournalEntry(date=local, episode_id=eid, icpc=icpc, lines=tuple(lines)),
        )
    try:
        item = m.PostboxItem(
            id=item_id,
            kind=kind,  # type: ignore[arg-type]
            created=local,
            practice_agb=practice_agb,
            patient=_patient_match(patient, reference),
            correspondence=m.Correspondence(
                id=item_id,
                date=local,
                direction="in",
                text=text,
                subject=subject[:200] if subject else None,
                sender_name=sender_name,
                sender_discipline=sender_discipline,
                sender_reference=reference[:64],
                episode_id=episode[0] if episode else None,
            ),
            filing=filing,
            manual_reason=None
            if filing
            else "no episode named: the GP files it under the episode it concerns",
        )
    except ValueError as exc:  # the model's rules (BSN 11-test ...): a stored patient that breaks them
        raise FhirError(
            422, "processing", "CON-030", f"the postbox item cannot be made: {exc}", source
        ) from None
    return enqueue(conn, item=item, source=source, patient_key=f"patient:{patient_id}")
