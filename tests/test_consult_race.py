"""A consult sent to a specialism is picked up by one member (DOMAIN.md §2): two specialists picking it up
at the same moment on PostgreSQL, each in its own database transaction, give exactly one owner; the
other is refused with CON-010 and nothing of theirs is stored."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from gateway.api import interactions as ix
from gateway.audit import Agent
from gateway.consult.params import Params
from gateway.consult.schema import consult
from gateway.consult.workflow import transition
from gateway.fhir.outcome import FhirError
from tests.test_consult_support import hospital_directory, install_clock, ok, send


@pytest.mark.parametrize("rounds", [5])
def test_two_specialists_pick_up_at_once(pg_service, rounds):
    svc = pg_service
    install_clock(svc)
    d = hospital_directory(svc)
    gw = svc.app.state.gateway
    principal = gw.tokens.check("Bearer " + svc.token("hospital-h"))
    ctx = ix.Ctx(principal, Agent.from_principal(principal, "127.0.0.1"), gw.store, gw.settings)
    for _ in range(rounds):
        tid = ok(send(svc, d), 201)["id"]
        barrier = threading.Barrier(2)
        outcomes: dict[str, object] = {}

        def pick(
            name: str, tid: str = tid, barrier: threading.Barrier = barrier, outcomes: dict = outcomes
        ) -> None:
            params = Params(
                {
                    "resourceType": "Parameters",
                    "parameter": [
                        {"name": "specialist", "valueString": f"PractitionerRole/{d.specialists[name]}"}
                    ],
                },
                "$pickup",
            )
            barrier.wait()
            try:
                with svc.engine.begin() as conn:
                    transition(conn, ctx, gw.consult_env, tid, "pickup", params)
                outcomes[name] = "ok"
            except FhirError as exc:
                outcomes[name] = exc.code

        threads = [threading.Thread(target=pick, args=(n,)) for n in ("dr. Hart", "dr. Klop")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(map(str, outcomes.values())) == ["CON-010", "ok"], outcomes
        winner = next(n for n, o in outcomes.items() if o == "ok")
        with svc.engine.connect() as conn:
            row = conn.execute(
                select(consult.c.specialist, consult.c.state, consult.c.version).where(consult.c.id == tid)
            ).one()
        assert tuple(row) == (d.specialists[winner], "picked-up", 2)
        task = ok(svc.request("GET", f"/Task/{tid}", as_="hospital-h"))
        assert task["owner"]["reference"] == f"PractitionerRole/{d.specialists[winner]}"
        assert task["meta"]["versionId"] == "2"
