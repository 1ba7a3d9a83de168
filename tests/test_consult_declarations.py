"""Acceptance 4 (issue 6): the quarterly declaration export (``hisgw declarations`` in a real process, and
the API operation): idempotent, no consult in two quarters, totals per insurer equal the ChargeItems."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from gateway.consult.resources import INSURER_EXTENSION, NO_DEDUCTIBLE_EXTENSION
from tests.test_consult_support import (
    ROOT,
    act,
    close_declared,
    export_bytes,
    hospital_directory,
    install_clock,
    ok,
    param,
    parameters,
    send,
)

AMS = ZoneInfo("Europe/Amsterdam")


def at(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=AMS).astimezone(dt.UTC)


def hisgw(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def consult(svc, d, clock, closed_at: dt.datetime, *, uzovi: str, declaration: bool = True) -> str:
    clock.set(closed_at - dt.timedelta(hours=5))
    tid = ok(send(svc, d, export=export_bytes(uzovi=uzovi)), 201)["id"]
    ok(act(svc, tid, "pickup", specialist="dr. Hart", directory=d))
    ok(act(svc, tid, "answer", specialist="dr. Hart", directory=d, text="Advies."))
    clock.set(closed_at)
    if declaration:
        ok(close_declared(svc, tid, d))
    else:
        ok(act(svc, tid, "close", specialist="dr. Hart", directory=d, declaration=False))
    return tid


def read_out(out: Path, quarter: str) -> dict[str, tuple[list[dict], dict]]:
    got = {}
    for f in sorted(out.glob(f"declarations-{quarter}-*.csv")):
        uzovi = f.stem.rsplit("-", 1)[1]
        rows = list(csv.DictReader(io.StringIO(f.read_text("utf-8"))))
        bundle = orjson.loads(f.with_suffix(".json").read_bytes())
        got[uzovi] = (rows, bundle)
    return got


@pytest.fixture
def svc(both_service):
    return both_service


def test_quarterly_declarations(svc, tmp_path):
    clock = install_clock(svc)
    d = hospital_directory(svc)
    q3 = [
        consult(svc, d, clock, at(2026, 7, 14, 11, 0), uzovi="3311"),
        consult(svc, d, clock, at(2026, 8, 3, 9, 30), uzovi="7029"),
        consult(svc, d, clock, at(2026, 9, 30, 23, 59), uzovi="3311"),  # the last minute of Q3, local time
    ]
    consult(svc, d, clock, at(2026, 9, 12, 10, 0), uzovi="3311", declaration=False)  # administrative
    q4 = [consult(svc, d, clock, at(2026, 10, 1, 0, 1), uzovi="3311")]  # 22:01 UTC on 30 September
    db = ["--db", svc.settings.db_url]

    # Q3 cannot be declared while it runs
    r = hisgw(
        "declarations", "--quarter", "2026Q3", *db, "--as-of", "2026-09-30T23:00:00+02:00", cwd=tmp_path
    )
    assert r.returncode == 1 and "CON-040" in r.stderr, r.stderr

    out1, out2 = tmp_path / "run1", tmp_path / "run2"
    args = ("declarations", "--quarter", "2026Q3", *db, "--as-of", "2026-10-02T09:00:00+02:00")
    r1 = hisgw(*args, "--out-dir", str(out1), cwd=tmp_path)
    assert r1.returncode == 0, r1.stderr
    first = read_out(out1, "2026Q3")
    assert set(first) == {"3311", "7029"}
    assert {row["consult"] for rows, _ in first.values() for row in rows} == set(q3)

    # totals per insurer = the ChargeItems of those consults, read through the FHIR API
    charges = ok(svc.request("GET", "/ChargeItem?_count=100", as_="hospital-h"))["entry"]
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for e in charges:
        c = e["resource"]
        tid = c["supportingInformation"][0]["reference"].split("/")[1]
        if tid in q3:
            uzovi = next(
                x["valueIdentifier"]["value"] for x in c["extension"] if x["url"] == INSURER_EXTENSION
            )
            expected[uzovi] += Decimal(str(c["priceOverride"]["value"]))
    for uzovi, (rows, bundle) in first.items():
        assert sum(Decimal(row["amount_eur"]) for row in rows) == expected[uzovi]
        assert {row["party"] for row in rows} == {"gp", "specialist"}
        assert {row["deductible"] for row in rows} == {"no"}  # not at the cost of the eigen risico
        assert all(
            {"url": NO_DEDUCTIBLE_EXTENSION, "valueBoolean": True} in e["resource"]["extension"]
            for e in bundle["entry"]
        )
        assert sorted(e["resource"]["id"] for e in bundle["entry"]) == sorted(
            row["charge_item"] for row in rows
        )
        assert f"{uzovi} " in r1.stdout and f"EUR {expected[uzovi]:.2f}" in r1.stdout
    assert len(first["3311"][0]) == 4 and len(first["7029"][0]) == 2

    # a second run gives the same files, byte for byte, even when run later
    r2 = hisgw(
        "declarations",
        "--quarter",
        "2026Q3",
        *db,
        "--as-of",
        "2026-12-01T09:00:00+01:00",
        "--out-dir",
        str(out2),
        cwd=tmp_path,
    )
    assert r2.returncode == 0, r2.stderr
    for f in sorted(out1.iterdir()):
        assert (out2 / f.name).read_bytes() == f.read_bytes(), f.name

    # a consult closed in Q3 after Q3 was sealed (a clock off) goes into Q4, never into both
    late = consult(svc, d, clock, at(2026, 9, 29, 10, 0), uzovi="7029")
    r3 = hisgw(*args, "--out-dir", str(tmp_path / "run3"), cwd=tmp_path)
    assert read_out(tmp_path / "run3", "2026Q3") == first
    # the API gives the same sealed set
    clock.set(at(2026, 10, 5, 9, 0))
    api = ok(
        svc.request(
            "POST", "/ChargeItem/$declarations", as_="hospital-h", json=parameters(param("quarter", "2026Q3"))
        )
    )
    api_consults = {
        row.split(",")[2]
        for p in api["parameter"]
        if p["name"] == "insurer"
        for part in p["part"]
        if part["name"] == "csv"
        for row in part["valueString"].splitlines()[1:]
    }
    assert api_consults == set(q3)

    r4 = hisgw(
        "declarations",
        "--quarter",
        "2026Q4",
        *db,
        "--as-of",
        "2027-01-04T09:00:00+01:00",
        "--out-dir",
        str(tmp_path / "q4"),
        cwd=tmp_path,
    )
    assert r4.returncode == 0, r4.stderr
    q4_consults = {row["consult"] for rows, _ in read_out(tmp_path / "q4", "2026Q4").values() for row in rows}
    assert q4_consults == set(q4) | {late}
    assert not q4_consults & set(q3)
    assert r3.returncode == 0
