"""The resource types the gateway serves and, per type, its search parameters and tenancy paths (data).

Search parameters follow the FHIR R4 search parameter registry (https://hl7.org/fhir/R4/searchparameter-registry.html)
for the parameters HIS vendors need: ``patient``, ``subject``, ``identifier``, ``status``, the date of each
resource, and the references we return (``_include``). Each parameter names its kind and the element
paths it is extracted from at write time (``gateway/fhir/index.py``); a path segment ending in ``[x]``
is a FHIR choice element (``effective[x]`` = ``effectiveDateTime`` / ``effectivePeriod`` / ...).

``PARTICIPANTS`` lists, per type, the reference elements whose Organization (or PractitionerRole's
organisation) takes part in the resource: tenancy (issue 5, "a tenant sees what its organisation
takes part in"). The creating client's organisation always takes part as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ParamKind = Literal["token", "reference", "date", "string"]


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type."""

    name: str
    kind: ParamKind
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()
    """Reference targets (for ``kind == "reference"``); the first is assumed for a bare id."""


@dataclass(frozen=True, slots=True)
class ResourceDef:
    """A resource type the gateway serves."""

    name: str
    params: dict[str, SearchParam] = field(default_factory=dict)
    read_only: bool = False
    directory: bool = False
    """Directory resources (the hospital and specialism directory) are readable by every tenant;
    only the organisations taking part in them may change them."""
    participants: tuple[str, ...] = ()
    patient_paths: tuple[str, ...] = ()
    """Elements naming the patient the resource is about (NEN 7513 audit object; sharing)."""


def _p(name: str, kind: ParamKind, *paths: str, targets: tuple[str, ...] = ()) -> SearchParam:
    return SearchParam(name, kind, paths, targets)


PAT = ("Patient",)
ANY_ACTOR = ("Organization", "Practitioner", "PractitionerRole", "Patient")


def _clinical(subject_path: str = "subject", patient_only: bool = True) -> list[SearchParam]:
    """``identifier``, ``subject`` and ``patient`` as nearly every clinical resource has them."""
    return [
        _p("identifier", "token", "identifier"),
        _p("patient", "reference", subject_path, targets=PAT),
        _p("subject", "reference", subject_path, targets=PAT if patient_only else ("Patient", "Group")),
    ]


def _def(
    name: str,
    params: list[SearchParam],
    *,
    participants: tuple[str, ...] = (),
    patient_paths: tuple[str, ...] = (),
    read_only: bool = False,
    directory: bool = False,
) -> ResourceDef:
    return ResourceDef(name, {p.name: p for p in params}, read_only, directory, participants, patient_paths)


RESOURCES: dict[str, ResourceDef] = {
    d.name: d
    for d in [
        _def(
            "Patient",
            [
                _p("identifier", "token", "identifier"),
                _p("name", "string", "name"),
                _p("family", "string", "name.family"),
                _p("given", "string", "name.given"),
                _p("birthdate", "date", "birthDate"),
                _p("gender", "token", "gender"),
                _p("organization", "reference", "managingOrganization", targets=("Organization",)),
                _p(
                    "general-practitioner",
                    "reference",
                    "generalPractitioner",
                    targets=("Organization", "Practitioner", "PractitionerRole"),
                ),
            ],
            participants=("managingOrganization", "generalPractitioner"),
            patient_paths=("$self",),
        ),
        _def(
            "Practitioner",
            [
                _p("identifier", "token", "identifier"),
                _p("name", "string", "name"),
                _p("family", "string", "name.family"),
            ],
        ),
        _def(
            "PractitionerRole",
            [
                _p("identifier", "token", "identifier"),
                _p("practitioner", "reference", "practitioner", targets=("Practitioner",)),
                _p("organization", "reference", "organization", targets=("Organization",)),
                _p("role", "token", "code"),
                _p("specialty", "token", "specialty"),
            ],
            participants=("organization",),
        ),
        _def(
            "Organization",
            [
                _p("identifier", "token", "identifier"),
                _p("name", "string", "name", "alias"),
                _p("type", "token", "type"),
                _p("partof", "reference", "partOf", targets=("Organization",)),
            ],
            participants=("$self", "partOf"),
            directory=True,
        ),
        _def(
            "HealthcareService",
            [
                _p("identifier", "token", "identifier"),
                _p("organization", "reference", "providedBy", targets=("Organization",)),
                _p("name", "string", "name"),
                _p("service-type", "token", "type"),
                _p("specialty", "token", "specialty"),
                _p("active", "token", "active"),
            ],
            participants=("providedBy",),
            directory=True,
        ),
        _def(
            "EpisodeOfCare",
            [
                _p("identifier", "token", "identifier"),
                _p("patient", "reference", "patient", targets=PAT),
                _p("status", "token", "status"),
                _p("type", "token", "type"),
                _p("date", "date", "period"),
                _p("organization", "reference", "managingOrganization", targets=("Organization",)),
                _p("condition", "reference", "diagnosis.condition", targets=("Condition",)),
            ],
            participants=("managingOrganization",),
            patient_paths=("patient",),
        ),
        _def(
            "Condition",
            [
                *_clinical(),
                _p("code", "token", "code"),
                _p("clinical-status", "token", "clinicalStatus"),
                _p("verification-status", "token", "verificationStatus"),
                _p("category", "token", "category"),
                _p("onset-date", "date", "onset[x]"),
                _p("recorded-date", "date", "recordedDate"),
                _p("encounter", "reference", "encounter", targets=("Encounter",)),
                _p("asserter", "reference", "asserter", targets=ANY_ACTOR),
            ],
            participants=("asserter", "recorder"),
            patient_paths=("subject",),
        ),
        _def(
            "Encounter",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("class", "token", "class"),
                _p("type", "token", "type"),
                _p("date", "date", "period"),
                _p("episode-of-care", "reference", "episodeOfCare", targets=("EpisodeOfCare",)),
                _p("service-provider", "reference", "serviceProvider", targets=("Organization",)),
                _p(
                    "participant",
                    "reference",
                    "participant.individual",
                    targets=("Practitioner", "PractitionerRole"),
                ),
            ],
            participants=("serviceProvider",),
            patient_paths=("subject",),
        ),
        _def(
            "Composition",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("type", "token", "type"),
                _p("category", "token", "category"),
                _p("date", "date", "date"),
                _p("author", "reference", "author", targets=ANY_ACTOR),
                _p("encounter", "reference", "encounter", targets=("Encounter",)),
                _p("entry", "reference", "section.entry", targets=()),
            ],
            participants=("custodian", "author"),
            patient_paths=("subject",),
        ),
        _def(
            "Observation",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("code", "token", "code"),
                _p("category", "token", "category"),
                _p("date", "date", "effective[x]"),
                _p("encounter", "reference", "encounter", targets=("Encounter",)),
                _p("performer", "reference", "performer", targets=ANY_ACTOR),
                _p("has-member", "reference", "hasMember", targets=("Observation",)),
            ],
            participants=("performer",),
            patient_paths=("subject",),
        ),
        _def(
            "MedicationRequest",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("intent", "token", "intent"),
                _p("code", "token", "medicationCodeableConcept"),
                _p("authoredon", "date", "authoredOn"),
                _p("requester", "reference", "requester", targets=ANY_ACTOR),
                _p("encounter", "reference", "encounter", targets=("Encounter",)),
            ],
            participants=("requester", "performer"),
            patient_paths=("subject",),
        ),
        _def(
            "MedicationStatement",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("code", "token", "medicationCodeableConcept"),
                _p("effective", "date", "effective[x]"),
                _p("source", "reference", "informationSource", targets=ANY_ACTOR),
            ],
            participants=("informationSource",),
            patient_paths=("subject",),
        ),
        _def(
            "AllergyIntolerance",
            [
                _p("identifier", "token", "identifier"),
                _p("patient", "reference", "patient", targets=PAT),
                _p("clinical-status", "token", "clinicalStatus"),
                _p("verification-status", "token", "verificationStatus"),
                _p("code", "token", "code", "reaction.substance"),
                _p("category", "token", "category"),
                _p("date", "date", "recordedDate"),
                _p("onset", "date", "onset[x]"),
                _p("recorder", "reference", "recorder", targets=ANY_ACTOR),
            ],
            participants=("recorder", "asserter"),
            patient_paths=("patient",),
        ),
        _def(
            "Flag",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("date", "date", "period"),
                _p("author", "reference", "author", targets=ANY_ACTOR),
            ],
            participants=("author",),
            patient_paths=("subject",),
        ),
        _def(
            "Communication",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("category", "token", "category"),
                _p("sent", "date", "sent"),
                _p("received", "date", "received"),
                _p("sender", "reference", "sender", targets=ANY_ACTOR),
                _p("recipient", "reference", "recipient", targets=ANY_ACTOR),
                _p("based-on", "reference", "basedOn", targets=()),
                _p("part-of", "reference", "partOf", targets=()),
                _p("encounter", "reference", "encounter", targets=("Encounter",)),
            ],
            participants=("sender", "recipient"),
            patient_paths=("subject",),
        ),
        _def(
            "DocumentReference",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("type", "token", "type"),
                _p("category", "token", "category"),
                _p("date", "date", "date"),
                _p("period", "date", "context.period"),
                _p("author", "reference", "author", targets=ANY_ACTOR),
                _p("custodian", "reference", "custodian", targets=("Organization",)),
                _p("related", "reference", "context.related", targets=()),
            ],
            participants=("custodian", "author"),
            patient_paths=("subject",),
        ),
        _def("Binary", [], participants=()),
        _def(
            "Task",
            [
                _p("identifier", "token", "identifier"),
                _p("patient", "reference", "for", targets=PAT),
                _p("subject", "reference", "for", targets=PAT),
                _p("status", "token", "status"),
                _p("business-status", "token", "businessStatus"),
                _p("intent", "token", "intent"),
                _p("code", "token", "code"),
                _p("authored-on", "date", "authoredOn"),
                _p("modified", "date", "lastModified"),
                _p("period", "date", "executionPeriod"),
                _p("owner", "reference", "owner", targets=ANY_ACTOR),
                _p("requester", "reference", "requester", targets=ANY_ACTOR),
                _p("focus", "reference", "focus", targets=()),
                _p("based-on", "reference", "basedOn", targets=()),
                _p("part-of", "reference", "partOf", targets=("Task",)),
            ],
            participants=("requester", "owner"),
            patient_paths=("for",),
        ),
        _def(
            "ServiceRequest",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("intent", "token", "intent"),
                _p("code", "token", "code"),
                _p("category", "token", "category"),
                _p("priority", "token", "priority"),
                _p("authored", "date", "authoredOn"),
                _p("requester", "reference", "requester", targets=ANY_ACTOR),
                _p("performer", "reference", "performer", targets=ANY_ACTOR + ("HealthcareService",)),
                _p("encounter", "reference", "encounter", targets=("Encounter",)),
            ],
            participants=("requester", "performer"),
            patient_paths=("subject",),
        ),
        _def(
            "ChargeItem",
            [
                *_clinical(),
                _p("status", "token", "status"),
                _p("code", "token", "code"),
                _p("entered-date", "date", "enteredDate"),
                _p("occurrence", "date", "occurrence[x]"),
                _p(
                    "performing-organization",
                    "reference",
                    "performingOrganization",
                    targets=("Organization",),
                ),
                _p(
                    "requesting-organization",
                    "reference",
                    "requestingOrganization",
                    targets=("Organization",),
                ),
                _p("service", "reference", "service", targets=()),
            ],
            participants=("performingOrganization", "requestingOrganization", "costCenter"),
            patient_paths=("subject",),
        ),
        _def(
            "AuditEvent",
            [
                _p("date", "date", "recorded"),
                _p("patient", "reference", "entity.what", targets=PAT),
                _p("action", "token", "action"),
                _p("outcome", "token", "outcome"),
                _p("subtype", "token", "subtype"),
            ],
            read_only=True,
        ),
    ]
}
"""Every type the gateway serves, in the order /metadata lists them."""

WRITABLE = tuple(name for name, d in RESOURCES.items() if not d.read_only)
TYPES = tuple(RESOURCES)

COMMON_PARAMS = ("_id", "_lastUpdated")
RESULT_PARAMS = ("_count", "_offset", "_sort", "_include", "_revinclude", "_total", "_format", "_summary")
