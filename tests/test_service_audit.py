"""NEN 7513 audit (issue 5, acceptance 6): exactly one AuditEvent per audit-worthy action, in the same
transaction, without clinical content; append-only; a hash chain that `hisgw audit verify` checks."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from sqlalchemy import select, text

from gateway import audit
from gateway.fhir.examples import minimal
from gateway.schema import audit_log, resource

BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
FAMILY = "Vanderwaalsklinkenberg"


def _events(service, after: int) -> list[dict]:
    with service.engine.connect() as conn:
        rows = conn.execute(select(audit_log.c.body).where(audit_log.c.seq > after).order_by(audit_log.c.seq))
        return [orjson.loads(r[0]) for r in rows]


def _one_event(service, method, path, *, as_="practice-a", **kw) -> tuple[object, dict]:
    before = service.audit_count()
    r = service.request(method, path, as_=as_, **kw)
    events = _events(service, before)
    assert len(events) == 1, (method, path, r.status_code, events)
    return r, events[0]


def test_exactly_one_event_per_action_with_who_what_and_patient(service):
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": BSN, "value": "123456782"}],
        "name": [{"family": FAMILY}],
        "managingOrganization": {"identifier": {"system": AGB, "value": "01000001"}},
    }
    r, ev = _one_event(service, "POST", "/Patient", json=body)
    pid = r.json()["id"]
    assert (ev["action"], ev["subtype"][0]["code"], ev["outcome"]) == ("C", "create", "0")
    requestor, behalf = ev["agent"]
    assert requestor["who"]["identifier"]["value"] == "practice-a" and requestor["requestor"] is True
    assert requestor["role"][0]["coding"][0]["code"] == "01.015"
    assert requestor["network"]["address"] == "127.0.0.1"
    assert behalf["who"]["identifier"] == {"system": AGB, "value": "01000001"}
    assert {"reference": f"Patient/{pid}"} in [e["what"] for e in ev["entity"]]
    assert ev["source"]["observer"]["display"] == "his-gateway"

    obs = minimal("Observation", subject={"reference": f"Patient/{pid}"}, note=[{"text": "pijn op de borst"}])
    r, ev = _one_event(service, "POST", "/Observation", json=obs)
    oid = r.json()["id"]
    patients = [e["what"]["reference"] for e in ev["entity"] if e.get("role", {}).get("code") == "1"]
    assert patients == [f"Patient/{pid}"]

    checks = [
        ("GET", f"/Patient/{pid}", {}, ("R", "read", "0")),
        ("GET", f"/Observation/{oid}/_history/1", {}, ("R", "vread", "0")),
        (
            "PUT",
            f"/Observation/{oid}",
            {"json": {**obs, "id": oid, "status": "amended"}},
            ("U", "update", "0"),
        ),
        ("GET", f"/Patient?identifier={BSN}|123456782&family={FAMILY}", {}, ("E", "search-type", "0")),
        ("GET", f"/Observation/{oid}/_history", {}, ("R", "history-instance", "0")),
        ("GET", "/Observation/_history", {}, ("E", "history-type", "0")),
        (
            "POST",
            "/Patient",
            {"json": body, "headers": {"If-None-Exist": f"identifier={BSN}|123456782"}},
            ("R", "create", "0"),
        ),
        ("POST", "/Patient/$validate", {"json": body}, ("E", "operation", "0")),
        ("GET", "/Patient/unknown-id", {}, ("R", "read", "4")),
        (
            "PUT",
            f"/Observation/{oid}",
            {"json": {**obs, "id": oid}, "headers": {"If-Match": 'W/"1"'}},
            ("U", "update", "4"),
        ),
        ("DELETE", f"/Observation/{oid}", {}, ("D", "delete", "0")),
    ]
    for method, path, kw, expected in checks:
        r, ev = _one_event(service, method, path, **kw)
        assert (ev["action"], ev["subtype"][0]["code"], ev["outcome"]) == expected, (method, path, ev)
        if expected[2] == "4":
            assert ev["outcomeDesc"].startswith(str(r.status_code))
        raw = orjson.dumps(ev).decode()
        # no clinical content and no search values: names, BSNs and notes stay out of the log
        assert FAMILY not in raw and "123456782" not in raw and "borst" not in raw, raw
    r, ev = _one_event(
        service, "GET", "/Observation", as_="auditor-a"
    )  # refused for lack of scope: logged too
    assert r.status_code == 403 and ev["outcome"] == "4"


def test_bundles_log_each_entry(service):
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": minimal("Patient"), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": minimal("Organization", name="X"),
                "request": {"method": "POST", "url": "Organization"},
            },
            {"request": {"method": "GET", "url": "Patient?_count=1"}},
        ],
    }
    before = service.audit_count()
    assert service.request("POST", "/", json=tx).status_code == 200
    assert [e["subtype"][0]["code"] for e in _events(service, before)] == ["create", "create", "search-type"]
    before = service.audit_count()
    bad = {**tx, "entry": [*tx["entry"], {"request": {"method": "GET", "url": "Patient/nope"}}]}
    assert service.request("POST", "/", json=bad).status_code == 404
    events = _events(service, before)
    assert [(e["subtype"][0]["code"], e["outcome"]) for e in events] == [("transaction", "4")]


def test_reading_the_log_needs_the_audit_scope_and_is_logged(service):
    service.request("POST", "/Patient", json=minimal("Patient"))
    assert service.request("GET", "/AuditEvent").status_code == 403
    before = service.audit_count()
    r = service.request("GET", "/AuditEvent?_count=5", as_="auditor-a")
    assert r.status_code == 200 and r.json()["total"] >= 2
    (ev,) = _events(service, before)
    assert ev["subtype"][0]["code"] == "search-type"
    assert {e["what"]["reference"] for e in ev["entity"] if "reference" in e.get("what", {})} == {
        f"AuditEvent/{e['resource']['id']}" for e in r.json()["entry"]
    }
    one = r.json()["entry"][0]["resource"]["id"]
    r, ev = _one_event(service, "GET", f"/AuditEvent/{one}", as_="auditor-a")
    assert r.status_code == 200 and ev["entity"][0]["what"]["reference"] == f"AuditEvent/{one}"
    assert service.request("GET", "/AuditEvent?action=C", as_="auditor-a").json()["total"] >= 1


def test_a_failing_audit_write_fails_the_request(service):
    with service.engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log "
                "BEGIN SELECT RAISE(ABORT, 'audit storage full'); END"
            )
        )
    r = service.request("POST", "/Patient", json=minimal("Patient", name=[{"family": "Nooit"}]))
    assert r.status_code == 500 and r.json()["resourceType"] == "OperationOutcome"
    assert service.request("GET", "/Patient").status_code == 500  # reads too: no access without a log entry
    with service.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER refuse_audit"))
        assert conn.execute(select(resource.c.res_id)).first() is None  # the create was rolled back
    assert service.request("GET", "/Patient").json()["total"] == 0


def _verify_cli(db_url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "audit", "verify", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _fill(service) -> None:
    for _ in range(5):
        pid = service.request("POST", "/Patient", json=minimal("Patient")).json()["id"]
        service.request("GET", f"/Patient/{pid}")


def test_audit_verify_detects_tampering(service):
    _fill(service)
    url = service.settings.db_url
    ok = _verify_cli(url)
    assert ok.returncode == 0 and "10 audit records" in ok.stdout, ok.stdout + ok.stderr
    with service.engine.begin() as conn:
        with pytest.raises(Exception, match="append-only"):
            conn.execute(text("UPDATE audit_log SET outcome = '0' WHERE seq = 7"))
    with service.engine.begin() as conn:
        # someone with file access goes around the triggers
        conn.execute(text("DROP TRIGGER audit_log_no_update"))
        body = conn.execute(text("SELECT body FROM audit_log WHERE seq = 7")).scalar()
        forged = body.replace(b'"127.0.0.1"', b'"10.9.9.9"')
        assert forged != body
        conn.execute(text("UPDATE audit_log SET body = :b WHERE seq = 7"), {"b": forged})
    broken = _verify_cli(url)
    assert broken.returncode == 1
    assert "AUD-001" in broken.stderr and "seq 7" in broken.stderr and "first 6 records" in broken.stderr


def test_audit_verify_detects_removed_records(service):
    _fill(service)
    with service.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER audit_log_no_delete"))
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
    r = _verify_cli(service.settings.db_url)
    assert r.returncode == 1 and "AUD-003" in r.stderr and "seq 4" in r.stderr
    with service.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log WHERE seq >= 4"))
    r = _verify_cli(service.settings.db_url)
    assert r.returncode == 1 and "AUD-004" in r.stderr


def test_record_for_other_parts_of_the_gateway(service):
    """MLLP receipt and postbox delivery log through gateway.audit.record in their own transaction."""
    who = audit.Agent(
        "urn:his-gateway:mllp",
        "LAB^ZIEKENHUIS",
        "lab system",
        "ura:90000009",
        {"system": "http://fhir.nl/fhir/NamingSystem/ura", "value": "90000009"},
        "Ziekenhuis H",
        network="10.0.0.7",
    )
    with service.engine.begin() as conn:
        eid = audit.record(
            conn,
            who=who,
            action="C",
            subtype="mllp-receipt",
            patient_identifiers=[(BSN, "123456782")],
            entities=["urn:mllp:msg:0001"],
        )
    with service.engine.connect() as conn:
        ev = orjson.loads(conn.execute(select(audit_log.c.body).where(audit_log.c.event_id == eid)).scalar())
    assert ev["type"]["code"] == "110107" and ev["subtype"][0]["code"] == "mllp-receipt"
    assert ev["entity"][0]["what"]["identifier"]["value"] == "123456782"
    with pytest.raises(ValueError):
        audit.record_standalone(service.engine, who=who, action="X", subtype="read")
    assert audit.verify(service.engine).ok


def test_append_only_on_postgresql(pg_service):
    pg_service.request("POST", "/Patient", json=minimal("Patient"))
    for sql in ("UPDATE audit_log SET outcome = '8'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(Exception, match="append-only"), pg_service.engine.begin() as conn:
            conn.execute(text(sql))
    assert _verify_cli(pg_service.settings.db_url).returncode == 0
    with pg_service.engine.begin() as conn:
        conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE audit_log SET org = 'agb:01000002' WHERE seq = 1"))
    r = _verify_cli(pg_service.settings.db_url)
    assert r.returncode == 1 and "AUD-001" in r.stderr and "seq 1" in r.stderr
