"""MicroHIS-style line records (docs/dialects/microhis.md): round trips, golden cases, bad input, bulk."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.microhis import FORMAT, MAX_LINE, NESTED, SPECS
from mappings import model as m
from mappings.problems import InputError, ProblemSink, Severity
from tests.factories import small_dossier
from tests.golden_util import GOLDEN, cases
from tests.strategies import dossiers, postbox_items

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "dialects" / "microhis.md"

# --------------------------------------------------------------------------- round trips


@settings(max_examples=500, deadline=None)
@given(dossiers())
def test_read_write_round_trip_and_byte_stable(d):
    data = FORMAT.write(d)
    back = FORMAT.read(data, source="x.txt")
    assert back == d
    assert FORMAT.write(back) == data
    assert data.endswith(b"\r\n") and data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")


@settings(max_examples=100, deadline=None)
@given(st.lists(dossiers(max_items=2), min_size=0, max_size=5))
def test_many_patients_stream_round_trip(ds):
    buf = io.BytesIO()
    assert FORMAT.write_many(ds, buf) == len(ds)
    data = buf.getvalue()
    assert list(FORMAT.iter_read(io.BytesIO(data), source="bulk.txt")) == ds
    again = io.BytesIO()
    FORMAT.write_many(ds, again)
    assert again.getvalue() == data


@settings(max_examples=200, deadline=None)
@given(postbox_items())
def test_postbox_round_trip(item):
    data = FORMAT.write_postbox(item)
    assert FORMAT.read_postbox(data, source="p.txt") == item
    assert FORMAT.write_postbox(FORMAT.read_postbox(data)) == data


def test_every_model_field_has_a_place_in_a_record():
    for code, spec in SPECS.items():
        carried = set(spec.names) | set(NESTED.get(spec.cls, {}).values())
        assert carried == set(spec.cls.__struct_fields__), code


# --------------------------------------------------------------------------- golden cases


# The golden read and write of every case: tests/test_golden.py (one test over every format's cases).


def test_golden_cases_cover_the_acceptance_list():
    names = {c.name for c in cases("microhis")}
    assert {
        "minimal-dossier",
        "maximal-dossier-every-field",
        "escapes-for-bar-backslash-and-line-breaks",
        "characters-outside-cp1252",
        "three-patients-with-trailer",
        "postbox-feedback-for-manual-filing",
        "postbox-auto-filing-with-soep-lines",
        "unknown-record-type-reported",
        "extra-fields-reported-as-unused-input",
        "empty-text-differs-from-absent-field",
    } <= names
    maximal = (GOLDEN / "microhis" / "maximal-dossier-every-field" / "export.txt").read_bytes()
    used = {line.split(b"|")[0].decode() for line in maximal.splitlines()}
    assert {
        "DOS",
        "PRK",
        "PAT",
        "NAM",
        "ADR",
        "TEL",
        "VZK",
        "HA",
        "ZVL",
        "ORG",
        "EPI",
        "CON",
        "DC",
        "REG",
        "VID",
        "MED",
        "BEP",
        "INT",
        "CI",
        "ATT",
        "COR",
        "END",
        "HDR",
        "TRL",
    } <= used


# --------------------------------------------------------------------------- the spec tells the truth


def test_spec_tables_match_the_reader():
    """Every record table of the spec names the fields, at the positions, that the code reads."""
    text = SPEC.read_text("utf-8")
    documented: dict[str, list[tuple[int, str]]] = {}
    for block in re.split(r"^### ", text, flags=re.M)[1:]:
        head = re.match(r"`([A-Z]{2,3})`", block)
        if head is None:
            continue
        rows = re.findall(r"^\| (\d+) \|[^\n]*\| `([a-z_]+)` \|$", block, re.M)
        documented[head.group(1)] = [(int(pos), name) for pos, name in rows]
    assert set(documented) == set(SPECS)
    for code, spec in SPECS.items():
        assert documented[code] == [(spec.field_pos[n], n) for n in spec.names], code


def test_spec_examples_are_the_golden_files():
    text = SPEC.read_text("utf-8")
    examples = re.findall(r"<!-- golden: (\S+) -->\n```text\n(.*?)```", text, re.S)
    assert len(examples) >= 3
    for path, shown in examples:
        native = (GOLDEN / "microhis" / path).read_bytes().decode("cp1252").replace("\r\n", "\n")
        assert shown == native, path


# --------------------------------------------------------------------------- bad input

GOOD = (GOLDEN / "microhis" / "escapes-for-bar-backslash-and-line-breaks" / "export.txt").read_bytes()
"""Lines: 1 HDR, 2 DOS, 3 PRK, 4 PAT, 5 NAM, 6 EPI, 7 CON, 8 DC, 9-11 REG, 12 END, 13 TRL."""


def _sub(old: bytes, new: bytes) -> bytes:
    assert old in GOOD
    return GOOD.replace(old, new, 1)


BAD = [
    ("invalid-bsn", _sub(b"PAT|555555914|", b"PAT|555555915|"), "MHS-020", "export.txt:4 record PAT field 2"),
    ("invalid-agb", _sub(b"|01073652|", b"|0107365|"), "MHS-020", "export.txt:3 record PRK field 4"),
    ("invalid-icpc", _sub(b"DC|ep1|L03", b"DC|ep1|L3"), "MHS-020", "export.txt:8 record DC field 3"),
    ("bad-date", _sub(b"|L03|20260105|", b"|L03|20260132|"), "MHS-006", "export.txt:6 record EPI field 5"),
    ("bad-moment", _sub(b"20260203091500", b"20260203251500"), "MHS-006", "export.txt:7 record CON field 3"),
    ("bad-gender", _sub(b"|19500520|O|", b"|19500520|Q|"), "MHS-006", "export.txt:4 record PAT field 4"),
    ("bad-soep-type", _sub(b"REG|S|", b"REG|X|"), "MHS-006", "export.txt:9 record REG field 2"),
    ("dangling-episode-ref", _sub(b"DC|ep1|", b"DC|ep9|"), "MHS-021", "export.txt:8 record DC field 2"),
    (
        "duplicate-episode-id",
        _sub(b"CON|c1|", b"EPI|ep1|dubbel|||||\r\nCON|c1|"),
        "MHS-022",
        "export.txt:7 record EPI field 2",
    ),
    ("unknown-escape", _sub(b"2 wk\\r\\n", b"2 wk\\q"), "MHS-005", "export.txt:9 record REG field 3"),
    ("short-unicode-escape", _sub(b"2 wk\\r\\n", b"2 wk\\u12"), "MHS-005", "export.txt:9 record REG field 3"),
    ("surrogate-escape", _sub(b"2 wk\\r\\n", b"2 wk\\uD800"), "MHS-005", "export.txt:9 record REG field 3"),
    (
        "escape-beyond-unicode",
        _sub(b"2 wk\\r\\n", b"2 wk\\U00110000"),
        "MHS-005",
        "export.txt:9 record REG field 3",
    ),
    ("raw-cr-in-text", _sub(b"vooral 's", b"vooral\r's"), "MHS-005", "export.txt:9 record REG field 3"),
    ("undecodable-byte", _sub(b"Las\xe8gue", b"Las\x81gue"), "MHS-002", "export.txt:10 record REG field 3"),
    (
        "too-few-fields",
        _sub(b"CON|c1|20260203091500||03||", b"CON|c1|20260203091500||03|"),
        "MHS-004",
        "export.txt:7 record CON",
    ),
    ("required-field-empty", _sub(b"EPI|ep1|", b"EPI||"), "MHS-017", "export.txt:6 record EPI field 2"),
    ("patient-without-name", _sub(b"NAM||||Jansen||||\r\n", b""), "MHS-018", "export.txt:4 record PAT"),
    (
        "second-name",
        _sub(b"NAM||||Jansen||||\r\n", b"NAM||||Jansen||||\r\nNAM||||Smit||||\r\n"),
        "MHS-014",
        "export.txt:6 record NAM",
    ),
    (
        "record-without-owner",
        _sub(b"REG|S|", b"NAM||||X||||\r\nREG|S|"),
        "MHS-013",
        "export.txt:9 record NAM",
    ),
    (
        "postbox-record-in-export",
        _sub(b"DOS\r\n", b"PBX|x|feedback|20260101000000|01073652||r\r\n"),
        "MHS-012",
        "export.txt:2 record PBX",
    ),
    (
        "postbox-record-inside-dossier",
        _sub(b"EPI|", b"PBX|x|feedback|20260101000000|01073652||r\r\nEPI|"),
        "MHS-012",
        "export.txt:6 record PBX",
    ),
    ("dossier-inside-dossier", _sub(b"CON|c1|", b"DOS\r\nCON|c1|"), "MHS-011", "export.txt:7 record DOS"),
    ("end-without-dossier", _sub(b"END\r\n", b"END\r\nEND\r\n"), "MHS-011", "export.txt:13 record END"),
    ("wrong-header", _sub(b"HDR|MICROHIS|1", b"HDR|MICROHIS|2"), "MHS-007", "export.txt:1 record HDR"),
    ("second-header", _sub(b"DOS\r\n", b"DOS\r\nHDR|MICROHIS|1\r\n"), "MHS-007", "export.txt:3 record HDR"),
    ("trailer-total-mismatch", _sub(b"TRL|11|", b"TRL|12|"), "MHS-009", "export.txt:13 record TRL field 2"),
    (
        "trailer-type-count-mismatch",
        _sub(b"|REG=3|", b"|REG=4|"),
        "MHS-009",
        "export.txt:13 record TRL field 10",
    ),
    (
        "trailer-type-count-malformed",
        _sub(b"|REG=3|", b"|REG3|"),
        "MHS-009",
        "export.txt:13 record TRL field 10",
    ),
    ("trailer-type-count-missing", _sub(b"|REG=3|", b"|"), "MHS-009", "export.txt:13 record TRL"),
    (
        "trailer-count-huge",
        _sub(b"TRL|11|", b"TRL|" + b"9" * 5000 + b"|"),
        "MHS-009",
        "export.txt:13 record TRL field 2",
    ),
    ("record-after-trailer", GOOD + b"REG|S|x|\r\n", "MHS-009", "export.txt:14 record REG"),
    ("no-trailer", GOOD[: GOOD.index(b"TRL|")], "MHS-008", "export.txt:13"),
    ("truncated-inside-dossier", GOOD[: GOOD.index(b"REG|O|")], "MHS-008", "export.txt:2 record DOS"),
    ("line-over-the-cap", _sub(b"REG|O|", b"REG|O|" + b"x" * (MAX_LINE + 10)), "MHS-001", "export.txt:10"),
]


@pytest.mark.parametrize("data,code,where", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_located(data, code, where):
    """Strict mode stops at exactly this problem; lenient mode reports it among all others."""
    with pytest.raises(InputError) as strict:
        list(FORMAT.iter_read(io.BytesIO(data), source="export.txt", sink=ProblemSink(strict=True)))
    errors = [p for p in strict.value.problems if p.severity is Severity.ERROR]
    assert [(p.code, p.location) for p in errors] == [(code, where)], strict.value.problems
    with pytest.raises(InputError) as lenient:
        list(FORMAT.iter_read(io.BytesIO(data), source="export.txt"))
    assert (code, where) in [(p.code, p.location) for p in lenient.value.problems]


def test_records_per_dossier_are_capped(monkeypatch):
    import adapters.microhis as microhis

    monkeypatch.setattr(microhis, "MAX_RECORDS", 50)
    many = _sub(b"REG|S|", b"REG|S|x|\r\n" * 60 + b"REG|S|")
    with pytest.raises(InputError) as info:
        list(FORMAT.iter_read(io.BytesIO(many), source="export.txt"))
    first = info.value.problems[0]  # records 1-6 are PRK ... DC on lines 3-8; record 51 is on line 53
    assert (first.code, first.location) == ("MHS-019", "export.txt:53 record REG")
    assert len(FORMAT.read(GOOD).contacts[0].deelcontacten[0].lines) == 3  # under the cap: read as ever


def test_unknown_codes_are_kept_with_a_warning():
    data = GOOD.replace(b"|L03|20260105|", b"|Z99|20260105|")
    sink = ProblemSink()
    d = FORMAT.read(data, source="export.txt", sink=sink)
    assert d.episodes[0].icpc == "Z99"
    assert [(p.code, p.location) for p in sink.problems] == [("CODE-001", "export.txt:6 record EPI field 4")]


def test_lenient_skips_each_broken_patient_and_reads_the_rest():
    good = [small_dossier(i) for i in range(5)]
    buf = io.BytesIO()
    FORMAT.write_many(good, buf)
    data = buf.getvalue()
    data = data.replace(f"PAT|{good[1].patient.bsn}|".encode(), b"PAT|123456789|")
    data = data.replace(
        f"PAT|{good[3].patient.bsn}|{good[3].patient.birth_date:%Y%m%d}".encode(),
        f"PAT|{good[3].patient.bsn}|19991340".encode(),
    )
    sink, out = ProblemSink(), []
    with pytest.raises(InputError) as info:
        for d in FORMAT.iter_read(io.BytesIO(data), source="bulk.txt", sink=sink):
            out.append(d)
    assert out == [good[0], good[2], good[4]]
    assert [p.code for p in info.value.problems if p.severity is Severity.ERROR] == ["MHS-020", "MHS-006"]
    with pytest.raises(InputError) as strict:
        for d in FORMAT.iter_read(io.BytesIO(data), source="bulk.txt", sink=ProblemSink(strict=True)):
            assert d == good[0]
    assert [p.code for p in strict.value.problems] == ["MHS-020"]


def test_read_takes_exactly_one_dossier():
    buf = io.BytesIO()
    FORMAT.write_many([small_dossier(1), small_dossier(2)], buf)
    with pytest.raises(InputError) as info:
        FORMAT.read(buf.getvalue(), source="two.txt")
    assert info.value.problems[-1].code == "MHS-016"


class _Garbage(io.RawIOBase):
    """100 MB of random bytes without a newline, made as they are read; counts what was read."""

    def __init__(self, size: int):
        self.left, self.given = size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = min(len(buf), self.left)
        buf[:n] = os.urandom(n).replace(b"\n", b"x")
        self.left -= n
        self.given += n
        return n


@pytest.mark.parametrize("prefix", [b"", b"HDR|MICROHIS|1\r\nDOS\r\nREG|S|"])
def test_hundred_megabytes_without_newlines_refused_quickly_in_bounded_memory(prefix):
    stream = _Garbage(100 * 2**20)
    source = io.BufferedReader(stream) if not prefix else _Chain(prefix, stream)
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError) as info:
            list(FORMAT.iter_read(source, source="g.txt"))
        elapsed = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0
    assert stream.given <= MAX_LINE + (1 << 17)  # read at most one line's cap and a chunk
    assert peak < 16 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert info.value.problems[-1].code in ("MHS-001", "MHS-007")


class _Chain(io.RawIOBase):
    def __init__(self, head: bytes, tail: io.RawIOBase):
        self.head, self.tail = head, tail

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            out, self.head = self.head[:n], self.head[n:]
            return out
        return self.tail.read(n)


@pytest.mark.parametrize("seed", range(5))
def test_binary_garbage_with_newlines_is_refused_without_traceback(seed):
    import random

    rng = random.Random(seed)
    garbage = bytes(rng.randrange(256) for _ in range(200_000))
    for data in (garbage, b"HDR|MICROHIS|1\r\n" + garbage, b"HDR|MICROHIS|1\r\nDOS\r\n" + garbage):
        t0 = time.perf_counter()
        with pytest.raises(InputError) as info:
            list(FORMAT.iter_read(io.BytesIO(data), source="bin.txt"))
        assert time.perf_counter() - t0 < 1.0
        assert all(re.fullmatch(r"(MHS|IO)-\d{3}", p.code) for p in info.value.problems)
        assert all(p.location.startswith("bin.txt") for p in info.value.problems)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_files_never_raise_anything_but_input_error(data):
    """Random byte damage to a valid two-patient file: a result or InputError, never a traceback."""
    buf = io.BytesIO()
    FORMAT.write_many([small_dossier(1), small_dossier(2)], buf)
    raw = bytearray(buf.getvalue())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["set", "delete", "insert"]))
        byte = data.draw(st.sampled_from([0x7C, 0x5C, 0x0D, 0x0A, 0x81, 0x00, 0x41, 0x31, 0xE9]))
        if action == "set":
            raw[pos] = byte
        elif action == "delete":
            del raw[pos]
        else:
            raw.insert(pos, byte)
    try:
        for d in FORMAT.iter_read(io.BytesIO(bytes(raw)), source="d.txt"):
            assert isinstance(d, m.Dossier)
    except InputError as exc:
        assert exc.problems and all(p.location.startswith("d.txt") for p in exc.problems)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_postbox_garbage_never_raises_anything_but_input_error(blob):
    try:
        item = FORMAT.read_postbox(b"HDR|MICROHIS-POSTBUS|1\r\n" + blob, source="p.txt")
    except InputError as exc:
        assert exc.problems
    else:
        assert isinstance(item, m.PostboxItem)


# --------------------------------------------------------------------------- bulk


@pytest.mark.slow
def test_ten_thousand_patients_convert_streaming_under_300_mb(tmp_path: Path):
    src, dst = tmp_path / "bulk.txt", tmp_path / "bulk.jsonl"
    with src.open("wb") as fh:
        assert FORMAT.write_many((small_dossier(seed) for seed in range(10_000)), fh) == 10_000
    t0 = time.perf_counter()
    err = tmp_path / "stderr.txt"
    peak_kib = 0
    with err.open("wb") as errfh:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "convert",
                str(src),
                "--from",
                "microhis",
                "--to",
                "canonical",
                "-o",
                str(dst),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=errfh,
        )
        # the child's own high-water mark (VmHWM, reset by exec); rusage would charge it the memory of this
        # pytest process until the exec, which after a full suite is several hundred MiB
        while proc.poll() is None:
            try:
                with open(f"/proc/{proc.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peak_kib = max(peak_kib, int(line.split()[1]))
            except OSError:
                pass
            time.sleep(0.01)
    stderr = err.read_bytes()
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, stderr.decode(errors="replace")
    assert peak_kib > 0, "the child's memory was never sampled"
    peak_mib = peak_kib / 1024
    assert peak_mib < 300, f"peak RSS {peak_mib:.0f} MiB"
    n = 0
    with dst.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if n in (1, 5_000, 10_000):
                assert m.from_json(line) == small_dossier(n - 1)
    assert n == 10_000
    print(
        f"\n10,000 patients ({src.stat().st_size / 2**20:.1f} MiB) -> canonical JSON lines: "
        f"{elapsed:.1f} s, peak RSS {peak_mib:.0f} MiB"
    )
