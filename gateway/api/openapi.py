"""The OpenAPI 3.0 document of the served API, generated from the registered routes (``/openapi.json``).

Each ``{type}`` route is written out per resource type it serves (``/Patient``, ``/Patient/{id}`` ...), with
that type's search parameters, and request bodies whose schema is the type's minimal valid instance
(``gateway/fhir/examples.py``) so that a request valid by this document is a valid FHIR request.
Responses: the resource, a Bundle or an OperationOutcome, each status the route can answer.
"""

from __future__ import annotations

from typing import Any

from gateway.fhir.examples import MINIMAL
from gateway.fhir.resources import RESOURCES

FHIR = "application/fhir+json"
ID_PATTERN = r"^[A-Za-z0-9\-][A-Za-z0-9\-.]{0,63}$"
TOKEN_PATTERN = r"^[A-Za-z0-9:/._\-]{1,60}(\|[A-Za-z0-9._\-]{1,40})?$"
DATE_PATTERN = (
    r"^(eq|ne|lt|gt|le|ge|sa|eb|ap)?(19[0-9]{2}|20[0-9]{2})(-(0[1-9]|1[0-2])(-(0[1-9]|1[0-9]|2[0-8]))?)?$"
)
INSTANT_PATTERN = (
    r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$"
)
STRING_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ]{0,39}$"

OUTCOME = {
    "type": "object",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["OperationOutcome"]},
        "issue": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
                    "code": {"type": "string"},
                },
            },
        },
    },
}
BUNDLE = {
    "type": "object",
    "required": ["resourceType", "type"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {
            "type": "string",
            "enum": ["searchset", "history", "transaction-response", "batch-response"],
        },
        "total": {"type": "integer", "minimum": 0},
        "link": {"type": "array", "items": {"type": "object", "required": ["relation", "url"]}},
        "entry": {"type": "array", "items": {"type": "object"}},
    },
}
ERRORS = {
    400: "bad request",
    401: "no valid access token",
    403: "the token's scopes do not allow this",
    404: "not found (or another tenant's)",
    405: "method not served here",
    406: "only JSON is served",
    409: "conflict with a concurrent change",
    410: "deleted",
    412: "precondition failed",
    413: "body too large",
    415: "send application/fhir+json",
    422: "not a valid resource",
    503: "database unavailable",
}


def _resource_schema(rtype: str, *, served: bool) -> dict[str, Any]:
    props: dict[str, Any] = {"resourceType": {"type": "string", "enum": [rtype]}}
    if served:
        props |= {"id": {"type": "string"}, "meta": {"type": "object"}}
        return {"type": "object", "required": ["resourceType", "id"], "properties": props}
    for key, value in MINIMAL[rtype].items():
        props[key] = {"enum": [value]}
    return {
        "type": "object",
        "required": ["resourceType", *MINIMAL[rtype]],
        "properties": props,
        "additionalProperties": False,
    }


def _content(schema: dict, media: str = FHIR) -> dict:
    return {"content": {media: {"schema": schema}}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(ok: dict[int, dict], errors: tuple[int, ...]) -> dict:
    out: dict[str, Any] = {}
    for status, spec in ok.items():
        out[str(status)] = spec
    for status in errors:
        out[str(status)] = {"description": ERRORS[status], **_content(_ref("OperationOutcome"))}
    return out


def _path_params(names: list[str]) -> list[dict]:
    schemas = {
        "id": {"type": "string", "pattern": ID_PATTERN},
        "vid": {"type": "string", "pattern": r"^[1-9][0-9]{0,8}$"},
    }
    return [{"name": n, "in": "path", "required": True, "schema": schemas[n]} for n in names]


def _search_params(rtype: str, max_page: int) -> list[dict]:
    rdef = RESOURCES[rtype]
    params: list[dict] = [
        {"name": "_id", "in": "query", "schema": {"type": "string", "pattern": ID_PATTERN}},
        {"name": "_lastUpdated", "in": "query", "schema": {"type": "string", "pattern": DATE_PATTERN}},
        {"name": "_count", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": max_page}},
        {"name": "_offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 100000}},
    ]
    if rtype == "AuditEvent":
        params += [
            {"name": "date", "in": "query", "schema": {"type": "string", "pattern": DATE_PATTERN}},
            {"name": "patient", "in": "query", "schema": {"type": "string", "pattern": ID_PATTERN}},
            {"name": "action", "in": "query", "schema": {"type": "string", "enum": list("CRUDE")}},
        ]
        return [p for p in params if p["name"] != "_lastUpdated"]
    sorts = ["_lastUpdated", "-_lastUpdated", "_id", "-_id"]
    sorts += [s for p in rdef.params.values() if p.kind == "date" for s in (p.name, "-" + p.name)]
    params.append({"name": "_sort", "in": "query", "schema": {"type": "string", "enum": sorts}})
    includes = [f"{rtype}:{p.name}" for p in rdef.params.values() if p.kind == "reference"]
    if includes:
        params.append({"name": "_include", "in": "query", "schema": {"type": "string", "enum": includes}})
    params.append(
        {"name": "_total", "in": "query", "schema": {"type": "string", "enum": ["none", "accurate"]}}
    )
    for p in rdef.params.values():
        schema = {
            "token": {"type": "string", "pattern": TOKEN_PATTERN},
            "reference": {"type": "string", "pattern": ID_PATTERN},
            "date": {"type": "string", "pattern": DATE_PATTERN},
            "string": {"type": "string", "pattern": STRING_PATTERN},
        }[p.kind]
        params.append({"name": p.name, "in": "query", "schema": schema})
    return params


def _operation(rd, rtype: str | None, settings) -> dict[str, Any]:
    """One OpenAPI operation for a route (and resource type)."""
    name = rd.handler
    t = rtype or ""  # the branches that use it are those of {type} routes
    res = _content(_ref(f"{rtype}")) if rtype else {}
    etag = {"ETag": {"schema": {"type": "string", "pattern": r'^W/"[0-9]+"$'}, "required": True}}
    location = {"Location": {"schema": {"type": "string"}, "required": True}}
    bundle = {"description": "Bundle", **_content(_ref("Bundle"))}
    common = (400, 401, 403, 404, 406)
    body = None
    if rtype and rtype in MINIMAL:
        body = {
            "required": True,
            "content": {
                FHIR: {
                    "schema": _ref(f"{rtype}Minimal"),
                    "example": {"resourceType": rtype, **MINIMAL[rtype]},
                }
            },
        }
    op: dict[str, Any] = {
        "summary": f"{rd.summary} {rtype or ''}".strip(),
        "operationId": f"{name}{rtype or ''}",
        "tags": [rtype or "system"],
    }
    params: list[dict] = []
    if name == "search":
        params = _search_params(t, settings.max_page_size)
        op["responses"] = _responses({200: bundle}, common)
    elif name == "create":
        if "identifier" in RESOURCES[t].params:
            params.append(
                {
                    "name": "If-None-Exist",
                    "in": "header",
                    "schema": {
                        "type": "string",
                        "pattern": r"^identifier=[A-Za-z0-9]{1,20}(%7C|\|)[A-Za-z0-9]{1,20}$",
                    },
                }
            )
        op["requestBody"] = body
        op["responses"] = _responses(
            {
                201: {"description": "created", "headers": etag | location, **res},
                200: {"description": "exists (If-None-Exist)", **res},
            },
            (*common, 409, 412, 413, 415, 422),
        )
    elif name in ("conditional_update", "conditional_delete"):
        criterion = "identifier" if "identifier" in RESOURCES[t].params else "_id"
        params = [
            {**p, "required": True}
            for p in _search_params(t, settings.max_page_size)
            if p["name"] == criterion
        ]
        if name == "conditional_update":
            op["requestBody"] = body
            op["responses"] = _responses(
                {200: {"description": "updated", **res}, 201: {"description": "created", **res}},
                (*common, 409, 412, 413, 415, 422),
            )
        else:
            op["responses"] = _responses(
                {204: {"description": "deleted (or nothing matched)"}}, (*common, 409, 412)
            )
    elif name in ("history_type", "history_instance"):
        params = [
            {
                "name": "_count",
                "in": "query",
                "schema": {"type": "integer", "minimum": 0, "maximum": settings.max_page_size},
            },
            {"name": "_since", "in": "query", "schema": {"type": "string", "pattern": INSTANT_PATTERN}},
        ]
        op["responses"] = _responses({200: bundle}, common)
    elif name == "validate":
        op["requestBody"] = body
        op["responses"] = _responses(
            {200: {"description": "OperationOutcome", **_content(_ref("OperationOutcome"))}},
            (*common, 413, 415),
        )
    elif name in ("read", "vread"):
        op["responses"] = _responses({200: {"description": rtype, "headers": etag, **res}}, (*common, 410))
    elif name == "update":
        params.append(
            {
                "name": "If-Match",
                "in": "header",
                "schema": {"type": "string", "pattern": r'^W/"[1-9][0-9]{0,5}"$'},
            }
        )
        op["requestBody"] = body
        op["responses"] = _responses(
            {200: {"description": "updated", "headers": etag, **res}}, (*common, 409, 412, 413, 415, 422)
        )
    elif name == "delete":
        op["responses"] = _responses({204: {"description": "deleted"}}, (*common, 409))
    elif name == "bundle":
        entry_get = {
            "type": "object",
            "required": ["request"],
            "additionalProperties": False,
            "properties": {
                "request": {
                    "type": "object",
                    "required": ["method", "url"],
                    "additionalProperties": False,
                    "properties": {
                        "method": {"enum": ["GET"]},
                        "url": {"enum": ["Patient?_count=1", "Observation?_count=1"]},
                    },
                }
            },
        }
        entry_post = {
            "type": "object",
            "required": ["request", "resource"],
            "additionalProperties": False,
            "properties": {
                "resource": _resource_schema("Patient", served=False),
                "request": {
                    "type": "object",
                    "required": ["method", "url"],
                    "additionalProperties": False,
                    "properties": {"method": {"enum": ["POST"]}, "url": {"enum": ["Patient"]}},
                },
            },
        }
        schema = {
            "type": "object",
            "required": ["resourceType", "type"],
            "additionalProperties": False,
            "properties": {
                "resourceType": {"enum": ["Bundle"]},
                "type": {"enum": ["transaction", "batch"]},
                "entry": {"type": "array", "maxItems": 5, "items": {"oneOf": [entry_get, entry_post]}},
            },
        }
        op["requestBody"] = {"required": True, **_content(schema)}
        op["responses"] = _responses({200: bundle}, (*common, 405, 409, 412, 413, 415, 422))
    elif name == "metadata":
        op["responses"] = {
            "200": {
                "description": "CapabilityStatement",
                **_content(
                    {
                        "type": "object",
                        "required": ["resourceType", "rest"],
                        "properties": {"resourceType": {"enum": ["CapabilityStatement"]}},
                    }
                ),
            }
        }
    elif name == "smart_configuration":
        op["responses"] = {
            "200": {
                "description": "SMART configuration",
                **_content(
                    {"type": "object", "required": ["token_endpoint", "grant_types_supported"]},
                    "application/json",
                ),
            }
        }
    elif name == "health":
        health = {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"enum": ["pass", "fail"]}},
        }
        op["responses"] = {
            "200": {"description": "up", **_content(health, "application/health+json")},
            "503": {"description": "database down", **_content(health, "application/health+json")},
        }
    elif name == "token":
        form = {
            "type": "object",
            "required": ["grant_type", "client_assertion_type", "client_assertion", "scope"],
            "properties": {
                "grant_type": {"enum": ["client_credentials"]},
                "client_assertion_type": {"enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]},
                "client_assertion": {"type": "string"},
                "scope": {"type": "string"},
            },
        }
        oauth_error = {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
        }
        token = {
            "type": "object",
            "required": ["access_token", "token_type", "expires_in", "scope"],
            "properties": {
                "access_token": {"type": "string"},
                "token_type": {"enum": ["bearer"]},
                "expires_in": {"type": "integer", "maximum": 300},
                "scope": {"type": "string"},
            },
        }
        op["requestBody"] = {"required": True, **_content(form, "application/x-www-form-urlencoded")}
        op["responses"] = {
            "200": {"description": "access token", **_content(token, "application/json")},
            **{
                str(s): {
                    "description": ERRORS[s] if s in ERRORS else "error",
                    **_content(oauth_error, "application/json"),
                }
                for s in (400, 401, 413, 415)
            },
        }
    elif name == "openapi":
        op["responses"] = {
            "200": {"description": "this document", **_content({"type": "object"}, "application/json")},
            "401": {"description": ERRORS[401], **_content(OUTCOME)},
            "406": {"description": ERRORS[406], **_content(OUTCOME)},
        }
    elif name.startswith("outbox_"):  # issue 7: postbox delivery state
        from gateway.api.outbox import openapi_operation as outbox_operation

        op.update(outbox_operation(name, _ref, _content, _responses))
    elif name.startswith("consult_"):  # issue 6: the consult operations describe themselves
        from gateway.api.consult import openapi_operation

        op.update(openapi_operation(name, _ref, _content, _responses))
    else:  # pragma: no cover - every route has a branch; the OpenAPI test fails loudly otherwise
        raise KeyError(name)
    if not rd.public:
        op["security"] = [{"smart": []}]
        if "401" not in op["responses"]:
            op["responses"]["401"] = {"description": ERRORS[401], **_content(_ref("OperationOutcome"))}
    else:
        op["security"] = []
    if params:
        op["parameters"] = params
    if op.get("requestBody") is None:
        op.pop("requestBody", None)
    return op


def openapi_document(app, settings) -> dict[str, Any]:
    """The OpenAPI document of ``app``'s served routes."""
    from gateway.api.app import served_routes

    paths: dict[str, dict] = {}
    for method, path, rd in served_routes(app):
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
        schemas[rtype] = _resource_schema(rtype, served=True)
        if rtype in MINIMAL:
            schemas[f"{rtype}Minimal"] = _resource_schema(rtype, served=False)
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
