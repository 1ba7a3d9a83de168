"""Acceptance 2 (issue 6): every state x action pair through the HTTP API. Allowed pairs succeed and reach
the state the table names; every other pair answers an OperationOutcome (CON-010) naming the rule and
changes nothing (no resource, version, consult row or outbox item written)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from gateway.consult.schema import consult
from gateway.consult.states import ACTIONS, STATES, TRANSITIONS, allowed_from
from gateway.outbox import outbox_item
from gateway.schema import resource, resource_history
from tests.test_consult_support import (
    act,
    family_form,
    hospital_directory,
    install_clock,
    ok,
    send,
    state_of,
)

# how to reach each state from a fresh consult sent to a specialism (practice-a -> Cardiologie)
PATHS = {
    "sent": [],
    "picked-up": ["pickup"],
    "answered": ["pickup", "answer"],
    "closed-declared": ["pickup", "answer", "close-with-declaration"],
    "closed-administrative": ["pickup", "answer", "close-administratively"],
    "cancelled": ["cancel"],
}
CALL = {  # action -> (operation, values)
    "pickup": ("pickup", {}),
    "answer": ("answer", {"text": "Advies: start met X."}),
    "follow-up": ("follow-up", {"text": "En als X niet helpt?"}),
    "close-with-declaration": (
        "close",
        {"declaration": True, "newTreatmentQuestion": True, "noOpenDbc": True},
    ),
    "close-administratively": ("close", {"declaration": False}),
    "cancel": ("cancel", {}),
}


def do(svc, d, tid: str, action: str):
    op, values = CALL[action]
    if ACTIONS[action].party == "practice":
        return act(svc, tid, op, as_="practice-a", **values)
    return act(svc, tid, op, as_="hospital-h", specialist="dr. Hart", directory=d, **values)


def snapshot(svc, tid: str):
    with svc.engine.connect() as conn:
        return (
            conn.execute(select(func.count()).select_from(resource)).scalar_one(),
            conn.execute(select(func.count()).select_from(resource_history)).scalar_one(),
            tuple(conn.execute(select(consult).where(consult.c.id == tid)).one()),
            conn.execute(select(func.count()).select_from(outbox_item)).scalar_one(),
        )


def test_the_table_covers_the_domain():
    assert set(PATHS) == set(STATES) and set(CALL) == set(ACTIONS)
    for (state, action), nxt in TRANSITIONS.items():
        assert state in STATES and action in ACTIONS and nxt in STATES


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.conftest import Service

    tmp = tmp_path_factory.mktemp("states")
    svc = Service(tmp, f"sqlite:///{tmp / 'gw.db'}").start()
    install_clock(svc)
    d = hospital_directory(svc)
    try:
        yield svc, d
    finally:
        svc.close()


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", list(ACTIONS))
def test_state_action(world, state, action):
    svc, d = world
    tid = ok(send(svc, d), 201)["id"]
    for step in PATHS[state]:
        ok(do(svc, d, tid, step))
    assert state_of(ok(svc.request("GET", f"/Task/{tid}"))) == state
    before = snapshot(svc, tid)
    r = do(svc, d, tid, action)
    expected = TRANSITIONS.get((state, action))
    if expected is not None:
        assert r.status_code == 200, r.text
        assert state_of(r.json()) == expected
        with svc.engine.connect() as conn:
            assert conn.execute(select(consult.c.state).where(consult.c.id == tid)).scalar_one() == expected
    else:
        assert r.status_code == 409, r.text
        issue = r.json()["issue"][0]
        assert issue["details"]["coding"][0]["code"] == "CON-010"
        text = issue["details"]["text"]
        assert f"{action} is not allowed in state {state!r}" in text
        assert ACTIONS[action].rule in text
        assert f"allowed in: {', '.join(allowed_from(action))}" in text
        assert snapshot(svc, tid) == before
        assert state_of(ok(svc.request("GET", f"/Task/{tid}"))) == state


def test_named_specialist_picks_up_at_once(world):
    svc, d = world
    task = ok(send(svc, d, specialist="dr. Hart"), 201)
    assert state_of(task) == "picked-up"
    assert task["owner"]["reference"] == f"PractitionerRole/{d.specialists['dr. Hart']}"


def test_follow_up_goes_back_and_forth(world):
    svc, d = world
    tid = ok(send(svc, d), 201)["id"]
    for action in (
        "pickup",
        "answer",
        "follow-up",
        "answer",
        "follow-up",
        "answer",
        "close-administratively",
    ):
        ok(do(svc, d, tid, action))
    assert state_of(ok(svc.request("GET", f"/Task/{tid}"))) == "closed-administrative"
    comms = ok(svc.request("GET", f"/Communication?part-of=Task/{tid}&_count=50"))
    kinds = sorted(e["resource"]["category"][0]["coding"][0]["code"] for e in comms["entry"])
    assert kinds == ["answer"] * 3 + ["follow-up"] * 2 + ["question"]


def test_wrong_party_and_rules_are_refused_with_their_rule(world):
    svc, d = world
    tid = ok(send(svc, d), 201)["id"]
    r = act(svc, tid, "pickup", as_="practice-a")
    assert r.status_code == 403 and "CON-011" in r.text
    r = act(svc, tid, "pickup", as_="hospital-h")  # no specialist named
    assert r.status_code == 400 and "CON-012" in r.text
    r = act(svc, tid, "pickup", specialist="dr. Zenuw", directory=d)  # neurologist, cardiology consult
    assert r.status_code == 403 and "CON-014" in r.text
    ok(act(svc, tid, "pickup", specialist="dr. Hart", directory=d))
    r = act(svc, tid, "answer", specialist="dr. Klop", directory=d, text="x")  # not the one who picked up
    assert r.status_code == 403 and "CON-014" in r.text
    ok(act(svc, tid, "answer", specialist="dr. Hart", directory=d, text="Advies."))
    for values, rule in (
        ({"newTreatmentQuestion": False, "noOpenDbc": True}, "a new question about the treatment"),
        ({"newTreatmentQuestion": True, "noOpenDbc": False}, "no open DBC of this specialism"),
    ):
        before = snapshot(svc, tid)
        r = act(svc, tid, "close", specialist="dr. Hart", directory=d, declaration=True, **values)
        assert r.status_code == 422 and "CON-015" in r.text and rule in r.text
        assert snapshot(svc, tid) == before
    ok(act(svc, tid, "close", specialist="dr. Hart", directory=d, declaration=False))


def test_urgent_questions_are_refused(world):
    from tests.test_consult_support import param

    svc, d = world
    with svc.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(resource)).scalar_one()
    r = send(svc, d, extra=[param("urgent", True)])
    assert r.status_code == 422
    issue = r.json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "CON-020"
    assert "phone the specialist" in issue["details"]["text"]
    with svc.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(resource)).scalar_one() == before


def test_clinical_genetics_subspecialism_needs_the_family_form(world):
    svc, d = world
    r = send(svc, d, specialism="Cardiogenetica")
    assert r.status_code == 422 and "CON-021" in r.text and "familieformulier" in r.text
    form = family_form(svc)
    from tests.test_consult_support import param

    task = ok(
        send(
            svc,
            d,
            specialism="Cardiogenetica",
            extra=[param("attachment", f"DocumentReference/{form['id']}")],
        ),
        201,
    )
    refs = [i["valueReference"]["reference"] for i in task["input"]]
    assert f"DocumentReference/{form['id']}" in refs and len(refs) == 2


def test_plain_updates_and_deletes_of_a_consult_are_refused(world):
    """The consult's Task and ServiceRequest change only through the operations (CON-017): a plain PUT,
    DELETE or transaction entry would make the FHIR status disagree with the consult's state."""
    svc, d = world
    tid = ok(send(svc, d), 201)["id"]
    task = ok(svc.request("GET", f"/Task/{tid}"))
    sr_id = task["focus"]["reference"].split("/")[1]
    sr = ok(svc.request("GET", f"/ServiceRequest/{sr_id}"))
    before = snapshot(svc, tid)
    closed = {**task, "status": "completed"}
    transaction = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": closed, "request": {"method": "PUT", "url": f"Task/{tid}"}}],
    }
    for as_, method, path, body in (
        ("practice-a", "PUT", f"/Task/{tid}", closed),
        ("hospital-h", "PUT", f"/Task/{tid}", closed),
        ("practice-a", "DELETE", f"/Task/{tid}", None),
        ("practice-a", "PUT", f"/ServiceRequest/{sr_id}", {**sr, "status": "revoked"}),
        ("practice-a", "DELETE", f"/ServiceRequest/{sr_id}", None),
        ("practice-a", "POST", "/", transaction),
    ):
        r = svc.request(method, path, as_=as_, json=body)
        assert r.status_code == 409 and "CON-017" in r.text, (method, path, r.status_code, r.text[:300])
        assert snapshot(svc, tid) == before
    assert state_of(ok(svc.request("GET", f"/Task/{tid}"))) == "sent"
    ok(do(svc, d, tid, "pickup"))  # the operations still work
