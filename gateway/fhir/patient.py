"""A minimal nl-core-Patient of a canonical patient: what the demo and the consult intake store when the
FHIR mappings (``mappings/fhir/patient.py``) offer no Patient for a dossier (nl-core-Patient 2020;
initials as given names qualified ``IN``, nl-core-NameInformation).
"""

from __future__ import annotations

from mappings import model as m

BSN_SYSTEM = "http://fhir.nl/fhir/NamingSystem/bsn"
INITIALS_QUALIFIER = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier"


def patient_fhir(p: m.Patient, org_ref: str) -> dict:
    """A minimal nl-core-Patient of the canonical patient (used when mappings.fhir offers none)."""
    name: dict = {"use": "official"}
    family = " ".join(x for x in (p.name.prefix, p.name.family) if x)
    if family:
        name["family"] = family
    if p.name.given:
        name["given"] = p.name.given.split()
    elif p.name.initials:  # initials are given names qualified IN (nl-core-NameInformation)
        name["given"] = [p.name.initials]
        name["_given"] = [{"extension": [{"url": INITIALS_QUALIFIER, "valueCode": "IN"}]}]
    res: dict = {
        "resourceType": "Patient",
        "identifier": [{"system": BSN_SYSTEM, "value": p.bsn}] if p.bsn else [],
        "name": [name],
        "gender": p.gender,
        "birthDate": p.birth_date.isoformat(),
        "managingOrganization": {"reference": org_ref},
    }
    if p.address:
        a = p.address
        addr = {
            k: v
            for k, v in {
                "use": a.use,
                "city": a.city,
                "postalCode": a.postal_code,
                "country": a.country,
                "line": [" ".join(x for x in (a.street, a.house_number) if x)] if a.street else None,
            }.items()
            if v
        }
        if addr:
            res["address"] = [addr]
    if p.telecom:
        res["telecom"] = [
            {k: v for k, v in {"system": t.system, "value": t.value, "use": t.use}.items() if v}
            for t in p.telecom
        ]
    return {k: v for k, v in res.items() if v}
