"""The Edifact drop channel (issue 17, acceptance 4): MEDVRI interchanges for a practice's mail client
(routing ``channel = "edifact"``, transport ``numbered-files``), numbered, atomic, exactly once under failing
postboxes and kill -9 (the worker and the test postbox are child processes, as in
tests/test_outbox_chaos.py)."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest

from gateway.db import make_engine, migrate
from gateway.outbox import enqueue
from gateway.outbox.channels import NumberedDropChannel
from gateway.outbox.config import Route, parse_routing
from gateway.outbox.numbered_drop import JOURNAL, read_journal
from gateway.outbox.testkit import SimProcess, WorkerZygote, make_item, patients, worker_process
from mappings.edifact.format import read_interchange
from tests.test_outbox_chaos import _states, _wait_delivered

PRACTICES = ["03000001", "03000002"]


def _route(directory: Path) -> Route:
    doc = {"practice": {"03000001": {"channel": "edifact", "dir": str(directory), "sender": "HISGW"}}}
    return parse_routing(doc).practices["03000001"]


def _item(iid: str, agb: str = "03000001", text: str | None = None):
    p = patients(random.Random(iid), 1, prefix=f"{iid}-")[0]
    return make_item(iid, agb, p, text=text)


def test_files_are_numbered_interchanges_and_a_retry_keeps_its_number(tmp_path: Path) -> None:
    ch = NumberedDropChannel(_route(tmp_path))
    out = ch.send([("fb-1", _item("fb-1")), ("fb-2", _item("fb-2"))])
    assert [o.kind for o in out] == ["delivered", "delivered"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [JOURNAL, "00000001.edi", "00000002.edi"]
    assert read_journal(tmp_path) == {1: "fb-1", 2: "fb-2"}
    (x,) = read_interchange((tmp_path / "00000002.edi").read_bytes(), source="00000002.edi")
    assert x.envelope.reference == "00000002" and x.envelope.sender == "HISGW"
    assert x.item.practice_agb == "03000001"  # type: ignore[union-attr]
    sent = _item("fb-2").correspondence.text
    got = x.item.correspondence.text  # type: ignore[union-attr]
    assert got.replace("\n", "") == sent.replace("\n", "")  # every character, long lines wrapped at 70
    assert max(len(line) for line in got.split("\n")) <= 70
    # a retry of fb-1 (the answer was lost): the same number, the file is there: delivered, not rewritten
    again = NumberedDropChannel(_route(tmp_path)).send([("fb-1", _item("fb-1"))])
    assert [o.detail for o in again] == ["already there"]
    # the mail client took the file; a late retry writes the same interchange number again (dropped there)
    (tmp_path / "00000001.edi").unlink()
    ch.send([("fb-1", _item("fb-1")), ("fb-3", _item("fb-3"))])
    assert read_journal(tmp_path) == {1: "fb-1", 2: "fb-2", 3: "fb-3"}
    assert (tmp_path / "00000001.edi").exists()


def test_absent_directory_is_transient_and_unwritable_text_permanent(tmp_path: Path) -> None:
    gone = NumberedDropChannel(_route(tmp_path / "not-mounted"))
    assert [o.kind for o in gone.send([("fb-1", _item("fb-1"))])] == ["transient"]
    assert not (tmp_path / "not-mounted").exists()
    ch = NumberedDropChannel(_route(tmp_path))
    assert [o.kind for o in ch.send([("fb-9", _item("fb-9", text="Koffie \u2615"))])] == ["permanent"]


def test_torn_journal_line_is_ignored(tmp_path: Path) -> None:
    (tmp_path / JOURNAL).write_text("1 fb-1\n2 fb-", "utf-8")  # a crash mid-append
    NumberedDropChannel(_route(tmp_path)).send([("fb-7", _item("fb-7"))])
    assert read_journal(tmp_path)[3] == "fb-7"


@pytest.mark.slow
def test_edifact_drop_exactly_once_under_failures_and_kill_9(tmp_path: Path) -> None:
    """200 items to two practices through an Edifact drop directory that fails 30% of scans and goes away
    for a stretch, the worker killed by SIGKILL 20 times and crashing right after sends: every item filed
    once, in order per patient, one interchange number per item."""
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    engine = make_engine(url)
    migrate(engine)
    drop = tmp_path / "zorgmail-uit"
    sim = SimProcess(
        "numbered",
        tmp_path,
        "edifact",
        "--fail-rate",
        "0.3",
        "--seed",
        "7",
        "--outage",
        "1:2",
        directory=drop,
        dialect="edifact-medvri",
    )
    routing = tmp_path / "routing.toml"
    lines = [
        "[defaults]",
        "backoff_initial = 0.02",
        "backoff_max = 0.3",
        "max_attempts = 1000",
        "lease_seconds = 0.8",
        "timeout = 0.5",
        "batch = 20",
        "idle_poll = 0.02",
    ]
    for agb in PRACTICES:
        lines.append(f'[practice.{agb}]\nchannel = "edifact"\ndir = "{drop}"\nsender = "HISGW"')
    routing.write_text("\n".join(lines) + "\n", "utf-8")
    rng = random.Random(3)
    pats = {agb: patients(rng, 10, prefix=f"{agb}-") for agb in PRACTICES}
    ids: list[str] = []
    order: dict[str, list[str]] = {}

    def add(count: int) -> None:
        with engine.begin() as conn:
            for _ in range(count):
                n = len(ids)
                agb = PRACTICES[n % 2]
                p = rng.choice(pats[agb])
                iid = f"ed-{n:04d}"
                enqueue(conn, item=make_item(iid, agb, p), source=f"Communication/{n}")
                ids.append(iid)
                order.setdefault(p.key, []).append(iid)

    zygote = WorkerZygote(url, routing, tmp_path)
    kills = lives = 0
    add(50)
    try:
        while kills < 20 or len(ids) < 200:  # then a last, unharmed worker delivers the rest
            assert lives < 200, f"only {kills} kills in {lives} lives: {_states(engine)}"
            pid = zygote.spawn("after-send=0.05")
            lives += 1
            end = time.monotonic() + rng.uniform(0.1, 0.8)
            while time.monotonic() < end and zygote.alive(pid):
                time.sleep(0.01)
            if zygote.alive(pid):
                os.kill(pid, signal.SIGKILL)
                kills += 1
            if len(ids) < 200:
                add(min(25, 200 - len(ids)))
        crashes = zygote.faults_injected()
        final = worker_process(url, routing, tmp_path)
        try:
            states = _wait_delivered(engine, 200, 120)
        finally:
            final.send_signal(signal.SIGTERM)
            final.wait(20)
    finally:
        zygote.close()
        stats = sim.stop()
        engine.dispose()
    assert states == {"delivered": 200}
    assert kills >= 20 and crashes >= 1, (kills, crashes)
    filed = sim.filed()
    got = [f[0] for f in filed]
    assert sorted(got) == sorted(ids) and len(got) == len(set(got)), "lost or filed twice"
    position = {iid: i for i, iid in enumerate(got)}
    for key, seq in order.items():
        assert [position[i] for i in seq] == sorted(position[i] for i in seq), f"patient {key} out of order"
    assert stats["failed"] > 0 and stats["down"] >= 1, stats
    numbers = read_journal(drop)
    assert sorted(numbers.values()) == sorted(ids)  # one interchange number per item, never two
    assert sorted(numbers) == list(range(1, 201))
