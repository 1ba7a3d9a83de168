"""The smallest valid instance of every writable type: FHIR R4 cardinality 1..1 elements only (data).

Used as the request-body schema in the served OpenAPI (so that a generated "valid" body really is valid),
as its examples, and by the tests that exercise every type.
"""

from __future__ import annotations

import copy
from typing import Any

SUBJECT = {"reference": "Patient/example"}
TEXT = {"text": "example"}

MINIMAL: dict[str, dict[str, Any]] = {
    "Patient": {},
    "Practitioner": {},
    "PractitionerRole": {},
    "Organization": {},
    "HealthcareService": {},
    "EpisodeOfCare": {"status": "active", "patient": SUBJECT},
    "Condition": {"subject": SUBJECT},
    "Encounter": {
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    },
    "Composition": {
        "status": "final",
        "type": TEXT,
        "date": "2024-01-01",
        "author": [{"display": "example"}],
        "title": "example",
    },
    "Observation": {"status": "final", "code": TEXT},
    "MedicationRequest": {
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": TEXT,
        "subject": SUBJECT,
    },
    "MedicationStatement": {"status": "active", "medicationCodeableConcept": TEXT, "subject": SUBJECT},
    "AllergyIntolerance": {"patient": SUBJECT},
    "Flag": {"status": "active", "code": TEXT, "subject": SUBJECT},
    "Communication": {"status": "completed"},
    "DocumentReference": {"status": "current", "content": [{"attachment": {"contentType": "text/plain"}}]},
    "Binary": {"contentType": "text/plain"},
    "Task": {"status": "requested", "intent": "order"},
    "ServiceRequest": {"status": "active", "intent": "order", "subject": SUBJECT},
    "ChargeItem": {"status": "billable", "code": TEXT, "subject": SUBJECT},
}


def minimal(rtype: str, **extra: Any) -> dict[str, Any]:
    """A fresh minimal ``rtype`` resource with ``extra`` elements added."""
    return {"resourceType": rtype, **copy.deepcopy(MINIMAL[rtype]), **extra}
