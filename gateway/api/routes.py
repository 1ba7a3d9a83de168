"""The route table: every HTTP route the gateway serves, in matching order.

Each route is declared once, beside its handler and its OpenAPI description, in the module of its kind
(``@router.route``, ``gateway/api/routing.py``); this module gathers them. Matching order: a literal path
segment before a parameter in the same place (``/Task/$worklist`` and ``/{type}/_history`` before
``/{type}/{id}``), otherwise as written.

``/metadata`` (the CapabilityStatement), the OpenAPI document and the auth matrix test are all generated
from this table and the routes registered from it, so a route cannot be served without appearing in them.
``types`` says for which resource types a ``{type}`` route is served (AuditEvent only for reading).
"""

from __future__ import annotations

from gateway.api import consult, outbox, rest, system
from gateway.api.routing import RouteDef, by_precedence

ROUTES: tuple[RouteDef, ...] = by_precedence(
    [
        *system.router.routes,
        *consult.router.routes,  # the consult operations (issue 6)
        *outbox.router.routes,  # postbox delivery state (issue 7)
        *rest.router.routes,  # the FHIR RESTful interactions
    ]
)

STATIC_PATHS = {r.path for r in ROUTES if "{" not in r.path}
