"""The `hisgw` command-line contract (issue 2): exit codes, one line per problem, nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mappings import model as m
from tests.factories import small_dossier

HISGW = [sys.executable, "-m", "gateway.cli"]


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*HISGW, *args], input=stdin, capture_output=True, timeout=120)


def test_convert_to_stdout_and_file(tmp_path: Path):
    src = tmp_path / "d.json"
    src.write_bytes(m.to_json(small_dossier(3)))
    out = run("convert", str(src), "--from", "canonical", "--to", "canonical")
    assert out.returncode == 0, out.stderr
    assert m.from_json(out.stdout) == small_dossier(3)
    target = tmp_path / "sub" / "out.json"
    ok = run("convert", str(src), "--from", "canonical", "--to", "canonical", "-o", str(target))
    assert ok.returncode == 0 and m.from_json(target.read_bytes()) == small_dossier(3)


def test_stdin_to_stdout():
    out = run(
        "convert",
        "-",
        "--from",
        "canonical",
        "--to",
        "canonical",
        "-o",
        "-",
        stdin=m.to_json(small_dossier(4)),
    )
    assert out.returncode == 0 and m.from_json(out.stdout) == small_dossier(4)


@pytest.mark.parametrize(
    "args",
    [
        ["convert", "x.json", "--from", "nope", "--to", "canonical"],
        ["convert", "x.json", "--from", "canonical"],
        ["convert", "does-not-exist.json", "--from", "canonical", "--to", "canonical"],
        ["summary", "x.json", "--from", "canonical", "--to", "canonical", "--as-of", "2026-02-30"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args):
    out = run(*args)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert b"Traceback" not in out.stderr


def test_invalid_input_exit_1_one_line_per_problem_nothing_written(tmp_path: Path):
    good = m.to_json(small_dossier(1))
    bad = good.replace(b'"birth_date":"', b'"birth_date":"x')
    src = tmp_path / "many.jsonl"
    src.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")
    target = tmp_path / "out.jsonl"
    out = run("convert", str(src), "--from", "canonical", "--to", "canonical", "-o", str(target))
    assert out.returncode == 1
    assert b"Traceback" not in out.stderr
    lines = out.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error CAN-002 many.jsonl:2"), lines
    assert not target.exists(), "a failed conversion must not leave output behind"
    assert list(tmp_path.iterdir()) == [src]


def test_validate_reports_ok_and_errors(tmp_path: Path):
    src = tmp_path / "d.json"
    src.write_bytes(m.to_json(small_dossier(2)))
    ok = run("validate", str(src), "--from", "canonical")
    assert ok.returncode == 0 and b"ok: 1 dossier" in ok.stderr
    src.write_bytes(b"{not json")
    bad = run("validate", str(src), "--from", "canonical")
    assert bad.returncode == 1 and bad.stderr.startswith(b"error CAN-001 d.json")
