"""The store on SQLite and PostgreSQL (issue 5): migrations, versions, and conditional create decided by the
database -- eight parallel identical conditional creates give one resource."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from gateway.db import current_revision, make_engine, migrate
from gateway.fhir.index import date_range, fold, index_rows
from gateway.schema import conditional_key, resource, resource_history
from gateway.store import Store
from gateway.tables import metadata

ORGS = ("agb:01000001",)
BSN = "http://fhir.nl/fhir/NamingSystem/bsn"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path):
    url = (
        f"sqlite:///{tmp_path / 'store.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("pg_url")
    )
    eng = make_engine(url, pool_size=10)
    migrate(eng)
    try:
        yield eng
    finally:
        eng.dispose()


def patient(bsn: str = "123456782") -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": BSN, "value": bsn}], "gender": "female"}


def test_migrations_build_exactly_the_schema_and_are_idempotent(engine):
    migrate(engine)  # a second time: nothing to do
    from alembic.script import ScriptDirectory

    from gateway.db import alembic_config

    with engine.connect() as conn:
        head = ScriptDirectory.from_config(alembic_config(conn)).get_current_head()
    assert head is not None and current_revision(engine) == head
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []


def test_versions_and_history(engine):
    store = Store("http://x")
    with engine.begin() as conn:
        s1, created = store.create(conn, ORGS, patient())
    assert created and s1.version == 1
    with engine.begin() as conn:
        s2 = store.update(
            conn, ORGS, "Patient", s1.rid, {**patient(), "id": s1.rid, "gender": "male"}, if_match=1
        )
    assert s2.version == 2
    with engine.begin() as conn:
        assert store.read(conn, ORGS, "Patient", s1.rid).version == 2
        assert store.vread(conn, ORGS, "Patient", s1.rid, 1).body == s1.body
        versions = conn.execute(select(func.count()).select_from(resource_history)).scalar_one()
    assert versions == 2


def _race(engine, store: Store, n: int, criteria: str, body: dict, before_claim=None):
    barrier = threading.Barrier(n)

    def one(_):
        barrier.wait()
        with engine.begin() as conn:
            if before_claim:
                before_claim()
            stored, created = store.create(conn, ORGS, dict(body), if_none_exist=criteria)
            return stored.rid, created

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_eight_parallel_identical_conditional_creates_make_one_resource(engine):
    results = _race(engine, Store("http://x"), 8, f"identifier={BSN}|123456782", patient())
    assert len({rid for rid, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(resource)).scalar_one() == 1


def test_the_database_decides_not_a_prior_search(engine, monkeypatch):
    """With the search step blinded (as when every transaction searches before any commits), the
    conditional key's primary key still lets exactly one create through."""
    store = Store("http://x")
    monkeypatch.setattr(store, "_conditional_existing", lambda *a, **k: None)
    results = _race(engine, store, 8, f"identifier={BSN}|123456782", patient())
    assert len({rid for rid, _ in results}) == 1 and sum(c for _, c in results) == 1
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(resource)).scalar_one() == 1
        row = conn.execute(select(conditional_key)).one()
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            insert(conditional_key).values(
                res_type=row.res_type, org=row.org, criteria=row.criteria, res_id="another"
            )
        )


def test_conditional_keys_are_per_tenant(engine):
    store = Store("http://x")
    with engine.begin() as conn:
        a, _ = store.create(conn, ("agb:01000001",), patient(), if_none_exist=f"identifier={BSN}|123456782")
    with engine.begin() as conn:
        b, created = store.create(
            conn, ("agb:01000002",), patient(), if_none_exist=f"identifier={BSN}|123456782"
        )
    assert created and a.rid != b.rid


def test_index_rows():
    rows = index_rows(
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "urn:s", "code": "c"}]},
            "subject": {"reference": "http://x/Patient/7"},
            "effectivePeriod": {"start": "2024-01-01", "end": "2024-01-31T12:00:00Z"},
        },
        "http://x",
    )
    assert ("code", "urn:s", "c") in rows.token and ("status", "", "final") in rows.token
    assert ("patient", "Patient", "7") in rows.reference and ("subject", "Patient", "7") in rows.reference
    assert rows.date == {
        ("date", "2023-12-31T23:00:00.000000", "2024-01-31T12:00:01.000000")
    }  # to the second given
    assert date_range("2024") == ("2023-12-31T23:00:00.000000", "2024-12-31T23:00:00.000000")
    assert date_range("2024-07-01T10:00:00+02:00") == (
        "2024-07-01T08:00:00.000000",
        "2024-07-01T08:00:01.000000",
    )
    assert date_range("2024-02-30") is None and date_range("yesterday") is None
    assert fold("Özdemir-ĲSSEL") == "ozdemir-ijssel"
