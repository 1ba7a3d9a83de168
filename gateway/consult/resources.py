"""The consult's FHIR R4 resources (DOMAIN.md §9: Task, ServiceRequest, Communication, DocumentReference,
ChargeItem), one builder per resource, one element per line with its source named.

- ServiceRequest: the question (``code`` = digital consultation, ``priority`` routine: urgent questions
  are refused before anything is written), performer = the specialism (HealthcareService) or the named
  specialist (PractitionerRole);
- Task: the workflow (``status`` per :data:`gateway.consult.states.TASK_STATUS`, ``businessStatus`` = the
  consult state, ``owner`` = specialist or specialism, ``requester`` = the practice,
  ``restriction.period.end`` = the due time, ``focus`` = the ServiceRequest, ``input`` = attachments);
- Communication: question, follow-up questions and answers (``partOf`` the Task, ``basedOn`` the
  ServiceRequest, ``inResponseTo`` the question answered);
- DocumentReference: an attachment; the professional summary is a FHIR document Bundle carried inline;
- ChargeItem: one for the specialist and one for the GP when a consult is closed with a declaration.
"""

from __future__ import annotations

import base64
import datetime as dt

from gateway.consult.calendar import fhir_instant
from gateway.consult.states import SERVICE_REQUEST_STATUS, STATE_SYSTEM, TASK_STATUS

CONSULT_CODE = {
    "coding": [{"system": "urn:his-gateway:consult", "code": "e-consult", "display": "Digitale consultatie"}],
    "text": "Digitale consultatie",
}
COMMUNICATION_SYSTEM = "urn:his-gateway:consult-message"
TARIFF_SYSTEM = "urn:his-gateway:consult-tariff"
CHARGE_SYSTEM = "urn:his-gateway:consult-charge"
INSURER_EXTENSION = "urn:his-gateway:fhir:StructureDefinition:insurer-uzovi"
NO_DEDUCTIBLE_EXTENSION = "urn:his-gateway:fhir:StructureDefinition:no-deductible"
"""On every consult claim (valueBoolean true): a digital consult does not count towards the patient's
deductible (eigen risico; DOMAIN.md §2, seeds/000 "gaat niet ten koste van het eigen risico")."""
UZOVI_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzovi"
SUMMARY_TYPE = {
    "coding": [
        {"system": "http://loinc.org", "code": "67781-5", "display": "Summarization of encounter note"}
    ],
    "text": "Professionele samenvatting",
}


def ref(rtype: str, rid: str, display: str | None = None) -> dict:
    """A literal Reference ``Type/id``."""
    out = {"reference": f"{rtype}/{rid}"}
    if display:
        out["display"] = display
    return out


def service_request(
    *, patient: str, requester: dict, performer: dict, question: str, now: dt.datetime
) -> dict:
    """The question."""
    return {
        "resourceType": "ServiceRequest",
        "status": SERVICE_REQUEST_STATUS["sent"],
        "intent": "order",
        "code": CONSULT_CODE,
        "priority": "routine",  # urgent questions go by phone (DOMAIN.md §2)
        "subject": ref("Patient", patient),
        "authoredOn": fhir_instant(now),
        "requester": requester,  # the practice
        "performer": [performer],  # the specialism or the named specialist
        "note": [{"text": question}],
    }


def task(
    *,
    patient: str,
    service_request: str,
    requester: dict,
    owner: dict,
    state: str,
    now: dt.datetime,
    due: dt.datetime | None,
    inputs: list[str],
) -> dict:
    """The workflow resource of a consult in ``state``."""
    res: dict = {
        "resourceType": "Task",
        "status": TASK_STATUS[state],
        "businessStatus": state_concept(state),
        "intent": "order",
        "code": CONSULT_CODE,
        "focus": ref("ServiceRequest", service_request),
        "for": ref("Patient", patient),
        "authoredOn": fhir_instant(now),
        "lastModified": fhir_instant(now),
        "requester": requester,
        "owner": owner,
    }
    if due is not None:
        res["restriction"] = {"period": {"end": fhir_instant(due)}}  # the answer is due
    if inputs:
        res["input"] = [
            {"type": {"text": "bijlage"}, "valueReference": ref("DocumentReference", d)} for d in inputs
        ]
    return res


def state_concept(state: str) -> dict:
    """Task.businessStatus of a consult state."""
    return {"coding": [{"system": STATE_SYSTEM, "code": state}], "text": state}


def communication(
    *,
    kind: str,
    patient: str,
    task_id: str,
    service_request: str,
    sender: dict,
    recipient: dict,
    text: str,
    now: dt.datetime,
    in_response_to: str | None = None,
) -> dict:
    """``kind``: question, follow-up, answer (the consult) or message, feedback (conversations)."""
    res: dict = {
        "resourceType": "Communication",
        "status": "completed",
        "category": [{"coding": [{"system": COMMUNICATION_SYSTEM, "code": kind}], "text": kind}],
        "subject": ref("Patient", patient),
        "sent": fhir_instant(now),
        "sender": sender,
        "recipient": [recipient],
        "payload": [{"contentString": text}],
    }
    if task_id:
        res["partOf"] = [ref("Task", task_id)]
    if service_request:
        res["basedOn"] = [ref("ServiceRequest", service_request)]
    if in_response_to:
        res["inResponseTo"] = [ref("Communication", in_response_to)]
    return res


def summary_reference(
    *, patient: str, bundle: dict, author: dict, now: dt.datetime, episodes: list[str]
) -> dict:
    """The professional summary attached to a consult: its document Bundle inline (base64 JSON)."""
    from mappings.fhir.common import dumps  # exact decimals, as the FHIR mappings write them

    data = dumps(bundle)
    res = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": SUMMARY_TYPE,
        "subject": ref("Patient", patient),
        "date": fhir_instant(now),
        "author": [author],
        "custodian": author,  # the practice keeps the record the summary was made from
        "description": "Professionele samenvatting (NHG)"
        + (f", episodes {', '.join(episodes)}" if episodes else ""),
        "content": [
            {
                "attachment": {
                    "contentType": "application/fhir+json",
                    "data": base64.b64encode(data).decode("ascii"),
                    "size": len(data),
                    "title": "Professionele samenvatting",
                }
            }
        ],
    }
    return res


def charge_item(
    *,
    task_id: str,
    party: str,
    patient: str,
    performer: dict,
    requester: dict,
    tariff: dict,
    uzovi: str,
    closed: dt.datetime,
) -> dict:
    """The claim of one party (``gp`` or ``specialist``) of a consult closed with a declaration."""
    return {
        "resourceType": "ChargeItem",
        "extension": [
            {"url": INSURER_EXTENSION, "valueIdentifier": {"system": UZOVI_SYSTEM, "value": uzovi}},
            {"url": NO_DEDUCTIBLE_EXTENSION, "valueBoolean": True},  # not at the cost of the eigen risico
        ],
        "identifier": [{"system": CHARGE_SYSTEM, "value": f"{task_id}-{party}"}],
        "status": "billable",
        "code": {
            "coding": [{"system": TARIFF_SYSTEM, "code": str(tariff["code"]), "display": tariff["display"]}],
            "text": tariff["display"],
        },
        "subject": ref("Patient", patient),
        "occurrenceDateTime": fhir_instant(closed),
        "performingOrganization": performer,
        "requestingOrganization": requester,
        "enteredDate": fhir_instant(closed),
        "priceOverride": {"value": int(tariff["amount_cents"]) / 100, "currency": "EUR"},
        "supportingInformation": [ref("Task", task_id)],
    }
