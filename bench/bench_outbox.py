"""Postbox delivery speed (issue 7, acceptance 6): the delivery worker sending MDM^T02 over MLLP to the HIS
simulator on loopback.

1. Sustained delivery: N items for 10 practices (distinct patients) already queued in a SQLite (WAL) database;
   one worker process (``python -m gateway.outbox worker``, 10 lanes, shipped defaults but ``batch``) sends
   them to one MLLP simulator process, which reads every message with the MDM reader, files it by MSH-10 and
   acknowledges. Rate = items / (last delivery confirmed - first delivery confirmed), from the outbox rows.
   Target: >= 500 items/s.
2. Answer to filed: items enqueued one transaction at a time at a steady rate while the worker runs (shipped
   defaults: ``idle_poll`` 0.2 s); delay = the simulator's filing time - the enqueue time. Target: p99 < 1 s.

Run: ``uv run python -m bench.bench_outbox [--items N] [--rate R] [--seconds S] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402

from bench._report import machine, write_section  # noqa: E402
from gateway.db import make_engine, migrate  # noqa: E402
from gateway.outbox import enqueue  # noqa: E402
from gateway.outbox.testkit import SimProcess, make_item, patients, worker_process  # noqa: E402

PRACTICES = [f"050000{i:02d}" for i in range(10)]
RATE_TARGET = 500
P99_TARGET_MS = 1000


def _routing(tmp: Path, port: int, **defaults) -> Path:
    lines = ["[defaults]"] + [f"{k} = {v}" for k, v in defaults.items()]
    for agb in PRACTICES:
        lines += [f"[practice.{agb}]", 'channel = "mllp"', 'host = "127.0.0.1"', f"port = {port}"]
    path = tmp / "routing.toml"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def _wait(engine, n: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with engine.connect() as conn:
            done = conn.execute(
                text("SELECT COUNT(*) FROM outbox_item WHERE state = 'delivered'")
            ).scalar_one()
            conn.rollback()
        if done >= n:
            return
        time.sleep(0.05)
    raise TimeoutError(f"only {done} of {n} delivered")


def sustained(tmp: Path, n: int, batch: int) -> dict:
    sim = SimProcess("mllp", tmp, "sustained")
    url = f"sqlite:///{tmp / 'sustained.db'}"
    engine = make_engine(url)
    migrate(engine)
    people = {agb: patients(random.Random(i), 200, prefix=f"{agb}-") for i, agb in enumerate(PRACTICES)}
    with engine.begin() as conn:
        for i in range(n):
            agb = PRACTICES[i % 10]
            enqueue(
                conn, item=make_item(f"fb-{i:06d}", agb, people[agb][(i // 10) % 200]), source=f"Task/{i}"
            )
    routing = _routing(tmp, sim.port, batch=batch)
    started = time.monotonic()
    worker = worker_process(url, routing, tmp, log_name="sustained-worker")
    try:
        _wait(engine, n, 600)
        wall = time.monotonic() - started
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        stats = sim.stop()
    with engine.connect() as conn:
        first, last = conn.execute(text("SELECT MIN(delivered_ms), MAX(delivered_ms) FROM outbox_item")).one()
    engine.dispose()
    filed = sim.filed()
    assert len(filed) == n == len({f[0] for f in filed}), "not every item filed exactly once"
    return {
        "n": n,
        "rate": n / max((last - first) / 1000, 1e-3),
        "wall": wall,
        "batch": batch,
        "duplicates": stats.get("duplicates", 0),
    }


def latency(tmp: Path, rate: float, seconds: float) -> dict:
    sim = SimProcess("mllp", tmp, "latency")
    url = f"sqlite:///{tmp / 'latency.db'}"
    engine = make_engine(url)
    migrate(engine)
    people = {agb: patients(random.Random(i), 50, prefix=f"{agb}-") for i, agb in enumerate(PRACTICES)}
    routing = _routing(tmp, sim.port)  # shipped defaults
    worker = worker_process(url, routing, tmp, log_name="latency-worker")
    created: dict[str, int] = {}
    n = int(rate * seconds)
    try:
        start = time.monotonic()
        for i in range(n):
            due = start + i / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            agb = PRACTICES[i % 10]
            iid = f"lat-{i:06d}"
            with engine.begin() as conn:  # the answer's transaction
                enqueue(conn, item=make_item(iid, agb, random.choice(people[agb])), source=f"Task/{i}")
            created[iid] = int(time.time() * 1000)
        _wait(engine, n, 60)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)
        sim.stop()
    engine.dispose()
    at = sim.filed_at()
    delays = sorted(max(0, at[i] - created[i]) for i in created)
    q = statistics.quantiles(delays, n=100)
    return {"n": n, "rate": rate, "p50": q[49], "p95": q[94], "p99": q[98], "max": delays[-1]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args(argv)
    load = os.getloadavg()[0]  # other work on the machine shows in the numbers
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        s = sustained(tmp, a.items, a.batch)
        lat = latency(tmp, a.rate, a.seconds)
    ok_rate = s["rate"] >= RATE_TARGET
    ok_p99 = lat["p99"] < P99_TARGET_MS
    row_rate = (
        f"| sustained delivery (first to last confirmed, batch {s['batch']}) | {s['n']:,} "
        f"| **{s['rate']:,.0f} items/s** | >= {RATE_TARGET} items/s | {'yes' if ok_rate else 'NO'} |"
    )
    row_p99 = (
        f"| answer -> filed at {lat['rate']:.0f} answers/s, p50 / p95 / p99 / max | {lat['n']:,} "
        f"| {lat['p50']:.0f} / {lat['p95']:.0f} / **{lat['p99']:.0f}** / {lat['max']:.0f} ms "
        f"| p99 < {P99_TARGET_MS} ms | {'yes' if ok_p99 else 'NO'} |"
    )
    body = f"""{machine()}; load average {load:.1f} at the start.
One worker process (10 lanes, one per practice) sending MDM^T02 over MLLP on loopback to one HIS simulator
process (`python -m gateway.outbox.simulators mllp`: reads each message with the MDM reader, files it by
MSH-10, acknowledges); SQLite WAL. `bench/bench_outbox.py`.

| measurement | items | result | target | met |
|---|---:|---:|---:|---|
{row_rate}
{row_p99}

Sustained run: {s["n"]:,} items queued first, wall time from the worker's start {s["wall"]:.1f} s
(includes its start-up and migration check), {s["duplicates"]} repeats at the postbox.
Answer -> filed: each answer is one enqueue transaction; the worker runs with the shipped defaults
(idle poll 0.2 s), so the delay is mostly the poll interval plus one claim, send, ACK and record.
"""
    print(body)
    if not a.no_write:
        write_section("Postbox delivery", body)
    return 0 if ok_rate and ok_p99 else 1


if __name__ == "__main__":
    sys.exit(main())
