"""The gateway a request works with: settings, database, store, tokens, metrics, and the audited
transaction every interaction runs in (group commit).

Per request: the interaction in one database transaction that also writes its AuditEvent; a failed
interaction is rolled back and its failure audited in a transaction of its own.

Database work runs on the event loop thread: one process then holds at most one transaction at a time,
SQLite's single writer never waits on itself, and a read costs no thread hand-off. Scale out with more
processes (``--workers`` or several hosts on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request

from gateway import audit as audit_mod
from gateway.api import interactions as ix
from gateway.auth.tokens import Principal, TokenService
from gateway.clients import Registry
from gateway.fhir.outcome import FhirError
from gateway.obs import Metrics, RequestLog
from gateway.settings import Settings
from gateway.store import Store

log = logging.getLogger("hisgw.api")
try:
    import psycopg

    DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error, psycopg.Error)
except ImportError:  # pragma: no cover - psycopg is a dependency
    DB_ERRORS = (SQLAlchemyError, sqlite3.Error)


class Gateway:
    """Everything a request needs: settings, database, store, tokens, metrics."""

    def __init__(self, settings: Settings, engine: Engine, registry: Registry, signing_key):
        self.settings = settings
        self.engine = engine
        self.store = Store(settings.fhir_base)
        self.tokens = TokenService(
            registry=registry,
            signing_key=signing_key,
            issuer=settings.fhir_base,
            token_url=settings.token_url,
            engine=engine,
            lifetime=settings.token_lifetime,
            assertion_max_lifetime=settings.assertion_max_lifetime,
            skew=settings.clock_skew,
        )
        self.metrics = Metrics()
        self.request_log = RequestLog()
        self.group = GroupCommit(self)
        self.capability: bytes = b""
        self.openapi: bytes = b""
        self.consult_env: Any = None
        """The consult workflow's environment and clock (``gateway/api/consult.py`` ``env_of``)."""

    # -- transactions and audit -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def ctx(self, principal: Principal, request: Request) -> ix.Ctx:
        network = request.client.host if request.client else None
        agent = audit_mod.Agent.from_principal(principal, network)
        request_id = request.scope.get("state", {}).get("request_id")
        if request_id:
            agent = replace(agent, request_id=request_id)
        return ix.Ctx(principal, agent, self.store, self.settings)

    def _event(self, ctx: ix.Ctx, result: ix.Result) -> audit_mod.Pending:
        return audit_mod.prepare(
            who=ctx.agent,
            action=result.action,
            subtype=result.subtype,
            outcome="0",
            entities=result.entities,
            patients=result.patients,
            query_params=result.query,
        )

    def _failure_event(
        self, ctx: ix.Ctx, error: FhirError, subtype: str, entities: list[str], action: str | None = None
    ) -> audit_mod.Pending:
        return audit_mod.prepare(
            who=ctx.agent,
            action=action or ix.ACTION.get(subtype, "E"),
            subtype=subtype,
            outcome="8" if error.status >= 500 else "4",
            outcome_desc=f"{error.status} {error.code}",
            entities=entities,
        )

    def audit(self, conn: Connection, ctx: ix.Ctx, result: ix.Result) -> None:
        """Record one successful interaction in ``conn``'s transaction (Bundle entries)."""
        audit_mod.write(conn, [self._event(ctx, result)])
        self.metrics.audit.labels("0").inc()

    def audit_failure(
        self, ctx: ix.Ctx, error: FhirError, subtype: str, action: str, entities: list[str]
    ) -> None:
        """Record a failed interaction in a transaction of its own."""
        event = self._failure_event(ctx, error, subtype, entities, action)
        try:
            with self.transaction() as conn:
                audit_mod.write(conn, [event])
            self.metrics.audit.labels(event.outcome).inc()
        except Exception:  # noqa: BLE001 - the request has failed already; say so in the technical log
            log.exception("could not record the audit event of a failed request")

    async def audited(
        self,
        request: Request,
        principal: Principal,
        subtype: str,
        entities: list[str],
        work: Callable[[Connection, ix.Ctx], ix.Result],
        *,
        writes: bool = False,
    ) -> ix.Result:
        """Run ``work`` and its AuditEvent in one transaction (see :class:`GroupCommit`)."""
        return await self.group.submit(_Job(self.ctx(principal, request), work, subtype, entities, writes))


@dataclass
class _Job:
    ctx: ix.Ctx
    work: Callable[[Connection, ix.Ctx], ix.Result]
    subtype: str
    entities: list[str]
    writes: bool
    future: asyncio.Future | None = None


class GroupCommit:
    """Requests that arrive together share one database transaction (group commit).

    Each request's work and its AuditEvent still commit together -- in a transaction that may also hold
    the work of other requests that arrived in the same event-loop turn. Work that writes runs under a
    savepoint, so a failing request takes only its own changes back; its failure is audited in the same
    transaction. If the transaction itself fails (an audit record cannot be written, the database is
    gone), every request in it fails. One commit and one chain-head lock then serve many requests.
    """

    def __init__(self, gw: Gateway, max_batch: int = 64):
        self.gw = gw
        self.max_batch = max_batch
        self.queue: list[_Job] = []
        self.scheduled = False

    async def submit(self, job: _Job) -> ix.Result:
        loop = asyncio.get_running_loop()
        job.future = loop.create_future()
        self.queue.append(job)
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._run)
        return await job.future

    def _run(self) -> None:
        self.scheduled = False
        batch, self.queue = self.queue[: self.max_batch], self.queue[self.max_batch :]
        if self.queue:
            self.scheduled = True
            asyncio.get_running_loop().call_soon(self._run)
        together = self._execute(batch)
        outcomes: list[ix.Result | BaseException]
        if not isinstance(together, BaseException):
            outcomes = together
        elif len(batch) == 1:
            outcomes = [together]
        else:  # one request broke the shared transaction: give each its own
            outcomes = []
            for job in batch:
                alone = self._execute([job])
                outcomes.append(alone if isinstance(alone, BaseException) else alone[0])
        for job, outcome in zip(batch, outcomes, strict=True):
            if job.future is not None and not job.future.done():
                if isinstance(outcome, BaseException):
                    job.future.set_exception(outcome)
                else:
                    job.future.set_result(outcome)

    def _execute(self, batch: list[_Job]) -> list[ix.Result | BaseException] | BaseException:
        """Run the jobs and their audit records in one transaction; the exception if it failed."""
        gw = self.gw
        outcomes: list[ix.Result | BaseException] = []
        events: list[audit_mod.Pending] = []
        try:
            with gw.transaction() as conn:
                for job in batch:
                    try:
                        if job.writes:
                            with conn.begin_nested():
                                result = job.work(conn, job.ctx)
                        else:
                            result = job.work(conn, job.ctx)
                        outcomes.append(result)
                        events.append(gw._event(job.ctx, result))
                    except FhirError as exc:
                        outcomes.append(exc)
                        events.append(gw._failure_event(job.ctx, exc, job.subtype, job.entities))
                    except DB_ERRORS:
                        raise  # the transaction may be unusable now: fail it (and retry one by one)
                    except Exception as exc:  # noqa: BLE001 - answered as 500, audited as a serious failure
                        log.exception("request failed", extra={"interaction": job.subtype})
                        outcomes.append(exc)
                        events.append(
                            gw._failure_event(
                                job.ctx,
                                FhirError(500, "exception", "API-050", "error"),
                                job.subtype,
                                job.entities,
                            )
                        )
                audit_mod.write(conn, events)
        except Exception as exc:  # noqa: BLE001 - nothing of this transaction was stored
            log.exception("transaction failed", extra={"requests": len(batch)})
            return exc
        for e in events:
            gw.metrics.audit.labels(e.outcome).inc()
        return outcomes
