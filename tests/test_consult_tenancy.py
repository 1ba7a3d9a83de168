"""Acceptance 5 (issue 6): a practice never sees another practice's consults; a specialist sees only the
consults sent to them or to their specialism; another hospital sees nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests import conftest
from tests.test_consult_support import act, hospital_directory, install_clock, ok, param, parameters, send


@pytest.fixture
def svc(tmp_path, db_url, monkeypatch):
    monkeypatch.setitem(
        conftest.TEST_CLIENTS,
        "hospital-k",
        ("hospital", None, "90000010", "Ziekenhuis K", ("system/*.cruds",), "ES384"),
    )
    s = conftest.Service(tmp_path, db_url).start()
    try:
        yield s
    finally:
        s.close()


def _ids(bundle: dict) -> set[str]:
    return {
        e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") != "outcome"
    }


def worklist(svc, as_: str, role: str | None = None) -> set[str]:
    q = f"?specialist=PractitionerRole/{role}" if role else ""
    return _ids(ok(svc.request("GET", f"/Task/$worklist{q}", as_=as_)))


def test_practices_and_specialists_see_only_their_consults(svc):
    install_clock(svc)
    d = hospital_directory(svc)
    k = hospital_directory(svc, as_="hospital-k", ura="90000010", name="Ziekenhuis K")
    group = ok(send(svc, d), 201)  # to Cardiologie
    named = ok(send(svc, d, specialist="dr. Hart"), 201)  # to dr. Hart by name
    neuro = ok(send(svc, d, specialism="Neurologie"), 201)
    other_practice = ok(send(svc, d, as_="practice-b", export=_export_of("01000002")), 201)
    a_ids = {group["id"], named["id"], neuro["id"]}

    # practices: their own consults only, through every path
    assert worklist(svc, "practice-a") == a_ids
    assert worklist(svc, "practice-b") == {other_practice["id"]}
    assert _ids(ok(svc.request("GET", "/Task?_count=100", as_="practice-b"))) == {other_practice["id"]}
    for t in (group, named, neuro):
        for ref in (f"Task/{t['id']}", t["focus"]["reference"], t["input"][0]["valueReference"]["reference"]):
            assert svc.request("GET", f"/{ref}", as_="practice-b").status_code == 404, ref
        assert ok(svc.request("GET", f"/Communication?part-of=Task/{t['id']}", as_="practice-b")).get(
            "total", 0
        ) in (0, None)
        r = act(svc, t["id"], "cancel", as_="practice-b")
        assert r.status_code == 404 and "API-011" in r.text
    assert svc.request("GET", f"/Task/{other_practice['id']}", as_="practice-a").status_code == 404

    # specialists: sent to them or to their specialism
    hart, klop, zenuw = (d.specialists[n] for n in ("dr. Hart", "dr. Klop", "dr. Zenuw"))
    assert worklist(svc, "hospital-h", hart) == {group["id"], named["id"], other_practice["id"]}
    assert worklist(svc, "hospital-h", klop) == {group["id"], other_practice["id"]}  # not dr. Hart's own
    assert worklist(svc, "hospital-h", zenuw) == {neuro["id"]}
    ok(act(svc, group["id"], "pickup", specialist="dr. Klop", directory=d))
    assert worklist(svc, "hospital-h", hart) == {named["id"], other_practice["id"]}  # dr. Klop has it now
    assert group["id"] in worklist(svc, "hospital-h", klop)
    r = act(svc, named["id"], "answer", specialist="dr. Klop", directory=d, text="x")
    assert r.status_code == 403 and "CON-014" in r.text

    # another hospital sees nothing of it and cannot act for hospital H's specialists
    k_role = k.specialists["dr. Hart"]
    assert worklist(svc, "hospital-k", k_role) == set()
    assert svc.request("GET", f"/Task/{group['id']}", as_="hospital-k").status_code == 404
    r = svc.request(
        "POST",
        f"/Task/{neuro['id']}/$pickup",
        as_="hospital-k",
        json=parameters(param("specialist", f"PractitionerRole/{k_role}")),
    )
    assert r.status_code == 404
    r = svc.request("GET", f"/Task/$worklist?specialist=PractitionerRole/{hart}", as_="hospital-k")
    assert r.status_code == 403 and "CON-013" in r.text
    r = svc.request(
        "POST",
        f"/Task/{neuro['id']}/$pickup",
        as_="hospital-h",
        json=parameters(param("specialist", f"PractitionerRole/{k_role}")),
    )
    assert r.status_code == 403 and "CON-013" in r.text


def test_a_practice_cannot_send_another_practices_export(svc):
    install_clock(svc)
    d = hospital_directory(svc)
    r = send(svc, d, as_="practice-b")  # the export is of practice-a (AGB 01000001)
    assert r.status_code == 403 and "CON-023" in r.text


def _export_of(agb: str) -> bytes:
    from tests.test_consult_support import export_bytes

    return export_bytes(agb=agb)
