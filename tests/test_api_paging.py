"""Paging by an opaque keyset cursor (issue 15, acceptance 3): inserts and deletes between pages never
skip or repeat an item. Runs on SQLite and on PostgreSQL (tests/conftest.py ``both_service``)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from gateway.fhir.examples import minimal

BSN = "http://fhir.nl/fhir/NamingSystem/bsn"
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"


@pytest.fixture
def service(both_service):
    return both_service


def _patient(service) -> str:
    body = {
        "resourceType": "Patient",
        "identifier": [{"system": BSN, "value": "123456782"}],
        "name": [{"family": "Jansen"}],
        "managingOrganization": {"identifier": {"system": AGB, "value": "01000001"}},
    }
    r = service.request("POST", "/Patient", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _observation(service, pid: str, day: int) -> str:
    body = minimal(
        "Observation", subject={"reference": f"Patient/{pid}"}, effectiveDateTime=f"2024-01-{day:02d}"
    )
    r = service.request("POST", "/Observation", json=body)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def _next(page: dict) -> str | None:
    url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    return url.removeprefix("http://testserver") if url else None


def _ids(page: dict) -> list[str]:
    return [e["resource"]["id"] for e in page.get("entry", []) if e["search"]["mode"] == "match"]


@pytest.mark.parametrize("sort", ["", "&_sort=-date", "&_sort=_id"])
def test_inserts_and_deletes_between_pages_neither_skip_nor_repeat(service, sort):
    pid = _patient(service)
    made = [_observation(service, pid, d) for d in range(1, 13)]
    r = service.request("GET", f"/Observation?_count=4{sort}")
    assert r.status_code == 200, r.text
    page = r.json()
    first = _ids(page)
    seen = list(first)
    deleted: set[str] = set()
    inserted: list[str] = []
    step = 0
    while nxt := _next(page):
        assert "_offset" not in nxt and "_cursor=" in nxt
        # between pages: delete one item already seen and one not seen yet, insert a new one
        gone_seen = seen[step]
        gone_ahead = next(i for i in made if i not in seen and i not in deleted)
        for rid in (gone_seen, gone_ahead):
            assert service.request("DELETE", f"/Observation/{rid}").status_code in (200, 204)
            deleted.add(rid)
        inserted.append(_observation(service, pid, 20 + step))
        step += 1
        page = service.request("GET", nxt).json()
        seen += _ids(page)
    assert len(seen) == len(set(seen)), "an item was repeated"
    survivors = [i for i in made if i not in deleted or i in first]
    missing = [i for i in made if i not in deleted and i not in seen]
    assert not missing, f"items present throughout were skipped: {missing}"
    assert not (set(seen) - set(made) - set(inserted))
    assert step >= 2 and survivors


def test_an_offset_would_have_skipped_the_same_change(service):
    """The honest counterpart: with ``_offset`` paging, deleting a seen item between pages makes the
    second page start one item late (what the vendor in issue 15 saw); the cursor does not."""
    pid = _patient(service)
    made = [_observation(service, pid, d) for d in range(1, 9)]
    page = service.request("GET", "/Observation?_count=4").json()
    assert _ids(page) == made[:4]
    nxt = _next(page)
    assert nxt
    assert service.request("DELETE", f"/Observation/{made[0]}").status_code in (200, 204)
    by_offset = _ids(service.request("GET", "/Observation?_count=4&_offset=4").json())
    by_cursor = _ids(service.request("GET", nxt).json())
    assert by_offset == made[5:8]
    assert by_cursor == made[4:8]


def test_audit_event_paging_by_cursor(service):
    pid = _patient(service)
    for _ in range(5):
        service.request("GET", f"/Patient/{pid}")
    seen: list[str] = []
    page = service.request("GET", "/AuditEvent?_count=2", as_="auditor-a").json()
    seen += _ids(page)
    while (nxt := _next(page)) and len(seen) < 8:
        page = service.request("GET", nxt, as_="auditor-a").json()
        seen += _ids(page)
    # each page request is itself audited (newer than the cursor): pages go back in time, never repeat
    assert len(seen) == len(set(seen)) and len(seen) >= 6


@pytest.mark.parametrize(
    "cursor", ["x", "!!!", "W10", "WyJhIl0", "eyJhIjoxfQ", "WzEsMiwzLDQsNSw2XQ", "A" * 3000]
)
def test_a_cursor_not_given_by_the_server_is_a_400(service, cursor):
    r = service.request("GET", f"/Observation?_cursor={cursor}")
    assert r.status_code == 400, r.text
    codes = [c["code"] for i in r.json()["issue"] for c in i.get("details", {}).get("coding", [])]
    assert "API-023" in codes
    assert service.request("GET", f"/AuditEvent?_cursor={cursor}", as_="auditor-a").status_code == 400


def test_cursor_pages_keep_the_criteria_and_tenant_filter(service):
    pid = _patient(service)
    mine = [_observation(service, pid, d) for d in range(1, 6)]
    page = service.request("GET", f"/Observation?subject=Patient/{pid}&_count=2").json()
    nxt = _next(page)
    assert nxt and "subject=" in nxt
    query = dict(parse_qsl(urlsplit(nxt).query))
    # another practice replaying the cursor sees nothing of practice A's data
    other = service.request("GET", nxt, as_="practice-b")
    assert other.status_code == 200 and not _ids(other.json()), query
    seen = _ids(page)
    while nxt := _next(page):
        page = service.request("GET", nxt).json()
        seen += _ids(page)
    assert sorted(seen) == sorted(mine)
