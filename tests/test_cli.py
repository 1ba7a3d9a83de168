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


# -- first contact (issue 18): quiet, fast, and says what it did -------------------------------------------

REAL_PS_ARGS = ("--from", "ps-hl7v3")


def _imported(*args: str) -> set[str]:
    """The modules a whole ``hisgw`` process imports (``python -X importtime``), and it must exit 0."""
    r = subprocess.run(
        [sys.executable, "-X", "importtime", *HISGW[1:], *args], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}


def test_help_imports_no_service_stack_and_convert_no_pydantic(tmp_path: Path):
    """``hisgw --help`` and a one-dossier ``convert`` start fast (bench/bench_cli_start.py measures the
    300 ms): help imports neither the formats nor the service stack; convert none of the service stack, and
    not pydantic (typer's coercion of text options, ``gateway/cli.py`` ``_plain_text_parameters``)."""
    service = {"sqlalchemy", "uvicorn", "fastapi", "pydantic", "gateway.api", "alembic", "rich.console"}
    assert not _imported("--help") & (service | {"mappings.codec", "lxml.etree"})
    assert not _imported("outbox", "--help") & service
    src = Path(__file__).parent / "golden" / "medicom" / "minimal-dossier" / "export.xml"
    mods = _imported("convert", str(src), "--from", "medicom", "--to", "canonical", "-o", str(tmp_path / "o"))
    assert "mappings.codec" in mods and not mods & service


def test_version():
    from importlib.metadata import version

    r = run("--version")
    assert r.returncode == 0 and r.stdout.decode() == f"hisgw {version('his-gateway')}\n"


def test_envelope_of_the_professional_summary_is_one_information_line(tmp_path: Path):
    """The README's convert example: the 40 envelope elements (PS-091) are one line, the 8 clinical ones
    (PS-090) warnings; ``--verbose`` lists every envelope element."""
    from tests.conftest import REAL_PS

    quiet = run("convert", str(REAL_PS), *REAL_PS_ARGS, "--to", "omnihis", "-o", str(tmp_path / "ps.json"))
    lines = quiet.stderr.decode().splitlines()
    assert quiet.returncode == 0 and (tmp_path / "ps.json").stat().st_size > 0
    assert [ln.split()[1] for ln in lines] == ["PS-090"] * 8 + ["PS-091"]
    assert lines[-1].startswith("information PS-091 QUPC_IN990002NL_01.hl7v3.xml:3 /QUPC_IN990002NL/id: ")
    assert lines[-1].endswith("and 39 more like it (--verbose lists them)")
    loud = run("validate", str(REAL_PS), *REAL_PS_ARGS, "--verbose").stderr.decode().splitlines()
    assert sum(ln.startswith("information PS-091 ") for ln in loud) == 40
    assert loud[-1] == "ok: 1 dossier(s), 8 warning(s)"


def test_summary_says_what_it_wrote(tmp_path: Path):
    from tests.conftest import REAL_PS

    target = tmp_path / "summary.json"
    args = ("summary", str(REAL_PS), *REAL_PS_ARGS, "--as-of", "2017-06-21", "--to", "canonical")
    r = run(*args, "-o", str(target))
    assert r.returncode == 0 and target.stat().st_size > 0
    last = r.stderr.decode().splitlines()[-1]
    assert last == f"ok: 1 summary(ies) as of 2017-06-21 written to {target} as canonical"
    to_stdout = run(*args)
    assert m.from_json(to_stdout.stdout) == m.from_json(target.read_bytes())  # stdout is the data only
    assert to_stdout.stderr.decode().splitlines()[-1].endswith("written to standard output as canonical")
