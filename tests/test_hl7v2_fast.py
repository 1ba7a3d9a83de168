"""The lean ORU^R01 -> FHIR path (mappings/hl7v2/fast.py) gives byte for byte the general route's Bundle:
message -> canonical -> mappings.hl7v2.fhir.to_fhir -> dumps. Checked on every golden ORU^R01 and on
generated variations of the benchmark message (numbers, units, ranges, flags, times, statuses, ids)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.bench_hl7v2 import oru_30
from mappings.fhir.common import dumps
from mappings.hl7v2 import fast, fhir, messages, obx
from mappings.hl7v2.er7 import parse_bytes
from mappings.problems import InputError, ProblemSink
from tests.golden_util import GOLDEN

ORU = sorted(
    p for t in ("oru-r01", "oru-r01-outbound") for p in (GOLDEN / "hl7v2" / t).iterdir() if p.is_dir()
)


def general(data: bytes) -> tuple[bytes | None, list]:
    sink = ProblemSink()
    try:
        return dumps(fhir.to_fhir(messages.read(parse_bytes(data), sink))), sink.problems
    except InputError as exc:
        return None, list(exc.problems)


def lean(data: bytes) -> tuple[bytes | None, list]:
    sink = ProblemSink()
    try:
        return fast.oru_bytes(data, sink), sink.problems
    except InputError as exc:
        return None, list(exc.problems)


@pytest.fixture
def lean_count(monkeypatch):
    """How many OBX the lean path mapped itself (not handed to the general route)."""
    count = [0]
    original = fast._lean_obx

    def counted(*args):
        res = original(*args)
        count[0] += len(args[0]) if res is not None else 0
        return res

    monkeypatch.setattr(fast, "_lean_obx", counted)
    return count


@pytest.mark.parametrize("case", ORU, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_golden_oru_gives_the_same_bundle_bytes(case: Path, lean_count):
    data = (case / "message.hl7").read_bytes()
    fast.oru_bytes(data)  # the first reading fills the reader's caches of times and ranges
    assert lean(data) == general(data)


def test_the_lean_path_is_taken_for_the_golden_and_benchmark_reports(lean_count):
    for case in ORU:
        fast.oru_bytes((case / "message.hl7").read_bytes())
    assert lean_count[0] >= 5
    lean_count[0] = 0
    data = oru_30()
    assert lean(data) == general(data)
    assert lean_count[0] == 30


def test_the_refused_fields_are_those_the_obx_reader_warns_about_and_obx_21():
    assert set(fast._REFUSED) == set(obx.UNREAD) | {21}


_NUMBERS = st.sampled_from(["4.1", "+4", "007", ".5", "5.", "0.0000001", "-0", "-2.50", "1e3", "12", "x"])
_UNITS = st.sampled_from(["", "mmol/L", "µmol/L", 'a"b\\\\c', "10*9/L", "mm Hg", "%"])
_RANGES = st.sampled_from(["", "3.5-6.1", ">=3", ">3", "<5", "<=5.0", "-5--1", "normal", " 1 - 2 "])
_FLAGS = st.sampled_from(["", "N", "H", "LL", "X"])
_TIMES = st.sampled_from(["", "20240301080000", "20240301", "202403010815", "20241301", "20240331023000"])
_STATUS = st.sampled_from(["F", "", "C", "D"])
_CODES = st.sampled_from(
    ["3208^glucose^NHG45", "382^^NHG45", "9999^x^NHG45", "2345-7^^LN", "^^^3208^g^NHG45"]
)
_EXTRA = st.sampled_from(["", "|||||||own-id-1", "|||||||bad id!", "||||x"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(_CODES, _NUMBERS, _UNITS, _RANGES, _FLAGS, _STATUS, _TIMES, _EXTRA), min_size=1, max_size=4
    ),
    st.sampled_from(["20240301080000", ""]),
)
def test_generated_reports_give_the_same_bytes_and_problems(obxs, obr7):
    head, _, _ = oru_30().partition(b"OBX|")
    head = head.replace(b"|||20240301080000\r", f"|||{obr7}\r".encode())
    body = "".join(
        f"OBX|{i}|NM|{code}||{value}|{unit}|{rng}|{flag}|||{status}|||{time}{extra}\r"
        for i, (code, value, unit, rng, flag, status, time, extra) in enumerate(obxs, 1)
    )
    data = head + body.encode()
    first = lean(data)
    assert first == general(data)
    assert lean(data) == first  # again, with the caches filled by the first reading


def _shapes() -> dict[str, bytes]:
    """Reports whose segments are laid out in every way the OBX splitter (``fast._split_obx``) sees."""
    data = oru_30()
    head, _, rest = data.partition(b"OBX|")
    rest = b"OBX|" + rest
    obx_lines = rest.rstrip(b"\r").split(b"\r")
    obr2 = b"OBR|2|P2|F2|LAB^Laboratorium^L|||20240302090000\r"
    return {
        "one OBR, OBX last": data,
        "newline terminators": data.replace(b"\r", b"\n"),
        "CR LF terminators": data.replace(b"\r", b"\r\n"),
        "trailing blank lines": data + b"\r\r\n",
        "a blank line among the OBX": head + b"\r".join(obx_lines[:3]) + b"\r\r" + b"\r".join(obx_lines[3:]),
        "two OBR, each with OBX": (
            head + b"\r".join(obx_lines[:10]) + b"\r" + obr2 + b"\r".join(obx_lines[10:])
        ),
        "two OBR, the first without OBX": head + obr2 + rest,
        "an NTE among the OBX": head + obx_lines[0] + b"\rNTE|1||a note\r" + b"\r".join(obx_lines[1:]),
        "an OBX before the OBR": data.replace(b"OBR|", obx_lines[0] + b"\rOBR|", 1),
        "an escape in one OBX": data.replace(b"mmol/L", b"mmol\\T\\L", 1),
        "a repetition in one OBX": data.replace(b"|3.5-6.1|", b"|3.5-6.1~4-5|", 1),
        "OBX only, no OBR": data.replace(head.split(b"OBR|")[1], b"").replace(b"OBR|", b""),
        "set ids not numbers": data.replace(b"OBX|1|", b"OBX|x|").replace(b"OBX|2|", b"OBX||"),
        "short OBX (no time, no unit)": head + b"OBX|1|NM|3208^glucose^NHG45||5.5\r",
    }


@pytest.mark.parametrize("shape", list(_shapes()))
def test_every_segment_layout_gives_the_general_routes_bytes_and_problems(shape):
    data = _shapes()[shape]
    fast.oru_bytes(oru_30())  # warm the caches the lean path reads
    first = lean(data)
    assert first == general(data)
    assert lean(data) == first


def test_the_split_route_takes_the_usual_layouts(monkeypatch, lean_count):
    """The usual layouts go by the split route (OBX as field lists), the others by the segment route."""
    fast.oru_bytes(oru_30())
    split = fast._split_obx
    taken: list[bool] = []
    monkeypatch.setattr(fast, "_split_obx", lambda *a: taken.append(split(*a) is not None) or split(*a))
    shapes = _shapes()
    for shape in (
        "one OBR, OBX last",
        "newline terminators",
        "two OBR, each with OBX",
        "two OBR, the first without OBX",
        "trailing blank lines",
        "a blank line among the OBX",
    ):
        taken.clear()
        lean_count[0] = 0
        fast.oru_bytes(shapes[shape])
        assert taken == [True] and lean_count[0] == 30, shape
    for shape in ("an escape in one OBX", "an OBX before the OBR", "OBX only, no OBR"):
        taken.clear()
        lean(shapes[shape])  # "OBX only, no OBR" is an error: HL7-015
        assert taken == [False], shape


def test_the_cached_fhir_datetime_keeps_the_fold_of_the_autumn_hour():
    """``fdatetime`` caches by value, and two datetimes that differ only in ``fold`` are equal: the
    repeated hour of the end of summer time must still get both offsets."""
    import datetime as dt

    from mappings.fhir.common import fdatetime

    first = dt.datetime(2024, 10, 27, 2, 30)
    second = first.replace(fold=1)
    assert first == second
    assert [fdatetime(first), fdatetime(second), fdatetime(first)] == [
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:30:00+01:00",
        "2024-10-27T02:30:00+02:00",
    ]


def test_the_context_namespace_is_the_v5_uuid_of_the_scope():
    import uuid

    from mappings.fhir.common import NAMESPACE, WriteContext

    for scope in ("", "hl7v2|BENCH-1", "é" * 50):
        assert WriteContext(scope)._ns == uuid.uuid5(NAMESPACE, scope).bytes


def test_other_code_tables_are_not_answered_from_the_caches(tmp_path, monkeypatch):
    """The lean path caches the JSON of codes; with other code tables (``HISGW_CODE_TABLES_PATH``) it must
    still give what the general route gives: here Tabel 45 without 193 (a CODE-001 warning, general route)
    and with another display for 3208."""
    import shutil

    fast.oru_bytes(oru_30())  # fill the caches from the shipped tables
    tables = tmp_path / "codes"
    shutil.copytree(Path(__file__).resolve().parent.parent / "mappings" / "codes", tables)
    csv = tables / "nhg-tabel-45.csv"
    lines = [ln for ln in csv.read_text("utf-8").splitlines() if not ln.startswith("193,")]
    renamed = [ln.replace("glucose nuchter", "glucose (nuchter)") for ln in lines]
    csv.write_text("\n".join(renamed) + "\n", "utf-8")
    monkeypatch.setenv("HISGW_CODE_TABLES_PATH", str(tables))
    data = oru_30()
    first = lean(data)
    assert first == general(data)
    assert any(p.code == "CODE-001" for p in first[1])
    monkeypatch.delenv("HISGW_CODE_TABLES_PATH")
    assert lean(data) == general(data)  # and back to the shipped tables
    assert b"glucose (nuchter)" not in lean(data)[0]
