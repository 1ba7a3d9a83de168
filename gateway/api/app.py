"""The FastAPI application: the route table (``gateway/api/routes.py``) wired to its handlers, with auth,
errors and metrics.

Per request: the route's token check (every route but the public ones: 401 with ``WWW-Authenticate``
otherwise), then the handler, which runs its interaction with its AuditEvent in one transaction
(``gateway/api/gateway.py``). Every error is an OperationOutcome (``application/fhir+json``) with its status.
Handlers take the raw request and answer bytes (orjson), no per-request model validation: the stored JSON
is served as stored.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import cast

import orjson
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.api import interactions as ix
from gateway.api.gateway import Gateway
from gateway.api.openapi import openapi_document
from gateway.api.requests import NotServed, check_accept, error_response
from gateway.api.routes import ROUTES, STATIC_PATHS
from gateway.api.routing import RouteDef
from gateway.api.routing import allowed_methods as _allowed
from gateway.auth.tokens import AuthError, Principal
from gateway.clients import Registry
from gateway.fhir.capability import capability_statement
from gateway.fhir.outcome import FhirError
from gateway.settings import Settings

log = logging.getLogger("hisgw.api")
WWW_AUTHENTICATE = 'Bearer realm="his-gateway", error="invalid_token"'


def allowed_methods(path: str) -> list[str]:
    """The methods served on a concrete path (the ``Allow`` header of a 405)."""
    return _allowed(ROUTES, path)


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


_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_of(request: Request) -> str:
    """The caller's ``X-Request-ID`` if it is a plain token (letters, digits, ``._:-``, at most 128),
    otherwise a new one: echoed in the answer, written to the request log and the AuditEvent."""
    given = request.headers.get("x-request-id")
    return given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex


def _endpoint(gw: Gateway, route: RouteDef):
    handler = route.handler
    label = route.path

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        client_id = None
        request_id = request_id_of(request)
        request.scope.setdefault("state", {})["request_id"] = request_id
        params = request.path_params
        try:
            if "type" in params and request.scope["path"].rstrip("/") in STATIC_PATHS:
                raise NotServed(request.scope["path"])
            principal = None
            if not route.public:
                principal = gw.tokens.check(request.headers.get("authorization"))
                client_id = principal.client_id
                check_accept(request)
            if "type" in params and params["type"] not in route.types:
                # a {type} route serves only its types: an unknown type is 404, a known one 405 here
                ix.check_type(params["type"])
                raise NotServed(request.scope["path"])
            # a public route's handler takes None (its signature says so: ``Principal | None``)
            response = await handler(gw, request, cast(Principal, principal), params)
        except AuthError as exc:
            response = error_response(
                FhirError(401, "login", "AUTH-002", str(exc)), {"WWW-Authenticate": WWW_AUTHENTICATE}
            )
        except NotServed as exc:
            response = error_response(_not_allowed(exc.path))
        except FhirError as exc:
            response = error_response(exc)
        except Exception:  # noqa: BLE001 - never a traceback to the caller
            incident = uuid.uuid4().hex[:12]
            log.exception(
                "request failed", extra={"route": label, "incident": incident, "request_id": request_id}
            )
            response = error_response(
                FhirError(500, "exception", "API-050", f"internal error (incident {incident})")
            )
        response.headers["X-Request-ID"] = request_id
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
                    "request_id": request_id,
                }
            )
        return response

    endpoint.__name__ = f"{route.name}_{route.method.lower()}"
    return endpoint


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
            name=route.name,
            include_in_schema=False,
        )
        served.methods = {route.method}  # no implicit HEAD: only what the table says is served
        app.router.routes.append(served)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 405:
            return error_response(_not_allowed(request.url.path))
        if exc.status_code == 404:
            return error_response(
                FhirError(404, "not-found", "API-016", "no such path on this server", "path")
            )
        return error_response(FhirError(exc.status_code, "processing", "API-050", str(exc.detail)))

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.state.gateway = gw
    app.state.routes = ROUTES
    table = served_routes(app)
    gw.capability = orjson.dumps(capability_statement(table, settings))
    gw.openapi = orjson.dumps(openapi_document(table, settings))
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


__all__ = ["create_app", "served_routes", "allowed_methods", "Gateway"]
