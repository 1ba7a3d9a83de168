"""The FHIR R4 REST API (issue 5): CRUD, versions and ETags, search, _include, paging, history, Bundles,
$validate, /metadata from the served routes, and every error an OperationOutcome with its status.
Runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import orjson
import pytest

from gateway.api.app import served_routes
from gateway.fhir.examples import MINIMAL, minimal
from gateway.fhir.resources import RESOURCES, WRITABLE


@pytest.fixture
def service(both_service):
    """The gateway in-process on SQLite, then on a real PostgreSQL (tests/conftest.py)."""
    return both_service


BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
PRACTICE_A = {"identifier": {"system": AGB, "value": "01000001"}}


def valid_bsn(prefix: str) -> str:
    """A BSN passing the 11-test, starting with the 8 digits given."""
    from mappings.model import bsn_is_valid

    return next(prefix + str(d) for d in range(10) if bsn_is_valid(prefix + str(d)))


B99, B22, B33, B44 = (valid_bsn(p) for p in ("99999999", "22233344", "33344455", "44455566"))


def patient(bsn: str = "123456782", **extra) -> dict:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": BSN, "value": bsn}],
        "name": [{"family": "Jansen", "given": ["Jan"]}],
        "birthDate": "1950-02-03",
        "managingOrganization": PRACTICE_A,
        **extra,
    }


def assert_outcome(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"], body
    if code:
        codes = [c["code"] for i in body["issue"] for c in i.get("details", {}).get("coding", [])]
        assert code in codes, body
    return body


def test_crud_versions_and_etags(service):
    r = service.request("POST", "/Patient", json=patient())
    assert r.status_code == 201
    pid = r.json()["id"]
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"] == f"http://testserver/Patient/{pid}/_history/1"
    assert r.json()["meta"]["versionId"] == "1"
    got = service.request("GET", f"/Patient/{pid}")
    assert got.status_code == 200 and got.headers["etag"] == 'W/"1"' and got.json() == r.json()
    assert got.headers["last-modified"].endswith(" GMT")

    upd = service.request(
        "PUT",
        f"/Patient/{pid}",
        json={**patient(), "id": pid, "gender": "male"},
        headers={"If-Match": 'W/"1"'},
    )
    assert upd.status_code == 200 and upd.headers["etag"] == 'W/"2"' and upd.json()["gender"] == "male"
    stale = service.request(
        "PUT", f"/Patient/{pid}", json={**patient(), "id": pid}, headers={"If-Match": 'W/"1"'}
    )
    assert_outcome(stale, 412, "API-030")
    assert service.request("PUT", f"/Patient/{pid}", json={**patient(), "id": "other"}).status_code == 400
    assert_outcome(
        service.request("PUT", f"/Patient/{pid}", json=patient(id=pid), headers={"If-Match": "2"}),
        400,
        "API-033",
    )

    v1 = service.request("GET", f"/Patient/{pid}/_history/1")
    assert v1.status_code == 200 and "gender" not in v1.json() and v1.json()["meta"]["versionId"] == "1"
    assert_outcome(service.request("GET", f"/Patient/{pid}/_history/9"), 404, "API-013")
    hist = service.request("GET", f"/Patient/{pid}/_history").json()
    assert hist["type"] == "history" and hist["total"] == 2
    assert [e["response"]["etag"] for e in hist["entry"]] == ['W/"2"', 'W/"1"']

    gone = service.request("DELETE", f"/Patient/{pid}")
    assert gone.status_code == 204 and gone.headers["etag"] == 'W/"3"'
    assert_outcome(service.request("GET", f"/Patient/{pid}"), 410, "API-012")
    assert service.request("GET", f"/Patient?_id={pid}").json()["total"] == 0
    hist = service.request("GET", f"/Patient/{pid}/_history").json()
    assert hist["total"] == 3 and hist["entry"][0]["request"]["method"] == "DELETE"
    assert "resource" not in hist["entry"][0]
    assert_outcome(
        service.request("PUT", "/Patient/never-there", json=patient(id="never-there")), 404, "API-011"
    )


@pytest.mark.parametrize("rtype", WRITABLE)
def test_every_writable_type_round_trips(service, rtype):
    created = service.request("POST", f"/{rtype}", json=minimal(rtype))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["resourceType"] == rtype and body["meta"]["versionId"] == "1"
    assert {k: v for k, v in body.items() if k not in ("id", "meta")} == minimal(rtype)
    assert service.request("GET", f"/{rtype}/{body['id']}").json() == body
    found = service.request("GET", f"/{rtype}?_id={body['id']}").json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [body["id"]]


def test_audit_event_is_read_only(service):
    r = service.request("POST", "/AuditEvent", json={"resourceType": "AuditEvent"})
    assert_outcome(r, 405, "API-015")
    assert r.headers["allow"] == "GET"
    assert_outcome(service.request("GET", "/AuditEvent/x/_history"), 404, "API-016")  # nothing served there
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": {"resourceType": "AuditEvent"}, "request": {"method": "POST", "url": "AuditEvent"}}
        ],
    }
    out = service.request("POST", "/", json=bundle).json()
    assert out["entry"][0]["response"]["status"] == "405"


def test_conditional_create_returns_the_existing(service):
    h = {"If-None-Exist": f"identifier={BSN}|123456782"}
    first = service.request("POST", "/Patient", json=patient(), headers=h)
    again = service.request("POST", "/Patient", json=patient(), headers=h)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert service.request("GET", f"/Patient?identifier={BSN}|123456782").json()["total"] == 1
    service.request("POST", "/Patient", json=patient())  # a second one with the same BSN, unconditionally
    assert_outcome(service.request("POST", "/Patient", json=patient(), headers=h), 412, "API-032")
    assert_outcome(
        service.request("POST", "/Patient", json=patient(), headers={"If-None-Exist": "_count=3"}),
        400,
        "API-034",
    )


def test_conditional_update_and_delete(service):
    created = service.request("POST", "/Patient", json=patient("111222333")).json()
    r = service.request(
        "PUT", f"/Patient?identifier={BSN}|111222333", json=patient("111222333", gender="female")
    )
    assert r.status_code == 200 and r.json()["id"] == created["id"] and r.json()["meta"]["versionId"] == "2"
    r = service.request("PUT", f"/Patient?identifier={BSN}|{B99}", json=patient(B99))
    assert r.status_code == 201
    assert service.request("DELETE", f"/Patient?identifier={BSN}|111222333").status_code == 204
    assert service.request("GET", f"/Patient/{created['id']}").status_code == 410


def test_search_parameters(service):
    a = service.request("POST", "/Patient", json=patient("123456782", gender="male")).json()
    b = service.request(
        "POST", "/Patient", json=patient("111222333", name=[{"family": "Özdemir"}], birthDate="1980-07-01")
    ).json()

    def ids(query: str) -> set[str]:
        r = service.request("GET", f"/Patient?{query}")
        assert r.status_code == 200, r.text
        return {e["resource"]["id"] for e in r.json().get("entry", [])}

    assert ids(f"identifier={BSN}|123456782") == {a["id"]}
    assert ids("identifier=urn:oid:2.16.840.1.113883.2.4.6.3|111222333") == {b["id"]}  # OID form too
    assert ids("identifier=111222333") == {b["id"]}
    assert ids("name=ozd") == {b["id"]}  # case and accent insensitive, starts with
    assert ids("name:exact=Özdemir") == {b["id"]}
    assert ids("name:contains=ANS") == {a["id"]}
    assert ids("birthdate=ge1970") == {b["id"]}
    assert ids("birthdate=lt1970-01-01") == {a["id"]}
    assert ids("birthdate=1950-02") == {a["id"]}
    assert ids("gender=male") == {a["id"]}
    assert ids("gender:not=male") == {b["id"]}
    assert ids(f"_id={a['id']},{b['id']}") == {a["id"], b["id"]}
    assert ids("_lastUpdated=gt2000-01-01") == {a["id"], b["id"]}
    assert ids("_lastUpdated=lt2000-01-01") == set()
    assert ids("birthdate=ge1940&birthdate=lt1960") == {a["id"]}

    obs = minimal(
        "Observation",
        subject={"reference": f"Patient/{a['id']}"},
        effectiveDateTime="2024-05-01T10:00:00+02:00",
        code={"coding": [{"system": "urn:x", "code": "1"}]},
    )
    o = service.request("POST", "/Observation", json=obs).json()
    q = service.request("GET", f"/Observation?patient={a['id']}&date=ge2024-05&date=lt2024-06&status=final")
    assert [e["resource"]["id"] for e in q.json()["entry"]] == [o["id"]]
    for query in (
        f"subject=Patient/{a['id']}",
        f"patient.identifier={BSN}|123456782",
        "subject:Patient.birthdate=1950",
        "code=urn:x|1",
        "date=2024-05-01",
    ):
        got = service.request("GET", f"/Observation?{query}").json()
        assert [e["resource"]["id"] for e in got.get("entry", [])] == [o["id"]], query
    assert service.request("GET", "/Observation?date=2024-05-02").json()["total"] == 0

    for bad, code in (
        ("birthdate=yesterday", "API-021"),
        ("_count=100000", "API-023"),
        ("_sort=name", "API-023"),
        ("_include=Observation:x", "API-023"),
        ("identifier=|", "API-021"),
    ):
        assert_outcome(service.request("GET", f"/Patient?{bad}"), 400, code)
    # unknown parameters and modifiers: ignored and reported (FHIR's default), refused with handling=strict
    lenient = service.request("GET", "/Patient?gender=male&foo=bar&name:fuzzy=x").json()
    assert {e["resource"]["id"] for e in lenient["entry"] if e["search"]["mode"] == "match"} == {a["id"]}
    (note,) = [e["resource"] for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert note["issue"][0]["expression"] == ["foo", "name:fuzzy"]
    assert "foo" not in lenient["link"][0]["url"]
    for bad, code in (("foo=bar", "API-020"), ("name:fuzzy=x", "API-022")):
        assert_outcome(
            service.request("GET", f"/Patient?{bad}", headers={"Prefer": "handling=strict"}), 400, code
        )


def test_include_revinclude_and_paging(service):
    p = service.request("POST", "/Patient", json=patient()).json()
    made = [
        service.request(
            "POST",
            "/Observation",
            json=minimal(
                "Observation",
                subject={"reference": f"Patient/{p['id']}"},
                effectiveDateTime=f"2024-01-{d:02d}",
            ),
        ).json()
        for d in range(1, 8)
    ]
    page = service.request("GET", "/Observation?_count=3&_include=Observation:subject&_sort=-date").json()
    assert page["total"] == 7
    matches = [e for e in page["entry"] if e["search"]["mode"] == "match"]
    assert [e["resource"]["id"] for e in matches] == [m["id"] for m in made[::-1][:3]]
    assert [e["resource"]["id"] for e in page["entry"] if e["search"]["mode"] == "include"] == [p["id"]]
    seen = [e["resource"]["id"] for e in matches]
    while nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None):
        page = service.request("GET", nxt.removeprefix("http://testserver")).json()
        seen += [e["resource"]["id"] for e in page["entry"] if e["search"]["mode"] == "match"]
    assert seen == [m["id"] for m in made[::-1]]
    rev = service.request("GET", f"/Patient?_id={p['id']}&_revinclude=Observation:subject").json()
    assert len([e for e in rev["entry"] if e["search"]["mode"] == "include"]) == 7
    counted = service.request("GET", "/Observation?_summary=count").json()
    assert counted["total"] == 7 and "entry" not in counted


def test_type_history_and_since(service):
    a = service.request(
        "POST",
        "/Organization",
        json={
            "resourceType": "Organization",
            "name": "A",
            "identifier": [{"system": AGB, "value": "01000001"}],
        },
    ).json()
    service.request("PUT", f"/Organization/{a['id']}", json={**a, "name": "A2"})
    h = service.request("GET", "/Organization/_history").json()
    assert h["total"] == 2 and [e["request"]["method"] for e in h["entry"]] == ["PUT", "POST"]
    assert service.request("GET", "/Organization/_history?_since=2999-01-01T00:00:00Z").json()["total"] == 0


def test_transaction_is_atomic_and_resolves_references(service):
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:0b7d8b1e-1111-4c1a-9d0e-000000000002",
                "resource": minimal(
                    "Observation", subject={"reference": "urn:uuid:0b7d8b1e-1111-4c1a-9d0e-000000000001"}
                ),
                "request": {"method": "POST", "url": "Observation"},
            },
            {
                "fullUrl": "urn:uuid:0b7d8b1e-1111-4c1a-9d0e-000000000001",
                "resource": patient(B22),
                "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={BSN}|{B22}"},
            },
        ],
    }
    r = service.request("POST", "/", json=bundle)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (
        out["type"] == "transaction-response"
        and [e["response"]["status"] for e in out["entry"]] == ["201"] * 2
    )
    obs, pat = out["entry"][0]["resource"], out["entry"][1]["resource"]
    assert obs["subject"]["reference"] == f"Patient/{pat['id']}"
    before = service.audit_count()
    broken = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": patient(B33), "request": {"method": "POST", "url": "Patient"}},
            {
                "resource": {"resourceType": "Observation"},
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    body = assert_outcome(service.request("POST", "/", json=broken), 422)
    assert body["issue"][0]["expression"][0].startswith("Bundle.entry[1]")
    assert service.request("GET", f"/Patient?identifier={BSN}|{B33}").json()["total"] == 0  # rolled back
    assert service.audit_count() == before + 2  # the failed transaction, and the search just made


def test_batch_entries_are_independent(service):
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": patient(B44), "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
            {"request": {"method": "GET", "url": f"Patient?identifier={BSN}|{B44}"}},
        ],
    }
    out = service.request("POST", "/", json=bundle).json()
    assert out["type"] == "batch-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201", "404", "200"]
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert out["entry"][2]["resource"]["total"] == 1


def test_validate_operation(service):
    ok = service.request("POST", "/Patient/$validate", json=patient())
    assert ok.status_code == 200 and ok.json()["issue"][0]["severity"] == "information"
    bad = service.request("POST", "/Observation/$validate", json={"resourceType": "Observation", "foo": 1})
    assert bad.status_code == 200
    assert {i["severity"] for i in bad.json()["issue"]} == {"error"} and len(bad.json()["issue"]) >= 2
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient()}]}
    assert (
        service.request("POST", "/Patient/$validate", json=params).json()["issue"][0]["severity"]
        == "information"
    )
    invalid = service.request("POST", "/Patient", json=patient(birthDate="1950-02-30"))
    assert_outcome(invalid, 422)


def test_errors_are_operation_outcomes(service):
    assert_outcome(service.request("GET", "/Nonsense/1"), 404, "API-010")
    assert_outcome(service.request("GET", "/Patient/bad%20id"), 404, "API-011")
    assert_outcome(service.http.get("/no/such/path/here", headers={"Authorization": "x"}), 404, "API-016")
    r = service.request("PATCH", "/Patient/x")
    assert_outcome(r, 405, "API-015")
    assert r.headers["allow"] == "DELETE, GET, PUT"
    r = service.request(
        "POST", "/Patient", content=b"{not json", headers={"Content-Type": "application/fhir+json"}
    )
    assert_outcome(r, 400, "API-001")
    r = service.request(
        "POST", "/Patient", content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"}
    )
    assert_outcome(r, 415, "API-003")
    assert_outcome(
        service.request("GET", "/Patient", headers={"Accept": "application/fhir+xml"}), 406, "API-051"
    )
    assert_outcome(
        service.request("POST", "/Patient", json={"resourceType": "Observation", **MINIMAL["Observation"]}),
        400,
        "API-004",
    )
    assert_outcome(service.request("POST", "/Patient", json=[1, 2]), 400, "API-004")
    big = b'{"resourceType":"Patient","text":"' + b"x" * (17 * 1024 * 1024) + b'"}'
    assert_outcome(
        service.request("POST", "/Patient", content=big, headers={"Content-Type": "application/fhir+json"}),
        413,
        "API-002",
    )
    nul = service.request(
        "POST",
        "/Patient",
        content=b'{"resourceType":"Patient","gender":"\\u0000"}',
        headers={"Content-Type": "application/fhir+json"},
    )
    assert_outcome(nul, 400, "API-006")


def test_prefer_return_minimal(service):
    r = service.request("POST", "/Patient", json=patient(), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b"" and r.headers["location"]


def test_metadata_lists_exactly_the_served_interactions(service):
    cap = service.http.get("/metadata").json()
    assert cap["resourceType"] == "CapabilityStatement" and cap["fhirVersion"] == "4.0.1"
    rest = cap["rest"][0]
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
    by_type = {r["type"]: r for r in rest["resource"]}
    assert set(by_type) == set(RESOURCES)
    served: dict[str, set[str]] = {t: set() for t in RESOURCES}
    for _method, _path, rd in served_routes(service.app):
        for t in rd.types:
            if rd.interaction in (
                "read",
                "vread",
                "update",
                "delete",
                "history-instance",
                "create",
                "search-type",
                "history-type",
            ) and rd.name not in ("conditional_update", "conditional_delete"):
                served[t].add(rd.interaction)
    for t, r in by_type.items():
        assert {i["code"] for i in r["interaction"]} == served[t], t
        params = {p["name"] for p in r["searchParam"]}
        assert params == {"_id", "_lastUpdated", *RESOURCES[t].params}
    assert {i["code"] for i in by_type["AuditEvent"]["interaction"]} == {"read", "vread", "search-type"}
    token_url = rest["security"]["extension"][0]["extension"][0]["valueUri"]
    assert token_url == "http://testserver/auth/token"


def test_stored_json_is_served_as_stored(service):
    r = service.request("POST", "/Patient", json=patient(name=[{"family": "Çelik-ĳsselmeer €"}]))
    again = service.request("GET", f"/Patient/{r.json()['id']}")
    assert (
        again.content == r.content and orjson.loads(again.content)["name"][0]["family"] == "Çelik-ĳsselmeer €"
    )


def test_dutch_systems_sent_as_oids_are_stored_and_served_as_uris(service):
    """DOMAIN.md §8: accept the URI and the ``urn:oid:`` form, emit the URI (also inside a transaction);
    searches with either form find the resource."""
    oid = "urn:oid:2.16.840.1.113883.2.4.6.3"
    body = {"resourceType": "Patient", "identifier": [{"system": oid, "value": "123456782"}]}
    created = service.request("POST", "/Patient", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["identifier"] == [{"system": BSN, "value": "123456782"}]
    read = service.request("GET", f"/Patient/{created.json()['id']}").json()
    assert read["identifier"][0]["system"] == BSN
    for query in (f"identifier={oid}|123456782", f"identifier={BSN}|123456782"):
        found = service.request("GET", f"/Patient?{query}").json()
        assert [e["resource"]["id"] for e in found["entry"]] == [created.json()["id"]]
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"system": oid, "value": "111222333"}],
                },
                "request": {"method": "POST", "url": "Patient"},
            }
        ],
    }
    r = service.request("POST", "/", json=tx)
    assert r.status_code == 200, r.text
    rid = r.json()["entry"][0]["response"]["location"].split("Patient/")[1].split("/")[0]
    assert service.request("GET", f"/Patient/{rid}").json()["identifier"][0]["system"] == BSN
    other = "urn:oid:1.2.3.4"  # not a Dutch system the gateway knows: kept as sent
    r = service.request(
        "POST", "/Patient", json={"resourceType": "Patient", "identifier": [{"system": other, "value": "x1"}]}
    )
    assert r.status_code == 201 and r.json()["identifier"][0]["system"] == other
