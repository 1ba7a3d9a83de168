"""The fhir-server conformance suite (issue 8): passes against ``hisgw serve --demo`` (acceptance 1), and a
deliberately broken FHIR server fails exactly the tests aimed at its breakage (acceptance 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from conformance.model import Verdict
from conformance.runner import RunOptions, run, write_reports
from conformance.selftest.broken_fhir import BrokenFhirServer
from tests.conftest import ROOT, ServerProcess, free_port


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("conf-demo")
    server = ServerProcess(
        ["--demo", "--metrics-port", "0", "--mllp-port", str(free_port())], workdir
    ).wait_ready()
    try:
        yield server, workdir / "var" / "demo-clients"
    finally:
        server.stop()


def options(target: str, keys: Path, **kw) -> RunOptions:
    return RunOptions(
        target,
        client_id="demo-praktijk-1",
        private_key=keys / "demo-praktijk-1.private.pem",
        client2_id="demo-ziekenhuis-1",  # another organisation (tenancy) and the consult's hospital
        private_key2=keys / "demo-ziekenhuis-1.private.pem",
        capabilities=["nl-core"],  # the consult operations: declared in /metadata
        params={
            "patient-bsn": "555555914",
            "consult-hospital": "Martini",
            "consult-specialism": "Cardiologie",
            "consult-specialist": "dr. M. Hartman",
        },
        **kw,
    )


def verdicts(result) -> dict[str, Verdict]:
    return {t.id: t.verdict for t in result.tests}


def test_every_fhir_server_test_passes_against_the_demo_gateway(demo, tmp_path):
    server, keys = demo
    result = run("fhir-server", options(server.base_url, keys))
    bad = {t.id: t.reason for t in result.tests if t.verdict is not Verdict.PASS}
    assert not bad, bad
    assert len(result.tests) == 40
    assert sum(t.id.startswith("gateway-consult/") for t in result.tests) == 9
    # every test names the requirement it checks
    assert all(t.requirement and t.requirement != "(no requirement named)" for t in result.tests)
    # reports: patient data (the demo patient's BSN, name) and credentials never in clear
    paths = write_reports(result, tmp_path)
    for p in paths.values():
        text = p.read_text("utf-8")
        assert "555555914" not in text and "Bearer ey" not in text and "client_assertion=ey" not in text, p
    report = orjson.loads(paths["testreport"].read_bytes())
    assert report["result"] == "pass"


def test_capability_driven_skips_name_their_reason(demo):
    """Without a second client and without the nl-core declaration, those tests are skipped, not failed."""
    server, keys = demo
    opts = RunOptions(
        server.base_url,
        client_id="demo-praktijk-1",
        private_key=keys / "demo-praktijk-1.private.pem",
        only=["gateway-*", "nl-core-*"],
    )
    result = run("fhir-server", opts)
    assert result.tests and all(t.verdict is Verdict.SKIP for t in result.tests)
    reasons = {t.id: t.reason for t in result.tests}
    assert "not given: a second client" in reasons["gateway-tenancy/other-tenant-read-404"]
    assert "nl-core" in reasons["nl-core-identifiers/bsn-11-test"]
    assert "patient-bsn" in reasons["nl-core-identifiers/patient-nl-core"]
    assert (
        "consult" in reasons["gateway-consult/send"]
        and "consult-specialism" in reasons["gateway-consult/send"]
    )


@pytest.mark.parametrize(
    "breaks, aimed",
    [
        ({"wrong-codes"}, {"generic-crud/delete", "generic-crud/stale-if-match"}),
        (
            {"bare-errors"},
            {
                "generic-errors/unknown-id-404",
                "generic-errors/unknown-type-404",
                "gateway-tenancy/other-tenant-read-404",
                "gateway-tenancy/other-tenant-update-404",
            },
        ),
    ],
)
def test_broken_fhir_server_fails_exactly_the_aimed_tests(demo, breaks, aimed):
    server, keys = demo
    broken = BrokenFhirServer(server.base_url, breaks).start()
    try:
        result = run("fhir-server", options(broken.base_url, keys))
    finally:
        broken.stop()
    failed = {t.id for t in result.tests if t.verdict is not Verdict.PASS}
    assert failed == aimed, {t.id: t.reason for t in result.tests if t.verdict is not Verdict.PASS}
    assert all(verdicts(result)[i] is Verdict.FAIL for i in aimed)  # failed, not errored


def test_cli_run_exit_codes_summary_and_reports(demo, tmp_path):
    server, keys = demo
    cmd = [
        sys.executable,
        "-m",
        "gateway.cli",
        "conformance",
        "run",
        "--suite",
        "fhir-server",
        "--target",
        server.base_url,
        "--client-id",
        "demo-praktijk-1",
        "--private-key",
        str(keys / "demo-praktijk-1.private.pem"),
        "--only",
        "generic-crud/*",
        "--report-dir",
        str(tmp_path / "r"),
    ]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    last = p.stdout.strip().splitlines()[-1]
    assert last.startswith("conformance fhir-server against ") and " 7 passed, 0 failed" in last
    assert sorted(x.name for x in (tmp_path / "r").iterdir()) == [
        "conformance-fhir-server.html",
        "conformance-fhir-server.junit.xml",
        "conformance-fhir-server.testreport.json",
    ]
    # a failing run exits 1: the broken server
    broken = BrokenFhirServer(server.base_url, {"wrong-codes"}).start()
    try:
        cmd[cmd.index("--target") + 1] = broken.base_url
        p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        broken.stop()
    assert p.returncode == 1 and "FAIL  generic-crud/delete" in p.stdout, p.stdout
    # usage errors exit 2
    p = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "conformance", "run", "--suite", "nope", "--target", "x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "no suite 'nope'" in p.stderr
    p = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "conformance", "list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0 and "fhir-server" in p.stdout


def test_suites_are_valid_fhir_testscripts():
    """The suite files are FHIR R4 TestScripts (checked with the R4B model classes)."""
    from mappings.fhir.r4b import validate_with_models

    files = sorted((ROOT / "conformance" / "suites" / "fhir-server").glob("*.testscript.json"))
    assert len(files) == 10
    for f in files:
        validate_with_models(orjson.loads(f.read_bytes()))
