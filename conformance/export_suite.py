"""The executor of ``export`` suites (``his-export``, the sending role): a vendor's export file read by the
gateway's own reader for its dialect, every problem sorted into the test that owns it.

The file is read once, leniently (every problem collected), by ``adapters`` for the dialect (``--param
dialect=...``, else recognised from the content). ``suite.json`` sorts problems into classes by code and
message (``classes``: ``{"code": "MED-020", "message": "11-test"}``); each test checks the classes it
names and fails on an error of one of them (a class rule with ``"verdict": "warning"`` reports without
failing). Errors that no class claims belong to the test with ``"fallback": true`` (the structure test),
so no problem is ever dropped.
"""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path

import formats
from conformance.model import Exchange, TestResult
from conformance.suite import RunOptions, Suite, UsageError
from mappings.problems import InputError, Problem, ProblemSink, Severity

_NUMBER = re.compile(r"(?<!\d)\d{8,10}(?!\d)")


def detect(data: bytes) -> str | None:
    """The dialect of an export by its content (:func:`formats.sniff` among the HIS exports)."""
    found = formats.sniff(data, among=formats.exports())
    return found.name if found is not None else None


def read_problems(data: bytes, dialect: str, source: str) -> tuple[list[Problem], int]:
    """Every problem of reading ``data`` as ``dialect`` and the number of dossiers read."""
    sink = ProblemSink(strict=False)
    n = 0
    extra: list[Problem] = []
    try:
        for _ in formats.get(dialect).codec().iter_read(io.BytesIO(data), source=source, sink=sink):
            n += 1
    except InputError as exc:
        extra = [p for p in exc.problems if p not in sink.problems]
    return [*sink.problems, *extra], n


def classify(problem: Problem, classes: dict[str, list[dict]]) -> tuple[str | None, str]:
    """(class, verdict) of a problem: the first rule whose code, severity and message pattern match."""
    for name, rules in classes.items():
        for r in rules:
            if r["code"] != problem.code:
                continue
            if r.get("severity", "error") != problem.severity.value:
                continue
            if "message" in r and not re.search(r["message"], problem.message, re.IGNORECASE):
                continue
            return name, r.get("verdict", "fail")
    return None, "fail"


def execute(suite: Suite, options: RunOptions) -> tuple[list[TestResult], list[str]]:
    spec = json.loads((suite.folder / "suite.json").read_text("utf-8"))
    path = Path(options.target)
    if not path.is_file():
        raise UsageError(
            f"suite {suite.name} needs --target PATH of an export file; {options.target!r} is not a file"
        )
    data = path.read_bytes()
    dialect = options.params.get("dialect") or detect(data)
    dialects = [f.name for f in formats.exports()]
    if dialect not in dialects:
        raise UsageError(
            f"cannot tell the dialect of {path.name}; give --param dialect=one of {', '.join(dialects)}"
        )
    started = time.perf_counter()
    problems, dossiers = read_problems(data, dialect, path.name)
    seconds = time.perf_counter() - started
    sorted_: dict[str | None, list[tuple[Problem, str]]] = {}
    for p in problems:
        cls, verdict = classify(p, spec["classes"])
        if cls is None and p.severity is not Severity.ERROR:
            continue  # warnings no class names (unused input, unknown elements) are the reader's business
        sorted_.setdefault(cls, []).append((p, verdict))
    notes = [f"read as {dialect}: {dossiers} dossier(s), {len(problems)} problem(s) in {seconds:.2f} s"]
    results = []
    for t in spec["tests"]:
        r = TestResult(
            f"{suite.name}/{t['id']}", t["name"], t["requirement"], f"{suite.folder.name}/suite.json"
        )
        if t.get("dialects") and dialect not in t["dialects"]:
            r.skip(f"not part of the {dialect} dialect (applies to {', '.join(t['dialects'])})")
            results.append(r)
            continue
        mine = [x for c in t["classes"] for x in sorted_.get(c, [])]
        if t.get("fallback"):
            mine += sorted_.get(None, [])
        if t.get("needs-dossier") and not any(p.severity is Severity.ERROR for p in problems):
            # with errors no dossier is handed on: those errors are the finding, each owned by its test
            r.check(dossiers > 0, "dossiers read", f"got {dossiers} dossier(s); wanted at least one")
        for p, verdict in mine:
            message = _NUMBER.sub("*********", p.message)  # identifiers (BSN, AGB ...) never in a report
            r.check(
                verdict != "fail",
                p.code,
                f"{p.severity.value} {p.location}: {message}",
                warning_only=verdict == "warning",
            )
        if not mine:
            r.check(
                True, "no problems", f"{', '.join(t['classes']) or 'structure'}: none found in {path.name}"
            )
        r.exchanges.append(
            Exchange(
                f"read {path.name} as {dialect}",
                f"{len(data):,} bytes from {path.name}",
                "\n".join(f"{p.severity.value} {p.code} {p.location}" for p, _ in mine) or "no problems",
            )
        )
        r.seconds = seconds
        results.append(r)
    return results, notes
