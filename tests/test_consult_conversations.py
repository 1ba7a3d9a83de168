"""Conversations, shared inboxes, referral links and feedback (issue 6; DOMAIN.md §3), over the HTTP API
with a controlled clock: reply terms per subject, overdue replies, feedback on the patient's timeline and
queued for the GP's postbox in the same transaction, the practice closing the referral link."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from gateway.outbox import outbox_item
from tests.test_consult_support import T0, install_clock, ok, param, parameters

AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
URA = "http://fhir.nl/fhir/NamingSystem/ura"
HOSPITAL = {"identifier": {"system": URA, "value": "90000009"}, "display": "Ziekenhuis H"}


def converse(svc, as_: str, action: str, *items: dict):
    return svc.request(
        "POST", "/Communication/$converse", as_=as_, json=parameters(param("action", action), *items)
    )


def overdue(svc, as_: str) -> list[str]:
    b = ok(svc.request("GET", "/Communication/$overdue-replies", as_=as_))
    assert b["total"] == len(b.get("entry", []))
    return [e["resource"]["id"] for e in b.get("entry", [])]


def test_conversation_feedback_and_referral(service):
    svc = service
    clock = install_clock(svc)
    org = ok(
        svc.request(
            "POST",
            "/Organization",
            json={
                "resourceType": "Organization",
                "identifier": [{"system": AGB, "value": "01000001"}],
                "name": "Huisartsenpraktijk A",
            },
        ),
        201,
    )
    poh = ok(
        svc.request(
            "POST",
            "/HealthcareService",
            json={
                "resourceType": "HealthcareService",
                "name": "Huisartsenpraktijk A – POH",
                "providedBy": {"reference": f"Organization/{org['id']}"},
            },
        ),
        201,
    )
    patient = ok(
        svc.request(
            "POST",
            "/Patient",
            json={
                "resourceType": "Patient",
                "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "555555914"}],
                "birthDate": "1950-01-01",
                "managingOrganization": {"reference": f"Organization/{org['id']}"},
            },
        ),
        201,
    )
    pref = {"reference": f"Patient/{patient['id']}"}

    r = converse(
        svc,
        "practice-a",
        "open",
        param("patient", pref),
        param("subject", "Koffie"),
        param("participant", HOSPITAL),
        param("text", "x"),
    )
    assert r.status_code == 400 and "CON-050" in r.text
    r = converse(
        svc,
        "practice-a",
        "open",
        param("patient", pref),
        param("subject", "Medicatie"),
        param("participant", HOSPITAL),
        param("text", "x"),
        param("urgent", True),
    )
    assert r.status_code == 422 and "CON-020" in r.text

    # Medicatie: the hospital's reply is due within 24 hours
    conv = ok(
        converse(
            svc,
            "practice-a",
            "open",
            param("patient", pref),
            param("subject", "Medicatie"),
            param("participant", HOSPITAL),
            param("text", "Dosering metoprolol bij HF?"),
        ),
        201,
    )
    ok(svc.request("GET", f"/Communication/{conv['id']}", as_="hospital-h"))
    assert svc.request("GET", f"/Communication/{conv['id']}", as_="practice-b").status_code == 404
    clock.set(T0 + dt.timedelta(hours=23, minutes=59))
    assert overdue(svc, "practice-a") == []
    clock.set(T0 + dt.timedelta(hours=24, minutes=1))
    assert overdue(svc, "practice-a") == [conv["id"]] and overdue(svc, "hospital-h") == [conv["id"]]
    assert overdue(svc, "practice-b") == []
    # the hospital answers to the practice's POH inbox: the practice reads it; its own message now waits
    reply = ok(
        converse(
            svc,
            "hospital-h",
            "message",
            param("conversation", f"Communication/{conv['id']}"),
            param("text", "Start 12,5 mg, na 2 weken ophogen."),
        ),
        201,
    )
    assert overdue(svc, "practice-a") == []
    inbox = ok(
        converse(
            svc,
            "hospital-h",
            "message",
            param("conversation", f"Communication/{conv['id']}"),
            param("text", "Graag via de POH controleren."),
        ),
        201,
    )
    assert (
        ok(svc.request("GET", f"/Communication/{reply['id']}", as_="practice-a"))["partOf"][0]["reference"]
        == f"Communication/{conv['id']}"
    )
    poh_msg = ok(
        svc.request(
            "POST",
            "/Communication",
            as_="hospital-h",
            json={
                "resourceType": "Communication",
                "status": "completed",
                "subject": pref,
                "recipient": [{"reference": f"HealthcareService/{poh['id']}"}],
                "payload": [{"contentString": "Voor de POH"}],
            },
        ),
        201,
    )
    ok(svc.request("GET", f"/Communication/{poh_msg['id']}", as_="practice-a"))  # the shared inbox is A's
    clock.advance(hours=24, minutes=2)
    assert set(overdue(svc, "practice-a")) == {reply["id"], inbox["id"]}
    ok(
        converse(
            svc,
            "practice-a",
            "message",
            param("conversation", f"Communication/{conv['id']}"),
            param("text", "Dank, doen we."),
        ),
        201,
    )
    assert overdue(svc, "practice-a") == []

    # referral: opened by the practice; feedback from the partner onto the timeline and into the postbox
    referral = ok(
        converse(
            svc,
            "practice-a",
            "refer",
            param("patient", pref),
            param("partner", HOSPITAL),
            param("text", "Verwijzing cardiologie"),
        ),
        201,
    )
    fb = ok(
        converse(
            svc,
            "hospital-h",
            "feedback",
            param("referral", f"ServiceRequest/{referral['id']}"),
            param("feedbackKind", "interim"),
            param("text", "Tussentijds: echo gepland."),
        ),
        201,
    )
    timeline = ok(svc.request("GET", f"/Communication?patient=Patient/{patient['id']}&category=feedback"))
    assert [e["resource"]["id"] for e in timeline["entry"]] == [fb["id"]]
    with svc.engine.connect() as conn:
        rows = conn.execute(select(outbox_item.c.practice, outbox_item.c.kind, outbox_item.c.source)).all()
    assert [tuple(r) for r in rows] == [("01000001", "feedback", f"Communication/{fb['id']}")]
    r = converse(
        svc,
        "practice-a",
        "feedback",
        param("referral", f"ServiceRequest/{referral['id']}"),
        param("text", "x"),
    )
    assert r.status_code == 403 and "CON-011" in r.text
    ok(converse(svc, "practice-a", "close-referral", param("referral", f"ServiceRequest/{referral['id']}")))
    r = converse(
        svc,
        "hospital-h",
        "feedback",
        param("referral", f"ServiceRequest/{referral['id']}"),
        param("text", "Eindconclusie"),
    )
    assert r.status_code == 409 and "CON-053" in r.text
    # after the link is closed, feedback goes in the conversation
    ok(
        converse(
            svc,
            "hospital-h",
            "feedback",
            param("conversation", f"Communication/{conv['id']}"),
            param("text", "Eindconclusie: stabiel."),
        ),
        201,
    )
    with svc.engine.connect() as conn:
        assert conn.execute(select(outbox_item.c.kind)).scalars().all() == ["feedback", "feedback"]


def _practice_and_patient(svc) -> dict:
    org = ok(
        svc.request(
            "POST",
            "/Organization",
            json={
                "resourceType": "Organization",
                "identifier": [{"system": AGB, "value": "01000001"}],
                "name": "Huisartsenpraktijk A",
            },
        ),
        201,
    )
    patient = ok(
        svc.request(
            "POST",
            "/Patient",
            json={
                "resourceType": "Patient",
                "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "555555914"}],
                "birthDate": "1950-01-01",
                "managingOrganization": {"reference": f"Organization/{org['id']}"},
            },
        ),
        201,
    )
    return {"reference": f"Patient/{patient['id']}"}


def test_a_partner_starts_a_conversation_and_a_closing_answer_needs_no_reply(service):
    """Issue 20: a care partner starts a conversation under the practice's referral ("start nieuw gesprek");
    a message marked noReply never turns overdue, a question still does (Zorg: 48 h, Medicatie: 24 h)."""
    svc = service
    clock = install_clock(svc)
    pref = _practice_and_patient(svc)
    # without a referral to it, a partner cannot name the practice's patient
    r = converse(svc, "hospital-h", "open", param("subject", "Zorg"), param("text", "x"))
    assert r.status_code == 400
    referral = ok(
        converse(
            svc,
            "practice-a",
            "refer",
            param("patient", pref),
            param("partner", HOSPITAL),
            param("text", "Zorg"),
        ),
        201,
    )
    conv = ok(
        converse(
            svc,
            "hospital-h",
            "open",
            param("referral", f"ServiceRequest/{referral['id']}"),
            param("subject", "Zorg"),
            param("text", "Kunnen we samen de thuiszorg afstemmen?"),
        ),
        201,
    )
    assert conv["subject"] == pref  # the referral's patient
    assert any(r.get("identifier", {}).get("value") == "01000001" for r in conv["recipient"])  # the practice
    ok(svc.request("GET", f"/Communication/{conv['id']}", as_="practice-a"))
    clock.set(T0 + dt.timedelta(hours=47, minutes=59))
    assert overdue(svc, "practice-a") == []
    clock.set(T0 + dt.timedelta(hours=48, minutes=1))
    assert overdue(svc, "practice-a") == [conv["id"]]
    # the practice closes the thread: an answer that needs no reply
    closing = ok(
        converse(
            svc,
            "practice-a",
            "message",
            param("conversation", f"Communication/{conv['id']}"),
            param("text", "Akkoord, de POH belt u morgen."),
            param("noReply", True),
        ),
        201,
    )
    assert {"url": "urn:his-gateway:fhir:extension:no-reply-needed", "valueBoolean": True} in closing[
        "extension"
    ]
    assert overdue(svc, "practice-a") == []
    clock.advance(hours=96)  # days later, nobody wrote "ok": nothing is overdue
    assert overdue(svc, "practice-a") == [] and overdue(svc, "hospital-h") == []
    # a question from the partner still waits for an answer, and turns overdue after 48 h
    question = ok(
        converse(
            svc,
            "hospital-h",
            "message",
            param("conversation", f"Communication/{conv['id']}"),
            param("text", "Welke dag schikt?"),
        ),
        201,
    )
    clock.advance(hours=48, minutes=1)
    assert overdue(svc, "practice-a") == [question["id"]]
    # a Medicatie notification opened with noReply is never overdue, even past 24 h
    note = ok(
        converse(
            svc,
            "practice-a",
            "open",
            param("patient", pref),
            param("subject", "Medicatie"),
            param("participant", HOSPITAL),
            param("text", "Ter informatie: metoprolol gestopt."),
            param("noReply", True),
        ),
        201,
    )
    clock.advance(hours=24, minutes=1)
    assert note["id"] not in overdue(svc, "practice-a")
    # once the practice closed the referral, the partner opens no new conversation under it
    ok(converse(svc, "practice-a", "close-referral", param("referral", f"ServiceRequest/{referral['id']}")))
    r = converse(
        svc,
        "hospital-h",
        "open",
        param("referral", f"ServiceRequest/{referral['id']}"),
        param("subject", "Overig"),
        param("text", "Nog een vraag"),
    )
    assert r.status_code == 409 and "CON-053" in r.text
