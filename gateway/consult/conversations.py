"""Conversations about a patient, referral links and feedback to the GP (DOMAIN.md §3, VIPLive Netwerkzorg).

``POST /Communication/$converse`` with ``action``:

- ``open``: a conversation about ``patient`` with ``participant`` s (organisations by identifier, or a
  shared inbox: a HealthcareService such as "Huisartsenpraktijk X – POH", which belongs to its practice),
  a ``subject`` (Medicatie: reply due in 24 h; Zorg, Administratie, Overig: 48 h; ``config.toml``) and the
  first message ``text``. The conversation is identified by its first Communication (later messages are
  ``partOf`` it); the answer is that Communication. A practice opens one about its own patient; a care
  partner ("start nieuw gesprek": a district team asking for collaboration) about the patient of an open
  ``referral`` to it, the referring practice always taking part.
- ``message``: a message in ``conversation``; it answers every message of the other participants still
  awaiting a reply, and itself awaits one, unless it is marked ``noReply`` (a closing answer, a
  notification: the seed asks people not to write "ok" just to close a thread). Only a message awaiting a
  reply (a question) can become overdue; ``open`` takes ``noReply`` as well.
- ``feedback`` (terugkoppeling; ``feedbackKind`` interim or final): from a care partner to the GP about a
  patient, in a ``conversation`` or under an open ``referral``. It is a Communication on the patient's
  timeline (``Communication?patient=...&category=feedback``) AND a postbox item for the GP's HIS, queued
  with :func:`gateway.outbox.enqueue` in the same transaction.
- ``refer``: the practice refers ``patient`` to ``partner`` (an organisation identifier): a ServiceRequest
  (category referral) that opens the link; ``close-referral``: the practice closes it (``referral``).

``GET /Communication/$overdue-replies`` lists the messages of conversations the caller takes part in whose
reply is overdue. Urgent matters go by phone: a message flagged ``urgent`` is refused (``CON-020``).
"""

from __future__ import annotations

import uuid

import orjson
from sqlalchemy import Connection, insert, select, update

from gateway.api import interactions as ix
from gateway.consult import resources as fr
from gateway.consult.calendar import column, fhir_instant, reply_due
from gateway.consult.params import Params
from gateway.consult.postbox import queue_for_postbox
from gateway.consult.schema import conversation, conversation_message, referral_link
from gateway.consult.workflow import Env, org_reference, party
from gateway.fhir.outcome import FhirError
from gateway.tenancy import identifier_keys

SUBJECT_SYSTEM = "urn:his-gateway:conversation-subject"
NO_REPLY_EXTENSION = "urn:his-gateway:fhir:extension:no-reply-needed"
"""On a conversation message that needs no reply (``noReply``): it never becomes overdue."""
ACTIONS = ("open", "message", "feedback", "refer", "close-referral")


def operation(conn: Connection, ctx: ix.Ctx, env: Env, params: Params) -> ix.Result:
    """``POST /Communication/$converse``: dispatch on ``action`` (module docstring)."""
    action = params.get("action", required=True)
    if action not in ACTIONS:
        raise FhirError(
            400, "invalid", "CON-002", f"action must be one of {', '.join(ACTIONS)}", "Parameters.action"
        )
    if params.flag("urgent"):
        raise FhirError(
            422,
            "business-rule",
            "CON-020",
            "urgent matters go by phone, not in a conversation",
            "Parameters.urgent",
        )
    return {
        "open": _open,
        "message": _message,
        "feedback": _feedback,
        "refer": _refer,
        "close-referral": _close_referral,
    }[action](conn, ctx, env, params)


def _result(
    status: int, body: bytes | None, entities: list[str], patient: str, action: str = "C"
) -> ix.Result:
    return ix.Result(status, body, {}, action, "operation", entities, [f"Patient/{patient}"])


def _participant(value: object, where: str) -> dict:
    if isinstance(value, dict) and (
        isinstance(value.get("identifier"), dict) or isinstance(value.get("reference"), str)
    ):
        return {k: v for k, v in value.items() if k in ("reference", "identifier", "display")}
    raise FhirError(
        400,
        "invalid",
        "CON-002",
        "a participant is a Reference: an organisation by identifier or a shared inbox "
        "(HealthcareService/<id>)",
        where,
    )


def _partner_link(conn: Connection, ctx: ix.Ctx, params: Params, what: str):
    """The open referral link to the calling care partner named by ``referral`` (CON-052 / CON-053)."""
    found = params.reference("referral", "ServiceRequest", required=True)
    assert found is not None
    link = conn.execute(select(referral_link).where(referral_link.c.id == found[1])).first()
    if link is None or link.partner not in ctx.orgs:
        raise FhirError(
            404,
            "not-found",
            "CON-052",
            f"ServiceRequest/{found[1]} is no referral to the caller",
            "Parameters.referral",
        )
    if link.state != "open":
        raise FhirError(
            409,
            "business-rule",
            "CON-053",
            f"the practice closed this referral link; {what}",
            "Parameters.referral",
        )
    return link


def _open(conn: Connection, ctx: ix.Ctx, env: Env, params: Params) -> ix.Result:
    subject = params.get("subject", required=True)
    if subject not in env.config.subjects:
        raise FhirError(
            400,
            "invalid",
            "CON-050",
            f"subject must be one of {', '.join(env.config.subjects)} (each has its reply term)",
            "Parameters.subject",
        )
    participants = [_participant(v, "Parameters.participant") for v in params.values.get("participant", [])]
    if party(ctx) == "practice":
        found = params.reference("patient", "Patient", required=True)
        assert found is not None
        ctx.store.read(conn, ctx.orgs, "Patient", found[1])  # the practice's own patient
        patient, practice, practice_agb = found[1], ctx.orgs[0], ctx.principal.organization.agb
    else:  # a care partner: about the patient the practice referred to it, the practice taking part
        from gateway.consult.workflow import _key_reference

        link = _partner_link(conn, ctx, params, "a new conversation needs an open referral")
        named = params.reference("patient", "Patient")
        if named is not None and named[1] != link.patient:
            raise FhirError(
                400,
                "invalid",
                "CON-052",
                "the patient is not the one of the referral",
                "Parameters.patient",
            )
        patient, practice, practice_agb = link.patient, link.practice, link.practice_agb
        participants.insert(0, _key_reference(practice))
    text = params.get("text", required=True)
    if not participants:
        raise FhirError(
            400,
            "required",
            "CON-002",
            "a conversation needs at least one participant",
            "Parameters.participant",
        )
    now = env.clock.now()
    no_reply = params.flag("noReply")
    comm = _message_resource(ctx, patient, subject, participants, text, now, part_of=None, no_reply=no_reply)
    result = ix.create(conn, ctx, "Communication", comm)
    assert result.resource is not None
    cid = result.resource.rid
    conn.execute(
        insert(conversation).values(
            id=cid,
            practice=practice,
            practice_agb=practice_agb,
            patient=patient,
            subject=subject,
            opened_at=column(now),
        )
    )
    if not no_reply:
        _await_reply(conn, cid, cid, ctx.orgs[0], now, subject, env)
    return _result(201, result.resource.body, [f"Communication/{cid}"], patient)


def _message_resource(
    ctx,
    patient: str,
    subject: str,
    recipients: list[dict],
    text: str,
    now,
    *,
    part_of: str | None,
    kind: str = "message",
    no_reply: bool = False,
) -> dict:
    res = fr.communication(
        kind=kind,
        patient=patient,
        task_id="",
        service_request="",
        sender=org_reference(ctx),
        recipient=recipients[0],
        text=text,
        now=now,
    )
    res["recipient"] = recipients
    res["topic"] = {"coding": [{"system": SUBJECT_SYSTEM, "code": subject}], "text": subject}
    if part_of:
        res["partOf"] = [fr.ref("Communication", part_of)]
    if no_reply:  # says so to every participant: this message waits for no answer
        res.setdefault("extension", []).append({"url": NO_REPLY_EXTENSION, "valueBoolean": True})
    return res


def _await_reply(
    conn: Connection, msg_id: str, conv_id: str, sender: str, now, subject: str, env: Env
) -> None:
    conn.execute(
        insert(conversation_message).values(
            id=msg_id,
            conversation=conv_id,
            sender=sender,
            sent_at=column(now),
            reply_due=column(reply_due(now, subject, env.config)),
        )
    )


def _conversation(conn: Connection, ctx: ix.Ctx, params: Params):
    found = params.reference("conversation", "Communication", required=True)
    assert found is not None
    first = orjson.loads(
        ctx.store.read(conn, ctx.orgs, "Communication", found[1]).body or b"{}"
    )  # 404 if not ours
    row = conn.execute(select(conversation).where(conversation.c.id == found[1])).first()
    if row is None:
        raise FhirError(
            404,
            "not-found",
            "CON-051",
            f"Communication/{found[1]} is not a conversation",
            "Parameters.conversation",
        )
    return row, first


def _message(conn: Connection, ctx: ix.Ctx, env: Env, params: Params) -> ix.Result:
    row, first = _conversation(conn, ctx, params)
    text = params.get("text", required=True)
    now = env.clock.now()
    recipients = [first["sender"], *first.get("recipient", [])]
    me = set(ctx.orgs)
    recipients = [
        r for r in recipients if not (identifier_keys(r.get("identifier") or []) & me)
    ] or recipients
    no_reply = params.flag("noReply")
    comm = _message_resource(
        ctx, row.patient, row.subject, recipients, text, now, part_of=row.id, no_reply=no_reply
    )
    result = ix.create(conn, ctx, "Communication", comm)
    assert result.resource is not None
    mid = result.resource.rid
    conn.execute(
        update(conversation_message)
        .where(
            conversation_message.c.conversation == row.id,
            conversation_message.c.replied_at.is_(None),
            conversation_message.c.sender.not_in(ctx.orgs),
        )
        .values(replied_at=column(now))
    )
    if not no_reply:
        _await_reply(conn, mid, row.id, ctx.orgs[0], now, row.subject, env)
    return _result(
        201, result.resource.body, [f"Communication/{mid}", f"Communication/{row.id}"], row.patient
    )


def _feedback(conn: Connection, ctx: ix.Ctx, env: Env, params: Params) -> ix.Result:
    if party(ctx) == "practice":
        raise FhirError(
            403,
            "forbidden",
            "CON-011",
            "feedback (terugkoppeling) goes from a care partner to the GP",
            "Parameters.action",
        )
    kind = params.get("feedbackKind") or "final"
    if kind not in ("interim", "final"):
        raise FhirError(
            400, "invalid", "CON-002", "feedbackKind is interim or final", "Parameters.feedbackKind"
        )
    text = params.get("text", required=True)
    now = env.clock.now()
    if params.get("conversation", (dict, str)) is not None:
        row, _first = _conversation(conn, ctx, params)
        patient, practice, practice_agb, part_of = row.patient, row.practice, row.practice_agb, row.id
    else:
        found = params.reference("referral", "ServiceRequest", required=True)
        assert found is not None
        ctx.store.read(conn, ctx.orgs, "ServiceRequest", found[1])
        link = _partner_link(conn, ctx, params, "feedback goes in a conversation")
        patient, practice, practice_agb, part_of = link.patient, link.practice, link.practice_agb, None
    from gateway.consult.workflow import _key_reference

    label = "Tussentijdse evaluatie" if kind == "interim" else "Eindconclusie"
    comm = fr.communication(
        kind="feedback",
        patient=patient,
        task_id="",
        service_request="",
        sender=org_reference(ctx),
        recipient=_key_reference(practice),
        text=text,
        now=now,
    )
    comm["topic"] = {"text": f"Terugkoppeling: {label}"}
    if part_of:
        comm["partOf"] = [fr.ref("Communication", part_of)]
    result = ix.create(conn, ctx, "Communication", comm)
    assert result.resource is not None
    fid = result.resource.rid
    queue_for_postbox(  # the outbox row names its source; its delivery is audited by the outbox
        conn,
        ctx,
        kind="feedback",
        practice_agb=practice_agb,
        patient_id=patient,
        text=text,
        subject=f"Terugkoppeling ({label.lower()})",
        sender_name=ctx.principal.organization.name,
        sender_discipline=None,
        reference=f"Communication/{fid}",
        source=f"Communication/{fid}",
        now=now,
        tz=env.config.timezone,
    )
    return _result(201, result.resource.body, [f"Communication/{fid}"], patient)


def _refer(conn: Connection, ctx: ix.Ctx, env: Env, params: Params) -> ix.Result:
    if party(ctx) != "practice":
        raise FhirError(
            403, "forbidden", "CON-011", "the practice refers (and closes the link)", "Parameters.action"
        )
    patient = params.reference("patient", "Patient", required=True)
    assert patient is not None
    ctx.store.read(conn, ctx.orgs, "Patient", patient[1])
    partner = _participant(params.get("partner", dict, required=True), "Parameters.partner")
    keys = sorted(identifier_keys(partner.get("identifier") or []))
    if not keys:
        raise FhirError(
            400,
            "invalid",
            "CON-002",
            "the partner is an organisation by URA or AGB identifier",
            "Parameters.partner",
        )
    now = env.clock.now()
    sr = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}
                ],
                "text": "verwijzing",
            }
        ],
        "subject": fr.ref("Patient", patient[1]),
        "authoredOn": fhir_instant(now),
        "requester": org_reference(ctx),
        "performer": [partner],
    }
    reason = params.get("text")
    if reason:
        sr["note"] = [{"text": reason}]
    result = ix.create(conn, ctx, "ServiceRequest", sr)
    assert result.resource is not None
    rid = result.resource.rid
    conn.execute(
        insert(referral_link).values(
            id=rid,
            practice=ctx.orgs[0],
            practice_agb=ctx.principal.organization.agb,
            partner=keys[0],
            patient=patient[1],
            state="open",
            opened_at=column(now),
        )
    )
    return _result(201, result.resource.body, [f"ServiceRequest/{rid}"], patient[1])


def _close_referral(conn: Connection, ctx: ix.Ctx, env: Env, params: Params) -> ix.Result:
    found = params.reference("referral", "ServiceRequest", required=True)
    assert found is not None
    link = conn.execute(select(referral_link).where(referral_link.c.id == found[1])).first()
    if link is None or link.practice not in ctx.orgs:
        raise FhirError(
            404, "not-found", "API-011", f"ServiceRequest/{found[1]} is not known", "Parameters.referral"
        )
    if link.state != "open":
        raise FhirError(
            409, "business-rule", "CON-053", "this referral link is closed already", "Parameters.referral"
        )
    now = env.clock.now()
    sr = orjson.loads(ctx.store.read(conn, ctx.orgs, "ServiceRequest", link.id).body or b"{}")
    sr["status"] = "completed"
    result = ix.update(conn, ctx, "ServiceRequest", link.id, sr, None)
    conn.execute(
        update(referral_link)
        .where(referral_link.c.id == link.id)
        .values(state="closed", closed_at=column(now))
    )
    return _result(200, result.body, [f"ServiceRequest/{link.id}"], link.patient, "U")


def overdue_replies(conn: Connection, ctx: ix.Ctx, env: Env) -> ix.Result:
    """Messages awaiting a reply past the subject's term, in conversations the caller can read."""
    now = column(env.clock.now())
    rows = conn.execute(
        select(conversation_message.c.id)
        .where(conversation_message.c.replied_at.is_(None), conversation_message.c.reply_due < now)
        .order_by(conversation_message.c.reply_due, conversation_message.c.id)
    ).all()
    entries, patients = [], set()
    for (mid,) in rows:
        try:
            body = orjson.loads(ctx.store.read(conn, ctx.orgs, "Communication", mid).body or b"{}")
        except FhirError:
            continue  # not a conversation of the caller's
        patients.add(body["subject"]["reference"])
        entries.append(
            {"fullUrl": f"{ctx.base}/Communication/{mid}", "resource": body, "search": {"mode": "match"}}
        )
    bundle: dict = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "total": len(entries),
    }
    if entries:
        bundle["entry"] = entries
    return ix.Result(
        200, orjson.dumps(bundle), {}, "E", "operation", ["Communication/$overdue-replies"], sorted(patients)
    )
