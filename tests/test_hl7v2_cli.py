"""``hisgw convert --from hl7v2 / --to hl7v2`` (issue 4): files of many messages, one FHIR Bundle per
message as NDJSON in input order, errors one line each with message number and location, exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from tests.golden_util import GOLDEN

HISGW = [sys.executable, "-m", "gateway.cli"]
AREA = GOLDEN / "hl7v2"
INBOUND = sorted(
    p
    for t in AREA.iterdir()
    if t.is_dir() and not t.name.endswith("-outbound")
    for p in t.iterdir()
    if p.is_dir()
)
MINIMAL = (AREA / "adt-a04" / "minimal-bsn-name-and-birth-date" / "message.hl7").read_bytes()


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*HISGW, *args], input=stdin, capture_output=True, timeout=120)


def _errors(out: subprocess.CompletedProcess) -> list[str]:
    assert b"Traceback" not in out.stderr
    return [x for x in out.stderr.decode().splitlines() if x.startswith("error ")]


def test_many_messages_with_every_terminator_give_one_bundle_each_in_input_order(tmp_path: Path):
    # the golden messages as they are (\r, \n and \r\n terminated), with and without blank lines between
    parts = [(case / "message.hl7").read_bytes() for case in INBOUND]
    data = b"".join(p if i % 2 else p + b"\n\n" for i, p in enumerate(parts))
    src = tmp_path / "in.hl7"
    src.write_bytes(data)
    target = tmp_path / "out.ndjson"
    out = run("convert", str(src), "--from", "hl7v2", "--to", "fhir", "-o", str(target))
    assert out.returncode == 0, out.stderr
    lines = target.read_bytes().splitlines()
    assert len(lines) == len(INBOUND) >= 36
    for case, line in zip(INBOUND, lines, strict=True):
        assert json.loads(line) == json.loads((case / "fhir.json").read_bytes()), case.name
    # the golden warnings of each message, in order, located by message number and starting line
    expected = [
        (n, w)
        for n, case in enumerate(INBOUND, 1)
        for w in (case / "warnings.txt").read_text().split("\n")
        if w
    ]
    got = [
        re.match(r"(\w+ [A-Z0-9]+-\d+) in\.hl7 message (\d+) \(line \d+\) (.*)", x).groups()
        for x in out.stderr.decode().split("\n")
        if x
    ]
    lines = [(int(n), f"{sev} {rest}") for sev, n, rest in got]
    # warnings one a line in message order; information (fields not mapped by design) one line per code at
    # the end, the first of its kind (the command line groups them)
    assert [x for x in lines if not x[1].startswith("information")] == [
        x for x in expected if not x[1].startswith("information")
    ]
    infos = [x for x in expected if x[1].startswith("information")]
    assert [x for x in lines if x[1].startswith("information")] == infos[:1]


def test_batch_envelope_and_back_from_fhir_to_the_same_messages(tmp_path: Path):
    second = MINIMAL.replace(b"A04-0001", b"A04-0002").replace(b"Berg^Jan", b"Vries^Piet")
    batch = b"FHS|^~\\&|ZIS\rBHS|^~\\&|ZIS\r" + MINIMAL + second + b"BTS|2\rFTS|1\r"
    src = tmp_path / "batch.hl7"
    src.write_bytes(batch)
    fhir_out = run("convert", str(src), "--from", "hl7v2", "--to", "fhir")
    assert fhir_out.returncode == 0, fhir_out.stderr
    bundles = [json.loads(x) for x in fhir_out.stdout.splitlines()]
    assert [b["identifier"]["value"] for b in bundles] == ["A04-0001", "A04-0002"]
    assert all(
        b["type"] == "message" and b["entry"][0]["resource"]["resourceType"] == "MessageHeader"
        for b in bundles
    )
    direct = run("convert", str(src), "--from", "hl7v2", "--to", "hl7v2")
    assert direct.returncode == 0, direct.stderr
    assert direct.stdout == MINIMAL + second  # written: segments ended by \r, one message after another
    back = run("convert", "-", "--from", "fhir", "--to", "hl7v2", stdin=fhir_out.stdout)
    assert back.returncode == 0, back.stderr
    assert back.stdout == direct.stdout


def test_bad_messages_exit_1_one_line_per_problem_with_message_number_nothing_written(tmp_path: Path):
    bad_bsn = MINIMAL.replace(b"123456782", b"123456781")
    bad_date = MINIMAL.replace(b"19800101", b"19801301")
    src = tmp_path / "in.hl7"
    src.write_bytes(MINIMAL + bad_bsn + b"\n" + bad_date)
    target = tmp_path / "out.ndjson"
    out = run("convert", str(src), "--from", "hl7v2", "--to", "fhir", "-o", str(target))
    assert out.returncode == 1
    errors = _errors(out)
    assert len(errors) == 2, errors
    assert errors[0].startswith("error HL7-021 in.hl7 message 2 (line 5) PID-3")
    assert errors[1].startswith("error HL7-011 in.hl7 message 3 (line 9) PID-7")
    assert list(tmp_path.iterdir()) == [src]  # nothing written, no temporary file left
    strict = run("convert", str(src), "--from", "hl7v2", "--to", "fhir", "-o", str(target), "--strict")
    assert strict.returncode == 1 and len(_errors(strict)) == 1
    assert list(tmp_path.iterdir()) == [src]


def test_parse_errors_and_files_without_messages_exit_1(tmp_path: Path):
    src = tmp_path / "in.hl7"
    src.write_bytes(b"PID|1||123456782\r" + MINIMAL)
    out = run("convert", str(src), "--from", "hl7v2", "--to", "fhir")
    assert out.returncode == 1 and _errors(out)[0].startswith("error HL7-041 in.hl7 line 1")
    src.write_bytes(MINIMAL + MINIMAL.replace(b"Berg^Jan", b"Berg\\X4^Jan"))
    out = run("convert", str(src), "--from", "hl7v2", "--to", "hl7v2")
    assert out.returncode == 1 and _errors(out)[0].startswith("error HL7-006 in.hl7 message 2 (line 5) PID-5")
    assert out.stdout == b""
    out = run("convert", "-", "--from", "hl7v2", "--to", "fhir", stdin=b"\n\n")
    assert out.returncode == 1 and _errors(out)[0].startswith("error HL7-002")
    bad_fhir = run("convert", "-", "--from", "fhir", "--to", "hl7v2", stdin=b'{"resourceType":"Bundle"}\n')
    assert bad_fhir.returncode == 1 and _errors(bad_fhir)[0].startswith("error HL7-070 <stdin>:1 Bundle")


def test_messages_are_not_dossiers_usage_errors_exit_2(tmp_path: Path):
    src = tmp_path / "in.hl7"
    src.write_bytes(MINIMAL)
    for args in (
        ["convert", str(src), "--from", "hl7v2", "--to", "medicom"],
        ["convert", str(src), "--from", "canonical", "--to", "hl7v2"],
        ["summary", str(src), "--from", "hl7v2", "--to", "fhir"],
    ):
        out = run(*args)
        assert out.returncode == 2, (args, out.stderr)
        assert b"Traceback" not in out.stderr
    ok = run("validate", str(src), "--from", "hl7v2")
    assert ok.returncode == 0 and b"ok: 1" in ok.stderr
