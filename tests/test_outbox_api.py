"""Issue 7: delivery state through the API (``GET /outbox``, ``GET /outbox/{id}``): a practice sees its own
items' states and nothing of another's; no content, no BSN."""

from __future__ import annotations

import random

from gateway.outbox import enqueue
from gateway.outbox.testkit import make_item, patients

A, B = "01000001", "01000002"  # practice-a and practice-b of tests/conftest.py


def test_practice_reads_its_own_delivery_state_only(service):
    people = patients(random.Random(1), 2)
    with service.engine.begin() as conn:
        enqueue(conn, item=make_item("fb-a1", A, people[0]), source="Task/1")
        enqueue(conn, item=make_item("fb-a2", A, people[1]), source="Task/2")
        enqueue(conn, item=make_item("fb-b1", B, people[0]), source="Task/3")
    r = service.request("GET", "/outbox")
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["id"] for i in body["items"]] == ["fb-a1", "fb-a2"]
    assert body["counts"]["queued"] == 2 and body["items"][0]["state"] == "queued"
    assert body["items"][0]["source"] == "Task/1" and body["items"][0]["attempts"] == 0
    assert people[0].bsn not in r.text and "Geachte" not in r.text
    assert service.request("GET", "/outbox?state=dead").json()["items"] == []
    one = service.request("GET", "/outbox/fb-a2")
    assert one.status_code == 200 and one.json()["practice"] == A
    assert service.request("GET", "/outbox/fb-b1").status_code == 404  # practice-b's
    assert service.request("GET", "/outbox/fb-b1", as_="practice-b").json()["id"] == "fb-b1"
    assert service.request("GET", "/outbox", as_="hospital-h").json()["items"] == []
    bad = service.request("GET", "/outbox?state=lost")
    assert bad.status_code == 400 and "OUT-030" in bad.text
    assert service.http.get("/outbox").status_code == 401


def test_hisgw_serve_runs_the_delivery_worker(tmp_path):
    """With HISGW_OUTBOX_ROUTING_FILE set, ``hisgw serve`` delivers what is enqueued in its database."""
    import time

    from gateway.db import make_engine
    from tests.conftest import TEST_CLIENTS, ServerProcess, Service

    clients = Service(tmp_path / "c", f"sqlite:///{tmp_path / 'unused.db'}")  # writes the clients file
    clients.close()
    assert TEST_CLIENTS
    drop = tmp_path / "postbus"
    drop.mkdir()
    routing = tmp_path / "routing.toml"
    routing.write_text(
        f'[defaults]\nidle_poll = 0.05\n[practice.{A}]\nchannel = "drop"\ndir = "{drop}"\n'
        'dialect = "medicom"\n',
        "utf-8",
    )
    db = f"sqlite:///{tmp_path / 'gw.db'}"
    server = ServerProcess(
        ["--db", db, "--mllp-port", "0", "--clients", str(clients.settings.clients_file)],
        tmp_path,
        {
            "HISGW_OUTBOX_ROUTING_FILE": str(routing),
            "HISGW_SIGNING_KEY_FILE": str(tmp_path / "sk.pem"),
            "HISGW_METRICS_PORT": "0",
        },
    )
    try:
        server.wait_ready()
        engine = make_engine(db)
        with engine.begin() as conn:
            enqueue(conn, item=make_item("fb-serve", A, patients(random.Random(2), 1)[0]), source="Task/9")
        engine.dispose()
        end = time.monotonic() + 30
        while time.monotonic() < end and not (drop / "fb-serve.xml").exists():
            time.sleep(0.1)
        assert (drop / "fb-serve.xml").exists(), server.log.read_text()[-2000:]
    finally:
        server.stop()


def test_demo_routing_gives_every_demo_practice_a_drop_postbox(tmp_path):
    from gateway.demo import PRACTICES
    from gateway.outbox.config import load_routing
    from gateway.outbox.demo import demo_routing

    routing = load_routing(demo_routing(tmp_path / "pb", [p[0] for p in PRACTICES]))
    assert set(routing.practices) == {p[0] for p in PRACTICES}
    for agb, route in routing.practices.items():
        assert (
            route.channel == "drop" and route.auto_filing and route.dir == (tmp_path / "pb" / agb).resolve()
        )
        assert route.dir.is_dir()
