"""The consult workflow: send, pick up, answer, follow up, close, cancel; worklists and overdue lists
(DOMAIN.md §2; issue 6; the rules are data in :mod:`gateway.consult.states`).

Every operation runs in the caller's request transaction (the API's, which also writes its AuditEvent)
and returns an :class:`gateway.api.interactions.Result`. FHIR resources are written through the ordinary
interactions (scopes, validation, tenancy, versions); the ``consult`` row (:mod:`gateway.consult.schema`)
is changed with ``UPDATE ... WHERE version = <read>`` so two conflicting transitions cannot both win.
A refused action raises before anything is written, so it changes nothing.

Who acts: the practice (a client of kind ``practice``) sends, asks follow-up questions and cancels; the
hospital (kind ``hospital``) picks up, answers and closes, always naming the acting specialist (a
PractitionerRole of the hospital whose ``healthcareService`` lists the specialisms they belong to). A
practice sees its own consults only; a specialist sees the consults sent to them or to one of their
specialisms (:func:`worklist`, :func:`overdue`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, and_, false, insert, or_, select, update

from gateway import tenancy
from gateway.api import interactions as ix
from gateway.consult import resources as fr
from gateway.consult.calendar import Clock, ConsultConfig, column, due_time, fhir_instant, load_config
from gateway.consult.params import Params
from gateway.consult.schema import consult
from gateway.consult.states import (
    ACTIONS,
    DECLARATION_RULES,
    FINAL_STATES,
    OPEN_STATES,
    SERVICE_REQUEST_STATUS,
    TASK_STATUS,
    allowed_from,
    next_state,
)
from gateway.fhir.outcome import FhirError
from gateway.schema import resource
from mappings import model as m

URA_SYSTEM = "http://fhir.nl/fhir/NamingSystem/ura"
AGB_SYSTEM = "http://fhir.nl/fhir/NamingSystem/agb-z"


@dataclass
class Env:
    """The clock and configuration the workflow works with (injectable for tests)."""

    clock: Clock
    config: ConsultConfig

    @classmethod
    def default(cls, clock: Clock) -> Env:
        """The configuration of ``config.toml`` with ``clock``."""
        return cls(clock, load_config())


# -- who is calling ---------------------------------------------------------------------------------------


def party(ctx: ix.Ctx) -> str:
    """``practice``, ``hospital`` or ``other``: the kind of the caller's organisation."""
    return ctx.principal.organization.kind


def org_reference(ctx: ix.Ctx) -> dict:
    """The caller's organisation as a Reference by identifier (tenancy resolves it)."""
    org = ctx.principal.organization
    return {"identifier": dict(org.identifier), "display": org.name}


def _key_reference(key: str, display: str | None = None) -> dict:
    kind, _, value = key.partition(":")
    out: dict = {"identifier": {"system": URA_SYSTEM if kind == "ura" else AGB_SYSTEM, "value": value}}
    if display:
        out["display"] = display
    return out


def _read(conn: Connection, ctx: ix.Ctx, rtype: str, rid: str) -> dict:
    return orjson.loads(ctx.store.read(conn, ctx.orgs, rtype, rid).body or b"{}")


def _raw(conn: Connection, rtype: str, rid: str) -> dict | None:
    """A current resource regardless of tenant: only to route by the directory (a specialist named by a
    practice), never returned to the caller."""
    body = conn.execute(
        select(resource.c.body).where(
            resource.c.res_type == rtype, resource.c.res_id == rid, resource.c.deleted == false()
        )
    ).scalar()
    return orjson.loads(body) if body else None


def _ref_id(reference: object, rtype: str) -> str | None:
    if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
        t, _, rid = reference["reference"].rpartition("/")
        if t.rsplit("/", 1)[-1] == rtype:
            return rid
    return None


def _hospital_key(conn: Connection, rtype: str, rid: str) -> str | None:
    keys = sorted(tenancy._role_org_keys(conn, rid, rtype))
    ura = [k for k in keys if k.startswith("ura:")]
    chosen = ura or keys
    return chosen[0] if chosen else None


def _create(conn: Connection, ctx: ix.Ctx, body: dict, rid: str | None = None) -> str:
    result = ix.create(conn, ctx, body["resourceType"], body, rid=rid)
    assert result.resource is not None
    return result.resource.rid


def _operation_result(status: int, body: dict, entities: list[str], patient: str, action: str) -> ix.Result:
    return ix.Result(status, orjson.dumps(body), {}, action, "operation", entities, [f"Patient/{patient}"])


def share(conn: Connection, rtype: str, rid: str, org: str) -> None:
    """Let ``org`` read a resource the caller sent it (a ``shared`` participant, kept across updates)."""
    from gateway.schema import participant

    have = conn.execute(
        select(participant.c.org).where(
            participant.c.res_type == rtype, participant.c.res_id == rid, participant.c.org == org
        )
    ).first()
    if have is None:
        conn.execute(insert(participant).values(res_type=rtype, res_id=rid, org=org, source="shared"))


# -- the acting specialist --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Specialist:
    """The specialist a hospital acts for: their PractitionerRole and the specialisms they belong to."""

    role_id: str
    specialisms: tuple[str, ...]
    display: str | None


def acting_specialist(
    conn: Connection, ctx: ix.Ctx, params: Params | None, value: str | None = None
) -> Specialist:
    """The specialist a hospital acts for: a PractitionerRole of the caller's own organisation."""
    rid = None
    if params is not None:
        found = params.reference("specialist", "PractitionerRole")
        rid = found[1] if found else None
    elif value:
        rid = value.rpartition("/")[2]
    if rid is None:
        raise FhirError(
            400,
            "required",
            "CON-012",
            "a hospital acts for a named specialist: give 'specialist' (PractitionerRole/<id>)",
            "Parameters.specialist",
        )
    role = _raw(conn, "PractitionerRole", rid)
    if role is None or not (tenancy._role_org_keys(conn, rid) & set(ctx.orgs)):
        raise FhirError(
            403,
            "forbidden",
            "CON-013",
            f"PractitionerRole/{rid} is not a specialist of the calling organisation",
            "Parameters.specialist",
        )
    specs = tuple(
        s for s in (_ref_id(h, "HealthcareService") for h in role.get("healthcareService", [])) if s
    )
    display = (role.get("practitioner") or {}).get("display")
    return Specialist(rid, specs, display)


# -- sending ----------------------------------------------------------------------------------------------


def send(conn: Connection, ctx: ix.Ctx, env: Env, params: Params) -> ix.Result:
    """``POST /Task/$send-consult``: a practice asks a specialism or a named specialist a question.

    Everything is checked before anything is written; then the request, the Task and the question are
    stored and the consult row records what the workflow decides on."""
    _check_sender(ctx, params)
    params, ref_binary = _from_ref_message(conn, ctx, params)
    question = params.get("question", required=True)
    uzovi = _insurer(params)
    now = env.clock.now()
    to = _destination(conn, ctx, params)
    patient_id, dossier = _patient(conn, ctx, env, params)
    attachments = _attachments(conn, ctx, env, params, to.specialism_name)
    requester = org_reference(ctx)
    sr = fr.service_request(
        patient=patient_id, requester=requester, performer=dict(to.owner), question=question, now=now
    )
    sr_id = _create(conn, ctx, sr)
    entities = [f"ServiceRequest/{sr_id}"]
    entities += _attach_and_share(
        conn, ctx, env, params, dossier, patient_id, requester, attachments, to, now
    )
    state = "picked-up" if to.specialist_id else "sent"
    due = due_time(
        now, env.config.term(to.specialism_name), tz=env.config.timezone, holidays=env.config.holidays
    )
    task = fr.task(
        patient=patient_id,
        service_request=sr_id,
        requester=requester,
        owner=to.owner,
        state=state,
        now=now,
        due=due,
        inputs=attachments,
    )
    task_id = str(uuid.uuid4())
    entities += _store_task(conn, ctx, task, task_id, ref_binary, to.hospital)
    comm = fr.communication(
        kind="question",
        patient=patient_id,
        task_id=task_id,
        service_request=sr_id,
        sender=requester,
        recipient=dict(to.owner),
        text=question,
        now=now,
    )
    comm_id = _create(conn, ctx, comm)
    entities += [f"Task/{task_id}", f"Communication/{comm_id}"]
    _record_consult(conn, ctx, params, task_id, state, to, patient_id, sr_id, uzovi, dossier, now, due)
    stored = _read(conn, ctx, "Task", task_id)
    result = _operation_result(201, stored, entities, patient_id, "C")
    result.headers = {"Location": f"{ctx.base}/Task/{task_id}"}
    return result


def _check_sender(ctx: ix.Ctx, params: Params) -> None:
    """Only a GP practice sends, and never an urgent question (DOMAIN.md §2: phone instead)."""
    if party(ctx) != "practice":
        raise FhirError(403, "forbidden", "CON-011", "only a GP practice sends a consult", "Task")
    if params.flag("urgent"):
        raise FhirError(
            422,
            "business-rule",
            "CON-020",
            "urgent questions must not use digital consultation: phone the specialist (the answer is due "
            "within 48 hours, not within hours)",
            "Parameters.urgent",
        )


def _from_ref_message(conn: Connection, ctx: ix.Ctx, params: Params) -> tuple[Params, str | None]:
    """The parameters an HL7 v2 REF^I12 (``message``) carries, and the Binary keeping the message
    (``gateway/consult/hl7v2.py``); the parameters as given without one."""
    if params.get("message") is None:
        return params, None
    from gateway.consult.hl7v2 import params_from_ref

    return params_from_ref(conn, ctx, params)


def _insurer(params: Params) -> str | None:
    """The ``insurer`` parameter: a UZOVI number (4 digits), if given."""
    uzovi = params.get("insurer")
    if uzovi is not None and not (len(uzovi) == 4 and uzovi.isdigit()):
        raise FhirError(
            400, "invalid", "CON-002", "insurer is a UZOVI number (4 digits)", "Parameters.insurer"
        )
    return uzovi


@dataclass(frozen=True)
class Destination:
    """Where a consult goes: the specialism (always), the named specialist (if one was asked), the
    hospital's tenant key, and the Task owner reference."""

    specialism_id: str
    specialism_name: str | None
    specialist_id: str | None
    hospital: str
    owner: dict


def _destination(conn: Connection, ctx: ix.Ctx, params: Params) -> Destination:
    """Exactly one of ``specialism`` (HealthcareService) and ``specialist`` (PractitionerRole), active in
    the consult directory; a specialist's consult goes to the first specialism of their role."""
    spec_ref = params.reference("specialism", "HealthcareService")
    named_ref = params.reference("specialist", "PractitionerRole")
    if (spec_ref is None) == (named_ref is None):
        raise FhirError(
            400,
            "required",
            "CON-002",
            "$send-consult: give exactly one of 'specialism' (HealthcareService) and 'specialist' "
            "(PractitionerRole)",
            "Parameters.specialism",
        )
    specialist_id = None
    if named_ref is not None:
        specialist_id = named_ref[1]
        role = _raw(conn, "PractitionerRole", specialist_id)
        specs = [
            s
            for s in (_ref_id(h, "HealthcareService") for h in (role or {}).get("healthcareService", []))
            if s
        ]
        if role is None or not specs or role.get("active") is False:
            raise FhirError(
                404,
                "not-found",
                "CON-003",
                f"PractitionerRole/{specialist_id} is not a specialist in the consult directory",
                "Parameters.specialist",
            )
        specialism_id = specs[0]
        hospital = _hospital_key(conn, "PractitionerRole", specialist_id)
        owner = fr.ref("PractitionerRole", specialist_id, (role.get("practitioner") or {}).get("display"))
    else:
        assert spec_ref is not None
        specialism_id = spec_ref[1]
        hospital = _hospital_key(conn, "HealthcareService", specialism_id)
        owner = fr.ref("HealthcareService", specialism_id)
    try:
        service = _read(conn, ctx, "HealthcareService", specialism_id)
    except FhirError:
        service = None
    if service is None or hospital is None or service.get("active") is False:
        raise FhirError(
            404,
            "not-found",
            "CON-003",
            f"HealthcareService/{specialism_id} is not a specialism in the consult directory",
            "Parameters.specialism",
        )
    specialism_name = service.get("name")
    owner.setdefault("display", specialism_name)
    return Destination(specialism_id, specialism_name, specialist_id, hospital, owner)


def _patient(conn: Connection, ctx: ix.Ctx, env: Env, params: Params) -> tuple[str, m.Dossier | None]:
    """The consult's patient (a stored Patient, or the export's) and the export's dossier, if one."""
    from gateway.consult.attach import patient_from_params

    patient_id, _patient_resource, dossier = patient_from_params(conn, ctx, env, params)
    return patient_id, dossier


def _attachments(
    conn: Connection, ctx: ix.Ctx, env: Env, params: Params, specialism: str | None
) -> list[str]:
    """The ``attachment`` DocumentReferences: the practice's own, and present when the specialism
    requires one (``config.toml``)."""
    attachments = [a[1] for a in (params.reference_all("attachment", "DocumentReference"))]
    for a in attachments:
        _read(conn, ctx, "DocumentReference", a)  # the practice's own document (404 otherwise)
    required = env.config.required_attachment(specialism)
    if required and not attachments:
        raise FhirError(
            422,
            "business-rule",
            "CON-021",
            f"{specialism} needs the {required} as an attachment (parameter 'attachment')",
            "Parameters.attachment",
        )
    return attachments


def _attach_and_share(
    conn: Connection,
    ctx: ix.Ctx,
    env: Env,
    params: Params,
    dossier: m.Dossier | None,
    patient_id: str,
    requester: dict,
    attachments: list[str],
    to: Destination,
    now: dt.datetime,
) -> list[str]:
    """The professional summary of the export (first in ``attachments``), and every attachment shared
    with the hospital the practice consults; the audit entities written."""
    entities = []
    if dossier is not None:
        from gateway.consult.attach import attach_summary

        doc_id = attach_summary(conn, ctx, env, params, dossier, patient_id, requester, now)
        attachments.insert(0, doc_id)
        entities.append(f"DocumentReference/{doc_id}")
    for doc in attachments:
        share(conn, "DocumentReference", doc, to.hospital)
    return entities


def _store_task(
    conn: Connection, ctx: ix.Ctx, task: dict, task_id: str, ref_binary: str | None, hospital: str
) -> list[str]:
    """Store the Task; a REF^I12's Binary becomes one of its inputs, shared with the hospital."""
    entities = []
    if ref_binary is not None:
        from gateway.consult.hl7v2 import REF_INPUT

        task.setdefault("input", []).append(
            {"type": {"text": REF_INPUT}, "valueReference": fr.ref("Binary", ref_binary)}
        )
        share(conn, "Binary", ref_binary, hospital)
        entities.append(f"Binary/{ref_binary}")
    _create(conn, ctx, task, rid=task_id)
    return entities


def _record_consult(
    conn: Connection,
    ctx: ix.Ctx,
    params: Params,
    task_id: str,
    state: str,
    to: Destination,
    patient_id: str,
    sr_id: str,
    uzovi: str | None,
    dossier: m.Dossier | None,
    now: dt.datetime,
    due: dt.datetime,
) -> None:
    """The consult row: parties, state, times, the insurer (given, else the export's) and the HIS episode
    the question is about when the GP chose exactly one (the answer's filing proposal)."""
    if uzovi is None and dossier is not None and dossier.patient.insurance is not None:
        uzovi = dossier.patient.insurance.uzovi
    chosen = params.all("episode")
    episode = dossier.episode(chosen[0]) if dossier is not None and len(chosen) == 1 else None
    conn.execute(
        insert(consult).values(
            id=task_id,
            version=1,
            state=state,
            practice=ctx.orgs[0],
            practice_agb=ctx.principal.organization.agb,
            hospital=to.hospital,
            specialism=to.specialism_id,
            specialism_name=(to.specialism_name or "")[:200] or None,
            specialist=to.specialist_id,
            named=to.specialist_id is not None,
            patient=patient_id,
            service_request=sr_id,
            uzovi=uzovi,
            episode=episode.id if episode else None,
            episode_icpc=episode.icpc if episode else None,
            episode_title=(episode.title or "")[:200] or None if episode else None,
            sent_at=column(now),
            due_at=column(due),
        )
    )


# -- transitions ------------------------------------------------------------------------------------------


def _visible_clause(ctx: ix.Ctx):
    """SQL: consults the caller takes part in (the practice that sent it, the hospital it went to)."""
    return or_(consult.c.practice.in_(ctx.orgs), consult.c.hospital.in_(ctx.orgs))


def load(conn: Connection, ctx: ix.Ctx, task_id: str, *, lock: bool = False):
    """The consult row the caller takes part in (``FOR UPDATE`` with ``lock``); 404 otherwise."""
    stmt = select(consult).where(consult.c.id == task_id, _visible_clause(ctx))
    if lock:
        stmt = stmt.with_for_update()
    row = conn.execute(stmt).first()
    if row is None:
        raise FhirError(404, "not-found", "API-011", f"Task/{task_id} is not known", f"Task/{task_id}")
    return row


def refusal(state: str, action: str) -> FhirError:
    """The OperationOutcome of an action not allowed in ``state`` (``CON-010``), naming the rule."""
    rule = ACTIONS[action].rule
    allowed = allowed_from(action)
    return FhirError(
        409,
        "business-rule",
        "CON-010",
        f"{action} is not allowed in state {state!r} (allowed in: {', '.join(allowed) or 'none'}); "
        f"rule {rule}",
        "Task.businessStatus",
    )


def transition(
    conn: Connection, ctx: ix.Ctx, env: Env, task_id: str, action: str, params: Params
) -> ix.Result:
    """Apply one action to one consult: check party, state, specialist and rules, then write."""
    act = ACTIONS[action]
    row = load(conn, ctx, task_id, lock=True)
    _check_party(ctx, row, action)
    nxt = next_state(row.state, action)
    if nxt is None:
        raise refusal(row.state, action)
    specialist = _check_specialist(conn, ctx, params, row, action) if act.party == "hospital" else None
    text = params.get("text")
    if action in ("answer", "follow-up") and not text:
        raise FhirError(
            400, "required", "CON-002", f"{action}: parameter 'text' is required", "Parameters.text"
        )
    if action == "close-with-declaration":
        _check_declarable(params, row)
    now = env.clock.now()
    entities = [f"Task/{task_id}"]
    values: dict = {"state": nxt, "version": row.version + 1}
    task = _read(conn, ctx, "Task", task_id)
    task["status"] = TASK_STATUS[nxt]
    task["businessStatus"] = fr.state_concept(nxt)
    task["lastModified"] = fhir_instant(now)
    if action == "pickup":
        assert specialist is not None
        values["specialist"] = specialist.role_id
        task["owner"] = fr.ref("PractitionerRole", specialist.role_id, specialist.display)
        task["executionPeriod"] = {"start": fhir_instant(now)}
    elif action == "answer":
        assert specialist is not None
        values["answered_at"] = column(now)
        values["due_at"] = None
        task.pop("restriction", None)
        entities += _answer(conn, ctx, env, row, task, specialist, text, now)
    elif action == "follow-up":
        entities += _follow_up(conn, ctx, env, row, task, values, text, now)
    elif nxt in FINAL_STATES:
        entities += _close(conn, ctx, env, row, task, values, action, params, now)
    entities += _write(conn, ctx, row, task, nxt, values)
    return _operation_result(200, _read(conn, ctx, "Task", task_id), entities, row.patient, "U")


def _check_party(ctx: ix.Ctx, row, action: str) -> None:
    """The action is the caller's to take: its party (practice or hospital), and a party of this consult."""
    act = ACTIONS[action]
    caller = party(ctx)
    if (
        caller != act.party
        or (caller == "practice" and row.practice not in ctx.orgs)
        or (caller == "hospital" and row.hospital not in ctx.orgs)
    ):
        raise FhirError(
            403,
            "forbidden",
            "CON-011",
            f"{action} is done by the {'GP practice' if act.party == 'practice' else 'specialist'}, "
            "not by the caller",
            "Task",
        )


def _check_specialist(conn: Connection, ctx: ix.Ctx, params: Params, row, action: str) -> Specialist:
    """The acting specialist: of the consult's specialism to pick it up (rule consult.pickup), the one
    who picked it up for anything after."""
    specialist = acting_specialist(conn, ctx, params)
    if action == "pickup" and row.specialism not in specialist.specialisms:
        raise FhirError(
            403,
            "forbidden",
            "CON-014",
            f"PractitionerRole/{specialist.role_id} is not a member of the specialism this consult was "
            "sent to (rule consult.pickup)",
            "Parameters.specialist",
        )
    if action != "pickup" and row.specialist != specialist.role_id:
        raise FhirError(
            403,
            "forbidden",
            "CON-014",
            f"only the specialist who picked the consult up acts on it (rule {ACTIONS[action].rule})",
            "Parameters.specialist",
        )
    return specialist


def _check_declarable(params: Params, row) -> None:
    """Closing with a declaration: every declaration rule confirmed, and the patient's insurer known."""
    for name, rule in DECLARATION_RULES:
        if params.get(name, bool) is not True:
            raise FhirError(
                422,
                "business-rule",
                "CON-015",
                f"not closed: {rule} (parameter {name!r} must be true); close administratively instead",
                f"Parameters.{name}",
            )
    if row.uzovi is None:
        raise FhirError(
            422,
            "business-rule",
            "CON-016",
            "not closed: the patient's insurer (UZOVI) is not known, so nothing can be declared; "
            "close administratively or send the insurer with the consult",
            "Task",
        )


def _follow_up(
    conn: Connection, ctx: ix.Ctx, env: Env, row, task: dict, values: dict, text, now
) -> list[str]:
    """A follow-up question: due again by the specialism's term, sent to the specialist (or the owner)."""
    due = due_time(
        now, env.config.term(row.specialism_name), tz=env.config.timezone, holidays=env.config.holidays
    )
    values["due_at"] = column(due)
    task["restriction"] = {"period": {"end": fhir_instant(due)}}
    comm = fr.communication(
        kind="follow-up",
        patient=row.patient,
        task_id=row.id,
        service_request=row.service_request,
        sender=org_reference(ctx),
        recipient=fr.ref("PractitionerRole", row.specialist) if row.specialist else task["owner"],
        text=text,
        now=now,
    )
    return [f"Communication/{_create(conn, ctx, comm)}"]


def _close(
    conn: Connection, ctx: ix.Ctx, env: Env, row, task: dict, values: dict, action: str, params: Params, now
) -> list[str]:
    """A final state (closed, cancelled): the period ends, the reason kept; a declaration's ChargeItems."""
    values["closed_at"] = column(now)
    values["due_at"] = None
    task.pop("restriction", None)
    period = dict(task.get("executionPeriod") or {})
    period["end"] = fhir_instant(now)
    task["executionPeriod"] = period
    reason = params.get("reason")
    if reason:
        task["statusReason"] = {"text": reason}
    if action == "close-with-declaration":
        return _charge_items(conn, ctx, env, row, row.id, now)
    return []


def _write(conn: Connection, ctx: ix.Ctx, row, task: dict, nxt: str, values: dict) -> list[str]:
    """The Task, the ServiceRequest when final, and the consult row -- only if no one changed it since it
    was read (``version``): two conflicting transitions cannot both win."""
    entities = []
    ix.update(conn, ctx, "Task", row.id, task, None, workflow=True)
    if nxt in FINAL_STATES:
        sr = _read(conn, ctx, "ServiceRequest", row.service_request)
        sr["status"] = SERVICE_REQUEST_STATUS[nxt]
        ix.update(conn, ctx, "ServiceRequest", row.service_request, sr, None, workflow=True)
        entities.append(f"ServiceRequest/{row.service_request}")
    done = conn.execute(
        update(consult).where(consult.c.id == row.id, consult.c.version == row.version).values(**values)
    )
    if done.rowcount != 1:
        raise FhirError(
            409,
            "conflict",
            "API-031",
            f"Task/{row.id} was changed at the same time; try again",
            f"Task/{row.id}",
        )
    return entities


def _answer(conn, ctx, env: Env, row, task: dict, specialist: Specialist, text: str, now) -> list[str]:
    """The answer as a Communication, queued for the GP's postbox in this transaction (and as an RRI^I12
    for a consult that came as a REF^I12)."""
    from gateway.consult.hl7v2 import ER7, rri_for

    task_id = task["id"]
    question = _latest_question(conn, ctx, task_id)
    rri = rri_for(conn, ctx, task, answer=text, specialism=row.specialism_name, specialist=specialist.display)
    comm = fr.communication(
        kind="answer",
        patient=row.patient,
        task_id=task_id,
        service_request=row.service_request,
        sender=fr.ref("PractitionerRole", specialist.role_id, specialist.display),
        recipient=_key_reference(row.practice),
        text=text,
        now=now,
        in_response_to=question,
    )
    out = []
    if rri is not None:
        share(conn, "Binary", rri, row.practice)
        comm["payload"].append(
            {"contentAttachment": {"contentType": ER7, "url": f"Binary/{rri}", "title": "RRI^I12"}}
        )
        out.append(f"Binary/{rri}")
    comm_id = _create(conn, ctx, comm)
    out.append(f"Communication/{comm_id}")
    from gateway.consult.postbox import queue_for_postbox

    queue_for_postbox(  # the outbox row names its source; its delivery is audited by the outbox
        conn,
        ctx,
        kind="consult-answer",
        practice_agb=row.practice_agb,
        patient_id=row.patient,
        text=text,
        subject=f"Digitale consultatie {row.specialism_name or ''}".strip(),
        sender_name=specialist.display,
        sender_discipline=row.specialism_name,
        reference=f"Task/{task_id}",
        source=f"Communication/{comm_id}",
        now=now,
        tz=env.config.timezone,
        episode=(row.episode, row.episode_icpc, row.episode_title) if row.episode else None,
    )
    return out


def _latest_question(conn: Connection, ctx: ix.Ctx, task_id: str) -> str | None:
    from gateway.schema import idx_reference, idx_token

    ref, tok = idx_reference, idx_token
    rows = conn.execute(
        select(resource.c.res_id, resource.c.last_updated)
        .where(
            resource.c.res_type == "Communication",
            resource.c.deleted == false(),
            resource.c.res_id.in_(
                select(ref.c.res_id).where(
                    ref.c.res_type == "Communication",
                    ref.c.param == "part-of",
                    ref.c.target_type == "Task",
                    ref.c.target_id == task_id,
                )
            ),
            resource.c.res_id.in_(
                select(tok.c.res_id).where(
                    tok.c.res_type == "Communication",
                    tok.c.param == "category",
                    tok.c.code.in_(("question", "follow-up")),
                )
            ),
        )
        .order_by(resource.c.last_updated.desc())
        .limit(1)
    ).first()
    return rows[0] if rows else None


def _charge_items(conn, ctx, env: Env, row, task_id: str, now) -> list[str]:
    """One ChargeItem for the specialist and one for the GP (the GP does nothing: DOMAIN.md §2)."""
    hospital = _key_reference(row.hospital)
    practice = _key_reference(row.practice)
    out = []
    for party_name, performer in (("specialist", hospital), ("gp", practice)):
        body = fr.charge_item(
            task_id=task_id,
            party=party_name,
            patient=row.patient,
            performer=performer,
            requester=practice,
            tariff=env.config.tariffs[party_name],
            uzovi=row.uzovi,
            closed=now,
        )
        out.append(f"ChargeItem/{_create(conn, ctx, body, rid=f'{task_id}-{party_name}')}")
    return out


# -- lists ------------------------------------------------------------------------------------------------


def _listing(conn: Connection, ctx: ix.Ctx, env: Env, specialist: str | None, *, overdue: bool) -> ix.Result:
    conds = [_visible_clause(ctx)]
    if party(ctx) == "hospital":
        if specialist is None:
            raise FhirError(
                400,
                "required",
                "CON-012",
                "a hospital lists the consults of a named specialist: give specialist=PractitionerRole/<id>",
                "specialist",
            )
        who = acting_specialist(conn, ctx, None, specialist)
        mine = consult.c.specialist == who.role_id
        theirs = and_(consult.c.specialist.is_(None), consult.c.specialism.in_(who.specialisms or ("",)))
        conds.append(or_(mine, theirs))
    if overdue:
        conds += [consult.c.state.in_(OPEN_STATES), consult.c.due_at < column(env.clock.now())]
    rows = conn.execute(select(consult.c.id).where(*conds).order_by(consult.c.due_at, consult.c.id)).all()
    entries = []
    patients = []
    for (tid,) in rows:
        s = ctx.store.read(conn, ctx.orgs, "Task", tid)
        body = orjson.loads(s.body or b"{}")
        patients.append(body.get("for", {}).get("reference", ""))
        entries.append({"fullUrl": f"{ctx.base}/Task/{tid}", "resource": body, "search": {"mode": "match"}})
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": "searchset",
        "total": len(entries),
        "entry": entries,
    }
    if not entries:
        del bundle["entry"]
    return ix.Result(
        200,
        orjson.dumps(bundle),
        {},
        "E",
        "operation",
        ["Task/$overdue" if overdue else "Task/$worklist"],
        sorted({p for p in patients if p.startswith("Patient/")}),
    )


def worklist(conn: Connection, ctx: ix.Ctx, env: Env, specialist: str | None) -> ix.Result:
    """``GET /Task/$worklist``: the practice's consults; a specialist's (sent to them or their specialism)."""
    return _listing(conn, ctx, env, specialist, overdue=False)


def overdue(conn: Connection, ctx: ix.Ctx, env: Env, specialist: str | None) -> ix.Result:
    """``GET /Task/$overdue``: open consults past their due time (``total`` = how many)."""
    return _listing(conn, ctx, env, specialist, overdue=True)


def overdue_count(conn: Connection, now: dt.datetime) -> int:
    """Every overdue consult (all tenants: operations and metrics)."""
    from sqlalchemy import func

    return conn.execute(
        select(func.count())
        .select_from(consult)
        .where(consult.c.state.in_(OPEN_STATES), consult.c.due_at < column(now))
    ).scalar_one()
