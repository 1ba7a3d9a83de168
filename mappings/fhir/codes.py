"""Identifier systems, code systems, profiles and extensions of the FHIR R4 mappings (DOMAIN.md §8, §9).

Systems are emitted as the URI DOMAIN.md §8 names; on input the ``urn:oid:`` form (and the bare OID) of
each is accepted as well (:func:`system_uri`, which learns the OIDs of the code tables from
``mappings/codes/tables.toml``). The code-table systems are constants here for speed;
``tests/test_fhir_mapping.py`` checks each against tables.toml. Profiles are the Nictiz nl-core (zib2020)
ones, canonical base
``http://nictiz.nl/fhir/StructureDefinition/``; where nl-core has no element for something the canonical
model carries, the gateway uses an extension of its own under :data:`GW_EXT` (listed in
``docs/fhir-mapping.md`` §3).
"""

from __future__ import annotations

from functools import lru_cache

from mappings.codetables import code_tables

# --------------------------------------------------------------------------- identifier systems (§8)

BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
UZI_PERSON = "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers"
UZI_SYSTEM = "http://fhir.nl/fhir/NamingSystem/uzi-nr-sys"
URA = "http://fhir.nl/fhir/NamingSystem/ura"
BIG = "http://fhir.nl/fhir/NamingSystem/big"
UZOVI = "http://fhir.nl/fhir/NamingSystem/uzovi"
UZI_ROLE = "http://fhir.nl/fhir/NamingSystem/uzi-rolcode"
JOURNAAL = "http://fhir.nl/fhir/NamingSystem/journaalregeltypen"

GPK = "urn:oid:2.16.840.1.113883.2.4.4.1"
HPK = "urn:oid:2.16.840.1.113883.2.4.4.7"
PRK = "urn:oid:2.16.840.1.113883.2.4.4.10"
ZI = "urn:oid:2.16.840.1.113883.2.4.4.8"
PRODUCT_SYSTEMS = {"GPK": GPK, "HPK": HPK, "PRK": PRK, "ZI": ZI}
"""Canonical ``Medication.product_system`` -> G-Standaard code system."""
PRODUCT_KINDS = {v: k for k, v in PRODUCT_SYSTEMS.items()}

# Code systems that are not in tables.toml.
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
V3_ADDRESS_USE = "http://terminology.hl7.org/CodeSystem/v3-AddressUse"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
LIST_EMPTY_REASON = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
RFC3986 = "urn:ietf:rfc:3986"

# The gateway's own systems (no national system exists for these; see docs/fhir-mapping.md §3).
GW = "urn:his-gateway:"
LOCAL_ID = GW + "id:"
"""Prefix of the identifier system carrying the HIS's local id of a record (``urn:his-gateway:id:episode``).
The value is unique within one dossier (the export of one patient), which is all a round trip needs."""
SENDER_REFERENCE = GW + "id:sender-reference"
SENDER_PATIENT_REFERENCE = GW + "id:sender-patient-reference"
POSTBOX_KIND = GW + "postbox-item-kind"
SUMMARY_SECTION = GW + "summary-section"
VIDEO_QUALITY = GW + "video-connection-quality"

# --------------------------------------------------------------------------- profiles (§9)

NICTIZ = "http://nictiz.nl/fhir/StructureDefinition/"
P_PATIENT = NICTIZ + "nl-core-Patient"
P_PRACTITIONER = NICTIZ + "nl-core-HealthProfessional-Practitioner"
P_PRACTITIONER_ROLE = NICTIZ + "nl-core-HealthProfessional-PractitionerRole"
P_ORGANIZATION = NICTIZ + "nl-core-HealthcareProvider-Organization"
P_COVERAGE = NICTIZ + "nl-core-Payer.InsuranceCompany"
P_PROBLEM = NICTIZ + "nl-core-Problem"
P_EPISODE = NICTIZ + "nl-core-EpisodeOfCare"
P_ENCOUNTER = NICTIZ + "nl-core-Encounter"
P_SOAP_REPORT = NICTIZ + "nl-core-SOAPReport"
P_SOAP_LINE = NICTIZ + "nl-core-SOAPReport.SOAPLine"
P_LAB_RESULT = NICTIZ + "nl-core-LaboratoryTestResult"
P_GENERAL_MEASUREMENT = NICTIZ + "nl-core-GeneralMeasurement"
P_ALLERGY = NICTIZ + "nl-core-AllergyIntolerance"
P_CONTRA_INDICATION = NICTIZ + "nl-core-MedicationContraIndication"
P_ALERT = NICTIZ + "nl-core-Alert"
P_MEDICATION_AGREEMENT = NICTIZ + "mp-MedicationAgreement"
P_CORRESPONDENCE = NICTIZ + "hg-CorrespondenceItem"
P_DOCUMENT = NICTIZ + "hg-Document"

# --------------------------------------------------------------------------- extensions

HL7_EXT = "http://hl7.org/fhir/StructureDefinition/"
EXT_EN_QUALIFIER = HL7_EXT + "iso21090-EN-qualifier"
EXT_OWN_PREFIX = HL7_EXT + "humanname-own-prefix"
EXT_OWN_NAME = HL7_EXT + "humanname-own-name"
EXT_PARTNER_PREFIX = HL7_EXT + "humanname-partner-prefix"
EXT_PARTNER_NAME = HL7_EXT + "humanname-partner-name"
EXT_ASSEMBLY_ORDER = HL7_EXT + "humanname-assembly-order"
EXT_STREET = HL7_EXT + "iso21090-ADXP-streetName"
EXT_HOUSE_NUMBER = HL7_EXT + "iso21090-ADXP-houseNumber"
EXT_DATA_ABSENT = HL7_EXT + "data-absent-reason"
EXT_FLAG_DETAIL = HL7_EXT + "flag-detail"
EXT_ADDRESS_TYPE = NICTIZ + "ext-AddressInformation.AddressType"
EXT_EPISODE_NAME = NICTIZ + "ext-EpisodeOfCare.EpisodeOfCareName"
EXT_SOAP_LINE_CODE = NICTIZ + "ext-SOAPReport.SOAPLineCode"
EXT_CONTEXT_EPISODE = NICTIZ + "ext-Context-EpisodeOfCare"
EXT_PERIOD_OF_USE = NICTIZ + "ext-TimeInterval.Period"

GW_EXT = GW + "fhir:extension:"
"""The gateway's own extensions: logical names (R4 Extension.url: "a logical name or a URL")."""
EXT_EMPTY_TEXT = GW_EXT + "empty-text"
EXT_DEREGISTERED = GW_EXT + "deregistered-date"
EXT_VIDEO = GW_EXT + "video-consult"
EXT_MEASUREMENT_UNIT = GW_EXT + "measurement-unit"
EXT_SENDER_DISCIPLINE = GW_EXT + "sender-discipline"
EXT_SENDER_ORGANIZATION = GW_EXT + "sender-organization"
EXT_POSTBOX_CREATED = GW_EXT + "postbox-created"
EXT_MANUAL_REASON = GW_EXT + "manual-filing-reason"

# --------------------------------------------------------------------------- fixed codes

SOEP_SNOMED = {
    "S": ("255362007", "Subjective"),
    "O": ("260224007", "Objective"),
    "E": ("129265001", "Evaluation"),
    "P": ("129271007", "Plan"),
}
"""SOEP line type -> SNOMED code of zib SOAPReport.SOAPLineName (SOEPRegelNaamCodelijst)."""
SOEP_DISPLAY = {"S": "Subjectief", "O": "Objectief", "E": "Evaluatie", "P": "Plan"}
SOEP_FROM_SNOMED = {v[0]: k for k, v in SOEP_SNOMED.items()}

ADDRESS_TYPE = {
    "home": ("HP", "Primary Home"),
    "work": ("WP", "Work Place"),
    "temp": ("TMP", "Temporary Address"),
    "postal": ("PST", "Postal Address"),
}
"""Canonical ``Address.use`` -> zib AddressType (v3 AddressUse) code."""
ADDRESS_FROM_TYPE = {
    "HP": "home",
    "H": "home",
    "PHYS": "home",
    "WP": "work",
    "TMP": "temp",
    "HV": "temp",
    "PST": "postal",
}


# --------------------------------------------------------------------------- systems from tables.toml

ICPC = "http://hl7.org/fhir/sid/icpc-1-nl"
TABEL14 = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-14-contactwijze"
TABEL25 = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-25-gebruiksvoorschrift#aanvullend-numeriek"
TABEL45 = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-45-diagnostische-bepalingen"
TABEL69 = "https://referentiemodel.nhg.org/tabellen/nhg-tabel-69-soort-correspondentie"
THESAURUS40 = "urn:oid:2.16.840.1.113883.2.4.4.1.902.40"
THESAURUS122 = "urn:oid:2.16.840.1.113883.2.4.4.1.902.122"
ATC = "http://www.whocc.no/atc"
TABLE_OF_SYSTEM = {
    ICPC: "icpc",
    TABEL14: "tabel14",
    TABEL25: "tabel25",
    TABEL45: "tabel45",
    TABEL69: "tabel69",
    THESAURUS40: "thesaurus40",
    THESAURUS122: "thesaurus122",
    ATC: "atc",
}
"""System URI -> code table name; ``tests/test_fhir_mapping.py`` checks it against tables.toml."""

_OIDS = {
    BSN: "2.16.840.1.113883.2.4.6.3",
    AGB: "2.16.840.1.113883.2.4.6.1",
    UZI_PERSON: "2.16.528.1.1007.3.1",
    UZI_SYSTEM: "2.16.528.1.1007.3.2",
    URA: "2.16.528.1.1007.3.3",
    BIG: "2.16.528.1.1007.5.1",
    UZOVI: "2.16.840.1.113883.2.4.6.4",
    UZI_ROLE: "2.16.840.1.113883.2.4.15.111",
    JOURNAAL: "2.16.840.1.113883.2.4.4.32.2",
    LOINC: "2.16.840.1.113883.6.1",
    SNOMED: "2.16.840.1.113883.6.96",
}


@lru_cache(maxsize=1)
def _aliases() -> dict[str, str]:
    """Every accepted spelling of a system -> the URI we emit."""
    out: dict[str, str] = {}
    pairs = list(_OIDS.items()) + [(t.system, t.oid) for t in code_tables().tables.values()]
    for uri, oid in pairs:
        out[uri] = uri
        out["urn:oid:" + oid] = uri
        out[oid] = uri
    for uri in PRODUCT_SYSTEMS.values():
        out[uri] = uri
        out[uri[len("urn:oid:") :]] = uri
    return out


def system_uri(system: object) -> str | None:
    """The URI the gateway emits for ``system``: accepts the URI, ``urn:oid:<oid>`` and the bare OID.

    A system the gateway does not know is returned unchanged (``None`` for a missing or non-string one).
    """
    if not isinstance(system, str):
        return None
    return _aliases().get(system, system)


@lru_cache(maxsize=1)
def _displays() -> dict[str, dict[str, str]]:
    return {name: t.codes for name, t in code_tables().tables.items()}


def display(table: str, code: str | None) -> str | None:
    """The display of a code in the code tables (loaded once, at first use), if it is there."""
    return None if code is None else _displays()[table].get(code)
