"""What a route's OpenAPI description is written with (``RouteDef.openapi``, ``gateway/api/routing.py``).

A route describes its parameters, request body and answers with these pieces; ``gateway/api/openapi.py``
completes each description (summary, operationId, tag, security) into the document. Request bodies use the
type's minimal valid instance (``gateway/fhir/examples.py``) so that a request valid by the document is a
valid FHIR request. OpenAPI 3.0.3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.fhir.examples import MINIMAL
from gateway.fhir.resources import RESOURCES
from gateway.settings import Settings

Operation = dict[str, Any]
"""One OpenAPI operation object (or the parts of it a route describes: parameters, body, responses)."""

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

COMMON = (400, 401, 403, 404, 406)
"""The error statuses every authenticated FHIR route can answer."""
ETAG = {"ETag": {"schema": {"type": "string", "pattern": r'^W/"[0-9]+"$'}, "required": True}}
LOCATION = {"Location": {"schema": {"type": "string"}, "required": True}}


def resource_schema(rtype: str, *, served: bool) -> dict[str, Any]:
    """A resource as served (type and id), or as the type's minimal valid instance (request bodies)."""
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


def content(schema: dict, media: str = FHIR) -> dict:
    """A ``content`` member: ``schema`` in media type ``media``."""
    return {"content": {media: {"schema": schema}}}


def ref(name: str) -> dict:
    """A reference to a schema of the document's components."""
    return {"$ref": f"#/components/schemas/{name}"}


def responses(ok: dict[int, dict], errors: tuple[int, ...]) -> dict:
    """The ``responses`` member: the answers ``ok`` and an OperationOutcome for each status of ``errors``."""
    out: dict[str, Any] = {}
    for status, spec in ok.items():
        out[str(status)] = spec
    for status in errors:
        out[str(status)] = {"description": ERRORS[status], **content(ref("OperationOutcome"))}
    return out


def bundle_answer() -> dict:
    """A Bundle answer."""
    return {"description": "Bundle", **content(ref("Bundle"))}


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


@dataclass(frozen=True, slots=True)
class Doc:
    """What a route's description is written with (``RouteDef.openapi``): the resource type of a
    ``{type}`` route written out for one type (``None`` on other routes) and the settings."""

    rtype: str | None
    settings: Settings

    @property
    def type(self) -> str:
        """The resource type (``""`` off ``{type}`` routes)."""
        return self.rtype or ""

    @property
    def resource(self) -> dict:
        """The ``content`` of an answer holding the resource (nothing off ``{type}`` routes)."""
        return content(ref(self.rtype)) if self.rtype else {}

    @property
    def body(self) -> dict | None:
        """The request body: the type's minimal valid instance (``None`` if the type has none)."""
        if not self.rtype or self.rtype not in MINIMAL:
            return None
        example = {"resourceType": self.rtype, **MINIMAL[self.rtype]}
        return {
            "required": True,
            "content": {FHIR: {"schema": ref(f"{self.rtype}Minimal"), "example": example}},
        }

    def search_params(self) -> list[dict]:
        """The query parameters of a search on the type."""
        return _search_params(self.type, self.settings.max_page_size)

    def count_param(self) -> dict:
        """``_count``, bounded by the page size."""
        return {
            "name": "_count",
            "in": "query",
            "schema": {"type": "integer", "minimum": 0, "maximum": self.settings.max_page_size},
        }
