"""Security regression (issue 14, acceptance 1): the permission matrix of docs/security.md, read from that
file, checked cell by cell over every route that touches stored resources, on SQLite and PostgreSQL.

Issue 14 #1: a hospital that received a practice's patient through a consult could PUT and DELETE that
practice's Patient, and by writing a Communication addressed to a third practice made that practice a
participant too. Those are the `shared` row's update, delete and share-onward cells.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from gateway.api.routes import ROUTES
from tests import conftest

ROOT = Path(__file__).resolve().parent.parent
AGB = "http://fhir.nl/fhir/NamingSystem/agb-z"
URA = "http://fhir.nl/fhir/NamingSystem/ura"
T = "urn:his-gateway:test"
THIRD = "01000003"  # a practice that takes part in nothing

COLUMNS_ROUTES = {
    "read": ("GET", "/{type}/{id}"),
    "vread": ("GET", "/{type}/{id}/_history/{vid}"),
    "history": ("GET", "/{type}/{id}/_history"),
    "type-history": ("GET", "/{type}/_history"),
    "search": ("GET", "/{type}"),
    "update": ("PUT", "/{type}/{id}"),
    "conditional-update": ("PUT", "/{type}"),
    "transaction-update": ("POST", "/"),
    "delete": ("DELETE", "/{type}/{id}"),
    "conditional-delete": ("DELETE", "/{type}"),
    "share-onward": ("POST", "/{type}"),
}
SAME_AS = {  # a second route for a column: the matrix runs both and they must agree
    ("POST", "/{type}/_search"): "search",
}
OUTSIDE = {  # docs/security.md §3: routes outside the matrix, and why
    ("GET", "/metadata"),
    ("GET", "/health"),
    ("GET", "/.well-known/smart-configuration"),
    ("POST", "/auth/token"),
    ("GET", "/openapi.json"),
    ("POST", "/{type}/$validate"),
    ("GET", "/outbox"),
    ("GET", "/outbox/{id}"),
    *((r.method, r.path) for r in ROUTES if "$" in r.path and r.path != "/{type}/$validate"),
}


def matrix() -> dict[tuple[str, str], str]:
    """(relation, access) -> expected outcome, from the table in docs/security.md."""
    text = (ROOT / "docs" / "security.md").read_text("utf-8")
    table = text.split("<!-- permission-matrix", 1)[1].split("\n\n", 1)[0]
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in table.splitlines()[1:]
        if line.startswith("|")
    ]
    header, body = rows[0], [r for r in rows[2:]]
    assert header[0] == "relation"
    return {(r[0], col): r[i] for r in body for i, col in enumerate(header) if i}


MATRIX = matrix()
CELLS = sorted(k for k, v in MATRIX.items() if v != "--")


def test_the_matrix_covers_every_route():
    served = {(r.method, r.path) for r in ROUTES}
    covered = set(COLUMNS_ROUTES.values()) | set(SAME_AS)
    assert served - covered - OUTSIDE == set(), "a route neither in the matrix nor exempt in docs/security.md"
    columns = {col for _, col in MATRIX}
    assert columns - {"audit-trail"} == set(COLUMNS_ROUTES)
    for cell in (("shared", "update"), ("shared", "delete"), ("shared", "share-onward")):
        assert MATRIX[cell] == "403", cell


@pytest.fixture(scope="module")
def clients():
    """The test clients plus the privacy officer of practice B."""
    saved = dict(conftest.TEST_CLIENTS)
    conftest.TEST_CLIENTS["auditor-b"] = (
        "practice",
        "01000002",
        "90000002",
        "Huisartsenpraktijk B",
        ("system/AuditEvent.read",),
        "ES384",
    )
    yield
    conftest.TEST_CLIENTS.clear()
    conftest.TEST_CLIENTS.update(saved)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def svc(request, clients, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        url = f"sqlite:///{tmp / 'gw.db'}"
        cluster = None
    else:
        cluster = request.getfixturevalue("pg_cluster")
        url = cluster.create_database()
    s = conftest.Service(tmp, url).start()
    try:
        yield s
    finally:
        s.close()
        if cluster is not None:
            cluster.drop_database(url)


def _ok(r, *status: int) -> dict:
    assert r.status_code in status, (r.status_code, r.text[:400])
    return r.json() if r.content else {}


class World:
    """Fresh resources for one cell: practice A's patient P (shared with hospital H through a
    ServiceRequest), A's Communication C about P addressed to H, hospital H's Patient Q managed by
    practice B, and H's directory Organization O."""

    def __init__(self, svc):
        self.svc = svc
        self.tag = uuid.uuid4().hex
        req = svc.request
        self.P = _ok(
            req(
                "POST",
                "/Patient",
                as_="practice-a",
                json={
                    "resourceType": "Patient",
                    "identifier": [{"system": T, "value": f"P-{self.tag}"}],
                    "managingOrganization": {"identifier": {"system": AGB, "value": "01000001"}},
                },
            ),
            201,
        )["id"]
        _ok(
            req(
                "POST",
                "/ServiceRequest",
                as_="practice-a",
                json={
                    "resourceType": "ServiceRequest",
                    "status": "active",
                    "intent": "order",
                    "subject": {"reference": f"Patient/{self.P}"},
                    "performer": [{"identifier": {"system": URA, "value": "90000009"}}],
                },
            ),
            201,
        )
        self.C = _ok(
            req(
                "POST",
                "/Communication",
                as_="practice-a",
                json={
                    "resourceType": "Communication",
                    "status": "completed",
                    "identifier": [{"system": T, "value": f"C-{self.tag}"}],
                    "subject": {"reference": f"Patient/{self.P}"},
                    "recipient": [{"identifier": {"system": URA, "value": "90000009"}}],
                },
            ),
            201,
        )["id"]
        self.Q = _ok(
            req(
                "POST",
                "/Patient",
                as_="hospital-h",
                json={
                    "resourceType": "Patient",
                    "identifier": [{"system": T, "value": f"Q-{self.tag}"}],
                    "managingOrganization": {"identifier": {"system": AGB, "value": "01000002"}},
                },
            ),
            201,
        )["id"]
        self.O = _ok(
            req(
                "POST",
                "/Organization",
                as_="hospital-h",
                json={
                    "resourceType": "Organization",
                    "identifier": [{"system": T, "value": f"O-{self.tag}"}],
                    "name": "Ziekenhuis H, polikliniek",
                },
            ),
            201,
        )["id"]

    def target(self, relation: str) -> tuple[str, str, str, str]:
        """(client, type, id, the owner's client) of a relation."""
        return {
            "owner": ("practice-a", "Patient", self.P, "practice-a"),
            "managing-organisation": ("practice-b", "Patient", self.Q, "hospital-h"),
            "named-party": ("hospital-h", "Communication", self.C, "practice-a"),
            "shared": ("hospital-h", "Patient", self.P, "practice-a"),
            "directory-reader": ("practice-b", "Organization", self.O, "hospital-h"),
            "stranger": ("practice-b", "Patient", self.P, "practice-a"),
            "read-only-client": ("reader-a", "Patient", self.P, "practice-a"),
        }[relation]

    def ident(self, rid: str) -> str:
        letter = next(k for k in ("P", "C", "Q", "O") if getattr(self, k) == rid)
        return f"{T}|{letter}-{self.tag}"


def _version(svc, owner: str, rtype: str, rid: str) -> str:
    r = svc.request("GET", f"/{rtype}/{rid}", as_=owner)
    return "gone" if r.status_code == 410 else r.json()["meta"]["versionId"]


def _ids(bundle: dict) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if "resource" in e}


def _participants(svc, rid: str) -> set[str]:
    from gateway.store import Store

    with svc.engine.connect() as conn:
        return Store(svc.settings.fhir_base).participants(conn, "Patient", rid)


def _run(svc, relation: str, access: str) -> str:
    """Do ``access`` as ``relation``; the outcome in the matrix's terms."""
    w = World(svc)
    who, rtype, rid, owner = w.target(relation)
    req = svc.request
    before = _version(svc, owner, rtype, rid)
    current = req("GET", f"/{rtype}/{rid}", as_=owner).json()
    changed = {**current, "language": "nl"}
    changed.pop("meta", None)

    def refused_or(status: int, done: bool) -> str:
        if status in (403, 404):
            assert _version(svc, owner, rtype, rid) == before, "refused, yet changed"
            return str(status)
        return "allow" if done else f"unexpected {status}"

    if access in ("read", "vread", "history"):
        path = {"read": "", "vread": "/_history/1", "history": "/_history"}[access]
        r = req("GET", f"/{rtype}/{rid}{path}", as_=who)
        return "allow" if r.status_code == 200 else str(r.status_code)
    if access in ("type-history", "search"):
        path = (
            f"/{rtype}/_history?_count=500"
            if access == "type-history"
            else f"/{rtype}?identifier={w.ident(rid)}"
        )
        r = req("GET", path, as_=who)
        assert r.status_code == 200, r.text[:300]
        got = "allow" if rid in _ids(r.json()) else "hidden"
        if access == "search":  # POST /{type}/_search (SAME_AS) answers the same
            form = {"Content-Type": "application/x-www-form-urlencoded"}
            posted = req("POST", f"/{rtype}/_search", as_=who, content=path.split("?", 1)[1], headers=form)
            assert posted.status_code == 200 and _ids(posted.json()) == _ids(r.json()), posted.text[:300]
        return got
    if access == "update":
        r = req("PUT", f"/{rtype}/{rid}", as_=who, json=changed)
        return refused_or(r.status_code, r.status_code == 200 and _version(svc, owner, rtype, rid) != before)
    if access == "transaction-update":
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"request": {"method": "PUT", "url": f"{rtype}/{rid}"}, "resource": changed}],
        }
        r = req("POST", "/", as_=who, json=bundle)
        return refused_or(r.status_code, r.status_code == 200 and _version(svc, owner, rtype, rid) != before)
    if access == "conditional-update":
        body = {k: v for k, v in changed.items() if k != "id"}
        r = req("PUT", f"/{rtype}?identifier={w.ident(rid)}", as_=who, json=body)
        after = _version(svc, owner, rtype, rid)
        if r.status_code in (200, 201) and after == before:
            return "hidden"
        return refused_or(r.status_code, r.status_code == 200 and after != before)
    if access == "delete":
        r = req("DELETE", f"/{rtype}/{rid}", as_=who)
        return refused_or(r.status_code, r.status_code == 204 and _version(svc, owner, rtype, rid) == "gone")
    if access == "conditional-delete":
        r = req("DELETE", f"/{rtype}?identifier={w.ident(rid)}", as_=who)
        after = _version(svc, owner, rtype, rid)
        if r.status_code == 204 and after == before:
            return "hidden"
        return refused_or(r.status_code, r.status_code == 204 and after == "gone")
    if access == "share-onward":
        assert rtype == "Patient"
        r = req(
            "POST",
            "/Communication",
            as_=who,
            json={
                "resourceType": "Communication",
                "status": "completed",
                "subject": {"reference": f"Patient/{rid}"},
                "recipient": [{"identifier": {"system": AGB, "value": THIRD}}],
            },
        )
        gained = f"agb:{THIRD}" in _participants(svc, rid)
        if r.status_code == 403:
            return "403" if not gained else "403 but shared"
        if gained:
            return "allow" if r.status_code == 201 else f"unexpected {r.status_code}"
        return "no-share" if r.status_code < 500 else f"unexpected {r.status_code}"
    if access == "audit-trail":
        officer = {"owner": "auditor-a", "managing-organisation": "auditor-b", "stranger": "auditor-b"}[
            relation
        ]
        assert req("GET", f"/Patient/{rid}", as_="hospital-h").status_code == 200  # someone else reads it
        events = req("GET", f"/AuditEvent?patient=Patient/{rid}&_count=500", as_=officer)
        assert events.status_code == 200, events.text[:300]
        readers = {
            e["resource"]["agent"][0]["who"]["identifier"]["value"]
            for e in events.json().get("entry", [])
            if e["resource"].get("resourceType") == "AuditEvent"
        }
        return "allow" if "hospital-h" in readers else "hidden"
    raise AssertionError(access)


def test_the_permission_matrix_has_no_holes(svc):
    holes = []
    for relation, access in CELLS:
        got = _run(svc, relation, access)
        want = MATRIX[(relation, access)]
        if got != want:
            holes.append(f"{relation} {access}: docs/security.md says {want}, the gateway did {got}")
    print(f"{len(CELLS)} cells checked, {len(holes)} holes")
    assert not holes, "\n".join(holes)


def test_a_consult_hospital_cannot_change_delete_or_pass_on_the_practices_patient(svc):
    """Issue 14 #1 as it was found: through a real consult, not a hand-made ServiceRequest."""
    from tests.test_consult_support import hospital_directory, install_clock, ok, send

    install_clock(svc)
    d = hospital_directory(svc)
    task = ok(send(svc, d), 201)
    pref = task["for"]["reference"]
    patient = ok(svc.request("GET", f"/{pref}", as_="hospital-h"))
    r = svc.request("PUT", f"/{pref}", as_="hospital-h", json={**patient, "gender": "other"})
    assert r.status_code == 403 and "AUTH-005" in r.text
    r = svc.request("DELETE", f"/{pref}", as_="hospital-h")
    assert r.status_code == 403 and "AUTH-005" in r.text
    assert (
        svc.request("GET", f"/{pref}", as_="practice-a").json()["meta"]["versionId"]
        == patient["meta"]["versionId"]
    )
    r = svc.request(
        "POST",
        "/Communication",
        as_="hospital-h",
        json={
            "resourceType": "Communication",
            "status": "completed",
            "subject": {"reference": pref},
            "recipient": [{"identifier": {"system": URA, "value": "90000002"}}],
        },
    )
    assert r.status_code == 403 and "AUTH-006" in r.text
    assert svc.request("GET", f"/{pref}", as_="practice-b").status_code == 404  # not 410: never gained it
    # the workflow itself still works: the hospital answers the practice
    assert re.match(r"^[A-Za-z0-9-]+$", task["id"])
