"""Issue 7: the transactional outbox, its worker rules, the channels, dead letters (acceptance 4), operations.

Real parts: a SQLite file per test (PostgreSQL where locking is the point), the simulators as child
processes on loopback, real files in drop directories."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from gateway.db import current_revision, make_engine, migrate
from gateway.outbox import enqueue, outbox_item, patient_key_hash
from gateway.outbox.channels import DropChannel, HttpInboxChannel, MllpChannel, ack_fields, classify_status
from gateway.outbox.config import RoutingError, load_routing, parse_routing
from gateway.outbox.metrics import OutboxMetrics
from gateway.outbox.ops import counts, list_items, purge, requeue
from gateway.outbox.testkit import SimProcess, make_item, patients
from gateway.outbox.worker import Worker, backoff_seconds
from mappings.model import postbox_from_json
from tests.conftest import wait_until

AGB = "03000001"
AGB2 = "03000002"
FAST = {"backoff_initial": 0.01, "backoff_max": 0.05, "idle_poll": 0.01, "timeout": 2.0}


@pytest.fixture
def engine(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'gw.db'}")
    migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def people():
    import random

    return patients(random.Random(3), 5)


def _routing(**practices) -> object:
    return parse_routing({"defaults": FAST, "practice": practices})


def _row(engine, iid: str) -> dict:
    with engine.connect() as conn:
        r = conn.execute(select(outbox_item).where(outbox_item.c.id == iid)).mappings().one()
        conn.rollback()
    return dict(r)


# --------------------------------------------------------------------------- enqueue and schema


def test_enqueue_writes_in_the_callers_transaction_only(engine, people):
    item = make_item("fb-1", AGB, people[0])
    with pytest.raises(RuntimeError), engine.begin() as conn:
        assert enqueue(conn, item=item, source="Communication/1") == "fb-1"
        raise RuntimeError("the answer's transaction fails")
    assert counts(engine)["queued"] == 0
    with engine.begin() as conn:
        enqueue(conn, item=item, source="Communication/1")
    row = _row(engine, "fb-1")
    assert row["state"] == "queued" and row["practice"] == AGB and row["attempts"] == 0
    assert row["source"] == "Communication/1" and row["kind"] == "feedback"
    assert postbox_from_json(row["body"]) == item
    # ordered by patient without the BSN in clear
    assert row["patient_key"] == patient_key_hash(AGB, "bsn:" + people[0].bsn)
    assert people[0].bsn not in json.dumps({k: v for k, v in row.items() if k != "body"}, default=str)


def test_enqueue_the_same_item_twice_fails(engine, people):
    item = make_item("fb-1", AGB, people[0])
    with engine.begin() as conn:
        enqueue(conn, item=item, source="x")
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError), engine.begin() as conn:
        enqueue(conn, item=item, source="x")


def test_migration_0002_follows_0001_and_builds_the_table(engine):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from gateway.tables import metadata

    assert current_revision(engine) is not None and current_revision(engine) >= "0002"
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert [d for d in diff if "outbox" in str(d)] == []


# --------------------------------------------------------------------------- routing file


def test_routing_file_is_validated_and_names_the_fault(tmp_path):
    good = tmp_path / "r.toml"
    good.write_text(
        '[defaults]\nmax_attempts = 3\n[practice.03000001]\nchannel = "mllp"\nhost = "127.0.0.1"\n'
        "port = 2575\nauto_filing = true\n",
        "utf-8",
    )
    r = load_routing(good)
    assert r.route(AGB).max_attempts == 3 and r.route(AGB).auto_filing and r.route(AGB2) is None
    cases = {
        '[practice.03000001]\nchannel = "drop"\ndir = "/x"\n': "needs dialect",
        '[practice.0300]\nchannel = "http"\nurl = "http://x"\n': "AGB (8 digits)",
        '[practice.03000001]\nchannel = "pigeon"\n': "practice.03000001].channel",
        "[defaults]\nmax_attempts = 0\n": "[defaults].max_attempts",
        '[practice.03000001]\nchannel = "http"\nurl = "ftp://x"\n': "is not http(s)",
        "[practise.03000001]\n": "unknown top-level key",
        "not toml = = 1": "not valid TOML",
    }
    for body, expected in cases.items():
        bad = tmp_path / "bad.toml"
        bad.write_text(body, "utf-8")
        with pytest.raises(RoutingError) as exc:
            load_routing(bad)
        assert "OUT-001" in str(exc.value) and str(bad) in str(exc.value) and expected in str(exc.value), (
            exc.value
        )


def test_backoff_grows_with_jitter_and_stays_under_the_cap():
    route = _routing(
        **{AGB: {"channel": "http", "url": "http://x", "backoff_initial": 1, "backoff_max": 30}}
    ).route(AGB)
    waits = [backoff_seconds(route, n) for n in range(1, 12)]
    assert 1 <= waits[0] <= 2 and 4 <= waits[2] <= 5 and all(w <= 30 for w in waits) and waits[-1] == 30
    assert len({backoff_seconds(route, 3) for _ in range(20)}) > 1  # jittered


# --------------------------------------------------------------------------- claiming and ordering


def _worker(engine, port: int, **extra) -> Worker:
    return Worker(engine, _routing(**{AGB: {"channel": "mllp", "host": "127.0.0.1", "port": port, **extra}}))


def test_only_the_head_of_each_patients_queue_is_claimed(engine, people):
    with engine.begin() as conn:
        for i, p in enumerate([people[0], people[0], people[1], people[0]]):
            enqueue(conn, item=make_item(f"fb-{i}", AGB, p), source="x")
    lane = _worker(engine, 9).lanes[AGB]
    first = lane.claim()
    assert [c.id for c in first] == ["fb-0", "fb-2"]  # fb-1 and fb-3 wait for fb-0
    assert lane.claim() == []  # claimed items are leased; their followers still wait
    assert {_row(engine, i)["state"] for i in ("fb-0", "fb-2")} == {"sending"}
    assert _row(engine, "fb-0")["attempts"] == 1


def test_a_killed_workers_lease_runs_out_and_the_item_goes_out_with_the_same_id(engine, people):
    with engine.begin() as conn:
        enqueue(conn, item=make_item("fb-0", AGB, people[0]), source="x")
    a = _worker(engine, 9, lease_seconds=0.3).lanes[AGB]
    b = _worker(engine, 9, lease_seconds=0.3).lanes[AGB]
    t0 = time.monotonic()
    assert [c.id for c in a.claim()] == ["fb-0"]  # ... and a dies before recording anything
    assert b.claim() == []
    again = wait_until(b.claim, timeout=10, what="the lease running out")
    assert time.monotonic() - t0 >= 0.3  # not before the lease ran out
    assert [c.id for c in again] == ["fb-0"] and again[0].attempts == 2
    assert _row(engine, "fb-0")["lease_owner"] == b.worker.owner
    # the late first worker's outcome no longer counts: b holds the item
    from gateway.outbox.channels import Outcome

    a.record(again, [Outcome("delivered", "late")])
    assert _row(engine, "fb-0")["state"] == "sending"


def test_postgresql_workers_never_claim_the_same_row(pg_url, people):
    eng = make_engine(pg_url)
    migrate(eng)
    try:
        with eng.begin() as conn:
            for i in range(200):
                enqueue(conn, item=make_item(f"fb-{i}", AGB, people[0]), source="x", patient_key=f"k{i}")
        lanes = [_worker(eng, 9, batch=7).lanes[AGB] for _ in range(4)]
        got: list[list[str]] = [[] for _ in lanes]
        barrier = threading.Barrier(len(lanes))

        def run(i: int) -> None:
            barrier.wait()
            while batch := lanes[i].claim():
                got[i] += [c.id for c in batch]

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(lanes))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        every = [x for g in got for x in g]
        assert len(every) == len(set(every)) == 200
        assert sum(1 for g in got if g) >= 2
    finally:
        eng.dispose()


# --------------------------------------------------------------------------- channels


def test_ack_codes_and_http_statuses_classify_deliveries():
    assert ack_fields(b"MSH|^~\\&|A|B|C|D|20260101||ACK|1|P|2.5\rMSA|AR|fb-9|bad\r") == ("AR", "fb-9")
    assert ack_fields(b"MSH|^~\\&|A\r") == ("", "")
    from gateway.outbox.channels import ACK_OUTCOME

    assert [ACK_OUTCOME[c] for c in ("AA", "AE", "AR", "CA", "CE", "CR")] == [
        "delivered",
        "transient",
        "permanent",
        "delivered",
        "transient",
        "permanent",
    ]
    assert [classify_status(s) for s in (200, 201, 400, 404, 408, 409, 422, 429, 500, 503)] == [
        "delivered",
        "delivered",
        "permanent",
        "permanent",
        "transient",
        "permanent",
        "permanent",
        "transient",
        "transient",
        "transient",
    ]


def test_mllp_without_answer_is_ambiguous_and_refused_connection_transient(people):
    route = _routing(**{AGB: {"channel": "mllp", "host": "127.0.0.1", "port": 9, "timeout": 0.5}}).route(AGB)
    item = make_item("fb-1", AGB, people[0])
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    ch = MllpChannel(route.model_copy(update={"port": port}))
    assert [o.kind for o in ch.send([("fb-1", item)])] == ["transient"]
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        ch = MllpChannel(route.model_copy(update={"port": silent.getsockname()[1]}))
        assert [o.kind for o in ch.send([("fb-1", item), ("fb-2", item)])] == ["ambiguous", "ambiguous"]
        ch.close()
    finally:
        silent.close()


def test_drop_channel_writes_atomically_named_by_id_and_waits_for_a_missing_directory(tmp_path, people):
    drop = tmp_path / "postbus"
    route = _routing(**{AGB: {"channel": "drop", "dir": str(drop), "dialect": "microhis"}}).route(AGB)
    ch = DropChannel(route)
    item = make_item("fb-1", AGB, people[0])
    assert [o.kind for o in ch.send([("fb-1", item)])] == ["transient"]  # share not mounted: never created
    assert not drop.exists()
    drop.mkdir()
    assert [o.kind for o in ch.send([("fb-1", item)])] == ["delivered"]
    assert sorted(os.listdir(drop)) == ["fb-1.txt"]  # no temporary file left
    from adapters.base import get_postbox_format

    assert get_postbox_format("microhis").read_postbox((drop / "fb-1.txt").read_bytes()) == item


def test_http_inbox_sends_idempotency_key_and_repeats_are_dropped(tmp_path, people):
    sim = SimProcess("http", tmp_path, "http")
    try:
        route = _routing(**{AGB: {"channel": "http", "url": f"http://127.0.0.1:{sim.port}/inbox"}}).route(AGB)
        ch = HttpInboxChannel(route)
        item = make_item("fb-1", AGB, people[0])
        assert [o.detail for o in ch.send([("fb-1", item), ("fb-1", item)])] == ["HTTP 201", "HTTP 200"]
        ch.close()
        stats = sim.stop()
    finally:
        sim.stop()
    assert sim.filed() == [("fb-1", AGB, "manual")] and stats["duplicates"] == 1


# --------------------------------------------------------------------------- acceptance 4: dead letter


def test_rejected_item_goes_dead_the_next_is_delivered_and_requeue_delivers_it(engine, tmp_path, people):
    """Acceptance 4, over MLLP: AR is permanent (dead at once, OUT-010); an item that keeps failing goes dead
    after max_attempts (OUT-011); neither holds back the patient's next item; requeued after the fix,
    both are delivered with their own id."""
    reject = tmp_path / "reject.txt"
    reject.write_text("fb-0\n", "utf-8")
    sim = SimProcess("mllp", tmp_path, "mllp", "--reject-file", str(reject))
    drop = tmp_path / "absent"
    try:
        w = Worker(
            engine,
            _routing(
                **{
                    AGB: {"channel": "mllp", "host": "127.0.0.1", "port": sim.port},
                    AGB2: {"channel": "drop", "dir": str(drop), "dialect": "medicom", "max_attempts": 3},
                }
            ),
        )
        with engine.begin() as conn:
            enqueue(conn, item=make_item("fb-0", AGB, people[0]), source="x")
            enqueue(conn, item=make_item("fb-1", AGB, people[0]), source="x")
            enqueue(conn, item=make_item("fb-2", AGB2, people[1]), source="x")
            enqueue(conn, item=make_item("fb-3", AGB2, people[1]), source="x")
        w.drain(timeout=20)
        dead0, dead2 = _row(engine, "fb-0"), _row(engine, "fb-2")
        assert (
            dead0["state"] == "dead" and dead0["attempts"] == 1 and dead0["last_error"].startswith("OUT-010")
        )
        assert (
            dead2["state"] == "dead" and dead2["attempts"] == 3 and dead2["last_error"].startswith("OUT-011")
        )
        assert dead0["body"] is not None  # kept for the requeue
        assert _row(engine, "fb-1")["state"] == "delivered"  # the next one went out
        assert _row(engine, "fb-3")["state"] == "dead"  # drop dir still absent
        reject.write_text("", "utf-8")  # the fixes
        drop.mkdir()
        assert requeue(engine, ["fb-0", "fb-2", "fb-3", "fb-1", "nope"]) == [
            "error OUT-021 fb-1: the item is delivered, only dead items are requeued",
            "error OUT-020 nope: no outbox item with this id",
        ]
        w.drain(timeout=20)
        assert {i: _row(engine, i)["state"] for i in ("fb-0", "fb-2", "fb-3")} == dict.fromkeys(
            ("fb-0", "fb-2", "fb-3"), "delivered"
        )
        assert sorted(os.listdir(drop)) == ["fb-2.xml", "fb-3.xml"]
    finally:
        sim.stop()
    assert [x[0] for x in sim.filed()] == ["fb-1", "fb-0"]


# --------------------------------------------------------------------------- operations


def test_delivered_content_is_pruned_audited_and_purged(engine, tmp_path, people):
    drop = tmp_path / "d"
    drop.mkdir()
    w = Worker(engine, _routing(**{AGB: {"channel": "drop", "dir": str(drop), "dialect": "omnihis"}}))
    with engine.begin() as conn:
        for i in range(3):
            enqueue(conn, item=make_item(f"fb-{i}", AGB, people[i]), source=f"Communication/{i}")
    w.drain()
    rows = [_row(engine, f"fb-{i}") for i in range(3)]
    assert all(r["state"] == "delivered" and r["body"] is None and r["delivered_ms"] for r in rows)
    with engine.connect() as conn:
        bodies = [bytes(b) for (b,) in conn.execute(text("SELECT body FROM audit_log ORDER BY seq")).all()]
    delivered = [b for b in bodies if b'"postbox-delivery"' in b and b"delivered drop fb-" in b]
    assert len(delivered) == 3
    assert people[0].bsn.encode() in delivered[0]  # the patient is named in the audit record ...
    assert b"Geachte" not in b"".join(bodies)  # ... the letter never
    assert purge(engine, 3600) == 0
    assert purge(engine, 0) == 3
    assert counts(engine)["delivered"] == 0
    with engine.connect() as conn:
        after = conn.execute(text("SELECT COUNT(*) FROM audit_log")).scalar_one()
    assert after == len(bodies) + 1  # nothing removed from the audit log; the purge itself recorded


def test_metrics_show_depth_oldest_age_and_attempts(engine, tmp_path, people):
    metrics = OutboxMetrics()
    w = Worker(
        engine,
        _routing(**{AGB: {"channel": "drop", "dir": str(tmp_path / "none"), "dialect": "medicom"}}),
        metrics=metrics,
    )
    with engine.begin() as conn:
        enqueue(conn, item=make_item("fb-0", AGB, people[0]), source="x")
        enqueue(conn, item=make_item("fb-1", AGB2, people[1]), source="x")  # no route: stays queued
    w.run_once()
    reg = metrics.registry
    wait_until(  # the oldest item ages: at least a millisecond after it was queued
        lambda: (
            metrics.sample(engine) == {(AGB, "retrying"): 1, (AGB2, "queued"): 1}
            and reg.get_sample_value("hisgw_outbox_oldest_age_seconds", {"practice": AGB}) > 0
        ),
        what="an aged queue in the metrics",
    )
    assert reg.get_sample_value("hisgw_outbox_items", {"practice": AGB2, "state": "queued"}) == 1
    assert reg.get_sample_value("hisgw_outbox_oldest_age_seconds", {"practice": AGB}) > 0
    assert (
        reg.get_sample_value(
            "hisgw_outbox_attempts_total", {"practice": AGB, "channel": "drop", "outcome": "transient"}
        )
        == 1
    )
    assert w.unrouted() == {AGB2: 1}  # OUT-002: kept, never sent to a guess


def test_cli_list_retry_purge_and_worker_drain(engine, tmp_path, people):
    import typer

    from gateway.outbox.cli import register

    app = typer.Typer()  # what gateway/cli.py's _register_extensions does to the hisgw app
    register(app)
    url = str(engine.url)
    drop = tmp_path / "d"
    routing = tmp_path / "routing.toml"
    routing.write_text(
        f'[defaults]\nmax_attempts = 1\n[practice.{AGB}]\nchannel = "drop"\ndir = "{drop}"\n'
        'dialect = "medicom"\n',
        "utf-8",
    )
    with engine.begin() as conn:
        enqueue(conn, item=make_item("fb-0", AGB, people[0]), source="Communication/0")
    runner = CliRunner()
    r = runner.invoke(app, ["worker", "--db", url, "--routing", str(routing), "--drain"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["outbox", "list", "--db", url, "--state", "dead", "--json"])
    assert r.exit_code == 0 and json.loads(r.output.splitlines()[0])["id"] == "fb-0"
    assert "OUT-011" in json.loads(r.output)["last_error"]
    assert people[0].bsn not in r.output
    assert runner.invoke(app, ["outbox", "list", "--db", url, "--state", "lost"]).exit_code == 2
    r = runner.invoke(app, ["outbox", "retry", "--db", url, "fb-9"])
    assert r.exit_code == 1 and "OUT-020" in r.output
    drop.mkdir()
    assert runner.invoke(app, ["outbox", "retry", "--db", url, "--all-dead"]).exit_code == 0
    assert runner.invoke(app, ["worker", "--db", url, "--routing", str(routing), "--drain"]).exit_code == 0
    assert (drop / "fb-0.xml").exists()
    r = runner.invoke(app, ["outbox", "list", "--db", url])
    assert r.output.startswith("queued=0 sending=0 delivered=1 retrying=0 dead=0")
    assert runner.invoke(app, ["outbox", "purge", "--db", url, "--older-than", "1x"]).exit_code == 2
    r = runner.invoke(app, ["outbox", "purge", "--db", url, "--older-than", "0s"])
    assert r.exit_code == 0 and "purged 1" in r.output
    bad = tmp_path / "bad.toml"
    bad.write_text("[practice.1]\n", "utf-8")
    r = runner.invoke(app, ["worker", "--db", url, "--routing", str(bad)])
    assert r.exit_code == 2 and "OUT-001" in r.output


def test_worker_process_stops_on_sigterm_and_lists_items(engine, tmp_path, people):
    from gateway.outbox.testkit import worker_process

    drop = tmp_path / "d"
    drop.mkdir()
    routing = tmp_path / "routing.toml"
    routing.write_text(
        f'[defaults]\nidle_poll = 0.02\n[practice.{AGB}]\nchannel = "drop"\ndir = "{drop}"\n'
        'dialect = "omnihis"\n',
        "utf-8",
    )
    proc = worker_process(str(engine.url), routing, tmp_path)
    try:
        with engine.begin() as conn:
            enqueue(conn, item=make_item("fb-0", AGB, people[0]), source="x")
        end = time.monotonic() + 20
        while time.monotonic() < end and not (drop / "fb-0.json").exists():
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    assert list_items(engine, state="delivered")[0].id == "fb-0"


def test_one_practices_hanging_postbox_never_slows_another(engine, tmp_path, people):
    """Practice A's HIS accepts connections and never answers (every attempt waits out its 5 s timeout);
    practice B's items, in their own lane, are all delivered meanwhile."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(100)
    drop = tmp_path / "b"
    drop.mkdir()
    w = Worker(
        engine,
        _routing(
            **{
                AGB: {
                    "channel": "mllp",
                    "host": "127.0.0.1",
                    "port": silent.getsockname()[1],
                    "timeout": 5.0,
                },
                AGB2: {"channel": "drop", "dir": str(drop), "dialect": "omnihis"},
            }
        ),
    )
    with engine.begin() as conn:
        for i in range(20):
            enqueue(conn, item=make_item(f"a-{i}", AGB, people[i % 5]), source="x")
            enqueue(conn, item=make_item(f"b-{i}", AGB2, people[i % 5]), source="x")
    stop = threading.Event()
    runner = threading.Thread(target=w.run, args=(stop,))
    started = time.monotonic()
    runner.start()
    try:
        while len(os.listdir(drop)) < 20 and time.monotonic() - started < 10:
            time.sleep(0.02)
        took = time.monotonic() - started
    finally:
        stop.set()
        silent.close()  # A's pending connection is reset: its lane stops without waiting out the timeout
        runner.join(10)
    assert len(os.listdir(drop)) == 20
    assert took < 4  # B's 20 items (4 per patient, in order) while A's first attempt still waits
    a0 = _row(engine, "a-0")  # A's first batch waited out its timeout: sent, no ACK, retried with the same id
    assert a0["attempts"] == 1 and a0["state"] == "retrying" and a0["error_class"] == "ambiguous"


def test_postgresql_enqueuing_transactions_take_turns_so_seq_order_is_commit_order(pg_url, people):
    """Two open transactions enqueue for the same patient: the second waits for the first to end, so a
    worker can never see the later item committed while the earlier one is still invisible."""
    eng = make_engine(pg_url)
    migrate(eng)
    first_in, release, second_done = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:
        with eng.begin() as conn:
            enqueue(conn, item=make_item("fb-1", AGB, people[0]), source="x")
            first_in.set()
            release.wait(10)

    def second() -> None:
        first_in.wait(10)
        with eng.begin() as conn:
            enqueue(conn, item=make_item("fb-2", AGB, people[0]), source="x")
        second_done.set()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    try:
        assert not second_done.wait(0.5)  # blocked behind the first transaction
        release.set()
        assert second_done.wait(10)
    finally:
        release.set()
        for t in threads:
            t.join(10)
    try:
        assert _row(eng, "fb-1")["seq"] < _row(eng, "fb-2")["seq"]
    finally:
        eng.dispose()
