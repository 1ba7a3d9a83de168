"""The consult over HL7 v2: REF^I12 opens a consult, RRI^I12 carries the answer (HL7 v2.5 §11.3.1, §11.4.1;
the mappings are :mod:`mappings.hl7v2.ref`).

- ``POST /Task/$send-consult`` with parameter ``message`` (an ER7 REF^I12 as text) instead of ``question`` /
  ``specialism`` / ``export``: the question is the closing NTE lines, the specialism is PRD ``RT``
  (PRD-4.1 the vakgroep at PRD-4.4 the hospital, looked up by name in the directory), the patient is the
  PID (found by BSN within the practice, or created), the insurer IN1-3. RF1-2 ``S`` (stat) or ``A``
  (asap) is an urgent question and is refused like any other (``CON-020``). The REF itself is kept as a
  Binary attached to the Task (input ``hl7v2-ref``), shared with the hospital: the answer names it.
- When such a consult is answered, the answer is also an RRI^I12 (:func:`mappings.hl7v2.ref.reply_to`:
  MSA-2 = the REF's MSH-10, RF1-6 = its consult id, addressed back to its sender) stored as a Binary
  (``x-application/hl7-v2+er7``) that the answer Communication carries as ``payload.contentAttachment``;
  the practice's HIS reads it.
"""

from __future__ import annotations

import base64

import orjson
from sqlalchemy import Connection, false, select

from gateway.api import interactions as ix
from gateway.consult.params import Params
from gateway.fhir.outcome import FhirError
from gateway.schema import resource
from mappings.hl7v2.canonical import ConsultParty, RefMessage
from mappings.problems import InputError, ProblemSink

ER7 = "x-application/hl7-v2+er7"
REF_INPUT = "hl7v2-ref"


def read_ref(text: str) -> RefMessage:
    """Parse and map an ER7 REF^I12 (``CON-060`` with the HL7 problems when it is not one)."""
    from mappings.hl7v2.messages import read_bytes

    sink = ProblemSink()
    try:
        msg = read_bytes(text.encode("utf-8"), sink, default_charset="UNICODE UTF-8")
    except InputError as exc:
        raise FhirError(
            422,
            "processing",
            "CON-060",
            "the REF^I12 message is not valid",
            "Parameters.message",
            issues=[p.to_operation_outcome_issue() for p in [*sink.problems, *exc.problems]],
        ) from None
    if not isinstance(msg, RefMessage):
        raise FhirError(
            400, "invalid", "CON-060", "parameter 'message' must be a REF^I12", "Parameters.message"
        )
    return msg


def _specialism(conn: Connection, party: ConsultParty) -> str:
    """The HealthcareService of PRD ``RT``: its vakgroep (PRD-4.1) at its hospital (PRD-4.4)."""
    wanted = (party.specialism or "").strip().casefold()
    hospital = (party.organization or "").strip().casefold()
    rows = conn.execute(
        select(resource.c.res_id, resource.c.body).where(
            resource.c.res_type == "HealthcareService", resource.c.deleted == false()
        )
    ).all()
    for rid, body in sorted(rows):
        service = orjson.loads(body)
        if str(service.get("name", "")).strip().casefold() != wanted or service.get("active") is False:
            continue
        if hospital:
            org_ref = (service.get("providedBy") or {}).get("reference", "")
            org = conn.execute(
                select(resource.c.body).where(
                    resource.c.res_type == "Organization", resource.c.res_id == org_ref.rpartition("/")[2]
                )
            ).scalar()
            if not org or str(orjson.loads(org).get("name", "")).strip().casefold() != hospital:
                continue
        return rid
    raise FhirError(
        404,
        "not-found",
        "CON-003",
        f"PRD-4 {party.specialism!r} at {party.organization!r} is not a specialism in the consult directory",
        "PRD-4",
    )


def params_from_ref(conn: Connection, ctx: ix.Ctx, params: Params) -> tuple[Params, str]:
    """The $send-consult parameters a REF^I12 stands for; and the stored REF (Binary id)."""
    text = params.get("message", required=True)
    ref = read_ref(text)
    c = ref.consult
    if c.priority in ("S", "A"):
        raise FhirError(
            422,
            "business-rule",
            "CON-020",
            "urgent questions (RF1-2 S or A) must not use digital consultation: phone the specialist",
            "RF1-2",
        )
    specialism = _specialism(conn, c.recipient)
    if not c.patient.bsn:
        raise FhirError(
            422,
            "processing",
            "CON-060",
            "PID-3 holds no BSN: a consult needs the patient identified",
            "PID-3",
        )
    from gateway.fhir.patient import patient_fhir

    patient = patient_fhir(c.patient, "Organization/x")
    org = ctx.principal.organization
    patient["managingOrganization"] = {"identifier": dict(org.identifier), "display": org.name}
    made = ix.create(
        conn, ctx, "Patient", patient, f"identifier=http://fhir.nl/fhir/NamingSystem/bsn|{c.patient.bsn}"
    )
    assert made.resource is not None
    binary = ix.create(
        conn,
        ctx,
        "Binary",
        {
            "resourceType": "Binary",
            "contentType": ER7,
            "data": base64.b64encode(text.encode("utf-8")).decode("ascii"),
        },
    )
    assert binary.resource is not None
    items = [
        {"name": "question", "valueString": c.question},
        {"name": "specialism", "valueString": f"HealthcareService/{specialism}"},
        {"name": "patient", "valueString": f"Patient/{made.resource.rid}"},
    ]
    if c.patient.insurance is not None:
        items.append({"name": "insurer", "valueString": c.patient.insurance.uzovi})
    for extra in ("attachment",):
        items += [{"name": extra, "valueReference": v} for v in params.values.get(extra, [])]
    return Params({"resourceType": "Parameters", "parameter": items}, "$send-consult"), binary.resource.rid


def rri_for(
    conn: Connection, ctx: ix.Ctx, task: dict, *, answer: str, specialism: str | None, specialist: str | None
) -> str | None:
    """For a consult opened by a REF^I12: store the RRI^I12 answering it; its Binary id (else None)."""
    ref_binary = next(
        (
            i["valueReference"]["reference"].rpartition("/")[2]
            for i in task.get("input", [])
            if i.get("type", {}).get("text") == REF_INPUT
        ),
        None,
    )
    if ref_binary is None:
        return None
    stored = orjson.loads(ctx.store.read(conn, ctx.orgs, "Binary", ref_binary).body or b"{}")
    request = read_ref(base64.b64decode(stored["data"]).decode("utf-8"))
    from mappings import model as m
    from mappings.hl7v2.messages import write
    from mappings.hl7v2.ref import reply_to

    professional = None
    if specialist:
        parts = specialist.split()
        professional = m.HealthProfessional(id="specialist", name=m.PersonName(family=parts[-1]))
    responder = ConsultParty(
        role="RT",
        professional=professional,
        specialism=specialism,
        organization=request.consult.recipient.organization,
    )
    rri = reply_to(request, answer=answer, responder=responder)
    data = write(rri).to_bytes()
    made = ix.create(
        conn,
        ctx,
        "Binary",
        {"resourceType": "Binary", "contentType": ER7, "data": base64.b64encode(data).decode("ascii")},
    )
    assert made.resource is not None
    return made.resource.rid
