"""The fhir-server suite's generic part against a FHIR server this project did not write (issue 8,
acceptance 4): Medplum's FHIR router (npm ``@medplum/fhir-router``), installed from the npm registry and
started locally. Its verdicts must be the ones ``docs/conformance.md`` records "as found"."""

from __future__ import annotations

import os
import re

import pytest

from conformance.model import Verdict
from conformance.runner import RunOptions, run
from tests.conftest import ROOT, free_port

DOC = ROOT / "docs" / "conformance.md"


def recorded() -> dict[str, str]:
    """The verdict table between the ``medplum-results`` markers of docs/conformance.md."""
    text = DOC.read_text("utf-8")
    block = text.split("<!-- medplum-results -->")[1].split("<!-- /medplum-results -->")[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"^\| `([^`]+)` \| (\w+) \|", block, re.MULTILINE)}


@pytest.mark.slow
def test_generic_part_against_medplum_fhir_router_as_recorded(tmp_path):
    from conformance.thirdparty import MedplumServer, Unavailable

    try:
        server = MedplumServer(free_port()).start()
    except Unavailable as exc:
        # CI (this project's machine kind ships node 20 and npm, and reaches the npm registry) must run it:
        # there, a missing server fails acceptance 4 of issue 8. A developer machine without node or npm
        # skips with the reason.
        if os.environ.get("CI"):
            pytest.fail(f"third-party FHIR server unavailable in CI: {exc}")
        pytest.skip(f"third-party FHIR server unavailable (needs node >= 20 and npm): {exc}")
    try:
        result = run("fhir-server", RunOptions(server.base_url, assume_all=True, only=["generic-*"]))
    finally:
        server.stop()
    found = {t.id: t.verdict.value for t in result.tests}
    assert not [t for t in result.tests if t.verdict is Verdict.ERROR], found
    assert (
        result.count(Verdict.PASS) >= 8
    )  # it is a working FHIR server: the suite does not fail it wholesale
    assert found == recorded(), "docs/conformance.md does not record these results as found"
