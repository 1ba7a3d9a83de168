"""Practitioner[nl-core-HealthProfessional-Practitioner] + PractitionerRole[...-PractitionerRole] (§8).

=================  ==========================================================================
canonical          FHIR
=================  ==========================================================================
id                 Practitioner.identifier (system urn:his-gateway:id:professional)
agb                Practitioner.identifier (http://fhir.nl/fhir/NamingSystem/agb-z)
uzi                Practitioner.identifier (http://fhir.nl/fhir/NamingSystem/uzi-nr-pers)
big                Practitioner.identifier (http://fhir.nl/fhir/NamingSystem/big)
name               Practitioner.name (nl-core-NameInformation)
telecom            Practitioner.telecom
role               PractitionerRole.specialty (UZI role code, http://fhir.nl/fhir/NamingSystem/uzi-rolcode;
                   01.015 = huisarts)
organization_id    PractitionerRole.organization
=================  ==========================================================================

A PractitionerRole is written only when there is a role or an organisation to say; other resources refer
to the Practitioner (the author of a contact, the prescriber), which every nl-core profile allows.
"""

from __future__ import annotations

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir.common import (
    ReadContext,
    WriteContext,
    as_dict,
    as_list,
    code_in,
    code_value,
    local_identifier,
    meta,
    put,
    take,
)
from mappings.fhir.datatypes import contact_point, human_names, name_text, person_name, telecoms

KIND = "professional"
_NO_CONTEXT = WriteContext()
ROLE_DISPLAY = {"01.015": "Huisarts", "01.018": "Huisarts in opleiding"}


def to_fhir(p: m.HealthProfessional, ctx: WriteContext = _NO_CONTEXT) -> list[dict]:
    """The Practitioner (and, when there is a role or organisation, its PractitionerRole)."""
    ids = [local_identifier(KIND, p.id)]  # id
    if p.agb is not None:
        ids.append({"system": c.AGB, "value": p.agb})  # agb
    if p.uzi is not None:
        ids.append({"system": c.UZI_PERSON, "value": p.uzi})  # uzi
    if p.big is not None:
        big: dict = {"system": c.BIG}
        put(big, "value", p.big)  # big
        ids.append(big)
    pr: dict = {
        "resourceType": "Practitioner",
        "id": ctx.id("Practitioner", p.id),
        "meta": meta(c.P_PRACTITIONER),
        "identifier": ids,
    }
    if p.name is not None:
        pr["name"] = human_names(p.name)  # name
    if p.telecom:
        pr["telecom"] = [contact_point(t) for t in p.telecom]  # telecom
    if p.role is None and p.organization_id is None:
        return [pr]
    role: dict = {
        "resourceType": "PractitionerRole",
        "id": ctx.id("PractitionerRole", p.id),
        "meta": meta(c.P_PRACTITIONER_ROLE),
        "practitioner": ctx.ref("Practitioner", p.id),
    }
    if p.organization_id is not None:
        role["organization"] = ctx.ref("Organization", p.organization_id)  # organization_id
    if p.role is not None:
        role["specialty"] = [{"coding": [code_value(c.UZI_ROLE, p.role, ROLE_DISPLAY.get(p.role))]}]  # role
    return [pr, role]


def from_fhir(
    res: dict,
    ctx: ReadContext | None = None,
    where: str = "Practitioner",
    role: tuple[int, dict] | None = None,
    fallback_id: str = "prof",
) -> m.HealthProfessional | None:
    """The canonical professional of a Practitioner and (``role``: entry index and resource) its role."""
    ctx = ctx or ReadContext()
    pid = ctx.local_id(res, KIND, where, fallback_id)
    found: dict[str, str | None] = {c.AGB: None, c.UZI_PERSON: None, c.BIG: None}
    for k, ident in enumerate(as_list(res.get("identifier"))):
        ident = as_dict(ident)
        system = c.system_uri(ident.get("system"))
        if system in found:
            found[system] = take(ident, "value")
        elif system != c.LOCAL_ID + KIND:
            ctx.warning("FHIR-040", f"{where}.identifier[{k}]", f"identifier of system {system!r} not kept")
    org_id = role_code = None
    if role is not None:
        i, r = role
        at = ctx.at(i)
        if "organization" in r:
            org_id = ctx.local(r["organization"], f"{at}.organization", ("Organization",))
        for k, spec in enumerate(as_list(r.get("specialty"))):
            role_code = code_in(spec, (c.UZI_ROLE,))
            if role_code is not None:
                break
            ctx.warning("FHIR-024", f"{at}.specialty[{k}]", "specialty without a UZI role code not kept")
        ctx.used.add(i)
    try:
        return m.HealthProfessional(
            id=pid,
            name=person_name(res.get("name"), f"{where}.name", ctx),
            agb=found[c.AGB],
            uzi=found[c.UZI_PERSON],
            big=found[c.BIG],
            role=role_code,
            organization_id=org_id,
            telecom=telecoms(res.get("telecom"), f"{where}.telecom", ctx),
        )
    except ValueError as exc:
        ctx.error("FHIR-031", f"{where}.identifier", f"not a valid professional: {exc}")
        return None


def display(p: m.HealthProfessional) -> str:
    """How the professional is named in references and narrative."""
    if p.name is not None:
        return name_text(p.name)
    return f"AGB {p.agb}" if p.agb else f"UZI {p.uzi}" if p.uzi else f"BIG {p.big}"
