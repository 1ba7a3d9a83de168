"""Issue 7 acceptance 1-3: 1,000 items to 10 practices over every channel, through failing postboxes,
killed workers and competing workers. Real parts only: the simulators and the workers are child processes
(``python -m gateway.outbox.simulators``, ``python -m gateway.outbox worker``), the database a SQLite
file or the throwaway PostgreSQL cluster, every connection loopback."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import text

from gateway.db import make_engine, migrate
from gateway.outbox import enqueue
from gateway.outbox.testkit import SimProcess, WorkerZygote, make_item, patients, worker_process

N_ITEMS = 1000
PRACTICES = [f"020000{i:02d}" for i in range(10)]
# practice index -> channel: 2 MLLP, 1 Edifact mail-client directory (numbered MEDVRI interchanges, issue 17),
# 2 HTTP inbox, 2 FHIR, 3 drop directories (one per dialect)
CHANNEL_OF = ["mllp", "mllp", "edifact", "http", "http", "fhir", "fhir", "drop", "drop", "drop"]
DIALECT_OF = {7: "medicom", 8: "microhis", 9: "omnihis"}
FAST = {
    "backoff_initial": 0.02,
    "backoff_max": 0.3,
    "max_attempts": 1000,
    "lease_seconds": 1.5,
    "timeout": 1.0,
    "batch": 20,
    "idle_poll": 0.02,
}

pytestmark = pytest.mark.slow


class Scenario:
    """Six postboxes (MLLP, HTTP for inbox and FHIR, an Edifact mail-client directory, three drop
    directories), a routing file and the items.
    """

    def __init__(self, tmp: Path, *, fail_rate: float, outages: bool, limits: dict | None = None):
        self.tmp = tmp
        common = ["--fail-rate", str(fail_rate), "--seed", "7"]
        out = (lambda spec: ["--outage", spec]) if outages else (lambda spec: [])
        self.sims = {
            "mllp": SimProcess("mllp", tmp, "mllp", *common, *out("1.5:3")),
            "http": SimProcess("http", tmp, "http", *common, *out("2.5:3")),
        }
        self.sims["edifact"] = SimProcess(
            "numbered",
            tmp,
            "edifact",
            *common,
            *out("2:2"),
            directory=tmp / "edifact-out",
            dialect="edifact-medvri",
        )
        for i, dialect in DIALECT_OF.items():
            self.sims[f"drop{i}"] = SimProcess(
                "drop",
                tmp,
                f"drop{i}",
                *common,
                *out("1:2"),
                directory=tmp / f"drop-{dialect}",
                dialect=dialect,
            )
        lines = ["[defaults]"] + [f"{k} = {v}" for k, v in {**FAST, **(limits or {})}.items()]
        for i, agb in enumerate(PRACTICES):
            ch = CHANNEL_OF[i]
            lines.append(f'[practice.{agb}]\nchannel = "{ch}"')
            if ch == "mllp":
                lines.append(f'host = "127.0.0.1"\nport = {self.sims["mllp"].port}')
            elif ch == "edifact":
                lines.append(f'dir = "{tmp / "edifact-out"}"\nsender = "HISGW"')
            elif ch in ("http", "fhir"):
                path = "/inbox" if ch == "http" else "/fhir"
                lines.append(f'url = "http://127.0.0.1:{self.sims["http"].port}{path}"')
            else:
                lines.append(f'dir = "{tmp / f"drop-{DIALECT_OF[i]}"}"\ndialect = "{DIALECT_OF[i]}"')
        self.routing = tmp / "routing.toml"
        self.routing.write_text("\n".join(lines) + "\n", "utf-8")
        rng = random.Random(11)
        self.patients = {agb: patients(rng, 25, prefix=f"{agb}-") for agb in PRACTICES}
        self.order: dict[str, list[str]] = defaultdict(list)  # patient key -> item ids in enqueue order
        self.ids: list[str] = []
        self.rng = rng

    def enqueue(self, engine, count: int) -> None:
        with engine.begin() as conn:
            for _ in range(count):
                n = len(self.ids)
                agb = PRACTICES[n % 10]
                p = self.rng.choice(self.patients[agb])
                iid = f"fb-{n:05d}"
                enqueue(conn, item=make_item(iid, agb, p), source=f"Communication/{n}")
                self.ids.append(iid)
                self.order[p.key].append(iid)

    def stop(self) -> dict[str, dict]:
        return {name: sim.stop() for name, sim in self.sims.items()}

    def check_filed_exactly_once_in_order(self) -> None:
        position: dict[str, tuple[str, int]] = {}
        total = 0
        for name, sim in self.sims.items():
            for i, (iid, _practice, _filing) in enumerate(sim.filed()):
                assert iid not in position, f"{iid} filed twice ({name})"
                position[iid] = (name, i)
                total += 1
        assert total == len(self.ids) == len(set(position))
        assert set(position) == set(self.ids), "items left behind"
        for key, ids in self.order.items():
            places = [position[i] for i in ids]
            assert len({p[0] for p in places}) == 1
            assert [p[1] for p in places] == sorted(p[1] for p in places), f"patient {key} out of order"


def _states(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = dict(conn.execute(text("SELECT state, COUNT(*) FROM outbox_item GROUP BY state")).all())
        conn.rollback()
    return rows


def _wait_delivered(engine, n: int, timeout: float, tick=None) -> dict[str, int]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        states = _states(engine)
        if states.get("delivered", 0) == n:
            return states
        if tick:
            tick()
        time.sleep(0.1)
    raise AssertionError(f"not delivered in time: {_states(engine)}")


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def test_1000_items_10_practices_failing_postboxes_filed_once_in_order(tmp_path, sqlite_url):
    """Acceptance 1: 30% failed attempts, every postbox fully down for a stretch; no manual action."""
    sc = Scenario(tmp_path, fail_rate=0.3, outages=True)
    engine = make_engine(sqlite_url)
    sc.enqueue(engine, 500)
    worker = worker_process(sqlite_url, sc.routing, tmp_path)
    try:
        for _ in range(10):  # the rest arrives while the worker runs (and while postboxes are down)
            time.sleep(0.2)
            sc.enqueue(engine, 50)
        states = _wait_delivered(engine, N_ITEMS, 150)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
        stats = sc.stop()
    from gateway.audit import verify

    chain = verify(engine)  # ten lanes appending attempts concurrently: one intact hash chain
    engine.dispose()
    assert chain.ok and chain.records > N_ITEMS, chain
    assert states == {"delivered": N_ITEMS}
    sc.check_filed_exactly_once_in_order()
    assert all(s["failed"] > 0 for s in stats.values()), stats  # the failures really happened ...
    assert all(s["down"] >= 1 for s in stats.values()), stats  # ... and so did the outages
    assert stats["mllp"]["duplicates"] + stats["http"]["duplicates"] > 0  # ambiguous sends were repeated


def test_worker_killed_50_times_nothing_lost_nothing_twice(tmp_path, sqlite_url):
    """Acceptance 2: as 1, with the worker killed by SIGKILL >= 50 times at random moments while it delivers,
    and exiting by itself right after a send, before recording it (fault injection), on top. One worker at a
    time, so a short lease only shortens the wait for a killed worker's items."""
    sc = Scenario(tmp_path, fail_rate=0.3, outages=True, limits={"lease_seconds": 0.8, "timeout": 0.5})
    engine = make_engine(sqlite_url)
    zygote = WorkerZygote(sqlite_url, sc.routing, tmp_path)
    rng = random.Random(5)
    kills = lives = 0
    sc.enqueue(engine, 100)
    try:
        while kills < 50 or _states(engine).get("delivered", 0) < N_ITEMS:
            assert lives < 300, f"not delivered after {kills} kills: {_states(engine)}"
            pid = zygote.spawn("after-send=0.02")
            lives += 1
            end = time.monotonic() + rng.uniform(0.1, 1.0)
            while time.monotonic() < end and zygote.alive(pid):
                time.sleep(0.01)
            if zygote.alive(pid):
                os.kill(pid, signal.SIGKILL)
                kills += 1
            if len(sc.ids) < N_ITEMS:
                sc.enqueue(engine, min(25, N_ITEMS - len(sc.ids)))
        crashes = zygote.faults_injected()
        final = worker_process(sqlite_url, sc.routing, tmp_path)  # a last, unharmed run (nothing is left)
        try:
            states = _wait_delivered(engine, N_ITEMS, 60)
        finally:
            final.send_signal(signal.SIGTERM)
            final.wait(20)
    finally:
        zygote.close()
        stats = sc.stop()
        engine.dispose()
    assert kills >= 50
    assert crashes >= 1, "no crash right after a send happened"
    assert states == {"delivered": N_ITEMS}
    sc.check_filed_exactly_once_in_order()
    assert sum(s["duplicates"] for s in stats.values()) > 0  # resent after kills, dropped by the postboxes


def test_two_workers_on_postgresql_each_item_sent_by_exactly_one(tmp_path, pg_url):
    """Acceptance 3: two worker processes on one PostgreSQL, 1,000 items, healthy postboxes: every item is
    sent once (the postboxes saw 1,000 attempts, no repeat), and both workers took part."""
    engine = make_engine(pg_url)
    migrate(engine)
    sc = Scenario(tmp_path, fail_rate=0.0, outages=False, limits={"lease_seconds": 60, "batch": 10})
    workers = [worker_process(pg_url, sc.routing, tmp_path, log_name=f"pg-worker{i}") for i in range(2)]
    try:
        for _ in range(10):  # both are running: the items arrive while they compete for them
            sc.enqueue(engine, N_ITEMS // 10)
            time.sleep(0.05)
        states = _wait_delivered(engine, N_ITEMS, 120)
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(20)
        stats = sc.stop()
    with engine.connect() as conn:
        senders = [
            r
            for r in conn.execute(text("SELECT body FROM audit_log WHERE outcome = '0'")).all()
            if b'"postbox-delivery"' in bytes(r[0])
        ]
    engine.dispose()
    assert states == {"delivered": N_ITEMS}
    sc.check_filed_exactly_once_in_order()
    assert sum(s["attempts"] for s in stats.values()) == N_ITEMS, stats
    assert sum(s["duplicates"] for s in stats.values()) == 0, stats
    import orjson

    by_worker: dict[str, int] = defaultdict(int)
    per_item: dict[str, int] = defaultdict(int)
    for (body,) in senders:
        ev = orjson.loads(bytes(body))
        by_worker[ev["agent"][0]["who"]["identifier"]["value"]] += 1
        per_item[
            [e["what"]["reference"] for e in ev["entity"] if "OutboxItem/" in e["what"].get("reference", "")][
                0
            ]
        ] += 1
    assert len(per_item) == N_ITEMS and set(per_item.values()) == {1}
    assert len(by_worker) == 2 and min(by_worker.values()) > 0, by_worker
