"""Patient[nl-core-Patient]; health insurance as Coverage[nl-core-Payer.InsuranceCompany] (DOMAIN.md §7, §9).

============================  ======================================================================
canonical Patient             FHIR
============================  ======================================================================
bsn                           Patient.identifier (system http://fhir.nl/fhir/NamingSystem/bsn)
name                          Patient.name (nl-core-NameInformation, see :mod:`mappings.fhir.datatypes`)
gender                        Patient.gender (same codes)
birth_date                    Patient.birthDate
address                       Patient.address[0] (nl-core-AddressInformation)
telecom                       Patient.telecom
deceased_date                 Patient.deceasedDateTime (a date)
deregistered_date             extension urn:his-gateway:fhir:extension:deregistered-date (valueDate)
insurance                     Coverage: payor = logical reference (UZOVI identifier, insurer name as
                              display), subscriberId = policy number, beneficiary = the Patient
(dossier) practice, gp        Patient.managingOrganization, Patient.generalPractitioner
============================  ======================================================================

Insurance is a Coverage resource, not an extension: zib2020 models it as nl-core-Payer.InsuranceCompany
(Coverage), so a receiving system finds it where it looks. Its payor is a *logical* reference (an
identifier, no resource): the insurer is known only by UZOVI and name, and a Payer-Organization resource
would hold nothing more. The deregistration date (the patient left the practice) has no element in R4 or
nl-core, hence the gateway's extension.
"""

from __future__ import annotations

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    as_str,
    ext_value,
    fdate,
    meta,
    pdate,
    put,
    take,
)
from mappings.fhir.datatypes import (
    address,
    canonical_address,
    contact_point,
    human_names,
    name_text,
    person_name,
)
from mappings.fhir.datatypes import telecoms as read_telecoms

KEY = "patient"
"""The key of the dossier's one Patient in :meth:`WriteContext.id`."""
_NO_CONTEXT = WriteContext()


def to_fhir(p: m.Patient, ctx: WriteContext = _NO_CONTEXT, gp: dict | None = None) -> dict:
    """The nl-core-Patient of the canonical patient (``gp``: Reference to the general practitioner)."""
    res: dict = {"resourceType": "Patient", "id": ctx.id("Patient", KEY), "meta": meta(c.P_PATIENT)}
    if p.deregistered_date is not None:
        res["extension"] = [
            {"url": c.EXT_DEREGISTERED, "valueDate": fdate(p.deregistered_date)}
        ]  # deregistered_date
    if p.bsn is not None:
        res["identifier"] = [{"use": "official", "system": c.BSN, "value": p.bsn}]  # bsn
    res["name"] = human_names(p.name)  # name
    if p.telecom:
        res["telecom"] = [contact_point(t) for t in p.telecom]  # telecom
    res["gender"] = p.gender  # gender
    res["birthDate"] = fdate(p.birth_date)  # birth_date
    if p.deceased_date is not None:
        res["deceasedDateTime"] = fdate(p.deceased_date)  # deceased_date
    if p.address is not None:
        res["address"] = [address(p.address)]  # address
    if gp is not None:
        res["generalPractitioner"] = [gp]  # Dossier.gp
    if ctx.practice is not None:
        res["managingOrganization"] = ctx.practice  # Dossier.practice
    return res


def coverage_to_fhir(i: m.Insurance, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The Coverage (nl-core-Payer.InsuranceCompany) of the patient's health insurance."""
    res: dict = {
        "resourceType": "Coverage",
        "id": ctx.id("Coverage", KEY),
        "meta": meta(c.P_COVERAGE),
        "status": "active",
    }
    put(res, "subscriberId", i.policy_number)  # policy_number
    res["beneficiary"] = ctx.patient or {"display": "patient"}  # the Patient
    payor: dict = {"type": "Organization", "identifier": {"system": c.UZOVI, "value": i.uzovi}}  # uzovi
    put(payor, "display", i.insurer_name)  # insurer_name
    res["payor"] = [payor]
    return res


def from_fhir(
    res: dict, ctx: ReadContext | None = None, where: str = "Patient", insurance: m.Insurance | None = None
) -> m.Patient | None:
    """The canonical patient of an nl-core-Patient (``None`` after reporting why it cannot be one)."""
    ctx = ctx or ReadContext()
    bsn = None
    for k, ident in enumerate(as_list(res.get("identifier"))):
        ident = as_dict(ident)
        if c.system_uri(ident.get("system")) != c.BSN:
            ctx.warning(
                "FHIR-040",
                f"{where}.identifier[{k}]",
                f"identifier of system {as_str(ident.get('system'))!r} not kept (only the BSN is)",
            )
            continue
        value = ident.get("value")
        if not isinstance(value, str) or not m.bsn_is_valid(value):
            ctx.error(
                "FHIR-031",
                f"{where}.identifier[{k}].value",
                f"BSN {value!r} is not 9 digits passing the 11-test",
            )
        elif bsn is not None and bsn != value:
            ctx.error("FHIR-031", f"{where}.identifier[{k}].value", f"a second, different BSN {value!r}")
        else:
            bsn = value
    name = person_name(res.get("name"), f"{where}.name", ctx)
    if name is None and not any(isinstance(x, dict) for x in as_list(res.get("name"))):
        ctx.error("FHIR-020", f"{where}.name", "the patient has no name")
    birth = pdate(res.get("birthDate"), f"{where}.birthDate", ctx)
    if birth is None and res.get("birthDate") is None:  # absent, or an explicit null
        ctx.error("FHIR-020", f"{where}.birthDate", "the patient has no birth date")
    gender = res.get("gender", "unknown")
    if gender not in ("male", "female", "other", "unknown"):
        ctx.error("FHIR-021", f"{where}.gender", f"gender {gender!r} is not male, female, other or unknown")
        gender = "unknown"
    deceased = None
    if "deceasedDateTime" in res:
        deceased = pdate(res["deceasedDateTime"], f"{where}.deceasedDateTime", ctx)
    elif res.get("deceasedBoolean") is True:
        ctx.warning("FHIR-024", f"{where}.deceasedBoolean", "deceased without a date: not kept")
    addresses = as_list(res.get("address"))
    if len(addresses) > 1:
        ctx.warning("FHIR-024", f"{where}.address[1]", "only the first address is kept")
    addr = canonical_address(addresses[0], f"{where}.address[0]", ctx) if addresses else None
    dereg = pdate(ext_value(res, c.EXT_DEREGISTERED, "valueDate"), f"{where}.extension", ctx)
    if name is None or birth is None:
        return None
    try:
        return m.Patient(
            bsn=bsn,
            name=name,
            birth_date=birth,
            gender=gender,
            address=addr,
            telecom=read_telecoms(res.get("telecom"), f"{where}.telecom", ctx),
            insurance=insurance,
            deceased_date=deceased,
            deregistered_date=dereg,
        )
    except ValueError as exc:
        ctx.error("FHIR-030", where, f"not a valid patient: {exc}")
        return None


def coverage_from_fhir(
    res: dict, ctx: ReadContext | None = None, where: str = "Coverage"
) -> m.Insurance | None:
    """The canonical insurance of a Coverage: the first payor with a UZOVI identifier."""
    ctx = ctx or ReadContext()
    for k, payor in enumerate(as_list(res.get("payor"))):
        ident = as_dict(as_dict(payor).get("identifier"))
        if c.system_uri(ident.get("system")) != c.UZOVI:
            continue
        uzovi = ident.get("value")
        try:
            return m.Insurance(
                uzovi=uzovi if isinstance(uzovi, str) else "",
                policy_number=take(res, "subscriberId"),
                insurer_name=take(payor, "display"),
            )
        except ValueError as exc:
            ctx.error("FHIR-031", f"{where}.payor[{k}].identifier.value", str(exc))
            return None
    ctx.warning("FHIR-024", f"{where}.payor", "no payor with a UZOVI identifier: the insurance is not kept")
    return None


def display(p: m.Patient) -> str:
    """How the patient is named in references and narrative."""
    return name_text(p.name)
