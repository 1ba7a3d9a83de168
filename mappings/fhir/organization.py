"""Organization[nl-core-HealthcareProvider-Organization]: the practice and other organisations (DOMAIN.md §8).

=================  ==========================================================================
canonical          FHIR Organization
=================  ==========================================================================
id                 identifier (system urn:his-gateway:id:organization)
agb                identifier (system http://fhir.nl/fhir/NamingSystem/agb-z)
ura                identifier (system http://fhir.nl/fhir/NamingSystem/ura)
name               name
address            address[0] (nl-core-AddressInformation)
telecom            telecom
=================  ==========================================================================

Which Organization is the practice: ``Patient.managingOrganization`` says (see :mod:`mappings.fhir.bundle`).
"""

from __future__ import annotations

from mappings import model as m
from mappings.fhir import codes as c
from mappings.fhir.common import ReadContext, WriteContext, as_dict, as_list, as_str, local_identifier, meta
from mappings.fhir.datatypes import address, canonical_address, contact_point, telecoms

KIND = "organization"
_NO_CONTEXT = WriteContext()


def to_fhir(o: m.Organization, ctx: WriteContext = _NO_CONTEXT) -> dict:
    """The nl-core-HealthcareProvider-Organization of a canonical organisation."""
    ids = [local_identifier(KIND, o.id)]  # id
    if o.agb is not None:
        ids.append({"system": c.AGB, "value": o.agb})  # agb
    if o.ura is not None:
        ids.append({"system": c.URA, "value": o.ura})  # ura
    res: dict = {
        "resourceType": "Organization",
        "id": ctx.id("Organization", o.id),
        "meta": meta(c.P_ORGANIZATION),
        "identifier": ids,
    }
    if o.name:
        res["name"] = o.name  # name
    if o.telecom:
        res["telecom"] = [contact_point(t) for t in o.telecom]  # telecom
    if o.address is not None:
        res["address"] = [address(o.address)]  # address
    return res


def from_fhir(
    res: dict, ctx: ReadContext | None = None, where: str = "Organization", fallback_id: str = "org"
) -> m.Organization | None:
    """The canonical organisation of an Organization."""
    ctx = ctx or ReadContext()
    oid = ctx.local_id(res, KIND, where, fallback_id)
    agb = ura = None
    for k, ident in enumerate(as_list(res.get("identifier"))):
        ident = as_dict(ident)
        system = c.system_uri(ident.get("system"))
        if system == c.AGB:
            agb = as_str(ident.get("value"))
        elif system == c.URA:
            ura = as_str(ident.get("value"))
        elif system != c.LOCAL_ID + KIND:
            ctx.warning("FHIR-040", f"{where}.identifier[{k}]", f"identifier of system {system!r} not kept")
    addresses = as_list(res.get("address"))
    if len(addresses) > 1:
        ctx.warning("FHIR-024", f"{where}.address[1]", "only the first address is kept")
    try:
        return m.Organization(
            id=oid,
            name=as_str(res.get("name")) or "",
            agb=agb,
            ura=ura,
            address=canonical_address(addresses[0], f"{where}.address[0]", ctx) if addresses else None,
            telecom=telecoms(res.get("telecom"), f"{where}.telecom", ctx),
        )
    except ValueError as exc:
        ctx.error("FHIR-031", f"{where}.identifier", f"not a valid organisation: {exc}")
        return None
