"""What HIS vendors expect of the FHIR API (issue 15): ``POST [type]/_search``, conditional read
(``If-None-Match`` / ``If-Modified-Since`` -> 304), ``Prefer: return=``. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from gateway.fhir.examples import minimal

BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def service(both_service):
    return both_service


def _patient(bsn: str, family: str) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": BSN, "value": bsn}],
        "name": [{"family": family}],
        "managingOrganization": {"identifier": {"system": AGB, "value": "01000001"}},
    }


def _ids(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"]


def test_search_by_post_gives_what_get_gives_and_is_audited_with_its_patients(service):
    a = service.request("POST", "/Patient", json=_patient("123456782", "Jansen")).json()
    service.request("POST", "/Patient", json=_patient("111222333", "Pietersen"))
    query = f"identifier={BSN}|123456782"
    got = service.request("GET", f"/Patient?{query}").json()
    before = service.audit_count()
    r = service.request("POST", "/Patient/_search", content=query.replace("|", "%7C"), headers=FORM)
    assert r.status_code == 200, r.text
    posted = r.json()
    assert _ids(posted) == _ids(got) == [a["id"]]
    assert posted["total"] == got["total"] == 1
    assert service.audit_count() == before + 1
    events = service.request("GET", f"/AuditEvent?patient=Patient/{a['id']}", as_="auditor-a").json()
    assert any(
        e["resource"]["subtype"][0]["code"] == "search-type" for e in events["entry"] if "resource" in e
    )
    # URL and body parameters combine (AND), as for GET
    both = service.request("POST", "/Patient/_search?family=Pietersen", content=query, headers=FORM).json()
    assert _ids(both) == []
    # another practice sees none of it
    other = service.request("POST", "/Patient/_search", content=query, headers=FORM, as_="practice-b").json()
    assert _ids(other) == []


def test_search_by_post_refuses_what_is_not_a_form(service):
    r = service.request(
        "POST", "/Patient/_search", content=b'{"family": "x"}', headers={"Content-Type": "application/json"}
    )
    assert r.status_code == 415
    r = service.request("POST", "/Patient/_search", content="_count=zz", headers=FORM)
    assert r.status_code == 400
    r = service.request("PUT", "/Patient/_search", content="family=x", headers=FORM)
    assert r.status_code == 405 and "POST" in r.headers["allow"] and "PUT" not in r.headers["allow"]


def test_conditional_read_answers_304_when_the_copy_is_current(service):
    made = service.request("POST", "/Patient", json=_patient("123456782", "Jansen"))
    pid, etag = made.json()["id"], made.headers["etag"]
    first = service.request("GET", f"/Patient/{pid}")
    modified = first.headers["last-modified"]
    assert first.headers["etag"] == etag
    same = service.request("GET", f"/Patient/{pid}", headers={"If-None-Match": etag})
    assert same.status_code == 304 and same.content == b"" and same.headers["etag"] == etag
    assert service.request("GET", f"/Patient/{pid}", headers={"If-None-Match": 'W/"7"'}).status_code == 200
    assert (
        service.request("GET", f"/Patient/{pid}", headers={"If-Modified-Since": modified}).status_code == 304
    )
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert service.request("GET", f"/Patient/{pid}", headers={"If-Modified-Since": old}).status_code == 200
    assert (
        service.request("GET", f"/Patient/{pid}", headers={"If-Modified-Since": "nonsense"}).status_code
        == 200
    )
    changed = service.request(
        "PUT", f"/Patient/{pid}", json={**made.json(), "name": [{"family": "Jansen-de Vries"}]}
    )
    assert changed.status_code == 200
    again = service.request("GET", f"/Patient/{pid}", headers={"If-None-Match": etag})
    assert again.status_code == 200 and again.json()["name"][0]["family"] == "Jansen-de Vries"
    # vread too
    v1 = service.request("GET", f"/Patient/{pid}/_history/1", headers={"If-None-Match": etag})
    assert v1.status_code == 304


def test_prefer_return_values_on_create_and_update(service):
    r = service.request(
        "POST", "/Patient", json=_patient("123456782", "Jansen"), headers={"Prefer": "return=minimal"}
    )
    assert r.status_code == 201 and r.content == b"" and r.headers["location"]
    r = service.request(
        "POST", "/Patient", json=_patient("111222333", "Smit"), headers={"Prefer": "return=OperationOutcome"}
    )
    assert r.status_code == 201 and r.headers["location"]
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "information"
    pid = r.headers["location"].split("/Patient/")[1].split("/")[0]
    r = service.request(
        "PUT",
        f"/Patient/{pid}",
        json={**_patient("111222333", "Smit"), "id": pid},
        headers={"Prefer": "return=representation"},
    )
    assert r.status_code == 200 and r.json()["resourceType"] == "Patient"
    obs = minimal("Observation", subject={"reference": f"Patient/{pid}"})
    r = service.request("POST", "/Observation", json=obs, headers={"Prefer": "return=OperationOutcome"})
    assert r.json()["resourceType"] == "OperationOutcome"


def test_x_request_id_is_echoed_logged_and_in_the_audit_event(service):
    import io

    from gateway.api.gateway import Gateway

    gw: Gateway = service.app.state.gateway
    sink = io.StringIO()
    gw.request_log._stream = sink
    gw.settings = gw.settings.model_copy(update={"log_requests": True})
    pid = service.request("POST", "/Patient", json=_patient("123456782", "Jansen")).json()["id"]
    r = service.request("GET", f"/Patient/{pid}", headers={"X-Request-ID": "his-42.req:7"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "his-42.req:7"
    made = service.request("GET", f"/Patient/{pid}").headers["x-request-id"]
    bad = service.request("GET", f"/Patient/{pid}", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert len(made) == 32 and bad.headers["x-request-id"] not in ("", "a b\tc" + "x" * 200)
    failed = service.request("GET", "/Patient/nope-nope", headers={"X-Request-ID": "his-43"})
    assert failed.status_code == 404 and failed.headers["x-request-id"] == "his-43"
    events = service.request("GET", f"/AuditEvent?patient=Patient/{pid}&_count=50", as_="auditor-a").json()
    ids = {
        ent["what"]["identifier"]["value"]
        for e in events["entry"]
        if e["resource"]["resourceType"] == "AuditEvent"
        for ent in e["resource"].get("entity", [])
        if ent.get("type", {}).get("code") == "XrequestId"
    }
    assert {"his-42.req:7", made} <= ids
    gw.request_log.flush()
    assert '"request_id":"his-42.req:7"' in sink.getvalue()
