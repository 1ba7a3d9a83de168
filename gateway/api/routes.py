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
    # the consult operations (issue 6, gateway/api/consult.py): before /{type}/{id}, which would take them
    *(
        RouteDef(method, path, handler, "operation", summary=summary)
        for method, path, handler, summary in (
            ("POST", "/Task/$send-consult", "consult_send", "send a digital consult"),
            ("GET", "/Task/$worklist", "consult_worklist", "consults of the practice or the specialist"),
            ("GET", "/Task/$overdue", "consult_overdue", "open consults past their due time"),
            ("POST", "/Task/{id}/$pickup", "consult_pickup", "pick a consult up"),
            ("POST", "/Task/{id}/$answer", "consult_answer", "answer a consult"),
            ("POST", "/Task/{id}/$follow-up", "consult_follow_up", "ask a follow-up question"),
            ("POST", "/Task/{id}/$close", "consult_close", "close with declaration or administratively"),
            ("POST", "/Task/{id}/$cancel", "consult_cancel", "cancel a consult"),
            ("POST", "/ChargeItem/$declarations", "consult_declarations", "quarterly declarations"),
            ("POST", "/Communication/$converse", "consult_converse", "conversations about a patient"),
            ("GET", "/Communication/$overdue-replies", "consult_overdue_replies", "replies past due"),
        )
    ),
    # postbox delivery state (issue 7, gateway/api/outbox.py): before /{type} and /{type}/{id}
    RouteDef(
        "GET", "/outbox", "outbox_list", "other", summary="postbox delivery state of the practice's items"
    ),
    RouteDef("GET", "/outbox/{id}", "outbox_read", "other", summary="postbox delivery state of one item"),
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
