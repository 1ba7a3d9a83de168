"""Shared set-up of the consult tests (issue 6): a hospital directory, specialists and a HIS export.

Everything goes through the HTTP API of an in-process gateway (``tests/conftest.py`` ``Service``): the
hospital client ``hospital-h`` (URA 90000009) registers its Organization, specialisms (HealthcareService)
and specialists (PractitionerRole); practice ``practice-a`` (AGB 01000001) sends consults with an export
made from the real NHG professional summary, its practice set to practice-a and an insurer added.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import msgspec

from gateway.consult.calendar import FixedClock, load_config
from gateway.consult.workflow import Env

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT / "tests" / "data"  # seeds/ and external/ as the demo reads them (tests/data/README.md)
URA = "http://fhir.nl/fhir/NamingSystem/ura"
UZOVI = "3311"
T0 = dt.datetime(2026, 7, 6, 8, 0, tzinfo=dt.UTC)  # Monday 10:00 in Amsterdam, 2026Q3


@dataclass
class Directory:
    hospital: str
    specialisms: dict[str, str]  # name -> HealthcareService id
    specialists: dict[str, str]  # name -> PractitionerRole id


def ok(r, status: int = 200) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    return r.json()


def param(name: str, value) -> dict:
    if isinstance(value, bool):
        return {"name": name, "valueBoolean": value}
    if isinstance(value, dict):
        return {"name": name, "valueReference": value}
    return {"name": name, "valueString": value}


def parameters(*items: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(items)}


def install_clock(svc, at: dt.datetime = T0) -> FixedClock:
    clock = FixedClock(at)
    svc.app.state.gateway.consult_env = Env(clock, load_config())
    return clock


def hospital_directory(
    svc,
    as_: str = "hospital-h",
    ura: str = "90000009",
    name: str = "Ziekenhuis H",
    specialisms=("Cardiologie", "Neurologie", "Cardiogenetica"),
) -> Directory:
    org = ok(
        svc.request(
            "POST",
            "/Organization",
            as_=as_,
            json={
                "resourceType": "Organization",
                "identifier": [{"system": URA, "value": ura}],
                "name": name,
                "active": True,
            },
        ),
        201,
    )
    specs = {}
    for s in specialisms:
        hs = ok(
            svc.request(
                "POST",
                "/HealthcareService",
                as_=as_,
                json={
                    "resourceType": "HealthcareService",
                    "active": True,
                    "name": s,
                    "providedBy": {"reference": f"Organization/{org['id']}"},
                    "type": [{"text": "Digitale consultatie"}],
                    "specialty": [{"text": s}],
                },
            ),
            201,
        )
        specs[s] = hs["id"]
    people = {}
    for person, spec in (
        ("dr. Hart", "Cardiologie"),
        ("dr. Klop", "Cardiologie"),
        ("dr. Zenuw", "Neurologie"),
    ):
        role = ok(
            svc.request(
                "POST",
                "/PractitionerRole",
                as_=as_,
                json={
                    "resourceType": "PractitionerRole",
                    "active": True,
                    "practitioner": {"display": person},
                    "organization": {"reference": f"Organization/{org['id']}"},
                    "healthcareService": [{"reference": f"HealthcareService/{specs[spec]}"}],
                    "specialty": [{"text": spec}],
                },
            ),
            201,
        )
        people[person] = role["id"]
    return Directory(org["id"], specs, people)


def export_bytes(agb: str = "01000001", fmt: str = "medicom", uzovi: str | None = UZOVI) -> bytes:
    """The real NHG professional summary as a HIS export of practice ``agb`` (with an insurer)."""
    from adapters.base import get_format
    from gateway.demo import read_ps
    from mappings import model as m

    d = read_ps(SHARED)
    assert d is not None
    patient = d.patient
    if uzovi:
        patient = msgspec.structs.replace(patient, insurance=m.Insurance(uzovi=uzovi, policy_number="123"))
    d = msgspec.structs.replace(
        d, practice=msgspec.structs.replace(d.practice, agb=agb, ura=None), patient=patient
    )
    return get_format(fmt).write(d)


def send(
    svc,
    directory: Directory,
    *,
    as_: str = "practice-a",
    specialism: str = "Cardiologie",
    specialist: str | None = None,
    episodes=("532",),
    export: bytes | None = None,
    fmt: str = "medicom",
    extra=(),
    question: str = "Graag advies over de behandeling.",
) -> dict:
    items = [param("question", question)]
    if specialist:
        items.append(param("specialist", f"PractitionerRole/{directory.specialists[specialist]}"))
    else:
        items.append(param("specialism", f"HealthcareService/{directory.specialisms[specialism]}"))
    data = export if export is not None else export_bytes()
    items += [
        {"name": "export", "valueBase64Binary": base64.b64encode(data).decode()},
        {"name": "format", "valueCode": fmt},
        {"name": "asOf", "valueDate": "2017-06-21"},
    ]
    items += [param("episode", e) for e in episodes]
    items += list(extra)
    return svc.request("POST", "/Task/$send-consult", as_=as_, json=parameters(*items))


def act(
    svc,
    task_id: str,
    op: str,
    *,
    as_: str = "hospital-h",
    specialist: str | None = None,
    directory: Directory | None = None,
    **values,
):
    items = []
    if specialist and directory:
        items.append(param("specialist", f"PractitionerRole/{directory.specialists[specialist]}"))
    items += [param(k, v) for k, v in values.items()]
    return svc.request("POST", f"/Task/{task_id}/${op}", as_=as_, json=parameters(*items))


def state_of(task: dict) -> str:
    return task["businessStatus"]["coding"][0]["code"]


def close_declared(svc, task_id: str, directory: Directory, specialist: str = "dr. Hart"):
    """The specialist closes the consult with a declaration, both rules met (DOMAIN.md §3)."""
    return act(
        svc,
        task_id,
        "close",
        specialist=specialist,
        directory=directory,
        declaration=True,
        newTreatmentQuestion=True,
        noOpenDbc=True,
    )


def family_form(svc, as_: str = "practice-a") -> dict:
    """The clinical genetics family form (familieformulier) as a DocumentReference of the practice."""
    form = {
        "resourceType": "DocumentReference",
        "status": "current",
        "description": "familieformulier",
        "content": [{"attachment": {"contentType": "application/pdf", "data": "JVBERi0xLjQK"}}],
    }
    return ok(svc.request("POST", "/DocumentReference", as_=as_, json=form), 201)
