"""The route table: every HTTP route the gateway serves, in matching order.

Order matters where paths overlap: ``/{type}/_history`` before ``/{type}/{id}``, and the most used
route (read) early, since routes are tried in this order.

``/metadata`` (the CapabilityStatement), the OpenAPI document and the auth matrix test are all generated
from this table and the routes registered from it, so a route cannot be served without appearing in them.
``types`` says for which resource types a ``{type}`` route is served (AuditEvent only for reading).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.fhir.resources import TYPES, WRITABLE


@dataclass(frozen=True, slots=True)
class RouteDef:
    method: str
    path: str
    handler: str
    interaction: str
    """FHIR interaction code (capabilities, read, search-type ...) or ``other``."""
    public: bool = False
    types: tuple[str, ...] = ()
    summary: str = ""


ROUTES: tuple[RouteDef, ...] = (
    RouteDef("GET", "/metadata", "metadata", "capabilities", True, summary="CapabilityStatement"),
    RouteDef(
        "GET",
        "/.well-known/smart-configuration",
        "smart_configuration",
        "other",
        True,
        summary="SMART configuration (Backend Services)",
    ),
    RouteDef(
        "GET", "/{type}/_history", "history_type", "history-type", types=WRITABLE, summary="type history"
    ),
    RouteDef("GET", "/{type}/{id}", "read", "read", types=TYPES, summary="read"),
    RouteDef("GET", "/health", "health", "other", True, summary="Liveness and database check"),
    RouteDef(
        "POST",
        "/auth/token",
        "token",
        "other",
        True,
        summary="OAuth2 token endpoint: client_credentials with a private_key_jwt client assertion",
    ),
    RouteDef("GET", "/openapi.json", "openapi", "other", summary="This API's OpenAPI document"),
    RouteDef("POST", "/", "bundle", "transaction", summary="transaction or batch Bundle"),
    RouteDef("GET", "/{type}", "search", "search-type", types=TYPES, summary="search"),
    RouteDef(
        "POST", "/{type}", "create", "create", types=WRITABLE, summary="create (If-None-Exist: conditional)"
    ),
    RouteDef("PUT", "/{type}", "conditional_update", "update", types=WRITABLE, summary="conditional update"),
    RouteDef(
        "DELETE", "/{type}", "conditional_delete", "delete", types=WRITABLE, summary="conditional delete"
    ),
    RouteDef("POST", "/{type}/$validate", "validate", "operation", types=WRITABLE, summary="$validate"),
    RouteDef("PUT", "/{type}/{id}", "update", "update", types=WRITABLE, summary="update (If-Match)"),
    RouteDef("DELETE", "/{type}/{id}", "delete", "delete", types=WRITABLE, summary="delete"),
    RouteDef(
        "GET",
        "/{type}/{id}/_history",
        "history_instance",
        "history-instance",
        types=WRITABLE,
        summary="instance history",
    ),
    RouteDef("GET", "/{type}/{id}/_history/{vid}", "vread", "vread", types=TYPES, summary="vread"),
)

STATIC_PATHS = {r.path for r in ROUTES if "{" not in r.path}
