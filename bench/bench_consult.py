"""Consult workflow speed (issue 6): each step of a digital consult through the HTTP API, in process.

    uv run python -m bench.bench_consult [--consults 100]

The gateway on a fresh SQLite database (WAL) with the test clients of ``tests/conftest.py`` (driven in
process over ASGI, no sockets: this measures the gateway, not the network), a hospital directory, and an
export of the real NHG professional summary in the Medicom dialect (~10 kB). Per consult:
``$send-consult`` (read the export, build the summary narrowed to one episode, document Bundle, Patient,
ServiceRequest, DocumentReference, Task, Communication, consult row, AuditEvent), ``$pickup``,
``$answer`` (Communication + outbox item), ``$close`` with a declaration (two ChargeItems); then
``$overdue`` over all of them and ``hisgw declarations`` logic for the quarter. Medians and p95 per step
go to ``docs/performance.md`` section "Consult workflow". No target was set by the issue; the numbers are
a baseline (a GP waits for ``$send-consult``: it should stay well under a second).
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from pathlib import Path

from bench._report import machine, write_section


def _p95(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.95) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consults", type=int, default=100)
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/performance.md alone")
    args = ap.parse_args()

    from gateway.consult.declarations import declare
    from tests.conftest import Service
    from tests.test_consult_support import act, export_bytes, hospital_directory, install_clock, ok, send

    with tempfile.TemporaryDirectory() as tmp:
        svc = Service(Path(tmp), f"sqlite:///{Path(tmp) / 'gw.db'}").start()
        try:
            clock = install_clock(svc)
            d = hospital_directory(svc)
            export = export_bytes()
            steps: dict[str, list[float]] = {k: [] for k in ("$send-consult", "$pickup", "$answer", "$close")}

            def timed(name: str, fn):
                t = time.perf_counter()
                r = fn()
                steps[name].append((time.perf_counter() - t) * 1000)
                return r

            for _ in range(3):  # warm-up
                ok(send(svc, d, export=export), 201)
            for _ in range(args.consults):
                clock.advance(minutes=1)
                tid = ok(timed("$send-consult", lambda: send(svc, d, export=export)), 201)["id"]
                ok(
                    timed(
                        "$pickup", lambda tid=tid: act(svc, tid, "pickup", specialist="dr. Hart", directory=d)
                    )
                )
                ok(
                    timed(
                        "$answer",
                        lambda tid=tid: act(
                            svc, tid, "answer", specialist="dr. Hart", directory=d, text="Advies."
                        ),
                    )
                )
                ok(
                    timed(
                        "$close",
                        lambda tid=tid: act(
                            svc,
                            tid,
                            "close",
                            specialist="dr. Hart",
                            directory=d,
                            declaration=True,
                            newTreatmentQuestion=True,
                            noOpenDbc=True,
                        ),
                    )
                )
            clock.set(dt.datetime(2026, 10, 1, 6, 0, tzinfo=dt.UTC))
            t = time.perf_counter()
            overdue = ok(svc.request("GET", "/Task/$overdue"))
            overdue_ms = (time.perf_counter() - t) * 1000
            t = time.perf_counter()
            with svc.engine.begin() as conn:
                result = declare(conn, "2026Q3", clock.now())
            declare_ms = (time.perf_counter() - t) * 1000
        finally:
            svc.close()

    rows = ["| step | consults | median (ms) | p95 (ms) |", "|---|---:|---:|---:|"]
    for name, xs in steps.items():
        rows.append(f"| `{name}` | {len(xs)} | {statistics.median(xs):.1f} | {_p95(xs):.1f} |")
    body = "\n".join(
        [
            machine() + ".",
            f"In process (ASGI, no sockets), SQLite WAL, {args.consults} consults; export: the real NHG "
            f"professional summary as Medicom XML ({len(export):,} bytes), narrowed to one episode.",
            "No target in the issue; a baseline. `bench/bench_consult.py`.",
            "",
            *rows,
            "",
            f"`GET /Task/$overdue` over {args.consults + 3} open-or-closed consults "
            f"({overdue.get('total', 0)} overdue): {overdue_ms:.1f} ms. Sealing and reading the quarter's "
            f"declaration ({len(result.consult_ids)} consults, "
            f"{sum(len(b.charge_items) for b in result.insurers.values())} "
            f"ChargeItems): {declare_ms:.1f} ms.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("Consult workflow", body)


if __name__ == "__main__":
    main()
