"""The route table (``gateway/api/routes.py``): each route declared once beside its handler and its OpenAPI
description, and a matching order in which no route shadows a more specific one."""

from __future__ import annotations

import inspect
import re

from gateway.api.describe import Doc
from gateway.api.routes import ROUTES
from gateway.api.routing import Router, allowed_methods, by_precedence
from gateway.settings import Settings


def _matches(pattern: str, path: str) -> bool:
    regex = "^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(pattern)) + "$"
    return re.match(regex, path) is not None


def test_each_route_once_with_its_handler_and_description_in_one_module():
    keys = [(r.method, r.path) for r in ROUTES]
    assert len(keys) == len(set(keys)), "a route declared twice"
    names = [r.name for r in ROUTES]
    assert len(names) == len(set(names)), "two routes share a name (operationId, CapabilityStatement)"
    for r in ROUTES:
        assert inspect.iscoroutinefunction(r.handler), r.name
        # the description is written in the handler's module, not in a central list
        assert inspect.getmodule(r.openapi) is inspect.getmodule(r.handler), r.name


def test_no_route_is_shadowed_by_a_less_specific_one():
    for i, earlier in enumerate(ROUTES):
        for later in ROUTES[i + 1 :]:
            if earlier.method != later.method:
                continue
            concrete = re.sub(r"\{\w+\}", "x", later.path)
            # a later route whose own paths the earlier one would take is unreachable
            assert not (_matches(earlier.path, later.path) and _matches(earlier.path, concrete)), (
                earlier.path,
                later.path,
            )


def test_precedence_puts_literal_segments_first_whatever_the_order_of_writing():
    router = Router()
    describe = lambda doc: {"responses": {}}  # noqa: E731

    async def handler(gw, request, principal, p): ...

    for method, path in (("GET", "/{type}/{id}"), ("GET", "/{type}/_history"), ("GET", "/Task/$worklist")):
        router.route(method, path, summary="", openapi=describe, name=path)(handler)
    assert [r.path for r in by_precedence(router.routes)] == [
        "/Task/$worklist",
        "/{type}/_history",
        "/{type}/{id}",
    ]


def test_allowed_methods_of_a_concrete_path_come_from_the_table():
    assert allowed_methods(ROUTES, "/Patient/123") == ["DELETE", "GET", "PUT"]
    assert allowed_methods(ROUTES, "/metadata") == ["GET"]
    assert allowed_methods(ROUTES, "/AuditEvent/1") == ["GET"]  # AuditEvent: read only
    assert allowed_methods(ROUTES, "/NoSuchType/1") == []


def test_every_description_answers_something(tmp_path):
    settings = Settings(db_url=f"sqlite:///{tmp_path / 'x.db'}")
    for r in ROUTES:
        for rtype in r.types or (None,):
            op = r.openapi(Doc(rtype, settings))
            assert op["responses"], (r.name, rtype)
