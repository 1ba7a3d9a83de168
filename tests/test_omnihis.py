"""OmniHIS-style JSON, NDJSON and postbox import (adapters/omnihis.py, docs/dialects/omnihis.md).

Round trips over every valid dossier and postbox item, golden cases (one folder per rule they prove),
the reading rules one by one, hostile input, speed, and a 10,000-patient streaming conversion.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time
import timeit
import tracemalloc
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
from hypothesis import given, settings

from adapters.base import get_format, get_postbox_format
from adapters.omnihis import FORMAT, MAX_DOCUMENT_BYTES, NDJSON_FORMAT, POSTBOX
from mappings import model as m
from mappings.problems import InputError, ProblemSink, Severity
from tests.factories import small_dossier, typical_dossier
from tests.golden_util import GOLDEN, cases
from tests.strategies import dossiers, postbox_items

REPO = Path(__file__).resolve().parents[1]
CODE_TABLES = GOLDEN / "omnihis" / "_code-tables"
CASES = [p for p in cases("omnihis") if not p.name.startswith("_")]


def problems_of(read, *args, **kwargs) -> tuple[object, list]:
    """Run a read in lenient mode; return (result or None, problems)."""
    sink = ProblemSink()
    try:
        return read(*args, sink=sink, **kwargs), sink.problems
    except InputError as exc:
        return None, list(exc.problems)


def codes_at(problems) -> list[tuple[str, str]]:
    return [(p.code, p.location) for p in problems if p.code != "CODE-001"]


def doc(**overrides) -> dict:
    """A small valid document as JSON data, to break one key at a time."""
    base = json.loads(FORMAT.write(small_dossier(7)))
    base.update(overrides)
    return base


def enc(data: dict) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


# --------------------------------------------------------------------------- registry


def test_registered_under_the_cli_names():
    assert get_format("omnihis") is FORMAT and get_format("omnihis-ndjson") is NDJSON_FORMAT
    assert get_postbox_format("omnihis") is POSTBOX
    assert NDJSON_FORMAT.streaming and not FORMAT.streaming


# --------------------------------------------------------------------------- round trips


@settings(max_examples=500, deadline=None)
@given(dossiers())
def test_document_round_trip_is_exact_and_byte_stable(d):
    written = FORMAT.write(d)
    back = FORMAT.read(written)
    assert back == d
    assert FORMAT.write(back) == written


@settings(max_examples=500, deadline=None)
@given(dossiers())
def test_ndjson_round_trip_is_exact_and_byte_stable(d):
    written = NDJSON_FORMAT.write(d)
    assert written.count(b"\n") == 1 and written.endswith(b"\n")  # one line, whatever the texts hold
    back = NDJSON_FORMAT.read(written)
    assert back == d
    assert NDJSON_FORMAT.write(back) == written


@settings(max_examples=200, deadline=None)
@given(postbox_items())
def test_postbox_round_trip_is_exact_and_byte_stable(item):
    written = POSTBOX.write_postbox(item)
    back = POSTBOX.read_postbox(written)
    assert back == item
    assert POSTBOX.write_postbox(back) == written


def test_many_dossiers_stream_through_ndjson():
    ds = [small_dossier(i) for i in range(5)]
    out = io.BytesIO()
    assert NDJSON_FORMAT.write_many(iter(ds), out) == 5
    assert list(NDJSON_FORMAT.iter_read(io.BytesIO(out.getvalue()))) == ds


# --------------------------------------------------------------------------- golden cases


@pytest.fixture
def golden_code_tables(monkeypatch):
    """Golden warnings must not change when the shipped code-table subset grows: use a fixed one."""
    monkeypatch.setenv("HISGW_CODE_TABLES_PATH", str(CODE_TABLES))


def test_there_are_golden_cases_of_every_form():
    """One document, a postbox item (here) and a file of many patients (``omnihis-ndjson``); the golden read
    and write of every case: tests/test_golden.py."""
    natives = {p.name for c in CASES for p in c.iterdir() if p.name in ("omnihis.json", "postbox.json")}
    assert len(CASES) >= 8 and natives == {"omnihis.json", "postbox.json"}
    assert [p for p in cases("omnihis-ndjson") if not p.name.startswith("_")]


def test_golden_offsets_convert_to_amsterdam_wall_time(golden_code_tables):
    d = FORMAT.read((GOLDEN / "omnihis" / "offsets-across-dst-change" / "omnihis.json").read_bytes())
    start = {c.id: c.start for c in d.contacts}
    assert start["spring-before-change"] == dt.datetime(2026, 3, 29, 1, 30)
    assert start["spring-in-utc"] == dt.datetime(2026, 3, 29, 3, 30)  # 01:30Z is after the change
    assert start["autumn-second-0230"] == dt.datetime(2026, 10, 25, 2, 30)
    assert start["summer-new-york"] == dt.datetime(2026, 7, 1, 15, 0)
    assert start["winter-utc"] == dt.datetime(2026, 1, 15, 9, 0)
    assert FORMAT.write(d).count(b'"2026-10-25T02:30:00+02:00"') == 4  # fold=0 on writing


def test_skipped_spring_times_are_kept_as_written_with_a_warning():
    """Wall times Amsterdam skips (02:00-02:59 on the last Sunday of March) exist in dirty records; the
    writer gives them the offset before the change and the reader gives them back unchanged."""
    gap = [dt.datetime(2026, 3, 29, 2, 0) + dt.timedelta(minutes=n) for n in range(0, 60, 7)]
    patient = m.Patient(bsn=None, name=m.PersonName(family="Jansen"), birth_date=dt.date(1950, 1, 1))
    d = m.Dossier(
        practice=m.Organization(id="p", name="Praktijk"),
        patient=patient,
        contacts=tuple(
            m.Contact(id=f"c{i}", start=t, end=t + dt.timedelta(minutes=10)) for i, t in enumerate(gap)
        ),
    )
    skipped = sum(1 for c in d.contacts for t in (c.start, c.end) if t.hour == 2)  # the last end is 03:06
    written = FORMAT.write(d)
    assert written.count(b"+01:00") == skipped and written.count(b"+02:00") == 2 * len(gap) - skipped
    back, problems = problems_of(FORMAT.read, written, source="x.json")
    assert back == d
    assert [p.code for p in problems] == ["OMN-024"] * skipped


def test_golden_decimals_keep_their_exact_text(golden_code_tables):
    d = FORMAT.read((GOLDEN / "omnihis" / "decimals-exact-text" / "omnihis.json").read_bytes())
    values = {x.id: x.value_quantity for x in d.measurements}
    assert str(values["trailing-zero"]) == "5.40"
    assert values["more-digits-than-a-double"] == Decimal("12345678901234567890.123456789")
    assert str(values["sent-as-string"]) == "4.90"
    assert b"12345678901234567890.123456789" in FORMAT.write(d)


def test_the_spec_examples_are_the_golden_files():
    """docs/dialects/omnihis.md shows three files verbatim; they must stay what the code writes."""
    spec = (REPO / "docs" / "dialects" / "omnihis.md").read_text("utf-8")
    blocks = [b.split("```", 1)[0] for b in spec.split("```json\n")[1:]]
    golden = GOLDEN / "omnihis"
    shown = (
        "maximal-every-key/omnihis.json",
        "minimal-required-keys-only/omnihis.json",
        "postbox-auto-filing/postbox.json",
    )
    assert blocks == [(golden / case).read_text("utf-8") for case in shown]


# --------------------------------------------------------------------------- reading rules


def test_absent_defaults_read_as_the_model_defaults():
    data = doc()
    del data["patient"]["gender"]
    for med in data["medications"]:
        del med["status"]
    d = FORMAT.read(enc(data))
    assert d.patient.gender == "unknown" and {x.status for x in d.medications} == {"active"}


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("2026-03-29T01:30:00", "OMN-022"),
        ("2026-03-29 01:30", "OMN-022"),
        ("2026-03-29T01:30:00.250+01:00", "OMN-021"),
        ("2026-02-30T10:00:00+01:00", "OMN-021"),
        ("29-03-2026T01:30:00+01:00", "OMN-021"),
        ("2026-03-29T01:30:00+25:00", "OMN-021"),
    ],
)
def test_bad_moments_are_errors_at_their_path(value, code):
    data = doc()
    data["contacts"][1]["startTime"] = value
    _, problems = problems_of(FORMAT.read, enc(data), source="x.json")
    assert codes_at(problems) == [(code, "x.json $.contacts[1].startTime")]


def test_wrong_types_missing_keys_and_bad_values_are_each_located():
    data = doc()
    data["patient"]["birthDate"] = 19500131
    data["patient"]["name"] = ["Jansen"]
    del data["practice"]["name"]
    data["episodes"][0]["attention"] = "yes"
    data["contacts"][0]["subContacts"][0]["journalLines"][0]["type"] = "X"
    data["measurements"][0]["value"] = True
    data["medications"][0]["productCode"] = {"system": "GPK"}
    data["episodes"][1]["startDate"] = "2026-13-01"
    _, problems = problems_of(FORMAT.read, enc(data), source="x.json")
    assert sorted(codes_at(problems)) == sorted(
        [
            ("OMN-011", "x.json $.practice.name"),
            ("OMN-010", "x.json $.patient.name"),
            ("OMN-010", "x.json $.patient.birthDate"),
            ("OMN-010", "x.json $.episodes[0].attention"),
            ("OMN-020", "x.json $.episodes[1].startDate"),
            ("OMN-012", "x.json $.contacts[0].subContacts[0].journalLines[0].type"),
            ("OMN-011", "x.json $.medications[0].productCode.code"),
            ("OMN-010", "x.json $.measurements[0].value"),
        ]
    )
    assert all(p.severity is Severity.ERROR for p in problems if p.code.startswith("OMN"))


def test_invalid_identifiers_are_errors_at_their_key():
    data = doc()
    data["patient"]["bsn"] = "123456789"
    data["practice"]["agb"] = "1234"
    data["episodes"][0]["icpc"] = "k78"
    data["contacts"][0]["id"] = "has space"
    data["patient"]["insurance"]["uzovi"] = "33"
    _, problems = problems_of(FORMAT.read, enc(data), source="x.json")
    assert sorted(codes_at(problems)) == sorted(
        [
            ("OMN-031", "x.json $.practice.agb"),
            ("OMN-030", "x.json $.patient.bsn"),
            ("OMN-031", "x.json $.patient.insurance.uzovi"),
            ("OMN-032", "x.json $.episodes[0].icpc"),
            ("OMN-033", "x.json $.contacts[0].id"),
        ]
    )


def test_dangling_references_and_duplicate_ids_are_errors():
    data = doc()
    data["contacts"][2]["subContacts"][0]["episodeId"] = "no-such-episode"
    data["contacts"][0]["authorId"] = "nobody"
    data["medications"][1]["id"] = data["medications"][0]["id"]
    _, problems = problems_of(FORMAT.read, enc(data), source="x.json")
    assert sorted(codes_at(problems)) == sorted(
        [
            ("OMN-040", "x.json $.contacts[2].subContacts[0].episodeId"),
            ("OMN-040", "x.json $.contacts[0].authorId"),
            ("OMN-041", "x.json $.medications[1].id"),
        ]
    )


def test_a_rule_across_keys_is_reported_at_the_object():
    data = doc()
    data["contacts"][0]["endTime"] = "2000-01-01T00:00:00+01:00"
    _, problems = problems_of(FORMAT.read, enc(data), source="x.json")
    assert codes_at(problems) == [("OMN-050", "x.json $.contacts[0]")]
    assert [p.message for p in problems if p.code == "OMN-050"] == ["contact ends before it starts"]


def test_unknown_schema_is_an_error_and_unknown_keys_warnings():
    _, problems = problems_of(FORMAT.read, enc(doc(schema="omnihis/2", extra={"x": 1})), source="x.json")
    assert sorted(codes_at(problems)) == [("OMN-006", "x.json $.schema"), ("OMN-013", "x.json $.extra")]
    assert [p.severity for p in problems if p.code == "OMN-013"] == [Severity.WARNING]


def test_unknown_codes_are_kept_with_a_warning(golden_code_tables):
    data = doc()
    data["episodes"][0]["icpc"] = "Z99"
    d, problems = problems_of(FORMAT.read, enc(data), source="x.json")
    assert d is not None and d.episodes[0].icpc == "Z99"
    assert ("CODE-001", "x.json $.episodes[0].icpc") in [(p.code, p.location) for p in problems]


def test_strict_stops_at_the_first_error_lenient_collects_all():
    data = doc()
    data["patient"]["bsn"] = "123456789"
    data["episodes"][0]["icpc"] = "k78"
    data["contacts"][1]["startTime"] = "2026-03-29T01:30:00"
    raw = enc(data)
    with pytest.raises(InputError) as strict:
        FORMAT.read(raw, source="x.json", sink=ProblemSink(strict=True))
    assert [p.code for p in strict.value.problems] == ["OMN-030"]
    with pytest.raises(InputError) as lenient:
        FORMAT.read(raw, source="x.json", sink=ProblemSink())
    assert [p.code for p in lenient.value.problems if p.severity is Severity.ERROR] == [
        "OMN-030",
        "OMN-032",
        "OMN-022",
    ]


def test_ndjson_lenient_skips_a_bad_line_and_goes_on():
    good = [small_dossier(i) for i in range(3)]
    bad = json.loads(NDJSON_FORMAT.write(small_dossier(9)))
    bad["contacts"][0]["subContacts"][0]["episodeId"] = "gone"
    lines = [
        NDJSON_FORMAT.write(good[0]),
        b"\n",
        enc(bad) + b"\n",
        b"{not json\n",
        NDJSON_FORMAT.write(good[1]),
        NDJSON_FORMAT.write(good[2]).rstrip(b"\n"),
    ]  # no final \n: fine
    sink = ProblemSink()
    seen = []
    with pytest.raises(InputError) as info:
        for d in NDJSON_FORMAT.iter_read(io.BytesIO(b"".join(lines)), source="bulk.ndjson", sink=sink):
            seen.append(d)
    assert seen == good
    assert codes_at(info.value.problems) == [
        ("OMN-040", "bulk.ndjson:3 $.contacts[0].subContacts[0].episodeId"),
        ("OMN-003", "bulk.ndjson:4"),
    ]
    assert [p.message for p in info.value.problems if p.code == "OMN-003"] == [
        "not valid JSON at column 2: unexpected character, expected a string key"
    ]


def test_ndjson_strict_stops_at_the_first_bad_line():
    data = NDJSON_FORMAT.write(small_dossier(1)) + b"[]\n" + b"{]\n"
    seen = []
    with pytest.raises(InputError) as info:
        for d in NDJSON_FORMAT.iter_read(io.BytesIO(data), source="b.ndjson", sink=ProblemSink(strict=True)):
            seen.append(d)
    assert len(seen) == 1 and codes_at(info.value.problems) == [("OMN-010", "b.ndjson:2 $")]


def test_ndjson_read_takes_exactly_one_patient_and_empty_files_are_refused():
    two = NDJSON_FORMAT.write(small_dossier(1)) + NDJSON_FORMAT.write(small_dossier(2))
    assert "OMN-060" in [p.code for p in problems_of(NDJSON_FORMAT.read, two)[1]]
    for empty in (b"", b"\n\n  \r\n"):
        assert [p.code for p in problems_of(NDJSON_FORMAT.read, empty)[1]] == ["OMN-005"]


def test_document_form_refuses_ndjson_with_a_hint():
    two = NDJSON_FORMAT.write(small_dossier(1)) + NDJSON_FORMAT.write(small_dossier(2))
    _, problems = problems_of(FORMAT.read, two, source="x.json")
    assert codes_at(problems) == [("OMN-003", "x.json:2")] and "omnihis-ndjson" in problems[0].message


def test_byte_order_mark_is_ignored_with_a_warning():
    d, problems = problems_of(FORMAT.read, b"\xef\xbb\xbf" + FORMAT.write(small_dossier(1)), source="x.json")
    assert d == small_dossier(1) and [p.code for p in problems if p.code != "CODE-001"] == ["OMN-007"]


def test_postbox_needs_a_filing_or_a_manual_reason_not_both():
    item = json.loads(
        POSTBOX.write_postbox(
            m.PostboxItem(
                id="pb",
                kind="feedback",
                created=dt.datetime(2026, 1, 2, 3, 4),
                practice_agb="01073652",
                patient=m.PatientMatch(bsn="999911120"),
                correspondence=m.Correspondence(
                    id="k", date=dt.datetime(2026, 1, 2, 3, 4), direction="in", text="t"
                ),
                manual_reason="episode unknown",
            )
        )
    )

    def problems(data: dict) -> list[tuple[str, str]]:
        return codes_at(problems_of(POSTBOX.read_postbox, enc(data), source="p.json")[1])

    del item["manualReason"]
    assert problems(item) == [("OMN-070", "p.json $")]
    item["manualReason"] = "x"
    item["filing"] = {"episodeId": "ep1", "conceptJournalEntry": {"dateTime": "2026-01-02T03:04:00+01:00"}}
    assert problems(item) == [("OMN-070", "p.json $")]
    del item["manualReason"]
    assert problems(item) == []
    item["filing"]["episodeId"] = "not an id"
    assert problems(item) == [("OMN-033", "p.json $.filing.episodeId")]


# --------------------------------------------------------------------------- hostile input


def _refused(read, data: bytes, source: str = "h.json", budget: float = 1.0) -> list:
    t0 = time.perf_counter()
    with pytest.raises(InputError) as info:
        read(data, source=source)
    elapsed = time.perf_counter() - t0
    assert elapsed < budget, f"took {elapsed:.2f} s"
    problems = list(info.value.problems)
    assert problems and all(p.location.startswith(source) for p in problems)
    return problems


READS = {"document": FORMAT.read, "ndjson": NDJSON_FORMAT.read, "postbox": POSTBOX.read_postbox}


@pytest.mark.parametrize("form", list(READS))
@pytest.mark.parametrize(
    "deep",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        b'{"practice":' + b"[" * 100_000,
    ],
)
def test_deep_nesting_is_refused_quickly_with_a_location(form, deep):
    problems = _refused(READS[form], deep)
    assert [p.code for p in problems] == ["OMN-004"] and "column" in problems[0].message


@pytest.mark.parametrize("form", list(READS))
@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b'{"practice": {"id": "p", "name": "Praktijk"}, "patient": {"bsn": "5555', "OMN-003"),
        (b'{"practice": {"id": "p", "name": "Pr\xe9ktijk"}}', "OMN-002"),
        (b'{"a": "\\ud800"}', "OMN-003"),
        (b'{"a": NaN}', "OMN-003"),
        (b'{"a": ' + b"9" * 5000 + b"}", "OMN-003"),
        (b"\x00" * 4096, "OMN-003"),
        (b"", "OMN-005"),
    ],
)
def test_broken_json_is_refused_with_a_code(form, data, code):
    problems = _refused(READS[form], data)
    assert [p.code for p in problems] == [code]


def test_invalid_utf8_is_located_by_line_and_column():
    data = FORMAT.write(small_dossier(1)).replace(b'"Huisartsenpraktijk', b'"Huisartsen\xffpraktijk', 1)
    problems = _refused(FORMAT.read, data, "x.json")
    assert [(p.code, p.location) for p in problems] == [("OMN-002", "x.json:5")]
    assert problems[0].message.startswith("not valid UTF-8 at column 24:")


def test_a_20_mb_string_is_refused_by_the_document_limit_and_10_mb_accepted():
    big = json.loads(FORMAT.write(small_dossier(1)))
    big["attentionNotes"][0]["text"] = "ĳ" + "x" * (20 * 1024 * 1024)
    problems = _refused(FORMAT.read, enc(big))
    assert [p.code for p in problems] == ["OMN-001"]
    big["attentionNotes"][0]["text"] = "ĳ" + "x" * (10 * 1024 * 1024)
    d = FORMAT.read(enc(big))
    assert len(d.attention_notes[0].text) == 10 * 1024 * 1024 + 1
    assert MAX_DOCUMENT_BYTES == 16 * 1024 * 1024  # the documented limit


def test_an_over_long_ndjson_line_is_skipped_and_the_next_read():
    line = b'{"padding": "' + b"x" * (MAX_DOCUMENT_BYTES + 10) + b'"}\n'
    sink = ProblemSink()
    seen = []
    with pytest.raises(InputError) as info:
        for d in NDJSON_FORMAT.iter_read(
            io.BytesIO(line + NDJSON_FORMAT.write(small_dossier(3))), source="big.ndjson", sink=sink
        ):
            seen.append(d)
    assert seen == [small_dossier(3)]
    assert codes_at(info.value.problems) == [("OMN-001", "big.ndjson:1")]


def test_a_huge_bad_value_gives_a_short_message():
    data = doc()
    data["patient"]["bsn"] = "9" * 1_000_000
    _, problems = problems_of(FORMAT.read, enc(data), source="x.json")
    assert codes_at(problems) == [("OMN-030", "x.json $.patient.bsn")]
    assert len(problems[0].message) < 200


def test_too_many_values_are_refused_before_decoding():
    problems = _refused(FORMAT.read, b'{"x": [' + b"1," * 600_000 + b"1]}")
    assert [p.code for p in problems] == ["OMN-001"]


@pytest.mark.parametrize("reader", [FORMAT, NDJSON_FORMAT])
def test_100_mb_of_garbage_is_refused_within_a_second_in_bounded_memory(reader):
    garbage = os.urandom(1024 * 1024) * 100
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(InputError) as info:
            list(reader.iter_read(io.BytesIO(garbage), source="garbage.bin"))
        elapsed = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert elapsed < 1.0, f"{elapsed:.2f} s"
    assert peak < 40 * 1024 * 1024, f"{peak / 2**20:.0f} MiB"
    assert info.value.problems[0].code in {"OMN-001", "OMN-002", "OMN-003"}


# --------------------------------------------------------------------------- speed


def test_typical_dossier_reads_and_writes_well_under_5_ms():
    d = typical_dossier()
    timings = {}
    for fmt in (FORMAT, NDJSON_FORMAT):
        data = fmt.write(d)
        assert fmt.read(data) == d
        write, read = (lambda f=fmt: f.write(d)), (lambda f=fmt, b=data: f.read(b))
        timings[f"{fmt.name} write"] = min(timeit.repeat(write, number=10, repeat=7)) / 10
        timings[f"{fmt.name} read"] = min(timeit.repeat(read, number=10, repeat=7)) / 10
    print({k: f"{v * 1000:.2f} ms" for k, v in timings.items()})
    assert max(timings.values()) < 0.005, timings


# --------------------------------------------------------------------------- bulk


def _peak_rss(pid: int) -> int:
    """Peak resident memory of a running process in bytes (Linux VmHWM; else the current RSS)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        try:
            return psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return 0
    kib = [int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")]
    return kib[0] * 1024 if kib else 0


@pytest.mark.slow
def test_10000_patients_convert_streaming_through_the_cli(tmp_path):
    src, out = tmp_path / "bulk.ndjson", tmp_path / "bulk.canonical.jsonl"
    with src.open("wb") as fh:
        assert NDJSON_FORMAT.write_many((small_dossier(seed) for seed in range(10_000)), fh) == 10_000
    t0 = time.perf_counter()
    cmd = [
        sys.executable,
        "-m",
        "gateway.cli",
        "convert",
        str(src),
        "--from",
        "omnihis-ndjson",
        "--to",
        "canonical",
        "-o",
        str(out),
    ]
    log = (tmp_path / "stderr.txt").open("wb")  # a file, not a pipe: warnings must not fill a pipe and block
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log)
    # The child's own high-water mark (VmHWM, reset at exec), polled until it exits. Not
    # RUSAGE_CHILDREN: a child forked from this (large) test process is charged the parent's pages
    # until it execs, so ru_maxrss reports the parent's size, not the converter's.
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _peak_rss(proc.pid))
        time.sleep(0.01)
    log.close()
    elapsed = time.perf_counter() - t0
    print(
        f"10,000 patients: {elapsed:.1f} s, input {src.stat().st_size / 2**20:.1f} MiB, "
        f"peak RSS {peak / 2**20:.0f} MiB"
    )
    assert proc.returncode == 0, (tmp_path / "stderr.txt").read_text("utf-8")[-2000:]
    assert 10 * 2**20 < peak < 300 * 2**20  # the lower bound: the measurement did see the process
    lines = out.read_bytes().splitlines()
    assert len(lines) == 10_000
    for seed in (0, 4321, 9999):
        assert m.from_json(lines[seed]) == small_dossier(seed)
