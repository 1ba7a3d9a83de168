"""The consult directory (issue 6): the demo's clinical genetics subspecialisms come from the real GHC page
(seeds/000), and a region's directory loads from a configuration file with ``hisgw directory load``
(idempotent, checked as a whole) and is then used for consults."""

from __future__ import annotations

import os
import subprocess
import sys

from gateway.consult.directory import CARE_GROUP, genetics_subspecialisms, kaderhuisarts_targets, seed_demo
from tests.test_consult_support import ROOT, SHARED, family_form, install_clock, ok, param, parameters

FILE = """
[[hospital]]
name = "Ziekenhuis Regio"
ura = "90000009"
specialisms = ["Cardiologie", "Klinische Genetica"]

[[hospital.subspecialism]]
name = "Oncogenetica"
parent = "Klinische Genetica"

[[hospital.specialist]]
name = "dr. O. Genetica"
specialism = "Oncogenetica"
"""


def hisgw(*args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_genetics_subspecialisms_from_the_real_page():
    text = next((SHARED / "seeds").glob("000_*.txt")).read_text("utf-8")
    assert genetics_subspecialisms(text) == [
        "Algemene Genetica",
        "Cardiogenetica",
        "Oncogenetica",
        "Neurogenetica",
    ]


def test_the_kaderhuisarts_astma_copd_is_a_consult_target():
    """Issue 20: "Digitale consultatie met kaderhuisarts Astma/COPD" (seeds/000) puts the care group's
    kaderhuisarts in the demo directory as a HealthcareService that takes consults."""
    text = next((SHARED / "seeds").glob("000_*.txt")).read_text("utf-8")
    assert kaderhuisarts_targets(text) == ["Kaderhuisarts Astma/COPD"]
    written: list[tuple[tuple[str, ...], dict, str]] = []

    def put(keys, who, res, crit):
        written.append((keys, res, crit))
        return f"id{len(written)}"

    out = seed_demo(
        put, {"Martini Ziekenhuis": ["Cardiologie"]}, lambda i: f"9999{i + 1:04d}", lambda u, n: n, text
    )
    org = next(res for _, res, _ in written if res.get("name") == CARE_GROUP)
    assert org["type"] == [{"text": "Zorggroep"}] and org["identifier"][0]["value"] == "99990002"
    service = next(res for _, res, _ in written if res.get("name") == "Kaderhuisarts Astma/COPD")
    assert service["resourceType"] == "HealthcareService" and service["type"] == [
        {"text": "Digitale consultatie"}
    ]
    assert [s["text"] for s in service["specialty"]] == ["Kaderhuisarts", "Astma/COPD"]
    org_index = next(i for i, (_, res, _) in enumerate(written) if res is org)
    assert service["providedBy"] == {"reference": f"Organization/id{org_index + 1}"}
    assert out[f"specialism:{CARE_GROUP}:Kaderhuisarts Astma/COPD"] == f"id{len(written)}"
    assert kaderhuisarts_targets("Digitale consultatie met cardiologen") == []


def test_directory_load_from_a_file(service, tmp_path):
    install_clock(service)
    path = tmp_path / "directory.toml"
    path.write_text(FILE, "utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(FILE.replace('ura = "90000009"', 'ura = "9000"'), "utf-8")
    r = hisgw("directory", "load", str(bad), "--db", service.settings.db_url, cwd=tmp_path)
    assert r.returncode == 1 and "CON-070" in r.stderr and "hospital[0]: ura must be 8 digits" in r.stderr
    for _ in range(2):  # idempotent
        r = hisgw("directory", "load", str(path), "--db", service.settings.db_url, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "1 organizations, 3 specialisms, 1 specialists"
    services = ok(service.request("GET", "/HealthcareService?_count=50"))
    names = sorted(e["resource"]["name"] for e in services["entry"])
    assert names == ["Cardiologie", "Klinische Genetica", "Oncogenetica"]
    onco = next(e["resource"] for e in services["entry"] if e["resource"]["name"] == "Oncogenetica")
    assert [s["text"] for s in onco["specialty"]] == ["Klinische Genetica", "Oncogenetica"]
    # the loaded directory serves consults: hospital H (URA 90000009) takes part; the family form rule holds
    from tests.test_consult_support import export_bytes

    items = [
        param("question", "Erfelijkheid borstkanker?"),
        param("specialism", f"HealthcareService/{onco['id']}"),
        {"name": "export", "valueBase64Binary": __import__("base64").b64encode(export_bytes()).decode()},
        {"name": "format", "valueCode": "medicom"},
    ]
    r = service.request("POST", "/Task/$send-consult", json=parameters(*items))
    assert r.status_code == 422 and "CON-021" in r.text
    form = family_form(service)
    task = ok(
        service.request(
            "POST",
            "/Task/$send-consult",
            json=parameters(*items, param("attachment", f"DocumentReference/{form['id']}")),
        ),
        201,
    )
    ok(service.request("GET", f"/Task/{task['id']}", as_="hospital-h"))
    ok(
        service.request("GET", f"/DocumentReference/{form['id']}", as_="hospital-h")
    )  # shared with the hospital
    roles = ok(service.request("GET", "/PractitionerRole", as_="hospital-h"))
    assert [e["resource"]["practitioner"]["display"] for e in roles["entry"]] == ["dr. O. Genetica"]
