"""Acceptance 1 (issue 6): the whole consult through the HTTP API with a practice and a hospital client:
export in, consult sent with the summary, picked up, answered, closed with a declaration, the declaration
exported, the answer queued for the postbox. On SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt

import orjson
import pytest
from sqlalchemy import select

from tests.test_consult_support import (
    act,
    close_declared,
    export_bytes,
    hospital_directory,
    install_clock,
    ok,
    param,
    parameters,
    send,
    state_of,
)


@pytest.fixture
def svc(both_service):
    return both_service


def test_consult_end_to_end(svc):
    clock = install_clock(svc)
    d = hospital_directory(svc)
    task = ok(send(svc, d), 201)
    assert state_of(task) == "sent" and task["status"] == "requested"
    tid = task["id"]
    # the summary is attached as a FHIR document Bundle, narrowed to episode 532
    doc_id = task["input"][0]["valueReference"]["reference"].split("/")[1]
    doc = ok(svc.request("GET", f"/DocumentReference/{doc_id}"))
    bundle = orjson.loads(base64.b64decode(doc["content"][0]["attachment"]["data"]))
    assert bundle["type"] == "document"
    episodes = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "EpisodeOfCare"]
    text = orjson.dumps(bundle).decode()
    assert len(episodes) == 1 and "Rughernia" in text  # episode 532, the one chosen
    assert "Tinea pedis" not in text and "Keelpijn" not in text  # episodes 528, 529 left out
    # the hospital reads what was sent to it: the task, the question, the summary, the patient
    for ref in (
        f"Task/{tid}",
        task["focus"]["reference"],
        f"DocumentReference/{doc_id}",
        task["for"]["reference"],
    ):
        ok(svc.request("GET", f"/{ref}", as_="hospital-h"))
    question = ok(svc.request("GET", f"/Communication?part-of=Task/{tid}", as_="hospital-h"))
    assert (
        question["entry"][0]["resource"]["payload"][0]["contentString"] == "Graag advies over de behandeling."
    )
    # the HIS export itself is not stored: neither its bytes nor what the narrowing left out
    from gateway.schema import resource_history

    with svc.engine.connect() as conn:
        bodies = [orjson.loads(r[0]) for r in conn.execute(select(resource_history.c.body)) if r[0]]
    stored = b"".join(orjson.dumps(b) for b in bodies)
    stored += b"".join(
        base64.b64decode(c["attachment"]["data"])
        for b in bodies
        for c in b.get("content", [])
        if isinstance(c, dict) and "data" in c.get("attachment", {})
    )
    assert b"MedicomExport" not in stored and b"Tinea pedis" not in stored
    clock.advance(hours=2)
    picked = ok(act(svc, tid, "pickup", specialist="dr. Hart", directory=d))
    assert state_of(picked) == "picked-up"
    clock.advance(hours=3)
    answered = ok(
        act(svc, tid, "answer", specialist="dr. Hart", directory=d, text="Start met X, controle na 6 weken.")
    )
    assert state_of(answered) == "answered"
    closed = ok(close_declared(svc, tid, d))
    assert state_of(closed) == "closed-declared" and closed["status"] == "completed"
    # the answer is queued for practice-a's postbox
    from gateway.outbox import outbox_item

    with svc.engine.connect() as conn:
        rows = conn.execute(select(outbox_item.c.practice, outbox_item.c.kind, outbox_item.c.state)).all()
        body = conn.execute(select(outbox_item.c.body)).scalar_one()
    assert [tuple(r) for r in rows] == [("01000001", "consult-answer", "queued")]
    from mappings.model import postbox_from_json

    item = postbox_from_json(body)
    assert item.correspondence.text == "Start met X, controle na 6 weken."
    assert item.patient.bsn == "555555914" and item.patient.sender_reference == f"Task/{tid}"
    # the GP chose one episode (532, L86.01): the answer proposes a filing under it; the worker decides
    assert item.correspondence.episode_id == "532" and item.filing is not None
    assert [(x.type, x.icpc) for x in item.filing.journal_entry.lines] == [("E", "L86.01"), ("P", None)]
    # the quarter is declared once it is over: per insurer, for specialist and GP
    early = svc.request(
        "POST", "/ChargeItem/$declarations", as_="hospital-h", json=parameters(param("quarter", "2026Q3"))
    )
    assert early.status_code == 409 and "CON-040" in early.text
    clock.set(dt.datetime(2026, 10, 1, 6, 0, tzinfo=dt.UTC))
    out = ok(
        svc.request(
            "POST", "/ChargeItem/$declarations", as_="hospital-h", json=parameters(param("quarter", "2026Q3"))
        )
    )
    insurers = [p for p in out["parameter"] if p["name"] == "insurer"]
    assert len(insurers) == 1
    part = {x["name"]: x for x in insurers[0]["part"]}
    assert part["uzovi"]["valueIdentifier"]["value"] == "3311"
    assert part["consults"]["valueInteger"] == 1
    assert part["total"]["valueMoney"]["value"] == 61.5  # 45.00 specialist + 16.50 GP (config.toml)
    lines = part["csv"]["valueString"].splitlines()
    assert lines[0].startswith("quarter,uzovi,consult") and len(lines) == 3
    assert {line.split(",")[4] for line in lines[1:]} == {"specialist", "gp"}
    assert all(f",{tid}," in line for line in lines[1:])
    bundle = part["bundle"]["resource"]
    assert bundle["type"] == "collection" and len(bundle["entry"]) == 2
    again = ok(
        svc.request(
            "POST", "/ChargeItem/$declarations", as_="hospital-h", json=parameters(param("quarter", "2026Q3"))
        )
    )
    assert again == out
    # NEN 7513: every consult operation was audited with the patient, without clinical text
    pid = task["for"]["reference"]
    events = ok(svc.request("GET", f"/AuditEvent?patient={pid}&_count=200", as_="everything-a"))["entry"]
    subtypes = [e["resource"]["subtype"][0]["code"] for e in events]
    assert subtypes.count("operation") >= 1  # practice-a's own: $send-consult (the log shows own events)
    raw = orjson.dumps(events)
    assert b"Graag advies" not in raw and b"Rughernia" not in raw


@pytest.mark.parametrize("fmt", ["medicom", "microhis", "omnihis", "omnihis-ndjson", "canonical"])
def test_export_in_any_dialect(service, fmt):
    install_clock(service)
    d = hospital_directory(service)
    task = ok(send(service, d, export=export_bytes(fmt=fmt), fmt=fmt, episodes=("525", "531")), 201)
    doc = ok(service.request("GET", f"/{task['input'][0]['valueReference']['reference']}", as_="hospital-h"))
    text = base64.b64decode(doc["content"][0]["attachment"]["data"]).decode()
    assert "Hartkloppingen" in text and "Astma" in text and "Rughernia" not in text


def test_export_problems_are_named(service):
    install_clock(service)
    d = hospital_directory(service)
    r = send(service, d, export=b"<MedicomExport/>")
    assert r.status_code == 422
    codes = [i["details"]["coding"][0]["code"] for i in r.json()["issue"]]
    assert codes[0] == "CON-022" and any(c.startswith(("MED-", "XML-")) for c in codes[1:]), codes
    r = send(service, d, episodes=("999",))
    assert r.status_code == 422 and "CON-022" in r.text and "SUM-" in r.text
    r = send(service, d, fmt="hl7v2")
    assert r.status_code == 400 and "CON-002" in r.text
    # without an export: a stored patient of the practice, no summary attached
    pid = ok(
        service.request("POST", "/Patient", json={"resourceType": "Patient", "birthDate": "1950-05-20"}), 201
    )
    r = service.request(
        "POST",
        "/Task/$send-consult",
        json=parameters(
            param("question", "Vraag zonder samenvatting"),
            param("patient", f"Patient/{pid['id']}"),
            param("specialism", f"HealthcareService/{d.specialisms['Neurologie']}"),
        ),
    )
    task = ok(r, 201)
    assert "input" not in task and task["for"]["reference"] == f"Patient/{pid['id']}"
