"""How a route is declared: one decorator beside its handler names its method, path, FHIR interaction and
OpenAPI description (``gateway/api/routes.py`` gathers them into the one table).

A handler module keeps a :class:`Router` and writes each route once::

    def _read_doc(doc: Doc) -> Operation:
        return {"responses": responses({200: {"description": doc.rtype, **doc.resource}}, COMMON)}

    @router.route("GET", "/{type}/{id}", "read", types=TYPES, summary="read", openapi=_read_doc)
    async def read(gw, request, principal, p): ...

Matching order is not the order of writing: :func:`by_precedence` puts a literal path segment before a
parameter in the same place (``/Task/$worklist`` before ``/{type}/{id}``, ``/{type}/_history`` before
``/{type}/{id}``), so no route can shadow a more specific one whatever module it comes from.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.api.describe import Doc, Operation

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from gateway.api.gateway import Gateway
    from gateway.auth.tokens import Principal
Handler = Callable[["Gateway", "Request", "Principal", dict], Awaitable["Response"]]
"""``handler(gateway, request, principal, path_params)``; on a public route ``principal`` is ``None``
(such handlers say ``Principal | None``)."""
Describe = Callable[[Doc], Operation]


@dataclass(frozen=True, slots=True)
class RouteDef:
    """One served route: where, what FHIR interaction, who may call it, and how the API document shows it."""

    method: str
    path: str
    name: str
    """The handler's name: the route's name in the app, the OpenAPI operationId (with the type)."""
    handler: Handler
    interaction: str
    """FHIR interaction code (capabilities, read, search-type ...) or ``other``."""
    public: bool
    types: tuple[str, ...]
    """For a ``{type}`` route, the resource types it serves (AuditEvent only for reading)."""
    summary: str
    openapi: Describe
    """The route's OpenAPI operation for one resource type (``Doc.rtype``; ``None`` off ``{type}``)."""


class Router:
    """The routes of one handler module, in the order they are written."""

    def __init__(self) -> None:
        self.routes: list[RouteDef] = []

    def route(
        self,
        method: str,
        path: str,
        interaction: str = "other",
        *,
        summary: str,
        openapi: Describe,
        public: bool = False,
        types: Iterable[str] = (),
        name: str | None = None,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler (named ``name`` or as the function is) for ``method path``."""

        def register(handler: Handler) -> Handler:
            self.routes.append(
                RouteDef(
                    method,
                    path,
                    name or handler.__name__,
                    handler,
                    interaction,
                    public,
                    tuple(types),
                    summary,
                    openapi,
                )
            )
            return handler

        return register


def _segments(path: str) -> list[str]:
    return path.strip("/").split("/")


def by_precedence(routes: Iterable[RouteDef]) -> tuple[RouteDef, ...]:
    """The routes in matching order: a literal segment before a parameter at the same place (stable)."""
    return tuple(sorted(routes, key=lambda r: [s.startswith("{") for s in _segments(r.path)]))


_SEGMENT = re.compile(r"^[^/]+$")


def allowed_methods(routes: Iterable[RouteDef], path: str) -> list[str]:
    """The methods ``routes`` serve on a concrete path (the ``Allow`` header of a 405)."""
    routes = tuple(routes)
    if path == "/" or path in {r.path for r in routes if "{" not in r.path}:
        return sorted({r.method for r in routes if r.path == path})
    parts = _segments(path)
    methods = set()
    for r in routes:
        pattern = _segments(r.path)
        if "{" not in r.path or len(pattern) != len(parts):
            continue
        ok = True
        for want, got in zip(pattern, parts, strict=True):
            if want == "{type}":
                ok &= got in r.types
            elif want.startswith("{"):
                ok &= bool(_SEGMENT.match(got)) and got not in ("_history", "_search", "$validate")
            else:
                ok &= want == got
        if ok:
            methods.add(r.method)
    return sorted(methods)
