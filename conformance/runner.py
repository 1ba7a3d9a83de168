"""The conformance runner: finds the suites (data under ``conformance/suites/<name>/suite.toml``), runs one
against a target and writes the reports (``docs/conformance.md``).

Each suite folder holds ``suite.toml`` (name, title, role, the kind of executor, what a target is, the
capabilities a tester may declare) and its tests as data: FHIR R4 TestScript JSON for ``testscript``
suites, one JSON file of declarative tests for the ``mllp``, ``export`` and ``postbox`` suites.
"""

from __future__ import annotations

import datetime as dt
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

from conformance.model import SuiteResult, TestResult
from conformance.suite import RunOptions, Suite, UsageError, selected

SUITES_DIR = Path(__file__).resolve().parent / "suites"
__all__ = ["RunOptions", "Suite", "UsageError", "run", "selected", "suites", "write_reports"]


def suites() -> dict[str, Suite]:
    out = {}
    for toml in sorted(SUITES_DIR.glob("*/suite.toml")):
        d = tomllib.loads(toml.read_text("utf-8"))
        out[d["name"]] = Suite(
            d["name"],
            d["title"],
            d["role"],
            d["kind"],
            d["target"],
            d.get("description", "").strip(),
            toml.parent,
            dict(d.get("capabilities", {})),
            {k: str(v) for k, v in d.get("params", {}).items()},
        )
    return out


def get_suite(name: str) -> Suite:
    all_ = suites()
    if name not in all_:
        raise UsageError(f"no suite {name!r}; there are: {', '.join(all_)}")
    return all_[name]


def _executor(kind: str) -> Callable[[Suite, RunOptions], tuple[list[TestResult], list[str]]]:
    if kind == "testscript":
        from conformance.fhir_suite import execute
    elif kind == "mllp":
        from conformance.mllp_suite import execute
    elif kind == "export":
        from conformance.export_suite import execute
    elif kind == "postbox":
        from conformance.postbox_suite import execute
    else:
        raise UsageError(f"suite kind {kind!r} has no executor")
    return execute


def run(name: str, options: RunOptions) -> SuiteResult:
    """Run suite ``name`` against ``options.target``; never raises for a failing endpoint."""
    suite = get_suite(name)
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    tests, notes = _executor(suite.kind)(suite, options)
    result = SuiteResult(
        suite.name,
        suite.title,
        suite.role,
        options.target,
        started,
        [t for t in tests if selected(t.id, options.only)],
        notes=notes,
    )
    result.seconds = time.perf_counter() - t0
    return result


def write_reports(result: SuiteResult, report_dir: Path) -> dict[str, Path]:
    """JUnit XML, a FHIR TestReport and the HTML page into ``report_dir`` (created)."""
    from conformance import report

    report_dir.mkdir(parents=True, exist_ok=True)
    stem = f"conformance-{result.suite}"
    paths = {
        "junit": report_dir / f"{stem}.junit.xml",
        "testreport": report_dir / f"{stem}.testreport.json",
        "html": report_dir / f"{stem}.html",
    }
    paths["junit"].write_bytes(report.junit_xml(result))
    paths["testreport"].write_bytes(report.test_report_json(result))
    paths["html"].write_text(report.html_page(result), "utf-8")
    return paths
