"""HTTP reads of postbox delivery state (issue 7; ``docs/postbox-delivery.md`` §7).

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

from starlette.requests import Request
from starlette.responses import Response

from gateway.api import requests as rq
from gateway.api.describe import Doc, Operation, content, responses
from gateway.api.gateway import Gateway
from gateway.api.routing import Router
from gateway.auth.tokens import Principal
from gateway.fhir.outcome import FhirError

router = Router()
BAD_STATE = "OUT-030"
ITEM_SCHEMA = {"type": "object", "required": ["id", "practice", "state", "attempts"]}
LIST_SCHEMA = {
    "type": "object",
    "required": ["counts", "items"],
    "properties": {"items": {"type": "array", "items": ITEM_SCHEMA}, "counts": {"type": "object"}},
}


def _practices(principal: Principal) -> list[str]:
    return [o.split(":", 1)[1] for o in principal.orgs if o.startswith("agb:")]


def _list_doc(doc: Doc) -> Operation:
    state = {"enum": ["queued", "sending", "delivered", "retrying", "dead"]}
    return {
        "tags": ["outbox"],
        "parameters": [
            {"name": "state", "in": "query", "schema": state},
            {"name": "_count", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        ],
        "responses": responses(
            {200: {"description": "delivery state", **content(LIST_SCHEMA, "application/json")}},
            (400, 401, 406),
        ),
    }


@router.route("GET", "/outbox", summary="postbox delivery state of the practice's items", openapi=_list_doc)
async def outbox_list(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
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

    return rq.json_answer(await asyncio.to_thread(read))


def _read_doc(doc: Doc) -> Operation:
    item_id = {"type": "string", "pattern": r"^[A-Za-z0-9.\-_:]{1,64}$"}
    return {
        "tags": ["outbox"],
        "parameters": [{"name": "id", "in": "path", "required": True, "schema": item_id}],
        "responses": responses(
            {200: {"description": "delivery state", **content(ITEM_SCHEMA, "application/json")}},
            (401, 404, 406),
        ),
    }


@router.route("GET", "/outbox/{id}", summary="postbox delivery state of one item", openapi=_read_doc)
async def outbox_read(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.outbox.ops import UNKNOWN_ITEM, list_items

    iid = p["id"]
    found = await asyncio.to_thread(list_items, gw.engine, ids=[iid], limit=1)
    if not found or found[0].practice not in _practices(principal):
        raise FhirError(404, "not-found", UNKNOWN_ITEM, "no outbox item with this id for this practice", "id")
    return rq.json_answer(found[0].as_dict())
