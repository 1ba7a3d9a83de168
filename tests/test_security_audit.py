"""Security regression (issue 14): an audit trail that proves itself, and every route that returns patient
data leaves an audit record naming the patient, found by the owning practice's privacy officer."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import func, select, text

from gateway.api.routes import ROUTES
from gateway.fhir.examples import minimal
from gateway.schema import audit_log, audit_patient
from gateway.store import patient_refs
from tests.test_consult_support import hospital_directory, install_clock, ok, param, parameters, send

BSN = "http://fhir.nl/fhir/NamingSystem/bsn"


def _verify(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify", "--db", url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _patient_rows(service) -> list[tuple[int, str]]:
    with service.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(audit_patient).order_by(audit_patient.c.seq))]


def _fill(service) -> tuple[str, str]:
    a = ok(service.request("POST", "/Patient", json=minimal("Patient")), 201)["id"]
    b = ok(service.request("POST", "/Patient", json=minimal("Patient")), 201)["id"]
    for pid in (a, b, a):
        ok(service.request("GET", f"/Patient/{pid}"))
    return a, b


def _around_triggers(service, sql: str, **params) -> None:
    with service.engine.begin() as conn:  # someone with file access goes around the triggers
        for t in ("audit_patient_no_update", "audit_patient_no_delete"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {t}"))
        conn.execute(text(sql), params)


@pytest.mark.parametrize("tamper", ["delete", "insert", "re-point", "insert-orphan"])
def test_audit_verify_detects_a_tampered_patient_index(service, tamper):
    """Issue 14 #3: the privacy officer's `AuditEvent?patient=` relies on audit_patient; deleting, adding
    or re-pointing a row there used to pass verification."""
    a, b = _fill(service)
    url = service.settings.db_url
    assert _verify(url).returncode == 0
    seq = next(s for s, p in _patient_rows(service) if p == f"Patient/{a}" and s > 2)
    if tamper == "delete":
        _around_triggers(service, "DELETE FROM audit_patient WHERE seq = :s", s=seq)
        code, named = "AUD-006", f"Patient/{a}"
    elif tamper == "insert":
        _around_triggers(service, "INSERT INTO audit_patient VALUES (:s, :p)", s=seq, p=f"Patient/{b}")
        code, named = "AUD-007", f"Patient/{b}"
    elif tamper == "re-point":
        _around_triggers(
            service, "UPDATE audit_patient SET patient = :p WHERE seq = :s", s=seq, p=f"Patient/{b}"
        )
        code, named = "AUD-008", f"Patient/{b}"
    else:
        seq = 10_000
        _around_triggers(service, "INSERT INTO audit_patient VALUES (:s, :p)", s=seq, p=f"Patient/{b}")
        code, named = "AUD-007", f"Patient/{b}"
    r = _verify(url)
    assert r.returncode == 1, r.stdout
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"error {code} audit_patient seq {seq}:") and named in first, r.stderr


# ----------------------------------------------------------------------- every route that returns patients


def _patients_in(obj, base: str) -> set[str]:
    """Every ``Patient/<id>`` the JSON returned to the client is about (resources, Bundles, Parameters)."""
    found: set[str] = set()
    if isinstance(obj, dict):
        if isinstance(obj.get("resourceType"), str):
            found |= set(patient_refs(obj, base))
        for v in obj.values():
            found |= _patients_in(v, base)
    elif isinstance(obj, list):
        for v in obj:
            found |= _patients_in(v, base)
    return found


def _audited_patients(service, after: int) -> set[str]:
    with service.engine.connect() as conn:
        return {
            r[0] for r in conn.execute(select(audit_patient.c.patient).where(audit_patient.c.seq > after))
        }


def _last_seq(service) -> int:
    with service.engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.max(audit_log.c.seq), 0))).scalar_one()


NO_PATIENT_DATA = {
    ("GET", "/metadata"),
    ("GET", "/.well-known/smart-configuration"),
    ("GET", "/health"),
    ("POST", "/auth/token"),
    ("GET", "/openapi.json"),
    ("POST", "/ChargeItem/$declarations"),  # totals per insurer and consult ids: checked, may hold none
    ("GET", "/outbox"),
    ("GET", "/outbox/{id}"),
}


@pytest.fixture
def officers(tmp_path, monkeypatch):
    from tests import conftest

    monkeypatch.setitem(
        conftest.TEST_CLIENTS,
        "auditor-b",
        ("practice", "01000002", "90000002", "Huisartsenpraktijk B", ("system/AuditEvent.read",), "ES384"),
    )
    s = conftest.Service(tmp_path, f"sqlite:///{tmp_path / 'gw.db'}").start()
    try:
        yield s
    finally:
        s.close()


def test_every_route_returning_patient_data_audits_the_patient(officers):
    """Issue 14 #2: `Observation/{id}/_history` and `Observation/_history` were audited without the
    patient. Every route of the route table is called; whatever patients the answer holds (resources,
    Bundle entries, `_include`s, operation results) must be in the request's audit records, and the owning
    practice's privacy officer finds each of those records -- also the hospital's."""
    svc = officers
    base = svc.settings.fhir_base
    install_clock(svc)
    d = hospital_directory(svc)
    task = ok(send(svc, d), 201)
    tid, pref = task["id"], task["for"]["reference"]
    pid = pref.split("/")[1]
    obs = minimal("Observation", subject={"reference": pref}, identifier=[{"system": "urn:t", "value": "o1"}])
    oid = ok(svc.request("POST", "/Observation", json=obs), 201)["id"]
    plain = {k: v for k, v in obs.items() if k != "identifier"}
    doomed = ok(svc.request("POST", "/Observation", json=plain), 201)["id"]
    cond_doomed = {**obs, "identifier": [{"system": "urn:t", "value": "gone"}]}
    ok(svc.request("POST", "/Observation", json=cond_doomed), 201)
    other = ok(send(svc, d), 201)["id"]
    role = f"PractitionerRole/{d.specialists['dr. Hart']}"
    spec = param("specialist", {"reference": role})

    calls: dict[tuple[str, str], list[tuple[str, str, str, dict | str | None]]] = {
        ("GET", "/{type}/_history"): [
            ("practice-a", "GET", "/Observation/_history", None),
            ("practice-a", "GET", "/Patient/_history", None),
            ("hospital-h", "GET", "/Task/_history", None),
        ],
        ("GET", "/{type}/{id}"): [
            ("practice-a", "GET", f"/Observation/{oid}", None),
            ("hospital-h", "GET", f"/{pref}", None),
            ("hospital-h", "GET", f"/Task/{tid}", None),
        ],
        ("GET", "/{type}"): [
            ("practice-a", "GET", f"/Observation?subject={pref}", None),
            ("practice-a", "GET", "/Observation?_include=Observation:subject", None),
            ("practice-a", "GET", "/Patient?_revinclude=Observation:subject", None),
            ("hospital-h", "GET", "/Task?_include=Task:patient", None),
        ],
        ("POST", "/{type}/_search"): [  # a str body: a form
            ("practice-a", "POST", "/Observation/_search", f"subject={pref}&_include=Observation:subject"),
            ("hospital-h", "POST", "/Patient/_search", "_revinclude=Observation:subject"),
        ],
        ("POST", "/{type}"): [("practice-a", "POST", "/Observation", plain)],
        ("PUT", "/{type}"): [
            ("practice-a", "PUT", "/Observation?identifier=urn:t|o1", {**obs, "status": "amended"})
        ],
        ("DELETE", "/{type}"): [("practice-a", "DELETE", "/Observation?identifier=urn:t|gone", None)],
        ("POST", "/{type}/$validate"): [("practice-a", "POST", "/Observation/$validate", obs)],
        ("PUT", "/{type}/{id}"): [
            ("practice-a", "PUT", f"/Observation/{oid}", {**obs, "id": oid, "status": "corrected"})
        ],
        ("DELETE", "/{type}/{id}"): [("practice-a", "DELETE", f"/Observation/{doomed}", None)],
        ("GET", "/{type}/{id}/_history"): [("practice-a", "GET", f"/Observation/{oid}/_history", None)],
        ("GET", "/{type}/{id}/_history/{vid}"): [
            ("practice-a", "GET", f"/Observation/{oid}/_history/1", None)
        ],
        ("POST", "/"): [
            (
                "hospital-h",
                "POST",
                "/",
                {
                    "resourceType": "Bundle",
                    "type": "batch",
                    "entry": [
                        {"request": {"method": "GET", "url": f"Task/{tid}"}},
                        {"request": {"method": "GET", "url": pref}},
                        {"request": {"method": "GET", "url": f"Observation?subject={pref}"}},
                    ],
                },
            )
        ],
        ("POST", "/Task/$send-consult"): [],  # called above (send); checked below
        ("GET", "/Task/$worklist"): [("hospital-h", "GET", f"/Task/$worklist?specialist={role}", None)],
        ("GET", "/Task/$overdue"): [("practice-a", "GET", "/Task/$overdue", None)],
        ("POST", "/Task/{id}/$pickup"): [("hospital-h", "POST", f"/Task/{tid}/$pickup", parameters(spec))],
        ("POST", "/Task/{id}/$answer"): [
            ("hospital-h", "POST", f"/Task/{tid}/$answer", parameters(spec, param("text", "advies")))
        ],
        ("POST", "/Task/{id}/$follow-up"): [
            ("practice-a", "POST", f"/Task/{tid}/$follow-up", parameters(param("text", "nog een vraag")))
        ],
        ("POST", "/Task/{id}/$close"): [],  # after a second answer, below
        ("POST", "/Task/{id}/$cancel"): [("practice-a", "POST", f"/Task/{other}/$cancel", parameters())],
        ("POST", "/ChargeItem/$declarations"): [
            ("hospital-h", "POST", "/ChargeItem/$declarations", parameters(param("quarter", "2026Q2")))
        ],
        ("POST", "/Communication/$converse"): [
            (
                "practice-a",
                "POST",
                "/Communication/$converse",
                parameters(
                    param("action", "open"),
                    param("patient", {"reference": pref}),
                    param("subject", "Zorg"),
                    param(
                        "participant",
                        {
                            "identifier": {
                                "system": "http://fhir.nl/fhir/NamingSystem/ura",
                                "value": "90000009",
                            }
                        },
                    ),
                    param("text", "overleg"),
                ),
            )
        ],
        ("GET", "/Communication/$overdue-replies"): [
            ("hospital-h", "GET", "/Communication/$overdue-replies", None)
        ],
    }
    later = {
        ("POST", "/Task/{id}/$close"): [
            ("hospital-h", "POST", f"/Task/{tid}/$answer", parameters(spec, param("text", "tweede advies"))),
            (
                "hospital-h",
                "POST",
                f"/Task/{tid}/$close",
                parameters(spec, param("declaration", False)),
            ),
        ]
    }
    route_keys = {(r.method, r.path) for r in ROUTES}
    assert route_keys - NO_PATIENT_DATA <= set(calls) | set(later), "a route without a case here"

    seen_with_patients: set[tuple[str, str]] = set()
    gaps = []
    for key, reqs in [*calls.items(), *later.items()]:
        for who, method, path, body in reqs:
            before = _last_seq(svc)
            if isinstance(body, str):
                form = {"Content-Type": "application/x-www-form-urlencoded"}
                r = svc.request(method, path, as_=who, content=body, headers=form)
            else:
                r = svc.request(method, path, as_=who, json=body)
            assert r.status_code < 300, (key, path, r.status_code, r.text[:500])
            returned = _patients_in(r.json(), base) if r.content else set()
            if method == "DELETE":
                returned = {pref}  # nothing returned, but the deletion is about the patient
            audited = _audited_patients(svc, before)
            if returned - audited:
                gaps.append((key, path, sorted(returned - audited)))
            if returned:
                seen_with_patients.add(key)
    assert not gaps, gaps
    must = set(calls) | set(later)
    must -= {
        ("POST", "/Task/$send-consult"),
        ("GET", "/Task/$overdue"),
        ("GET", "/Communication/$overdue-replies"),
        ("POST", "/ChargeItem/$declarations"),
        ("POST", "/{type}/$validate"),
    }
    assert must <= seen_with_patients, sorted(must - seen_with_patients)

    # the practice's privacy officer sees every access to its patient, the hospital's too
    events = ok(svc.request("GET", f"/AuditEvent?patient={pref}&_count=500", as_="auditor-a"))
    who = {
        e["resource"]["agent"][0]["who"]["identifier"]["value"]
        for e in events["entry"]
        if e["resource"]["resourceType"] == "AuditEvent"
    }
    assert {"practice-a", "hospital-h"} <= who
    with svc.engine.connect() as conn:
        hospital_reads = conn.execute(
            select(func.count())
            .select_from(audit_log)
            .where(
                audit_log.c.org == "ura:90000009",
                audit_log.c.seq.in_(select(audit_patient.c.seq).where(audit_patient.c.patient == pref)),
            )
        ).scalar_one()
    assert hospital_reads == sum(
        1 for e in events["entry"] if e["resource"]["agent"][0]["who"]["identifier"]["value"] == "hospital-h"
    )
    # and another practice's officer does not
    other_view = ok(svc.request("GET", f"/AuditEvent?patient={pid}", as_="auditor-b"))
    assert other_view.get("total", 0) == 0


def test_an_mllp_receipt_is_found_by_the_patient_it_names(service):
    """A received HL7 v2 message names its patient by BSN; the receipt's audit record points at the stored
    Patient too, so the owning practice's privacy officer finds it with `AuditEvent?patient=`."""
    from gateway.audit import mllp_receipt
    from gateway.mllp import MessageStore
    from gateway.mllp.store import InboundRecord

    body = {**minimal("Patient"), "identifier": [{"system": BSN, "value": "123456782"}]}
    pid = ok(service.request("POST", "/Patient", json=body), 201)["id"]
    store = MessageStore(service.settings.db_url, on_receipt=mllp_receipt)
    try:
        rec = InboundRecord(
            ("LAB", "ZH", "M1"), "ORU^R01", b"MSH|^~\\&|LAB|ZH", "AA", b"ack", bsns=("123456782",)
        )
        store.store(rec)
    finally:
        store.close()
    events = ok(service.request("GET", f"/AuditEvent?patient=Patient/{pid}", as_="auditor-a"))["entry"]
    subtypes = [
        e["resource"]["subtype"][0]["code"] for e in events if e["resource"]["resourceType"] == "AuditEvent"
    ]
    assert "mllp-receipt" in subtypes
    assert _verify(service.settings.db_url).returncode == 0
