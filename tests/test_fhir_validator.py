"""The inbound FHIR R4 validator (mappings/fhir/validator.py, docs/fhir-validation.md).

Valid resources of every type the gateway handles give no problem (also after a round trip through the
fhir.resources R4B models); each bad input gives exactly the expected (code, FHIRPath) pairs, never an
exception; hostile input (10^5-deep JSON, 20 MB strings, invalid UTF-8) is refused quickly; hypothesis
fuzzes random JSON and mutated valid resources; and wherever fhir.resources R4B rejects a resource, the
validator reports an error too (the known exceptions are listed with their reasons).
"""

from __future__ import annotations

import copy
import time

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from bench.bench_fhir_validate import inbound_bundle
from mappings.fhir.r4b import dump_json_with_models, validate_with_models
from mappings.fhir.validator import (
    MAX_DOCUMENT_BYTES,
    MAX_PROBLEMS,
    has_errors,
    operation_outcome,
    resource_types,
    validate,
)
from mappings.problems import InputError, Problem, ProblemSink, Severity

NL = "http://fhir.nl/fhir/NamingSystem/"
BSN = "999911120"  # passes the 11-test
ICPC = "http://hl7.org/fhir/sid/icpc-1-nl"
TABEL45 = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen"
UCUM = "http://unitsofmeasure.org"
XHTML = '<div xmlns="http://www.w3.org/1999/xhtml"><p>Samenvatting</p></div>'


# ------------------------------------------------------------------ valid resources, one per type


def patient() -> dict:
    return {
        "resourceType": "Patient",
        "id": "pat-1",
        "meta": {"profile": ["http://nictiz.nl/fhir/StructureDefinition/nl-core-Patient"]},
        "text": {"status": "generated", "div": XHTML},
        "identifier": [{"use": "official", "system": NL + "bsn", "value": BSN}],
        "active": True,
        "name": [
            {
                "use": "official",
                "family": "van Beek",
                "_family": {
                    "extension": [
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/humanname-own-prefix",
                            "valueString": "van",
                        },
                        {
                            "url": "http://hl7.org/fhir/StructureDefinition/humanname-own-name",
                            "valueString": "Beek",
                        },
                    ]
                },
                "given": ["Anna", "A."],
                "_given": [
                    None,
                    {
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier",
                                "valueCode": "IN",
                            }
                        ]
                    },
                ],
            }
        ],
        "telecom": [{"system": "phone", "value": "+31 6 12345678", "use": "mobile", "rank": 1}],
        "gender": "female",
        "birthDate": "1980-02-29",
        "address": [
            {
                "use": "home",
                "line": ["Kerkstraat 1"],
                "city": "Utrecht",
                "postalCode": "3511 AA",
                "country": "NL",
                "period": {"start": "2001-01-01"},
            }
        ],
        "maritalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]
        },
        "multipleBirthBoolean": False,
        "contact": [
            {"relationship": [{"text": "partner"}], "name": {"text": "B. van Beek"}, "gender": "male"}
        ],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "nl"}]}, "preferred": True}
        ],
        "generalPractitioner": [{"reference": "Organization/org-1"}],
    }


def practitioner() -> dict:
    return {
        "resourceType": "Practitioner",
        "id": "prac-1",
        "identifier": [
            {"system": NL + "agb-z", "value": "01004567"},
            {"system": "urn:oid:2.16.528.1.1007.3.1", "value": "123456782"},
        ],
        "name": [{"family": "Huisman", "given": ["Pieter"], "prefix": ["dr."]}],
        "gender": "male",
        "qualification": [{"code": {"text": "huisarts"}, "period": {"start": "2000-06-01"}}],
    }


def practitioner_role() -> dict:
    return {
        "resourceType": "PractitionerRole",
        "id": "role-1",
        "active": True,
        "practitioner": {"reference": "Practitioner/prac-1"},
        "organization": {"reference": "Organization/org-1", "display": "Praktijk De Linde"},
        "code": [{"coding": [{"system": NL + "uzi-rolcode", "code": "01.015", "display": "Huisarts"}]}],
        "availableTime": [
            {"daysOfWeek": ["mon", "tue"], "availableStartTime": "08:00:00", "availableEndTime": "17:00:00"}
        ],
    }


def organization() -> dict:
    return {
        "resourceType": "Organization",
        "id": "org-1",
        "identifier": [
            {"system": NL + "agb-z", "value": "01012345"},
            {"system": NL + "ura", "value": "87654321"},
        ],
        "active": True,
        "name": "Huisartsenpraktijk De Linde",
        "telecom": [{"system": "email", "value": "praktijk@example.nl"}],
        "address": [{"line": ["Lindelaan 3"], "city": "Zeist"}],
    }


def insurer() -> dict:
    return {
        "resourceType": "Organization",
        "id": "ins-1",
        "identifier": [{"system": "urn:oid:2.16.840.1.113883.2.4.6.4", "value": "3311"}],
        "name": "Zorgverzekeraar",
    }


def episode_of_care() -> dict:
    return {
        "resourceType": "EpisodeOfCare",
        "id": "ep-1",
        "status": "active",
        "statusHistory": [{"status": "planned", "period": {"start": "2024-01-01", "end": "2024-01-02"}}],
        "type": [{"coding": [{"system": ICPC, "code": "T90", "display": "Diabetes mellitus"}]}],
        "diagnosis": [{"condition": {"reference": "Condition/cond-1"}, "rank": 1}],
        "patient": {"reference": "Patient/pat-1"},
        "managingOrganization": {"reference": "Organization/org-1"},
        "period": {"start": "2024-01-02T09:00:00+01:00"},
    }


def condition() -> dict:
    return {
        "resourceType": "Condition",
        "id": "cond-1",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "code": {"coding": [{"system": ICPC, "code": "T90"}], "text": "Diabetes mellitus type 2"},
        "subject": {"reference": "Patient/pat-1"},
        "onsetDateTime": "2019-05",
        "note": [
            {"authorString": "P. Huisman", "time": "2024-01-02T09:00:00Z", "text": "Controle per kwartaal"}
        ],
    }


def encounter() -> dict:
    return {
        "resourceType": "Encounter",
        "id": "enc-1",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.30.14", "code": "01"}]}],
        "subject": {"reference": "Patient/pat-1"},
        "episodeOfCare": [{"reference": "EpisodeOfCare/ep-1"}],
        "participant": [{"individual": {"reference": "Practitioner/prac-1"}}],
        "period": {"start": "2024-03-05T10:00:00+01:00", "end": "2024-03-05T10:10:00+01:00"},
        "length": {"value": 10, "unit": "min", "system": UCUM, "code": "min"},
        "reasonReference": [{"reference": "Condition/cond-1"}],
        "serviceProvider": {"reference": "Organization/org-1"},
    }


def soep_observation() -> dict:
    return {
        "resourceType": "Observation",
        "id": "soep-1",
        "status": "final",
        "code": {"coding": [{"system": NL + "journaalregeltypen", "code": "S"}]},
        "subject": {"reference": "Patient/pat-1"},
        "encounter": {"reference": "Encounter/enc-1"},
        "effectiveDateTime": "2024-03-05T10:00:00+01:00",
        "valueString": "Dorst, veel plassen.",
    }


def lab_observation() -> dict:
    return {
        "resourceType": "Observation",
        "id": "lab-1",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": TABEL45, "code": "382"}]},
        "subject": {"reference": "Patient/pat-1"},
        "effectivePeriod": {"start": "2024-03-05"},
        "issued": "2024-03-05T14:00:00.123+01:00",
        "valueQuantity": {
            "value": 53.5,
            "comparator": ">",
            "unit": "mmol/mol",
            "system": UCUM,
            "code": "mmol/mol",
        },
        "referenceRange": [{"low": {"value": 20, "unit": "mmol/mol"}, "high": {"value": 42}}],
        "component": [{"code": {"text": "afname"}, "valueDateTime": "2024-03-05T08:15:00+01:00"}],
    }


def medication_request() -> dict:
    return {
        "resourceType": "MedicationRequest",
        "id": "mr-1",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {
            "coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.7", "code": "1234567"}]
        },
        "subject": {"reference": "Patient/pat-1"},
        "authoredOn": "2024-03-05",
        "requester": {"reference": "Practitioner/prac-1"},
        "dosageInstruction": [
            {
                "text": "2 maal per dag 1 tablet",
                "timing": {
                    "repeat": {
                        "frequency": 2,
                        "period": 1,
                        "periodUnit": "d",
                        "boundsDuration": {"value": 30, "unit": "dag", "system": UCUM, "code": "d"},
                    }
                },
                "doseAndRate": [{"doseQuantity": {"value": 1, "unit": "tablet"}}],
            }
        ],
        "dispenseRequest": {
            "quantity": {"value": 60},
            "expectedSupplyDuration": {"value": 30, "code": "d", "system": UCUM},
        },
    }


def medication_statement() -> dict:
    return {
        "resourceType": "MedicationStatement",
        "id": "ms-1",
        "status": "active",
        "medicationReference": {"reference": "#med"},
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med",
                "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.10", "code": "12345"}]},
            }
        ],
        "subject": {"reference": "Patient/pat-1"},
        "effectivePeriod": {"start": "2024-01-01"},
        "dosage": [{"text": "zo nodig", "asNeededBoolean": True}],
    }


def allergy_intolerance() -> dict:
    return {
        "resourceType": "AllergyIntolerance",
        "id": "ai-1",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "confirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["medication"],
        "criticality": "high",
        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.1.902.122", "code": "11"}]},
        "patient": {"reference": "Patient/pat-1"},
        "recordedDate": "2024-02-01T12:00:00+01:00",
        "reaction": [{"manifestation": [{"text": "urticaria"}], "severity": "moderate"}],
    }


def flag() -> dict:
    return {
        "resourceType": "Flag",
        "id": "flag-1",
        "status": "active",
        "code": {
            "coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.1.902.40", "code": "1007"}],
            "text": "Contra-indicatie: nierfunctiestoornis",
        },
        "subject": {"reference": "Patient/pat-1"},
        "period": {"start": "2023-11-01"},
    }


def communication() -> dict:
    return {
        "resourceType": "Communication",
        "id": "com-1",
        "status": "completed",
        "category": [{"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.4.30.69", "code": "1"}]}],
        "subject": {"reference": "Patient/pat-1"},
        "sent": "2024-03-06T09:00:00+01:00",
        "recipient": [{"reference": "Organization/org-1"}],
        "sender": {"identifier": {"system": NL + "agb-z", "value": "01004567"}},
        "payload": [
            {"contentString": "Graag controle HbA1c over 3 maanden."},
            {
                "contentAttachment": {
                    "contentType": "application/pdf",
                    "data": "JVBERi0xLjQK",
                    "title": "brief.pdf",
                }
            },
        ],
    }


def document_reference() -> dict:
    return {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "11488-4"}]},
        "subject": {"reference": "Patient/pat-1"},
        "date": "2024-03-06T09:00:00Z",
        "content": [{"attachment": {"contentType": "application/pdf", "url": "Binary/bin-1", "size": 1024}}],
    }


def binary() -> dict:
    return {
        "resourceType": "Binary",
        "id": "bin-1",
        "contentType": "application/pdf",
        "data": "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSL0ZpbHRlci9GbGF0ZURlY29kZT4+",
    }


def task() -> dict:
    return {
        "resourceType": "Task",
        "id": "task-1",
        "status": "requested",
        "intent": "order",
        "priority": "routine",
        "focus": {"reference": "ServiceRequest/sr-1"},
        "for": {"reference": "Patient/pat-1"},
        "authoredOn": "2024-03-06T09:00:00+01:00",
        "owner": {"identifier": {"system": NL + "ura", "value": "87654321"}},
        "restriction": {"period": {"end": "2024-03-13T17:00:00+01:00"}},
        "input": [{"type": {"text": "vraag"}, "valueString": "Mag de dosering omhoog?"}],
    }


def service_request() -> dict:
    return {
        "resourceType": "ServiceRequest",
        "id": "sr-1",
        "status": "active",
        "intent": "order",
        "code": {"text": "e-consult"},
        "subject": {"reference": "Patient/pat-1"},
        "requester": {"reference": "PractitionerRole/role-1"},
        "occurrenceDateTime": "2024-03-07",
        "reasonCode": [{"coding": [{"system": ICPC, "code": "T90"}]}],
    }


def charge_item() -> dict:
    return {
        "resourceType": "ChargeItem",
        "id": "ci-1",
        "status": "billable",
        "code": {"coding": [{"system": "urn:oid:2.16.840.1.113883.2.4.3.11.60.40.2.1", "code": "13003"}]},
        "subject": {"reference": "Patient/pat-1"},
        "occurrenceDateTime": "2024-03-06",
        "quantity": {"value": 1},
        "priceOverride": {"value": 11.27, "currency": "EUR"},
        "performingOrganization": {"reference": "Organization/org-1"},
    }


def audit_event() -> dict:
    return {
        "resourceType": "AuditEvent",
        "id": "ae-1",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "action": "R",
        "recorded": "2024-03-06T09:00:00.000+01:00",
        "outcome": "0",
        "agent": [
            {
                "who": {"identifier": {"system": NL + "uzi-nr-pers", "value": "123456782"}},
                "requestor": True,
                "network": {"address": "10.0.0.1", "type": "2"},
            }
        ],
        "source": {"observer": {"display": "his-gateway"}},
        "entity": [{"what": {"reference": "Patient/pat-1"}}],
    }


def operation_outcome_resource() -> dict:
    return {
        "resourceType": "OperationOutcome",
        "id": "oo-1",
        "issue": [
            {
                "severity": "warning",
                "code": "informational",
                "diagnostics": "ok",
                "expression": ["Patient.name[0]"],
            }
        ],
    }


def coverage() -> dict:
    return {
        "resourceType": "Coverage",
        "id": "cov-1",
        "status": "active",
        "subscriberId": "123456789",
        "beneficiary": {"reference": "Patient/pat-1"},
        "payor": [{"identifier": {"system": NL + "uzovi", "value": "3311"}, "display": "Zorgverzekeraar"}],
        "period": {"start": "2024-01-01", "end": "2024-12-31"},
    }


def composition_bundle() -> dict:
    """A document Bundle: Composition first, every reference a urn:uuid of an entry."""
    u = [f"urn:uuid:00000000-0000-4000-8000-{i:012d}" for i in range(6)]
    comp = {
        "resourceType": "Composition",
        "id": "comp-1",
        "status": "final",
        "type": {"coding": [{"system": "http://loinc.org", "code": "67781-5"}]},
        "subject": {"reference": u[1]},
        "date": "2024-03-06T09:00:00+01:00",
        "author": [{"reference": u[2]}],
        "title": "Professionele samenvatting",
        "confidentiality": "N",
        "section": [
            {
                "title": "Episodes",
                "entry": [{"reference": u[3]}],
                "section": [
                    {
                        "title": "Metingen",
                        "text": {"status": "generated", "div": XHTML},
                        "entry": [{"reference": u[4]}],
                    }
                ],
            },
            {"title": "Contactverslag", "entry": [{"reference": u[5]}]},
        ],
    }
    ep = episode_of_care()
    ep["patient"] = {"reference": u[1]}
    ep.pop("diagnosis")
    ep["managingOrganization"] = {"reference": "Organization/org-1"}
    obs = lab_observation()
    obs["subject"] = {"reference": u[1]}
    enc = encounter()
    for key in ("episodeOfCare", "participant", "reasonReference", "serviceProvider"):
        enc.pop(key)
    enc["subject"] = {"reference": u[1]}
    pat = patient()
    pat.pop("generalPractitioner")
    org = organization()
    return {
        "resourceType": "Bundle",
        "id": "ps-1",
        "type": "document",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": u[0]},
        "timestamp": "2024-03-06T09:00:00+01:00",
        "entry": [
            {"fullUrl": u[0], "resource": comp},
            {"fullUrl": u[1], "resource": pat},
            {"fullUrl": u[2], "resource": org},
            {"fullUrl": u[3], "resource": ep},
            {"fullUrl": u[4], "resource": obs},
            {"fullUrl": u[5], "resource": enc},
            {"fullUrl": "https://his.example.nl/fhir/Organization/org-1", "resource": organization()},
        ],
    }


def transaction_bundle() -> dict:
    """A transaction: relative references may point at the server; urn:uuid ones must resolve."""
    pat = patient()
    obs = soep_observation()
    obs["subject"] = {"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}
    obs.pop("encounter")
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
                "resource": pat,
                "request": {"method": "PUT", "url": "Patient?identifier=" + NL + "bsn|" + BSN},
            },
            {"resource": obs, "request": {"method": "POST", "url": "Observation"}},
        ],
    }


VALID = {
    f.__name__: f
    for f in (
        patient,
        practitioner,
        practitioner_role,
        organization,
        insurer,
        episode_of_care,
        condition,
        encounter,
        soep_observation,
        lab_observation,
        medication_request,
        medication_statement,
        allergy_intolerance,
        flag,
        communication,
        document_reference,
        binary,
        task,
        service_request,
        charge_item,
        audit_event,
        operation_outcome_resource,
        coverage,
        composition_bundle,
        transaction_bundle,
    )
}
VALID["inbound_bundle"] = lambda: inbound_bundle(5)


def pairs(problems: list[Problem], severity: Severity | None = Severity.ERROR) -> list[tuple[str, str]]:
    return sorted((p.code, p.location) for p in problems if severity is None or p.severity is severity)


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_resource_has_no_problem(name):
    resource = VALID[name]()
    assert [p.render_line() for p in validate(resource)] == []
    assert [p.render_line() for p in validate(orjson.dumps(resource))] == []


@pytest.mark.parametrize("name", sorted(VALID))
def test_what_fhir_resources_writes_is_valid(name):
    """R4B accepts our valid fixtures, and its serialisation of them passes our validator."""
    body = dump_json_with_models(validate_with_models(VALID[name]()))
    assert [p.render_line() for p in validate(body)] == []


def test_every_gateway_type_is_covered():
    handled = {
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "EpisodeOfCare",
        "Condition",
        "Encounter",
        "Composition",
        "Observation",
        "MedicationRequest",
        "MedicationStatement",
        "AllergyIntolerance",
        "Flag",
        "Communication",
        "DocumentReference",
        "Binary",
        "Task",
        "ServiceRequest",
        "ChargeItem",
        "AuditEvent",
        "OperationOutcome",
        "Bundle",
        "Coverage",
    }
    assert handled <= set(resource_types())
    seen = set()
    for make in VALID.values():
        r = make()
        seen.add(r["resourceType"])
        for e in r.get("entry", []):
            seen.add(e["resource"]["resourceType"])
    assert handled <= seen


# ------------------------------------------------------------------ bad input: exact codes and places


def _with(make, **changes):
    r = make()
    for key, value in changes.items():
        if value is None:
            r.pop(key, None)
        else:
            r[key] = value
    return r


def _bundle_with_dangling_reference():
    b = composition_bundle()
    b["entry"][4]["resource"]["subject"] = {"reference": "urn:uuid:99999999-9999-4999-8999-999999999999"}
    return b


def _bundle_with_server_reference():
    b = composition_bundle()
    b["entry"][3]["resource"]["patient"] = {"reference": "Patient/elders"}
    return b


def _lab_two_values():
    r = lab_observation()
    r["valueString"] = "53"
    return r


def _lab_bad_types():
    r = lab_observation()
    r["valueQuantity"]["value"] = "53.5"
    r["issued"] = 20240305
    r["referenceRange"][0]["low"]["unit"] = ["mmol/mol"]
    return r


def _patient_bad_identifiers():
    r = patient()
    r["identifier"] = [
        {"system": NL + "bsn", "value": "123456789"},
        {"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "99991112"},
        {"system": NL + "agb-z", "value": "1234567"},
        {"system": NL + "uzi-nr-pers", "value": "12345678a"},
        {"system": NL + "ura", "value": "123456789"},
        {"system": NL + "uzovi", "value": "33111"},
    ]
    return r


def _patient_json_rules():
    r = patient()
    r["name"][0]["suffix"] = []
    r["telecom"][0]["period"] = {}
    r["address"][0]["city"] = None
    r["address"][0]["district"] = ""
    return r


def _patient_cardinality():
    r = patient()
    r["name"] = r["name"][0]
    r["gender"] = ["female"]
    r["maritalStatus"] = [r["maritalStatus"]]
    return r


def _patient_bad_primitive_extension():
    r = patient()
    r["name"][0]["_given"] = [None]
    r["_birthDate"] = [{"extension": []}]
    r["_gender"] = {"id": "g", "extension": [{"url": "http://example.org/x"}]}
    r["_nickname"] = {"id": "n"}
    return r


def _extensions():
    r = patient()
    r["extension"] = [
        {"valueString": "no url"},
        {
            "url": "http://example.org/both",
            "valueString": "v",
            "extension": [{"url": "x", "valueBoolean": True}],
        },
        {"url": "http://example.org/none"},
        {"url": "http://example.org/nested", "extension": [{"url": "a", "valueCode": "b"}]},
    ]
    return r


def _condition_bad_status_codings():
    r = condition()
    r["clinicalStatus"] = {"coding": [{"system": "http://snomed.info/sct", "code": "55561003"}]}
    r["verificationStatus"] = {"text": "zeker"}
    return r


def _contained_problems():
    r = medication_statement()
    r["medicationReference"] = {"reference": "#other"}
    r["informationSource"] = {"reference": "#med"}  # a Medication is no allowed informationSource
    return r


def _wrong_target_types():
    r = soep_observation()
    r["subject"] = {"reference": "Organization/org-1"}
    r["performer"] = [{"reference": "Patient/pat-1", "type": "Practitioner"}]
    r["basedOn"] = [{"reference": "not a reference"}]
    return r


def _bundle_invariants():
    b = composition_bundle()
    b["entry"] = [b["entry"][1], b["entry"][0]] + b["entry"][2:]
    b["entry"][2]["fullUrl"] = b["entry"][1]["fullUrl"]
    b["entry"][6]["fullUrl"] = "https://his.example.nl/fhir/Organization/org-2"
    b.pop("timestamp")
    b["total"] = 7
    b["entry"][3]["request"] = {"method": "GET", "url": "EpisodeOfCare/ep-1"}
    return b


def _deep_dict():
    node: dict = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(100_000):
        node = {"url": "http://example.org/x", "extension": [node]}
    return {"resourceType": "Patient", "extension": [node]}


DEEP_EXTENSION = "Patient" + ".extension[0]" * 32

BAD: dict[str, tuple] = {
    # name: (input, [(code, location), ...] of every error)
    "unknown elements": (
        _with(patient, nickname="Ans", **{"_foo": 1}),
        [("FHIRV-011", "Patient._foo"), ("FHIRV-011", "Patient.nickname")],
    ),
    "unknown element with an odd name": (
        _with(flag, **{"sta tus": "active"}),
        [("FHIRV-011", "Flag.`sta tus`")],
    ),
    "value[x] spelled literally": (
        _with(soep_observation, **{"value[x]": "a"}),
        [("FHIRV-011", "Observation.`value[x]`")],
    ),
    "wrong JSON types": (
        _lab_bad_types(),
        [
            ("FHIRV-012", "Observation.issued"),
            ("FHIRV-012", "Observation.value.ofType(Quantity).value"),
            ("FHIRV-013", "Observation.referenceRange[0].low.unit"),
        ],
    ),
    "boolean as string": (_with(patient, active="true"), [("FHIRV-012", "Patient.active")]),
    "integer with a fraction": (
        _with(document_reference, content=[{"attachment": {"size": 1.5}}]),
        [("FHIRV-020", "DocumentReference.content[0].attachment.size")],
    ),
    "missing required elements": (
        _with(lab_observation, status=None, code=None),
        [("FHIRV-014", "Observation.code"), ("FHIRV-014", "Observation.status")],
    ),
    "missing required choice": (
        _with(medication_request, medicationCodeableConcept=None),
        [("FHIRV-014", "MedicationRequest.medication")],
    ),
    "bad status code": (_with(lab_observation, status="done"), [("FHIRV-030", "Observation.status")]),
    "bad gender": (_with(patient, gender="M"), [("FHIRV-030", "Patient.gender")]),
    "bad intent and status": (
        _with(task, status="open", intent="bevel"),
        [("FHIRV-030", "Task.intent"), ("FHIRV-030", "Task.status")],
    ),
    "bad bundle type": (_with(transaction_bundle, type="transactie"), [("FHIRV-030", "Bundle.type")]),
    "status codings not from the value set": (
        _condition_bad_status_codings(),
        [
            ("FHIRV-031", "Condition.clinicalStatus.coding"),
            ("FHIRV-031", "Condition.verificationStatus.coding"),
        ],
    ),
    "choice type with two values": (_lab_two_values(), [("FHIRV-016", "Observation.value")]),
    "bad dates": (
        _with(patient, birthDate="2023-02-30", deceasedDateTime="2024-01-01T10:00:00"),
        [("FHIRV-021", "Patient.birthDate"), ("FHIRV-021", "Patient.deceased.ofType(dateTime)")],
    ),
    "not a leap year": (_with(patient, birthDate="1900-02-29"), [("FHIRV-021", "Patient.birthDate")]),
    "instant without time": (
        _with(lab_observation, issued="2024-03-05"),
        [("FHIRV-021", "Observation.issued")],
    ),
    "bad id and code forms": (
        _with(flag, id="flag_1!", language="nl NL "),
        [("FHIRV-020", "Flag.id"), ("FHIRV-020", "Flag.language")],
    ),
    "invalid identifiers": (
        _patient_bad_identifiers(),
        [
            ("FHIRV-040", "Patient.identifier[0].value"),
            ("FHIRV-041", "Patient.identifier[1].value"),
            ("FHIRV-041", "Patient.identifier[2].value"),
            ("FHIRV-041", "Patient.identifier[3].value"),
            ("FHIRV-041", "Patient.identifier[4].value"),
            ("FHIRV-041", "Patient.identifier[5].value"),
        ],
    ),
    "BSN under its OID fails the 11-test": (
        _with(patient, identifier=[{"system": "urn:oid:2.16.840.1.113883.2.4.6.3", "value": "999911121"}]),
        [("FHIRV-040", "Patient.identifier[0].value")],
    ),
    "identifier inside a reference": (
        _with(task, owner={"identifier": {"system": NL + "agb-z", "value": "0101234"}}),
        [("FHIRV-041", "Task.owner.identifier.value")],
    ),
    "JSON rules: empty array, empty object, null, empty string": (
        _patient_json_rules(),
        [
            ("FHIRV-015", "Patient.address[0].city"),
            ("FHIRV-015", "Patient.address[0].district"),
            ("FHIRV-015", "Patient.name[0].suffix"),
            ("FHIRV-015", "Patient.telecom[0].period"),
        ],
    ),
    "cardinality": (
        _patient_cardinality(),
        [
            ("FHIRV-013", "Patient.gender"),
            ("FHIRV-013", "Patient.maritalStatus"),
            ("FHIRV-013", "Patient.name"),
        ],
    ),
    "primitive extensions": (
        _patient_bad_primitive_extension(),
        [
            ("FHIRV-011", "Patient._nickname"),
            ("FHIRV-017", "Patient.birthDate"),
            ("FHIRV-017", "Patient.name[0].given"),
            ("FHIRV-061", "Patient.gender.extension[0]"),
        ],
    ),
    "extensions": (
        _extensions(),
        [
            ("FHIRV-060", "Patient.extension[0].url"),
            ("FHIRV-061", "Patient.extension[1]"),
            ("FHIRV-061", "Patient.extension[2]"),
        ],
    ),
    "narrative without the XHTML namespace": (
        _with(patient, text={"status": "generated", "div": "<div>tekst</div>"}),
        [("FHIRV-020", "Patient.text.div")],
    ),
    "narrative with script": (
        _with(
            patient,
            text={
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>x()</script></div>',
            },
        ),
        [("FHIRV-020", "Patient.text.div")],
    ),
    "reference not in the Bundle": (
        _bundle_with_dangling_reference(),
        [("FHIRV-050", "Bundle.entry[4].resource.subject.reference")],
    ),
    "relative reference not in a document Bundle": (
        _bundle_with_server_reference(),
        [("FHIRV-050", "Bundle.entry[3].resource.patient.reference")],
    ),
    "contained references": (
        _contained_problems(),
        [
            ("FHIRV-051", "MedicationStatement.medication.ofType(Reference).reference"),
            ("FHIRV-052", "MedicationStatement.informationSource.reference"),
        ],
    ),
    "reference targets and forms": (
        _wrong_target_types(),
        [
            ("FHIRV-052", "Observation.performer[0].type"),
            ("FHIRV-052", "Observation.subject.reference"),
            ("FHIRV-054", "Observation.basedOn[0].reference"),
        ],
    ),
    "Bundle invariants": (
        _bundle_invariants(),
        [
            ("FHIRV-050", "Bundle.entry[1].resource.author[0].reference"),  # its target lost its fullUrl
            ("FHIRV-053", "Bundle.entry[2].fullUrl"),
            ("FHIRV-053", "Bundle.entry[6].fullUrl"),
            ("FHIRV-070", "Bundle.entry[0].resource"),
            ("FHIRV-070", "Bundle.entry[3].request"),
            ("FHIRV-070", "Bundle.timestamp"),
            ("FHIRV-070", "Bundle.total"),
        ],
    ),
    "entry resource of a type the gateway does not handle": (
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": {"resourceType": "Questionnaire"}}],
        },
        [("FHIRV-010", "Bundle.entry[0].resource.resourceType")],
    ),
    "no resourceType": ({"id": "x"}, [("FHIRV-010", "resourceType")]),
    "unhandled resourceType": ({"resourceType": "Person"}, [("FHIRV-010", "resourceType")]),
    "SimpleQuantity with a comparator": (
        _with(lab_observation, referenceRange=[{"low": {"value": 1, "comparator": "<"}}]),
        [("FHIRV-013", "Observation.referenceRange[0].low.comparator")],
    ),
    "observation invariants": (
        _with(
            soep_observation,
            dataAbsentReason={"text": "niet gemeten"},
            effectivePeriod={"start": "2024-03-05T10:00:00+01:00", "end": "2024-03-05T09:00:00+01:00"},
            effectiveDateTime=None,
        ),
        [
            ("FHIRV-070", "Observation.dataAbsentReason"),
            ("FHIRV-070", "Observation.effective.ofType(Period).end"),
        ],
    ),
    "quantity code without system": (
        _with(encounter, length={"value": 10, "code": "min"}),
        [("FHIRV-070", "Encounter.length.system")],
    ),
    "20 MB string in a decoded resource": (
        _with(patient, name=[{"text": "a" * (20 * 1024 * 1024)}]),
        [("FHIRV-018", "Patient.name[0].text")],
    ),
    "10^5-deep decoded extensions": (_deep_dict(), [("FHIRV-004", DEEP_EXTENSION)]),
    "not an object": ([1, 2], [("FHIRV-005", "$")]),
}

HOSTILE_BYTES: dict[str, tuple[bytes, list[tuple[str, str]]]] = {
    "10^5-deep arrays": (b"[" * 100_000 + b"]" * 100_000, [("FHIRV-004", "$")]),
    "10^5-deep objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, [("FHIRV-004", "$")]),
    "20 MB string": (
        b'{"resourceType":"Patient","name":[{"text":"' + b"a" * (20 * 1024 * 1024) + b'"}]}',
        [("FHIRV-001", "$")],
    ),
    "invalid UTF-8": (b'{"resourceType":"Patient","name":[{"text":"Jos\xe9"}]}', [("FHIRV-002", "$")]),
    "UTF-16 surrogate escape": (
        b'{"resourceType":"Patient","name":[{"text":"\\ud800"}]}',
        [("FHIRV-003", "$")],
    ),
    "not JSON": (b'{"resourceType": "Patient",}', [("FHIRV-003", "$")]),
    "trailing content": (b'{"resourceType": "Patient"} {}', [("FHIRV-003", "$")]),
    "empty": (b"", [("FHIRV-003", "$")]),
    "top-level string": (b'"Patient"', [("FHIRV-005", "$")]),
    "too many values": (b"[" + b"0," * 600_000 + b"0]", [("FHIRV-006", "$")]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_input_gives_exact_problems(name):
    data, expected = BAD[name]
    problems = validate(data)
    assert pairs(problems) == sorted(expected)
    outcome = operation_outcome(problems)
    errors = [i for i in outcome["issue"] if i["severity"] == "error"]
    assert sorted((i["details"]["coding"][0]["code"], i["expression"][0]) for i in errors) == sorted(expected)
    assert validate(outcome) == []  # the answer itself is a valid OperationOutcome


@pytest.mark.parametrize("name", sorted(HOSTILE_BYTES))
def test_hostile_bytes_are_refused_quickly(name):
    data, expected = HOSTILE_BYTES[name]
    start = time.perf_counter()
    problems = validate(data)
    elapsed = time.perf_counter() - start
    assert pairs(problems) == expected
    assert elapsed < 1.0, f"{name} took {elapsed:.2f} s"


def composition():
    return composition_bundle()["entry"][0]["resource"]


BINDINGS = [  # (fixture, element, a code that is not in its required value set)
    (episode_of_care, "status", "open"),
    (encounter, "status", "done"),
    (lab_observation, "status", "done"),
    (medication_request, "status", "gestopt"),
    (medication_request, "intent", "bestelling"),
    (medication_statement, "status", "actief"),
    (allergy_intolerance, "criticality", "hoog"),
    (flag, "status", "open"),
    (communication, "status", "sent"),
    (composition, "status", "definitief"),
    (composition, "confidentiality", "X"),
    (task, "status", "open"),
    (task, "intent", "bevel"),
    (service_request, "status", "open"),
    (service_request, "intent", "bevel"),
    (document_reference, "status", "final"),
    (charge_item, "status", "declared"),
    (coverage, "status", "geldig"),
    (audit_event, "action", "X"),
    (patient, "gender", "vrouw"),
    (practitioner, "gender", "man"),
]


@pytest.mark.parametrize(("make", "element", "code"), BINDINGS, ids=lambda x: getattr(x, "__name__", str(x)))
def test_required_binding_per_resource(make, element, code):
    resource = make()
    assert validate(resource) == []
    resource[element] = code
    assert pairs(validate(resource)) == [("FHIRV-030", f"{resource['resourceType']}.{element}")]


@pytest.mark.parametrize("element", ["clinicalStatus", "verificationStatus"])
@pytest.mark.parametrize("make", [condition, allergy_intolerance])
def test_required_status_codings(make, element):
    resource = make()
    system = resource[element]["coding"][0]["system"]
    resource[element] = {"coding": [{"system": system, "code": "misschien"}]}
    assert pairs(validate(resource)) == [("FHIRV-031", f"{resource['resourceType']}.{element}.coding")]


def test_document_limit_is_a_parameter():
    body = orjson.dumps(patient())
    assert validate(body, max_bytes=len(body)) == []
    assert pairs(validate(body, max_bytes=len(body) - 1)) == [("FHIRV-001", "$")]
    assert pairs(validate(body.decode(), max_bytes=10)) == [("FHIRV-001", "$")]
    assert MAX_DOCUMENT_BYTES == 16 * 1024 * 1024


def test_depth_limit_is_a_parameter():
    r = flag()
    r["extension"] = [
        {"url": "http://example.org/a", "extension": [{"url": "http://example.org/b", "valueString": "x"}]}
    ]
    assert validate(r, max_depth=5) == []
    assert pairs(validate(r, max_depth=4)) == [("FHIRV-004", "Flag.extension[0].extension[0]")]


def test_base64_may_exceed_the_string_limit():
    r = binary()
    r["data"] = "QUJD" * (400 * 1024)  # 1.6 MB of base64: a letter, not a string
    assert validate(r) == []
    r["data"] = "QUJD*" + r["data"]
    assert pairs(validate(r)) == [("FHIRV-020", "Binary.data")]


def test_byte_order_mark_is_a_warning():
    problems = validate(b"\xef\xbb\xbf" + orjson.dumps(flag()))
    assert pairs(problems, None) == [("FHIRV-007", "$")]
    assert not has_errors(problems)


def test_unreferenced_contained_resource_is_a_warning():
    r = medication_statement()
    r["medicationCodeableConcept"] = {"text": "paracetamol"}
    r.pop("medicationReference")
    problems = validate(r)
    assert pairs(problems, None) == [("FHIRV-055", "MedicationStatement.contained[0]")]
    assert not has_errors(problems)


def test_transaction_may_refer_to_the_server_but_not_to_a_missing_uuid():
    b = transaction_bundle()
    b["entry"][1]["resource"]["encounter"] = {"reference": "Encounter/on-the-server"}
    assert validate(b) == []
    b["entry"][1]["resource"]["subject"] = {"reference": "urn:uuid:22222222-2222-4222-8222-222222222222"}
    assert pairs(validate(b)) == [("FHIRV-050", "Bundle.entry[1].resource.subject.reference")]


def test_conditional_reference_only_in_a_transaction():
    b = transaction_bundle()
    b["entry"][1]["resource"]["subject"] = {"reference": "Patient?identifier=" + NL + "bsn|" + BSN}
    assert validate(b) == []
    b["entry"][1]["resource"]["performer"] = [{"reference": "Flag?code=x"}]
    assert pairs(validate(b)) == [("FHIRV-052", "Bundle.entry[1].resource.performer[0].reference")]
    b["type"] = "collection"
    for entry in b["entry"]:
        entry.pop("request")
    assert pairs(validate(b)) == [
        ("FHIRV-050", "Bundle.entry[0].resource.generalPractitioner[0].reference"),  # now it must resolve
        ("FHIRV-054", "Bundle.entry[1].resource.performer[0].reference"),
        ("FHIRV-054", "Bundle.entry[1].resource.subject.reference"),
    ]


def test_relative_reference_resolves_against_the_entry_base():
    b = composition_bundle()
    b["entry"][6]["resource"]["partOf"] = {
        "reference": "Organization/org-1"
    }  # itself, by its RESTful fullUrl
    b["entry"][6]["resource"]["endpoint"] = [{"reference": "https://his.example.nl/fhir/Organization/org-1"}]
    assert pairs(validate(b)) == [("FHIRV-052", "Bundle.entry[6].resource.endpoint[0].reference")]


def test_problem_list_is_capped():
    r = patient()
    for i in range(300):
        r[f"unknown{i}"] = i
    problems = validate(r)
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1].code == "IO-003"


def test_strict_sink_raises_on_the_first_error():
    sink = ProblemSink(strict=True)
    with pytest.raises(InputError) as exc:
        validate(_with(patient, gender="M", nickname="x"), sink=sink)
    assert [(p.code, p.location) for p in exc.value.problems] == [("FHIRV-030", "Patient.gender")]


def test_operation_outcome_when_all_is_well():
    outcome = operation_outcome([])
    assert [i["severity"] for i in outcome["issue"]] == ["information"]
    assert outcome["issue"][0]["code"] == "informational"
    assert validate(outcome) == []
    validate_with_models(outcome)


# ------------------------------------------------------------------ fuzzing: validate never raises

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["final", "2024-02-30", "urn:uuid:x", "#x", "Patient/1", BSN, "male", ""]),
)
_keys = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "resourceType",
            "id",
            "extension",
            "url",
            "valueString",
            "reference",
            "coding",
            "system",
            "code",
            "_given",
            "given",
            "entry",
            "resource",
            "fullUrl",
            "contained",
            "status",
            "value",
            "identifier",
        ]
    ),
)
_json = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_keys, inner, max_size=5)),
    max_leaves=30,
)
_types = st.sampled_from(sorted(resource_types()))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=_json, rtype=_types, as_bytes=st.booleans())
def test_fuzz_random_json_never_raises(value, rtype, as_bytes):
    if isinstance(value, dict) and value:
        value = {"resourceType": rtype, **value}
    data = orjson.dumps(value) if as_bytes else value
    problems = validate(data)
    assert all(isinstance(p, Problem) for p in problems)
    operation_outcome(problems)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


def _mutate(resource: dict, choice: int, how: int, new) -> dict:
    r = copy.deepcopy(resource)
    paths = list(_paths(r))[1:]
    path = paths[choice % len(paths)]
    parent = r
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == 0:
        parent[last] = new
    elif how == 1 and isinstance(parent, dict):
        del parent[last]
    elif how == 2:
        parent[last] = [parent[last]]
    elif how == 3 and isinstance(parent[last], list) and parent[last]:
        parent[last] = parent[last][0]
    elif how == 4 and isinstance(parent, dict):
        parent[f"{last}x" if isinstance(last, str) else "x"] = new
    else:
        parent[last] = new
    return r


@settings(max_examples=1200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(VALID)), choice=st.integers(0, 10_000), how=st.integers(0, 5), new=_json)
def test_fuzz_mutated_valid_resources_never_raise(name, choice, how, new):
    mutated = _mutate(VALID[name](), choice, how, new)
    problems = validate(mutated)
    assert all(isinstance(p, Problem) for p in problems)
    assert all(isinstance(p, Problem) for p in validate(orjson.dumps(mutated)))


# ------------------------------------------------------------------ cross-check with fhir.resources R4B


def _extension_with_meta():
    r = flag()
    r["extension"] = [{"url": "http://example.org/source-meta", "valueMeta": {"versionId": "3"}}]
    return r


def _surrogate_in_decoded_text():
    return _with(flag, code={"text": "abc\ud800"})


def _bad_base64_padding():
    return _with(binary, data="Q===")


KNOWN_EXCEPTIONS: dict[str, str] = {
    "R4-only valueMeta": "Extension.value[x] of R4 (4.0.1) includes Meta; R4B dropped Meta from the types an "
    "extension may carry, so R4B rejects what is valid R4 (bundled as the only R4 element "
    "R4B lacks in the types we check, found by comparing every element table with R4B)",
}
"""Inputs R4B rejects and we accept, with the reason; each names a case of CROSS and is checked to be one."""


def _r4b_rejects(resource) -> bool:
    try:
        validate_with_models(resource)
    except (ValidationError, ValueError, TypeError, KeyError, AttributeError, ImportError):
        return True  # ImportError: R4B has no model class of that name
    return False


CROSS = {
    "R4-only valueMeta": _extension_with_meta,
    "lone surrogate": _surrogate_in_decoded_text,
    "base64 padding": _bad_base64_padding,
    **{f"valid {k}": v for k, v in VALID.items()},
    **{
        f"bad {k}": (lambda d=d: d)
        for k, (d, _) in BAD.items()
        if isinstance(d, dict)
        and k not in ("20 MB string in a decoded resource", "10^5-deep decoded extensions")
    },
}


@pytest.mark.parametrize("name", sorted(CROSS))
def test_when_r4b_rejects_we_report_an_error(name):
    resource = CROSS[name]()
    if _r4b_rejects(copy.deepcopy(resource)):
        assert has_errors(validate(resource)) or name in KNOWN_EXCEPTIONS, name


MORE_THAN_R4B = [
    "bad status code",
    "bad gender",
    "bad intent and status",
    "invalid identifiers",
    "reference not in the Bundle",
    "reference targets and forms",
    "contained references",
    "Bundle invariants",
]


@pytest.mark.parametrize("name", MORE_THAN_R4B)
def test_we_check_what_r4b_does_not(name):
    """Cases the R4B models accept and the validator refuses (the "checks more" of the issue)."""
    resource, expected = BAD[name]
    assert not _r4b_rejects(copy.deepcopy(resource))
    assert pairs(validate(resource)) == sorted(expected)


def test_known_exceptions_are_real():
    """Each listed exception is a case where R4B rejects and we accept; nothing else is."""
    for name in KNOWN_EXCEPTIONS:
        resource = CROSS[name]()
        assert _r4b_rejects(copy.deepcopy(resource))
        assert not has_errors(validate(resource))


TRICKY = [
    "  ",
    " a",
    "\x00",
    "0000",
    "2024-1-1",
    "2024-01-01T10:00",
    "2024-01-01T24:00:00Z",
    "25:00:00",
    "-1",
    -1,
    0,
    2**31,
    1.0,
    True,
    "a" * 65,
    "urn:uuid:ABC",
    "#",
    "a  b",
    "http://x y",
    "Q===",
    "<div>x</div>",
    1.5,
    "\ud800x",
    [],
    {},
    None,
]


def _leaves(node, prefix=()):
    for path in _paths(node):
        value = node
        for step in path:
            value = value[step]
        if path and path[-1] != "resourceType" and not isinstance(value, dict | list):
            yield path


def test_cross_check_every_leaf_with_tricky_values():
    """Every leaf of every valid fixture set to each tricky value: where R4B rejects, so do we."""
    misses, tried = [], 0
    for name in sorted(set(VALID) - {"inbound_bundle", "composition_bundle"}):
        base = VALID[name]()
        for path in _leaves(base):
            for value in TRICKY:
                mutated = copy.deepcopy(base)
                parent = mutated
                for step in path[:-1]:
                    parent = parent[step]
                parent[path[-1]] = value
                tried += 1
                if _r4b_rejects(copy.deepcopy(mutated)) and not has_errors(validate(mutated)):
                    misses.append((name, path, value))
    assert tried > 5000
    assert misses == []


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(n for n in VALID if n != "inbound_bundle")),
    choice=st.integers(0, 10_000),
    how=st.integers(0, 5),
    new=_json,
)
def test_cross_check_mutations(name, choice, how, new):
    mutated = _mutate(VALID[name](), choice, how, new)
    if _r4b_rejects(copy.deepcopy(mutated)):
        assert has_errors(validate(mutated)), orjson.dumps(mutated).decode()[:2000]
