"""HTTP reads of postbox delivery state (issue 7; ``docs/postbox-delivery.md`` §7); routes in ``routes.py``.

=======================================  ===================================================================
``GET /outbox[?state=dead&_count=50]``   the caller's practice's items, newest last, with counts per state
``GET /outbox/{id}``                     one item's delivery state
=======================================  ===================================================================

A practice (tenant key ``agb:<AGB>``) sees only its own items; any other caller sees none (404 for one
item). The answer holds no content: ids, source, kind, state, attempts, times, channel, filing
(``auto``/``manual``) and the last error -- no BSN, no letter -- so it is not an access to patient data.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from gateway.auth.tokens import Principal
from gateway.fhir.outcome import FhirError

BAD_STATE = "OUT-030"
ITEM_SCHEMA = {"type": "object", "required": ["id", "practice", "state", "attempts"]}
LIST_SCHEMA = {
    "type": "object",
    "required": ["counts", "items"],
    "properties": {"items": {"type": "array", "items": ITEM_SCHEMA}, "counts": {"type": "object"}},
}


def _practices(principal: Principal) -> list[str]:
    return [o.split(":", 1)[1] for o in principal.orgs if o.startswith("agb:")]


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


async def h_outbox_list(gw, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.outbox.ops import list_items
    from gateway.outbox.schema import STATES

    state = request.query_params.get("state")
    if state is not None and state not in STATES:
        raise FhirError(
            400, "invalid", BAD_STATE, f"state {state!r} is not one of {', '.join(STATES)}", "state"
        )
    try:
        count = min(max(int(request.query_params.get("_count", "100")), 1), 1000)
    except ValueError:
        raise FhirError(400, "invalid", BAD_STATE, "_count is not a number", "_count") from None
    practices = _practices(principal)

    def read() -> dict:
        items = []
        for agb in practices:
            items += [i.as_dict() for i in list_items(gw.engine, state=state, practice=agb, limit=count)]
        counts: dict[str, int] = dict.fromkeys(STATES, 0)
        for i in items:
            counts[i["state"]] += 1
        return {"counts": counts, "items": items[:count]}

    return _json(await asyncio.to_thread(read))


async def h_outbox_read(gw, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.outbox.ops import UNKNOWN_ITEM, list_items

    iid = p["id"]
    found = await asyncio.to_thread(list_items, gw.engine, ids=[iid], limit=1)
    if not found or found[0].practice not in _practices(principal):
        raise FhirError(404, "not-found", UNKNOWN_ITEM, "no outbox item with this id for this practice", "id")
    return _json(found[0].as_dict())


HANDLERS = {"outbox_list": h_outbox_list, "outbox_read": h_outbox_read}


def openapi_operation(name: str, ref, content, responses) -> dict[str, Any]:
    """The OpenAPI description of an outbox route (``gateway/api/openapi.py`` asks for it)."""
    if name == "outbox_list":
        return {
            "tags": ["outbox"],
            "parameters": [
                {
                    "name": "state",
                    "in": "query",
                    "schema": {"enum": ["queued", "sending", "delivered", "retrying", "dead"]},
                },
                {"name": "_count", "in": "query", "schema": {"type": "integer", "minimum": 1}},
            ],
            "responses": responses(
                {200: {"description": "delivery state", **content(LIST_SCHEMA, "application/json")}},
                (400, 401, 406),
            ),
        }
    if name == "outbox_read":
        return {
            "tags": ["outbox"],
            "parameters": [
                {
                    "name": "id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9.\-_:]{1,64}$"},
                }
            ],
            "responses": responses(
                {200: {"description": "delivery state", **content(ITEM_SCHEMA, "application/json")}},
                (401, 404, 406),
            ),
        }
    raise KeyError(name)
