"""The three reports of a run: JUnit XML (for CI), a FHIR R4 TestReport (testreport.html), and one
self-contained HTML page for people (inline CSS, no script, no external load of any kind).

Every assertion's verdict and the captured request and response (already masked) are in the TestReport
(``action.assert.detail``) and the HTML page; JUnit carries one ``testcase`` per test with the failure
or skip reason, the requirement as a property.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid
import xml.etree.ElementTree as ET

import orjson

from conformance.model import SuiteResult, Verdict

TESTREPORT_RESULT = {
    Verdict.PASS: "pass",
    Verdict.FAIL: "fail",
    Verdict.SKIP: "skip",
    Verdict.ERROR: "error",
    Verdict.WARNING: "warning",
}


def junit_xml(result: SuiteResult) -> bytes:
    """JUnit XML (the Ant/Surefire schema that CI servers and ``junitparser`` read)."""
    suites = ET.Element("testsuites", name=f"conformance {result.suite}")
    s = ET.SubElement(
        suites,
        "testsuite",
        name=result.suite,
        tests=str(len(result.tests)),
        failures=str(result.count(Verdict.FAIL)),
        errors=str(result.count(Verdict.ERROR)),
        skipped=str(result.count(Verdict.SKIP)),
        time=f"{result.seconds:.3f}",
        timestamp=result.started.replace(tzinfo=None).isoformat(timespec="seconds"),
        hostname="hisgw-conformance",
    )
    props = ET.SubElement(s, "properties")
    ET.SubElement(props, "property", name="target", value=result.target)
    ET.SubElement(props, "property", name="role", value=result.role)
    for t in result.tests:
        case = ET.SubElement(
            s,
            "testcase",
            classname=f"{result.suite}.{t.id.rsplit('/', 1)[0]}",
            name=t.id.rsplit("/", 1)[-1],
            time=f"{t.seconds:.3f}",
        )
        cprops = ET.SubElement(case, "properties")
        ET.SubElement(cprops, "property", name="requirement", value=t.requirement)
        detail = "\n".join(f"[{a.verdict.value}] {a.label}: {a.message}" for a in t.asserts)
        if t.verdict is Verdict.FAIL:
            ET.SubElement(case, "failure", message=t.reason[:500], type="AssertionFailed").text = detail
        elif t.verdict is Verdict.ERROR:
            ET.SubElement(case, "error", message=t.reason[:500], type="RunnerError").text = detail
        elif t.verdict is Verdict.SKIP:
            ET.SubElement(case, "skipped", message=t.reason[:500])
        if t.exchanges:
            ET.SubElement(case, "system-out").text = "\n\n".join(
                f"== {x.label}\n-- request\n{x.request}\n-- response\n{x.response}" for x in t.exchanges
            )
    ET.indent(suites)
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def test_report(result: SuiteResult) -> dict:
    """The run as a FHIR R4 TestReport resource (one ``test`` per test, one assert action per assertion)."""
    overall = "fail" if result.failed else "pass"
    passed = result.count(Verdict.PASS)
    ran = len(result.tests) - result.count(Verdict.SKIP)
    tests = []
    for t in result.tests:
        actions = [
            {"assert": {"result": TESTREPORT_RESULT[a.verdict], "message": f"{a.label}: {a.message}"[:4000]}}
            for a in t.asserts
        ]
        if t.verdict is Verdict.SKIP:
            actions = [{"assert": {"result": "skip", "message": t.reason}}]
        for x in t.exchanges:
            actions.append(
                {
                    "operation": {
                        "result": "pass",
                        "message": x.label[:200],
                        "detail": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, x.request)),
                    }
                }
            )
        if not actions:
            actions = [
                {"assert": {"result": TESTREPORT_RESULT[t.verdict], "message": t.reason or "no assertions"}}
            ]
        tests.append(
            {"name": t.id, "description": f"{t.name}. Requirement: {t.requirement}"[:4000], "action": actions}
        )
    return {
        "resourceType": "TestReport",
        "id": str(uuid.uuid4()),
        "identifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"},
        "name": f"conformance {result.suite}",
        "status": "completed",
        "testScript": {"display": f"his-gateway conformance suite {result.suite} ({result.title})"},
        "result": overall,
        "score": round(100.0 * passed / ran, 2) if ran else 100.0,
        "tester": "his-gateway conformance runner",
        "issued": result.started.astimezone(dt.UTC).isoformat(timespec="seconds"),
        "participant": [
            {
                "type": "server",
                "uri": result.target if "://" in result.target else f"urn:his-gateway:target:{result.target}",
                "display": result.role,
            }
        ],
        "test": tests,
    }


def test_report_json(result: SuiteResult) -> bytes:
    return orjson.dumps(test_report(result), option=orjson.OPT_INDENT_2)


CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5em;color:#1d2329}
h1{font-size:1.4em;margin:0 0 .3em}.meta{color:#555;margin-bottom:1em}
.summary span{display:inline-block;padding:.2em .6em;border-radius:3px;margin-right:.4em;font-weight:600}
.pass{background:#dff3e3;color:#17612c}.fail{background:#fbe0df;color:#9b1c17}
.skip{background:#eceff1;color:#455a64}.error{background:#fff0d6;color:#8a5300}.warning{background:#fff7cc;color:#6b5900}
details.test{border:1px solid #d0d7de;border-radius:4px;margin:.4em 0;padding:.3em .6em}
details.test>summary{cursor:pointer}.verdict{display:inline-block;min-width:4.2em;text-align:center;
border-radius:3px;font-weight:600;font-size:.85em;margin-right:.5em}
.req{color:#555;font-size:.9em}table{border-collapse:collapse;margin:.4em 0}
td,th{border:1px solid #d0d7de;padding:.2em .5em;text-align:left;vertical-align:top}
pre{background:#f6f8fa;padding:.5em;overflow:auto;max-height:24em;white-space:pre-wrap;word-break:break-all}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:.6em}
"""


CSP = "default-src 'none'; style-src 'unsafe-inline'"
"""Nothing but the inline stylesheet may load: no script, image, font or frame, from anywhere."""
BAD = (Verdict.FAIL, Verdict.ERROR)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def html_page(result: SuiteResult) -> str:
    """One HTML page, everything inline; verdicts per test and assertion, captured exchanges."""
    counts = " ".join(
        f'<span class="{v.value}">{result.count(v)} {v.value}</span>'
        for v in (Verdict.PASS, Verdict.FAIL, Verdict.SKIP, Verdict.ERROR)
    )
    rows = []
    for t in result.tests:
        asserts = "".join(
            f'<tr><td><span class="verdict {a.verdict.value}">{a.verdict.value}</span></td>'
            f"<td>{_e(a.label)}</td><td>{_e(a.message)}</td></tr>"
            for a in t.asserts
        )
        exchanges = "".join(
            f'<h4>{_e(x.label)}</h4><div class="cols"><div><b>request</b><pre>{_e(x.request)}'
            f"</pre></div><div><b>response</b><pre>{_e(x.response)}</pre></div></div>"
            for x in t.exchanges
        )
        reason = f"<p><b>{_e(t.verdict.value)}:</b> {_e(t.reason)}</p>" if t.reason else ""
        rows.append(
            f'<details class="test" id="{_e(t.id)}"{" open" if t.verdict in BAD else ""}>'
            f'<summary><span class="verdict {t.verdict.value}">{t.verdict.value}</span><b>{_e(t.id)}</b> '
            f'{_e(t.name)} <span class="req">({_e(t.requirement)})</span></summary>{reason}'
            f'<p class="req">source: {_e(t.source)}</p>'
            + (
                f"<table><tr><th>verdict</th><th>assertion</th><th>detail</th></tr>{asserts}</table>"
                if asserts
                else ""
            )
            + exchanges
            + "</details>"
        )
    notes = "".join(f"<li>{_e(n)}</li>" for n in result.notes)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>conformance {_e(result.suite)}: {_e(result.target)}</title><style>{CSS}</style></head><body>"
        f"<h1>Conformance suite <code>{_e(result.suite)}</code>: {_e(result.title)}</h1>"
        f'<div class="meta">role: {_e(result.role)} &middot; '
        f"target: <code>{_e(result.target)}</code> &middot; "
        f"started {_e(result.started.isoformat(timespec='seconds'))} &middot; {result.seconds:.1f} s</div>"
        f'<p class="summary" id="summary">{counts}</p><p>{_e(result.summary_line())}</p>'
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + "".join(rows)
        + '<p class="meta">Patient data in requests and responses is masked (***).</p></body></html>\n'
    )
