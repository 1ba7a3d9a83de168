"""Tenancy (issue 5, acceptance 4): a tenant never reads, finds or changes another tenant's resources --
through read, vread, search, chained search, _include, _revinclude, _history, conditional operations,
Bundles and the audit log. Another tenant's resource answers exactly like one that never existed.
Runs on SQLite and on PostgreSQL: the tenant filter is SQL in both."""

from __future__ import annotations

import pytest

from gateway.fhir.examples import minimal


@pytest.fixture
def service(both_service):
    """The gateway in-process on SQLite, then on a real PostgreSQL (tests/conftest.py)."""
    return both_service


BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
URA = "http://fhir.nl/fhir/NamingSystem/ura"


def _patient(bsn: str, agb: str) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": BSN, "value": bsn}],
        "name": [{"family": "P"}],
        "managingOrganization": {"identifier": {"system": AGB, "value": agb}},
    }


@pytest.fixture
def world(service):
    """Practice A and practice B, each with a patient and an observation."""
    pa = service.request("POST", "/Patient", as_="practice-a", json=_patient("123456782", "01000001")).json()
    oa = service.request(
        "POST",
        "/Observation",
        as_="practice-a",
        json=minimal("Observation", subject={"reference": f"Patient/{pa['id']}"}),
    ).json()
    pb = service.request("POST", "/Patient", as_="practice-b", json=_patient("111222333", "01000002")).json()
    ob = service.request(
        "POST",
        "/Observation",
        as_="practice-b",
        json=minimal("Observation", subject={"reference": f"Patient/{pb['id']}"}),
    ).json()
    return {"pa": pa, "oa": oa, "pb": pb, "ob": ob}


def _ids(r) -> set[str]:
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", [])}


def _is_unknown(r, rtype: str, rid: str) -> None:
    assert r.status_code == 404, r.text
    issue = r.json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "API-011"
    assert issue["details"]["text"] == f"{rtype}/{rid} is not known"  # word for word as for a missing id


def test_read_and_vread(service, world):
    pa = world["pa"]["id"]
    assert service.request("GET", f"/Patient/{pa}", as_="practice-a").status_code == 200
    _is_unknown(service.request("GET", f"/Patient/{pa}", as_="practice-b"), "Patient", pa)
    _is_unknown(
        service.request("GET", "/Patient/does-not-exist", as_="practice-b"), "Patient", "does-not-exist"
    )
    _is_unknown(service.request("GET", f"/Patient/{pa}/_history/1", as_="practice-b"), "Patient", pa)
    _is_unknown(
        service.request("GET", f"/Observation/{world['oa']['id']}", as_="hospital-h"),
        "Observation",
        world["oa"]["id"],
    )


def test_search_and_chains(service, world):
    pa, pb = world["pa"]["id"], world["pb"]["id"]
    assert _ids(service.request("GET", "/Patient", as_="practice-b")) == {pb}
    assert _ids(service.request("GET", f"/Patient?identifier={BSN}|123456782", as_="practice-b")) == set()
    assert _ids(service.request("GET", f"/Patient?_id={pa}", as_="practice-b")) == set()
    assert service.request("GET", "/Patient?_summary=count", as_="practice-b").json()["total"] == 1
    assert _ids(service.request("GET", "/Observation", as_="practice-b")) == {world["ob"]["id"]}
    # B writes about A's patient: B sees its own observation, but never A's patient through it
    mine = service.request(
        "POST",
        "/Observation",
        as_="practice-b",
        json=minimal("Observation", subject={"reference": f"Patient/{pa}"}),
    ).json()
    assert _ids(service.request("GET", f"/Observation?patient={pa}", as_="practice-b")) == {mine["id"]}
    assert (
        _ids(service.request("GET", f"/Observation?patient.identifier={BSN}|123456782", as_="practice-b"))
        == set()
    )
    assert _ids(
        service.request("GET", f"/Observation?patient.identifier={BSN}|123456782", as_="practice-a")
    ) == {world["oa"]["id"]}
    assert (
        _ids(service.request("GET", "/Observation?subject:Patient.identifier=123456782", as_="practice-b"))
        == set()
    )


def test_include_and_revinclude(service, world):
    pa = world["pa"]["id"]
    mine = service.request(
        "POST",
        "/Observation",
        as_="practice-b",
        json=minimal("Observation", subject={"reference": f"Patient/{pa}"}),
    ).json()
    got = service.request(
        "GET", f"/Observation?_id={mine['id']}&_include=Observation:subject", as_="practice-b"
    )
    assert _ids(got) == {mine["id"]}  # the match, without A's patient
    rev = service.request("GET", f"/Patient?_id={pa}&_revinclude=Observation:subject", as_="practice-a")
    assert _ids(rev) == {pa, world["oa"]["id"]}  # not B's observation about A's patient


def test_history(service, world):
    pa = world["pa"]["id"]
    _is_unknown(service.request("GET", f"/Patient/{pa}/_history", as_="practice-b"), "Patient", pa)
    hist = service.request("GET", "/Patient/_history", as_="practice-b").json()
    assert {e["fullUrl"].rsplit("/", 1)[1] for e in hist["entry"]} == {world["pb"]["id"]}
    assert hist["total"] == 1


def test_changes(service, world):
    pa = world["pa"]["id"]
    body = {**_patient("123456782", "01000001"), "id": pa, "gender": "male"}
    _is_unknown(service.request("PUT", f"/Patient/{pa}", as_="practice-b", json=body), "Patient", pa)
    _is_unknown(service.request("DELETE", f"/Patient/{pa}", as_="practice-b"), "Patient", pa)
    assert service.request("GET", f"/Patient/{pa}", as_="practice-a").json()["meta"]["versionId"] == "1"
    # deleted by its owner, it stays unknown to others (not 410)
    service.request("DELETE", f"/Observation/{world['oa']['id']}", as_="practice-a")
    _is_unknown(
        service.request("GET", f"/Observation/{world['oa']['id']}", as_="practice-b"),
        "Observation",
        world["oa"]["id"],
    )


def test_conditional_operations(service, world):
    pa = world["pa"]["id"]
    h = {"If-None-Exist": f"identifier={BSN}|123456782"}
    r = service.request(
        "POST", "/Patient", as_="practice-b", json=_patient("123456782", "01000002"), headers=h
    )
    assert r.status_code == 201 and r.json()["id"] != pa  # B's own, not A's
    twin = r.json()["id"]
    r = service.request("PUT", f"/Patient?_id={pa}", as_="practice-b", json=_patient("123456782", "01000002"))
    assert r.status_code == 201 and r.json()["id"] not in (pa, twin)
    assert service.request("DELETE", f"/Patient?_id={pa}", as_="practice-b").status_code == 204
    assert service.request("GET", f"/Patient/{pa}", as_="practice-a").json()["meta"]["versionId"] == "1"
    r = service.request(
        "PUT",
        f"/Patient?identifier={BSN}|123456782",
        as_="practice-a",
        json={**_patient("123456782", "01000001"), "gender": "female"},
    )
    assert r.status_code == 200 and r.json()["id"] == pa  # A's criteria see only A's patient


def test_bundles(service, world):
    pa = world["pa"]["id"]
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "GET", "url": f"Patient/{pa}"}}],
    }
    assert service.request("POST", "/", as_="practice-b", json=tx).status_code == 404
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{pa}"}},
            {"request": {"method": "GET", "url": f"Patient?identifier={BSN}|123456782"}},
            {"request": {"method": "DELETE", "url": f"Patient/{pa}"}},
        ],
    }
    out = service.request("POST", "/", as_="practice-b", json=batch).json()
    assert [e["response"]["status"] for e in out["entry"]] == ["404", "200", "404"]
    assert out["entry"][1]["resource"]["total"] == 0


def test_directory_is_shared_but_only_its_owner_changes_it(service):
    org = service.request(
        "POST",
        "/Organization",
        as_="hospital-h",
        json={
            "resourceType": "Organization",
            "name": "Ziekenhuis H",
            "identifier": [{"system": URA, "value": "90000009"}],
        },
    ).json()
    hs = service.request(
        "POST",
        "/HealthcareService",
        as_="hospital-h",
        json={
            "resourceType": "HealthcareService",
            "name": "Cardiologie",
            "providedBy": {"reference": f"Organization/{org['id']}"},
        },
    ).json()
    assert service.request("GET", f"/Organization/{org['id']}", as_="practice-a").status_code == 200
    assert _ids(service.request("GET", f"/HealthcareService?organization={org['id']}", as_="practice-a")) == {
        hs["id"]
    }
    r = service.request("PUT", f"/Organization/{org['id']}", as_="practice-a", json={**org, "name": "Mine"})
    assert r.status_code == 403
    assert service.request("DELETE", f"/HealthcareService/{hs['id']}", as_="practice-a").status_code == 403
    assert (
        service.request(
            "PUT", f"/Organization/{org['id']}", as_="hospital-h", json={**org, "name": "Ziekenhuis H."}
        ).status_code
        == 200
    )


def test_a_referral_shares_the_patient_with_the_hospital(service, world):
    pa = world["pa"]["id"]
    performer = {"identifier": {"system": URA, "value": "90000009"}}
    _is_unknown(service.request("GET", f"/Patient/{pa}", as_="hospital-h"), "Patient", pa)
    # a stranger cannot share what it does not take part in
    service.request(
        "POST",
        "/ServiceRequest",
        as_="practice-b",
        json=minimal("ServiceRequest", subject={"reference": f"Patient/{pa}"}, performer=[performer]),
    )
    _is_unknown(service.request("GET", f"/Patient/{pa}", as_="hospital-h"), "Patient", pa)
    sr = service.request(
        "POST",
        "/ServiceRequest",
        as_="practice-a",
        json=minimal("ServiceRequest", subject={"reference": f"Patient/{pa}"}, performer=[performer]),
    ).json()
    assert service.request("GET", f"/ServiceRequest/{sr['id']}", as_="hospital-h").status_code == 200
    assert service.request("GET", f"/Patient/{pa}", as_="hospital-h").status_code == 200
    assert service.request("GET", f"/Observation/{world['oa']['id']}", as_="hospital-h").status_code == 404
    incl = service.request(
        "GET", f"/ServiceRequest?_id={sr['id']}&_include=ServiceRequest:subject", as_="hospital-h"
    )
    assert _ids(incl) == {sr["id"], pa}


def test_audit_log_is_per_organisation(service, world):
    service.request("GET", f"/Patient/{world['pb']['id']}", as_="practice-b")
    events = service.request("GET", "/AuditEvent?_count=500", as_="auditor-a").json()
    orgs = {
        a["who"]["identifier"]["value"]
        for e in events["entry"]
        for a in e["resource"]["agent"]
        if not a["requestor"]
    }
    assert orgs == {"01000001"}
    assert events["total"] >= 2
