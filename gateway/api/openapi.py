"""The OpenAPI 3.0 document of the served API (``/openapi.json``), from the served routes.

Each route describes itself beside its handler (``RouteDef.openapi``, written with
``gateway/api/describe.py``); this module completes each description (summary, operationId, tag,
security) and writes each ``{type}`` route out per resource type it serves (``/Patient``,
``/Patient/{id}`` ...), with that type's search parameters and minimal valid instance as request body.
Responses: the resource, a Bundle or an OperationOutcome, each status the route can answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gateway.api.describe import (
    BUNDLE,
    ERRORS,
    ID_PATTERN,
    OUTCOME,
    Doc,
    Operation,
    content,
    ref,
    resource_schema,
)
from gateway.api.routing import RouteDef
from gateway.fhir.examples import MINIMAL
from gateway.fhir.resources import RESOURCES
from gateway.settings import Settings


def _path_params(names: list[str]) -> list[dict]:
    schemas = {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "vid": {"type": "string", "pattern": r"^[1-9][0-9]{0,8}$"},
    }
    return [{"name": n, "in": "path", "required": True, "schema": schemas[n]} for n in names]


def _operation(rd: RouteDef, rtype: str | None, settings: Settings) -> Operation:
    """One OpenAPI operation for a route (and resource type): the route's own description, completed
    with its summary, operationId, tag and security."""
    described = dict(rd.openapi(Doc(rtype, settings)))
    params = described.pop("parameters", [])
    op: Operation = {
        "summary": f"{rd.summary} {rtype or ''}".strip(),
        "operationId": f"{rd.name}{rtype or ''}",
        "tags": [rtype or "system"],
        **described,
    }
    if not rd.public:
        op["security"] = [{"smart": []}]
        if "401" not in op["responses"]:
            op["responses"]["401"] = {"description": ERRORS[401], **content(ref("OperationOutcome"))}
    else:
        op["security"] = []
    if "429" not in op["responses"]:  # rate limits: gateway/httpguard.py, docs/security.md
        body = (
            content({"type": "object"}, "application/json")
            if rd.path == "/auth/token"
            else content(ref("OperationOutcome"))
        )
        op["responses"]["429"] = {
            "description": "too many requests: retry after the Retry-After seconds",
            "headers": {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}},
            **body,
        }
    if params:
        op["parameters"] = params
    if op.get("requestBody") is None:
        op.pop("requestBody", None)
    return op


def openapi_document(served: Iterable[tuple[str, str, RouteDef]], settings: Settings) -> dict[str, Any]:
    """The OpenAPI document of the served routes (``gateway.api.app.served_routes``)."""
    paths: dict[str, dict] = {}
    for method, path, rd in served:
        targets = rd.types if "{type}" in path else (None,)
        for rtype in targets:
            concrete = path.replace("{type}", rtype) if rtype else path
            entry = paths.setdefault(concrete, {})
            names = [n for n in ("id", "vid") if "{" + n + "}" in path]
            if names:
                entry.setdefault("parameters", _path_params(names))
            entry[method.lower()] = _operation(rd, rtype, settings)
    schemas: dict[str, Any] = {"OperationOutcome": OUTCOME, "Bundle": BUNDLE}
    for rtype in RESOURCES:
        schemas[rtype] = resource_schema(rtype, served=True)
        if rtype in MINIMAL:
            schemas[f"{rtype}Minimal"] = resource_schema(rtype, served=False)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "his-gateway FHIR R4 API",
            "version": "1",
            "description": "FHIR R4 (application/fhir+json). Authentication: SMART Backend Services "
            "(docs/auth.md). Every error is an OperationOutcome.",
        },
        "servers": [{"url": settings.fhir_base}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "smart": {
                    "type": "oauth2",
                    "description": "client_credentials with a private_key_jwt client assertion",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": settings.token_url,
                            "scopes": {
                                "system/*.read": "read and search everything but the audit log",
                                "system/*.cruds": "everything but the audit log",
                                "system/AuditEvent.read": "read the NEN 7513 audit log",
                            },
                        }
                    },
                }
            },
        },
    }
