"""MicroHIS-style line records (docs/dialects/microhis.md): round trips, golden cases, bad input, bulk."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.microhis import FORMAT
from mappings import model as m
from mappings.problems import InputError, ProblemSink
from tests.factories import small_dossier
from tests.golden_util import cases, check_or_write, load_dossier, load_postbox
from tests.strategies import dossiers, postbox_items


@settings(max_examples=500, deadline=None)
@given(dossiers())
def test_read_write_round_trip_and_byte_stable(d):
    data = FORMAT.write(d)
    back = FORMAT.read(data, source="x.txt")
    assert back == d
    assert FORMAT.write(back) == data


@settings(max_examples=50, deadline=None)
@given(st.lists(dossiers(max_items=2), min_size=0, max_size=4))
def test_many_patients_stream_round_trip(ds):
    buf = io.BytesIO()
    assert FORMAT.write_many(ds, buf) == len(ds)
    assert list(FORMAT.iter_read(io.BytesIO(buf.getvalue()), source="bulk.txt")) == ds


@settings(max_examples=200, deadline=None)
@given(postbox_items())
def test_postbox_round_trip(item):
    data = FORMAT.write_postbox(item)
    assert FORMAT.read_postbox(data, source="p.txt") == item
    assert FORMAT.write_postbox(FORMAT.read_postbox(data)) == data


@pytest.mark.parametrize("case", cases("microhis"), ids=lambda p: p.name)
def test_golden(case: Path):
    sink = ProblemSink()
    if (case / "postbox.txt").exists():
        native = case / "postbox.txt"
        got = FORMAT.read_postbox(native.read_bytes(), source=native.name, sink=sink)
        expected = load_postbox(case / "canonical.json")
        written = FORMAT.write_postbox(expected)
    elif (case / "canonical.jsonl").exists():
        native = case / "export.txt"
        got = list(FORMAT.iter_read(io.BytesIO(native.read_bytes()), source=native.name, sink=sink))
        expected = [m.from_json(line) for line in (case / "canonical.jsonl").read_bytes().splitlines()]
        buf = io.BytesIO()
        FORMAT.write_many(expected, buf)
        written = buf.getvalue()
    else:
        native = case / "export.txt"
        got = FORMAT.read(native.read_bytes(), source=native.name, sink=sink)
        expected = load_dossier(case / "canonical.json")
        written = FORMAT.write(expected)
    assert got == expected
    check_or_write(case / "written.txt" if (case / "written.txt").exists() else native, written)
    check_or_write(case / "warnings.txt", "".join(p.render_line() + "\n" for p in sink.problems))


def test_at_least_eight_golden_cases_including_postbox_forms():
    names = [c.name for c in cases("microhis")]
    assert len(names) >= 8 and sum(n.startswith("postbox-") for n in names) >= 2


GOOD = (Path(__file__).parent / "golden" / "microhis" / "escapes-for-bar-backslash-and-line-breaks" / "export.txt"
        ).read_bytes()


@pytest.mark.parametrize("old,new,code,where", [
    (b"PAT|555555914|", b"PAT|555555915|", "MHS-020", "export.txt:4 record PAT"),
    (b"|20260105|", b"|20260132|", "MHS-006", "export.txt:6 record EPI field 5"),
    (b"DC|ep1|", b"DC|ep9|", "MHS-020", "export.txt:2 record DOS"),
    (b"2 wk\\r\\n", b"2 wk\\q", "MHS-005", "export.txt:9 record REG field 3"),
    (b"2 wk\\r\\n", b"2 wk\\u12", "MHS-005", "export.txt:9 record REG field 3"),
    (b"CON|c1|20260203091500||03||", b"CON|c1|20260203091500||03", "MHS-004", "export.txt:7 record CON"),
    (b"TRL|1|11", b"TRL|1|12", "MHS-009", "export.txt:13 record TRL"),
    (b"\r\nTRL|1|11\r\n", b"\r\n", "MHS-008", "export.txt: end of file"),
    (b"\r\nEND\r\nTRL|1|11\r\n", b"\r\n", "MHS-008", "export.txt:2 record DOS"),
    (b"HDR|MICROHIS|1", b"HDR|MICROHIS|2", "MHS-007", "export.txt:1 record HDR"),
    (b"Las\xe8gue", b"Las\x81gue", "MHS-002", "export.txt:10"),
    (b"REG|S|", b"DC|ep1|L03\r\nNAM||||X||||\r\nREG|S|", "MHS-013", "export.txt:10 record NAM"),
])
def test_bad_input_is_located(old, new, code, where):
    data = GOOD.replace(old, new, 1)
    assert data != GOOD
    with pytest.raises(InputError) as info:
        list(FORMAT.iter_read(io.BytesIO(data), source="export.txt"))
    hit = [p for p in info.value.problems if p.code == code]
    assert hit, info.value.problems
    assert hit[0].location.startswith(where), hit[0].location


def test_lenient_skips_the_broken_patient_and_reads_the_next():
    good = small_dossier(1)
    bad = small_dossier(2)
    buf = io.BytesIO()
    FORMAT.write_many([good, bad, good], buf)
    data = buf.getvalue().replace(f"PAT|{bad.patient.bsn}|".encode(), b"PAT|123456789|")
    sink = ProblemSink()
    out = []
    with pytest.raises(InputError) as info:
        for d in FORMAT.iter_read(io.BytesIO(data), source="bulk.txt", sink=sink):
            out.append(d)
    assert out == [good, good]
    assert [p.code for p in info.value.problems if p.severity.value == "error"] == ["MHS-020"]
    with pytest.raises(InputError) as strict:
        list(FORMAT.iter_read(io.BytesIO(data), source="bulk.txt", sink=ProblemSink(strict=True)))
    assert len(strict.value.problems) == 1


def test_garbage_without_newlines_refused_quickly():
    garbage = os.urandom(1 << 20).replace(b"\n", b"x") * 100
    t0 = time.perf_counter()
    with pytest.raises(InputError) as info:
        list(FORMAT.iter_read(io.BytesIO(garbage), source="g.txt"))
    assert time.perf_counter() - t0 < 1.0
    assert info.value.problems[0].code in ("MHS-001", "MHS-002", "MHS-007")


@pytest.mark.slow
def test_ten_thousand_patients_convert_streaming_under_300_mb(tmp_path: Path):
    src, dst = tmp_path / "bulk.txt", tmp_path / "bulk.jsonl"
    with src.open("wb") as fh:
        FORMAT.write_many((small_dossier(seed) for seed in range(10_000)), fh)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "convert", str(src), "--from", "microhis",
                             "--to", "canonical", "-o", str(dst)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ps, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            peak = max(peak, ps.memory_info().rss)
        except psutil.Error:
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0
    assert peak < 300 * 2**20, f"peak RSS {peak / 2**20:.0f} MiB"
    lines = dst.read_bytes().splitlines()
    assert len(lines) == 10_000 and m.from_json(lines[9_999]) == small_dossier(9_999)
    print(f"10,000 patients: {elapsed:.1f} s, peak RSS {peak / 2**20:.0f} MiB")
