"""The reports of a conformance run (issue 8, acceptance 3): the JUnit XML parses with a standard JUnit
reader, the TestReport validates as FHIR, and the HTML page renders in headless Chromium (Debian's
``chromium``, driven by Playwright) without loading anything from outside the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from conformance.model import Verdict
from conformance.runner import RunOptions, run, write_reports
from conformance.selftest.receivers import FilesTwiceInbox

CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and Path(p).is_file()),
    None,
)


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """A real run with passes, a failure, skips and captured HTTP exchanges: the postbox suite against an
    inbox that files repeats twice, one test left without its capability."""
    tmp = tmp_path_factory.mktemp("reports")
    inbox = FilesTwiceInbox(tmp / "filed.log").start()
    try:
        result = run(
            "postbox-receiver",
            RunOptions(
                inbox.url,
                observe=f"lines:{tmp / 'filed.log'}",
                only=["*-acknowledged", "*repeat*", "*unreadable*"],
            ),
        )
    finally:
        inbox.stop()
    assert {t.verdict for t in result.tests} == {Verdict.PASS, Verdict.FAIL}
    return result, write_reports(result, tmp / "out")


def test_junit_xml_parses_with_a_standard_reader(reports):
    from junitparser import Failure, JUnitXml, Skipped

    result, paths = reports
    xml = JUnitXml.fromfile(str(paths["junit"]))
    suites = list(xml)
    assert len(suites) == 1
    cases = list(suites[0])
    assert len(cases) == len(result.tests)
    failed = [c.name for c in cases if any(isinstance(r, Failure) for r in c.result)]
    assert failed == ["repeat-filed-once"]
    assert not [c for c in cases if any(isinstance(r, Skipped) for r in c.result)]
    assert suites[0].failures == 1 and suites[0].tests == len(result.tests)


def test_test_report_validates_as_fhir(reports):
    from mappings.fhir.r4b import validate_with_models

    result, paths = reports
    doc = orjson.loads(paths["testreport"].read_bytes())
    model = validate_with_models(doc)
    assert model.result == "fail" and len(model.test) == len(result.tests)
    verdicts = {t["name"]: {a["assert"]["result"] for a in t["action"] if "assert" in a} for t in doc["test"]}
    assert "fail" in verdicts["postbox-receiver/repeat-filed-once"]
    assert verdicts["postbox-receiver/repeat-acknowledged"] == {"pass"}


def _browse(html: Path, screenshot: Path) -> tuple[list[str], dict]:
    """Open a file in headless Chromium; every request that is not file: or data: is counted and blocked."""
    from playwright.sync_api import sync_playwright

    if CHROMIUM is None:  # a failure, not a skip: issue 8's acceptance 3 rests on this browser
        pytest.fail("Debian's chromium is missing: `bash scripts/test.sh` installs it")
    external: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()

            def guard(route):
                url = route.request.url
                if url.startswith(("file:", "data:")):
                    route.continue_()
                else:
                    external.append(url)
                    route.abort()

            page.route("**/*", guard)
            page.goto(html.as_uri(), wait_until="load")
            page.wait_for_timeout(200)
            info = page.evaluate("""() => ({
                title: document.title,
                summary: (document.querySelector('#summary') || {innerText: ''}).innerText,
                tests: Array.from(document.querySelectorAll('details.test')).map(d => [d.id, d.open]),
                bodyHeight: document.body.scrollHeight,
                verdictColour: getComputedStyle(document.querySelector('.verdict.fail')).backgroundColor,
            })""")
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    return external, info


def test_html_report_renders_in_headless_chromium_without_external_loads(reports, tmp_path):
    result, paths = reports
    external, info = _browse(paths["html"], tmp_path / "report.png")
    assert external == []
    assert info["title"].startswith("conformance postbox-receiver")
    assert (
        f"{result.count(Verdict.FAIL)} fail" in info["summary"]
        and f"{result.count(Verdict.PASS)} pass" in info["summary"]
    )
    assert [t[0] for t in info["tests"]] == [t.id for t in result.tests]
    assert dict(info["tests"])["postbox-receiver/repeat-filed-once"] is True  # failures open
    assert info["verdictColour"] == "rgb(251, 224, 223)"  # the inline stylesheet applied
    assert info["bodyHeight"] > 300 and (tmp_path / "report.png").stat().st_size > 10_000
    html = paths["html"].read_text("utf-8")
    assert "999911120" not in html and "Idempotency-Key" in html  # exchanges shown, the BSN masked


def test_the_external_load_check_catches_an_external_load(reports, tmp_path):
    """The guard of the test above is not blind: a page that loads an image from elsewhere is caught. (The
    report's own Content-Security-Policy would refuse such loads before any request: it is taken out here.)"""
    import re

    _result, paths = reports
    bad = tmp_path / "bad.html"
    page = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", paths["html"].read_text("utf-8"))
    assert "Content-Security-Policy" not in page
    bad.write_text(
        page.replace(
            "</body>",
            '<img src="http://127.0.0.1:9/tracker.png"><link rel="stylesheet" href="https://cdn.invalid/x.css"></body>',
        ),
        "utf-8",
    )
    external, _info = _browse(bad, tmp_path / "bad.png")
    assert sorted(external) == ["http://127.0.0.1:9/tracker.png", "https://cdn.invalid/x.css"]


def test_patient_data_and_credentials_are_masked():
    from conformance.mask import mask_body, mask_er7, mask_json, mask_text

    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Berg"}],
        "birthDate": "1980-01-01",
        "identifier": [{"system": "http://fhir.nl/fhir/NamingSystem/bsn", "value": "999911120"}],
        "gender": "male",
    }
    masked = mask_json({"resourceType": "Bundle", "entry": [{"resource": patient}]})["entry"][0]["resource"]
    assert masked["name"] == masked["birthDate"] == masked["identifier"][0]["value"] == "***"
    assert masked["gender"] == "male" and masked["id"] == "p1"
    er7 = mask_er7(
        "MSH|^~\\&|A|B|C|D|20260101||ADT^A04|1|P|2.5\rPID|1||999911120^^^NLMINBIZA||Berg^Jan||19800101|M"
    )
    assert "Berg" not in er7 and "19800101" not in er7 and "999911120" not in er7 and "ADT^A04" in er7
    assert mask_text("Authorization: Bearer eyJabc.def") == "Authorization: Bearer ***"
    assert (
        mask_text("bsn|999911120 and 123456789") == "bsn|*** and 123456789"
    )  # only numbers passing the 11-test
    assert "eyJ" not in mask_body(
        b"grant_type=client_credentials&client_assertion=eyJhbGci.x.y", "application/x-www-form-urlencoded"
    )


def test_every_test_of_every_suite_names_its_requirement():
    import json

    from conformance.runner import suites

    found = 0
    for s in suites().values():
        if s.kind == "testscript":
            for f in s.folder.glob("*.testscript.json"):
                for t in json.loads(f.read_text("utf-8"))["test"]:
                    reqs = [e for e in t.get("extension", []) if e["url"].endswith("conformance-requirement")]
                    assert reqs and reqs[0]["valueString"].strip(), (f.name, t["id"])
                    found += 1
        else:
            for t in json.loads((s.folder / "suite.json").read_text("utf-8"))["tests"]:
                assert t["requirement"].strip(), (s.name, t["id"])
                found += 1
    assert found == 40 + 7 + 16 + 7
