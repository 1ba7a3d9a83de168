"""The FastAPI application: the route table wired to the interactions, with auth, audit, errors and metrics.

Per request: the route's token check (every route but the public ones of ``gateway/api/routes.py``:
401 with ``WWW-Authenticate`` otherwise), then the interaction in one database transaction that also
writes its AuditEvent; a failed interaction is rolled back and its failure audited in a transaction of
its own. Every error is an OperationOutcome (``application/fhir+json``) with its status. Handlers take
the raw request and answer bytes (orjson), no per-request model validation: the stored JSON is served as
stored.

Database work runs on the event loop thread: one process then holds at most one transaction at a time,
SQLite's single writer never waits on itself, and a read costs no thread hand-off. Scale out with more
processes (``--workers`` or several hosts on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from gateway import audit as audit_mod
from gateway.api import bundles
from gateway.api import interactions as ix
from gateway.api.routes import ROUTES, STATIC_PATHS, RouteDef
from gateway.auth.tokens import AuthError, OAuthError, Principal, TokenService
from gateway.clients import Registry
from gateway.fhir.outcome import FHIR_JSON, FhirError, outcome_of
from gateway.fhir.resources import RESOURCES
from gateway.fhir.validation import validate
from gateway.obs import Metrics, RequestLog
from gateway.settings import Settings
from gateway.store import Store

log = logging.getLogger("hisgw.api")
try:
    import psycopg

    DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error, psycopg.Error)
except ImportError:  # pragma: no cover - psycopg is a dependency
    DB_ERRORS = (SQLAlchemyError, sqlite3.Error)
MAX_PARAMS = 100
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


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

    # -- transactions and audit -------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def ctx(self, principal: Principal, request: Request) -> ix.Ctx:
        network = request.client.host if request.client else None
        return ix.Ctx(
            principal, audit_mod.Agent.from_principal(principal, network), self.store, self.settings
        )

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


# -- request helpers --------------------------------------------------------------------------------------


def _query(request: Request) -> list[tuple[str, str]]:
    raw = request.scope.get("query_string", b"").decode("latin-1")
    if not raw:
        return []
    try:
        items = parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_PARAMS, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise FhirError(
            400,
            "invalid",
            "API-021",
            f"the query string is broken or has over {MAX_PARAMS} parameters",
            "query",
        ) from None
    if any("\x00" in k or "\x00" in v for k, v in items):
        raise FhirError(400, "invalid", "API-021", "the query string holds a NUL character", "query")
    return items


async def _body(request: Request, gw: Gateway, *, form: bool = False) -> bytes:
    ctype = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if form:
        if ctype != "application/x-www-form-urlencoded":
            raise FhirError(
                415, "not-supported", "API-003", "send application/x-www-form-urlencoded", "Content-Type"
            )
    elif ctype not in JSON_TYPES:
        raise FhirError(415, "not-supported", "API-003", "send application/fhir+json", "Content-Type")
    limit = gw.settings.max_body_bytes
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise FhirError(413, "too-costly", "API-002", f"the body is over {limit} bytes", "body")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise FhirError(413, "too-costly", "API-002", f"the body is over {limit} bytes", "body")
            chunks.append(chunk)
    except ClientDisconnect:  # the client left mid-body: its error, not an incident (issue 14)
        raise FhirError(
            400,
            "incomplete",
            "API-008",
            "the client closed the connection before its body was complete",
            "body",
        ) from None
    return b"".join(chunks)


async def _json_body(request: Request, gw: Gateway) -> object:
    raw = await _body(request, gw)
    if b"\\u0000" in raw:  # NUL cannot be stored (PostgreSQL text) and has no place in FHIR strings
        raise FhirError(400, "invalid", "API-006", "the body holds a NUL character (\\u0000)", "body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FhirError(400, "invalid", "API-001", f"the body is not valid JSON: {exc}", "body") from None


def _fhir(status: int, body: bytes | None, headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=body or b"",
        status_code=status,
        media_type=FHIR_JSON if body else None,
        headers={k: v for k, v in (headers or {}).items() if v},
    )


def _result_response(request: Request, result: ix.Result) -> Response:
    prefer = request.headers.get("prefer", "")
    body = result.body
    if "return=minimal" in prefer and result.status in (200, 201):
        body = None
    return _fhir(result.status, body, result.headers)


def _error_response(error: FhirError, extra_headers: dict[str, str] | None = None) -> Response:
    return Response(
        content=error.body(),
        status_code=error.status,
        media_type=FHIR_JSON,
        headers={**error.headers, **(extra_headers or {})},
    )


_SEGMENT = re.compile(r"^[^/]+$")


def allowed_methods(path: str) -> list[str]:
    """The methods served on a concrete path (the ``Allow`` header of a 405)."""
    if path in STATIC_PATHS or path == "/":
        return sorted({r.method for r in ROUTES if r.path == path})
    parts = path.strip("/").split("/")
    methods = set()
    for r in ROUTES:
        pattern = r.path.strip("/").split("/")
        if "{" not in r.path or len(pattern) != len(parts):
            continue
        ok = True
        for want, got in zip(pattern, parts, strict=True):
            if want == "{type}":
                ok &= got in r.types
            elif want.startswith("{"):
                ok &= bool(_SEGMENT.match(got)) and got not in ("_history", "$validate")
            else:
                ok &= want == got
        if ok:
            methods.add(r.method)
    return sorted(methods)


def _not_allowed(path: str) -> FhirError:
    allow = allowed_methods(path)
    if not allow:
        return FhirError(404, "not-found", "API-016", "nothing is served on this path", path)
    return FhirError(
        405,
        "not-supported",
        "API-015",
        "this method is not served on this path",
        path,
        headers={"Allow": ", ".join(allow)},
    )


# -- handlers ---------------------------------------------------------------------------------------------


async def h_metadata(gw: Gateway, request: Request, principal: Principal | None, p: dict) -> Response:
    return _fhir(200, gw.capability)


async def h_smart_configuration(
    gw: Gateway, request: Request, principal: Principal | None, p: dict
) -> Response:
    from gateway.api.smart import smart_configuration

    return Response(orjson.dumps(smart_configuration(gw.settings)), media_type="application/json")


async def h_health(gw: Gateway, request: Request, principal: Principal | None, p: dict) -> Response:
    try:
        with gw.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        status, code = "pass", 200
    except Exception:  # noqa: BLE001 - the answer is the health state
        status, code = "fail", 503
    return Response(orjson.dumps({"status": status}), status_code=code, media_type="application/health+json")


async def h_token(gw: Gateway, request: Request, principal: Principal | None, p: dict) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    try:
        raw = await _body(request, gw, form=True)
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20))
        answer = gw.tokens.token(form)
        return Response(orjson.dumps(answer), media_type="application/json", headers=headers)
    except OAuthError as exc:
        log.info("token refused", extra={"error": exc.error})
        return Response(
            orjson.dumps({"error": exc.error, "error_description": exc.description}),
            status_code=exc.status,
            media_type="application/json",
            headers=headers,
        )
    except (ValueError, UnicodeDecodeError):
        return Response(
            orjson.dumps({"error": "invalid_request", "error_description": "broken form body"}),
            status_code=400,
            media_type="application/json",
            headers=headers,
        )
    except FhirError as exc:
        error = "invalid_request"
        return Response(
            orjson.dumps({"error": error, "error_description": exc.message}),
            status_code=exc.status if exc.status in (413, 415) else 400,
            media_type="application/json",
            headers=headers,
        )


async def h_openapi(gw: Gateway, request: Request, principal: Principal | None, p: dict) -> Response:
    return Response(gw.openapi, media_type="application/json")


async def h_bundle(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    body = await _json_body(request, gw)
    ctx = gw.ctx(principal, request)
    kind = body.get("type") if isinstance(body, dict) else None
    subtype = kind if kind in ("transaction", "batch") else "transaction"

    def batch_failure(error: FhirError, entry: dict) -> None:
        req = entry.get("request") if isinstance(entry, dict) else None
        method = req.get("method") if isinstance(req, dict) else None
        action = {"GET": "R", "POST": "C", "PUT": "U", "DELETE": "D"}.get(str(method), "E")
        gw.audit_failure(ctx, error, "batch", action, [])

    try:
        _, answer = bundles.process(
            body, ctx, gw.transaction, lambda conn, r: gw.audit(conn, ctx, r), batch_failure
        )
    except FhirError as exc:
        gw.audit_failure(ctx, exc, subtype, "E", [])
        raise
    return _fhir(200, answer)


async def h_search(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    items = _query(request)
    strict = "handling=strict" in request.headers.get("prefer", "")
    return _result_response(
        request,
        await gw.audited(
            request, principal, "search-type", [rtype], lambda c, x: ix.search(c, x, rtype, items, strict)
        ),
    )


async def h_create(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype, writable=True)
    body = await _json_body(request, gw)
    cond = request.headers.get("if-none-exist")
    return _result_response(
        request,
        await gw.audited(
            request,
            principal,
            "create",
            [rtype],
            lambda c, x: ix.create(c, x, rtype, body, cond),
            writes=True,
        ),
    )


async def h_conditional_update(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype, writable=True)
    items = _query(request)
    body = await _json_body(request, gw)
    return _result_response(
        request,
        await gw.audited(
            request,
            principal,
            "update",
            [rtype],
            lambda c, x: ix.conditional_update(c, x, rtype, items, body),
            writes=True,
        ),
    )


async def h_conditional_delete(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype, writable=True)
    items = _query(request)
    return _result_response(
        request,
        await gw.audited(
            request,
            principal,
            "delete",
            [rtype],
            lambda c, x: ix.conditional_delete(c, x, rtype, items),
            writes=True,
        ),
    )


async def h_history_type(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype)
    items = _query(request)
    return _result_response(
        request,
        await gw.audited(
            request, principal, "history-type", [rtype], lambda c, x: ix.history(c, x, rtype, None, items)
        ),
    )


async def h_validate(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype, writable=True)
    body = await _json_body(request, gw)
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        params = body.get("parameter")
        found = (
            [x.get("resource") for x in params if isinstance(x, dict) and x.get("name") == "resource"]
            if isinstance(params, list)
            else []
        )
        body = found[0] if found else None

    def work(conn: Connection, ctx: ix.Ctx) -> ix.Result:
        if not (principal.perms.allows(rtype, "c") or principal.perms.allows(rtype, "u")):
            raise FhirError(
                403, "forbidden", "AUTH-003", f"$validate needs create or update on {rtype}", rtype
            )
        outcome = outcome_of(validate(body, rtype))
        from gateway.store import patient_refs

        patients = list(patient_refs(body, gw.store.base_url)) if isinstance(body, dict) else []
        return ix.Result(200, orjson.dumps(outcome), {}, "E", "operation", [f"{rtype}/$validate"], patients)

    return _result_response(request, await gw.audited(request, principal, "operation", [rtype], work))


def _instance(p: dict, path: str, *, writable: bool = False) -> tuple[str, str]:
    rtype, rid = p["type"], p["id"]
    if rid in ("_history", "$validate") or rid.startswith("$"):
        raise _not_allowed(path)
    ix.check_type(rtype, writable=writable)
    ix.check_id(rid)
    return rtype, rid


async def h_read(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path)
    return _result_response(
        request,
        await gw.audited(
            request, principal, "read", [f"{rtype}/{rid}"], lambda c, x: ix.read(c, x, rtype, rid)
        ),
    )


async def h_update(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path, writable=True)
    if_match = ix.parse_etag(request.headers.get("if-match"))
    body = await _json_body(request, gw)
    if isinstance(body, dict) and "id" not in body and body.get("resourceType") == rtype:
        body["id"] = rid  # lenient: the URL names the resource
    return _result_response(
        request,
        await gw.audited(
            request,
            principal,
            "update",
            [f"{rtype}/{rid}"],
            lambda c, x: ix.update(c, x, rtype, rid, body, if_match),
            writes=True,
        ),
    )


async def h_delete(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path, writable=True)
    return _result_response(
        request,
        await gw.audited(
            request,
            principal,
            "delete",
            [f"{rtype}/{rid}"],
            lambda c, x: ix.delete(c, x, rtype, rid),
            writes=True,
        ),
    )


async def h_history_instance(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path)
    items = _query(request)
    return _result_response(
        request,
        await gw.audited(
            request,
            principal,
            "history-instance",
            [f"{rtype}/{rid}"],
            lambda c, x: ix.history(c, x, rtype, rid, items),
        ),
    )


async def h_vread(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path)
    vid = p["vid"]
    return _result_response(
        request,
        await gw.audited(
            request,
            principal,
            "vread",
            [f"{rtype}/{rid}/_history/{vid}"],
            lambda c, x: ix.vread(c, x, rtype, rid, vid),
        ),
    )


HANDLERS = {name[2:]: fn for name, fn in globals().items() if name.startswith("h_")}
from gateway.api.consult import HANDLERS as _CONSULT_HANDLERS  # noqa: E402 - needs the helpers above

HANDLERS.update(_CONSULT_HANDLERS)
from gateway.api.outbox import HANDLERS as _OUTBOX_HANDLERS  # noqa: E402 - issue 7: delivery state

HANDLERS.update(_OUTBOX_HANDLERS)

# -- wiring -----------------------------------------------------------------------------------------------

WWW_AUTHENTICATE = 'Bearer realm="his-gateway", error="invalid_token"'


def _endpoint(gw: Gateway, route: RouteDef):
    handler = HANDLERS[route.handler]
    label = route.path

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        client_id = None
        params = request.path_params
        try:
            if "type" in params and request.scope["path"].rstrip("/") in STATIC_PATHS:
                raise _not_allowed(request.scope["path"])
            principal = None
            if not route.public:
                principal = gw.tokens.check(request.headers.get("authorization"))
                client_id = principal.client_id
                _check_accept(request)
            if "type" in params and params["type"] not in route.types:
                # a {type} route serves only its types: an unknown type is 404, a known one 405 here
                ix.check_type(params["type"])
                raise _not_allowed(request.scope["path"])
            response = await handler(gw, request, principal, params)
        except AuthError as exc:
            response = _error_response(
                FhirError(401, "login", "AUTH-002", str(exc)), {"WWW-Authenticate": WWW_AUTHENTICATE}
            )
        except FhirError as exc:
            response = _error_response(exc)
        except Exception:  # noqa: BLE001 - never a traceback to the caller
            incident = uuid.uuid4().hex[:12]
            log.exception("request failed", extra={"route": label, "incident": incident})
            response = _error_response(
                FhirError(500, "exception", "API-050", f"internal error (incident {incident})")
            )
        elapsed = time.perf_counter() - started
        gw.metrics.observe(route.method, label, response.status_code, elapsed)
        if gw.settings.log_requests:
            gw.request_log.write(
                {
                    "msg": "request",
                    "method": route.method,
                    "route": label,
                    "type": params.get("type"),
                    "status": response.status_code,
                    "ms": round(elapsed * 1000, 2),
                    "client": client_id,
                }
            )
        return response

    endpoint.__name__ = f"{route.handler}_{route.method.lower()}"
    return endpoint


def _check_accept(request: Request) -> None:
    accept = request.headers.get("accept")
    fmt = request.query_params.get("_format")
    for value in (accept, fmt):
        if (
            value
            and "json" not in value
            and "*/*" not in value
            and "application/*" not in value
            and value != "json"
        ):
            raise FhirError(
                406, "not-supported", "API-051", "this gateway answers application/fhir+json only", "Accept"
            )


def create_app(settings: Settings, *, engine: Engine, registry: Registry, signing_key) -> FastAPI:
    """The gateway's ASGI application (the database must be migrated: ``gateway.db.migrate``)."""
    gw = Gateway(settings, engine, registry, signing_key)
    # FastAPI's own OpenTelemetry hooks stay off: the gateway exports Prometheus metrics (gateway/obs.py)
    app = FastAPI(
        title="his-gateway FHIR R4 API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
        redirect_slashes=False,
    )
    for route in ROUTES:
        # plain Starlette routes: the handlers take the request as is (no per-request dependency solving)
        served = Route(
            route.path,
            _endpoint(gw, route),
            methods=[route.method],
            name=route.handler,
            include_in_schema=False,
        )
        served.methods = {route.method}  # no implicit HEAD: only what the table says is served
        app.router.routes.append(served)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            return _error_response(_not_allowed(request.url.path))
        if exc.status_code == 404:
            return _error_response(
                FhirError(404, "not-found", "API-016", "no such path on this server", "path")
            )
        return _error_response(FhirError(exc.status_code, "processing", "API-050", str(exc.detail)))

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.state.gateway = gw
    app.state.routes = ROUTES
    from gateway.api.openapi import openapi_document
    from gateway.fhir.capability import capability_statement

    gw.capability = orjson.dumps(capability_statement(app, settings))
    gw.openapi = orjson.dumps(openapi_document(app, settings))
    return app


def served_routes(app: FastAPI) -> list[tuple[str, str, RouteDef]]:
    """(method, path, definition) of every route the app actually serves (from ``app.routes``)."""
    by_key = {(r.method, r.path): r for r in ROUTES}
    out = []
    for route in app.routes:
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or ()):
            out.append((method, path, by_key[(method, path)]))
    return out


__all__ = ["create_app", "served_routes", "allowed_methods", "Gateway", "RESOURCES"]
