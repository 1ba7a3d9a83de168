"""The FHIR RESTful routes (FHIR R4 http.html): each interaction's route, its HTTP handler and its
OpenAPI description together; the interactions themselves are in ``gateway/api/interactions.py``.

A handler reads the request (``gateway/api/requests.py``), checks the type and id of the path, and runs the
interaction with its AuditEvent in one transaction (``Gateway.audited``). ``{type}`` routes serve the types
named by ``types`` (AuditEvent only for reading).
"""

from __future__ import annotations

import orjson
from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response

from gateway.api import bundles
from gateway.api import interactions as ix
from gateway.api import requests as rq
from gateway.api.describe import (
    COMMON,
    ETAG,
    INSTANT_PATTERN,
    LOCATION,
    Doc,
    Operation,
    bundle_answer,
    content,
    ref,
    resource_schema,
    responses,
)
from gateway.api.gateway import Gateway
from gateway.api.routing import Router
from gateway.auth.tokens import Principal
from gateway.fhir.outcome import FhirError, outcome_of
from gateway.fhir.resources import RESOURCES, TYPES, WRITABLE
from gateway.fhir.validation import validate as validate_resource
from gateway.store import patient_refs

router = Router()
WRITE_ERRORS = (*COMMON, 409, 412, 413, 415, 422)


# -- the whole server --------------------------------------------------------------------------------------


def _bundle_doc(doc: Doc) -> Operation:
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
            "resource": resource_schema("Patient", served=False),
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
    return {
        "requestBody": {"required": True, **content(schema)},
        "responses": responses({200: bundle_answer()}, (*COMMON, 405, 409, 412, 413, 415, 422)),
    }


@router.route("POST", "/", "transaction", summary="transaction or batch Bundle", openapi=_bundle_doc)
async def bundle(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    body = await rq.json_body(request, gw.settings.max_body_bytes)
    ctx = gw.ctx(principal, request)
    kind = body.get("type") if isinstance(body, dict) else None
    subtype = kind if kind in ("transaction", "batch") else "transaction"

    def batch_failure(error: FhirError, entry: dict) -> None:
        req = entry.get("request") if isinstance(entry, dict) else None
        method = req.get("method") if isinstance(req, dict) else None
        action = {"GET": "R", "POST": "C", "PUT": "U", "DELETE": "D"}.get(str(method), "E")
        gw.audit_failure(ctx, error, "batch", action, [])

    try:
        _, answer = bundles.process(
            body, ctx, gw.transaction, lambda conn, r: gw.audit(conn, ctx, r), batch_failure
        )
    except FhirError as exc:
        gw.audit_failure(ctx, exc, subtype, "E", [])
        raise
    return rq.fhir(200, answer)


# -- a type: search, create, conditional update and delete, history, $validate ----------------------------


def _search_doc(doc: Doc) -> Operation:
    return {"parameters": doc.search_params(), "responses": responses({200: bundle_answer()}, COMMON)}


@router.route("GET", "/{type}", "search-type", types=TYPES, summary="search", openapi=_search_doc)
async def search(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    items = rq.query(request)
    strict = "handling=strict" in request.headers.get("prefer", "")
    return rq.result_response(
        request,
        await gw.audited(
            request, principal, "search-type", [rtype], lambda c, x: ix.search(c, x, rtype, items, strict)
        ),
    )


def _search_post_doc(doc: Doc) -> Operation:
    form = {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        },
    }
    return {"requestBody": form, "responses": responses({200: bundle_answer()}, (*COMMON, 413, 415))}


@router.route(
    "POST",
    "/{type}/_search",
    "search-type",
    types=TYPES,
    summary="search (form body)",
    openapi=_search_post_doc,
)
async def search_post(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    """The same search as ``GET [type]`` with the parameters in a form body, so that a BSN or a name
    stays out of URLs and access logs."""
    rtype = p["type"]
    ix.check_type(rtype)
    items = await rq.search_form(request, gw.settings.max_body_bytes)
    strict = "handling=strict" in request.headers.get("prefer", "")
    return rq.result_response(
        request,
        await gw.audited(
            request, principal, "search-type", [rtype], lambda c, x: ix.search(c, x, rtype, items, strict)
        ),
    )


def _create_doc(doc: Doc) -> Operation:
    params = []
    if "identifier" in RESOURCES[doc.type].params:
        pattern = r"^identifier=[A-Za-z0-9]{1,20}(%7C|\|)[A-Za-z0-9]{1,20}$"
        params.append(
            {"name": "If-None-Exist", "in": "header", "schema": {"type": "string", "pattern": pattern}}
        )
    created = {"description": "created", "headers": ETAG | LOCATION, **doc.resource}
    exists = {"description": "exists (If-None-Exist)", **doc.resource}
    return {
        "parameters": params,
        "requestBody": doc.body,
        "responses": responses({201: created, 200: exists}, WRITE_ERRORS),
    }


@router.route(
    "POST",
    "/{type}",
    "create",
    types=WRITABLE,
    summary="create (If-None-Exist: conditional)",
    openapi=_create_doc,
)
async def create(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype, writable=True)
    body = await rq.json_body(request, gw.settings.max_body_bytes)
    cond = request.headers.get("if-none-exist")
    return rq.result_response(
        request,
        await gw.audited(
            request,
            principal,
            "create",
            [rtype],
            lambda c, x: ix.create(c, x, rtype, body, cond),
            writes=True,
        ),
    )


def _criterion(doc: Doc) -> list[dict]:
    """The one search parameter a conditional update or delete needs: ``identifier`` or ``_id``."""
    criterion = "identifier" if "identifier" in RESOURCES[doc.type].params else "_id"
    return [{**p, "required": True} for p in doc.search_params() if p["name"] == criterion]


def _conditional_update_doc(doc: Doc) -> Operation:
    updated = {"description": "updated", **doc.resource}
    created = {"description": "created", **doc.resource}
    return {
        "parameters": _criterion(doc),
        "requestBody": doc.body,
        "responses": responses({200: updated, 201: created}, WRITE_ERRORS),
    }


@router.route(
    "PUT", "/{type}", "update", types=WRITABLE, summary="conditional update", openapi=_conditional_update_doc
)
async def conditional_update(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype, writable=True)
    items = rq.query(request)
    body = await rq.json_body(request, gw.settings.max_body_bytes)
    return rq.result_response(
        request,
        await gw.audited(
            request,
            principal,
            "update",
            [rtype],
            lambda c, x: ix.conditional_update(c, x, rtype, items, body),
            writes=True,
        ),
    )


def _conditional_delete_doc(doc: Doc) -> Operation:
    deleted = {"description": "deleted (or nothing matched)"}
    return {"parameters": _criterion(doc), "responses": responses({204: deleted}, (*COMMON, 409, 412))}


@router.route(
    "DELETE",
    "/{type}",
    "delete",
    types=WRITABLE,
    summary="conditional delete",
    openapi=_conditional_delete_doc,
)
async def conditional_delete(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype, writable=True)
    items = rq.query(request)
    return rq.result_response(
        request,
        await gw.audited(
            request,
            principal,
            "delete",
            [rtype],
            lambda c, x: ix.conditional_delete(c, x, rtype, items),
            writes=True,
        ),
    )


def _history_doc(doc: Doc) -> Operation:
    since = {"name": "_since", "in": "query", "schema": {"type": "string", "pattern": INSTANT_PATTERN}}
    return {"parameters": [doc.count_param(), since], "responses": responses({200: bundle_answer()}, COMMON)}


@router.route(
    "GET", "/{type}/_history", "history-type", types=WRITABLE, summary="type history", openapi=_history_doc
)
async def history_type(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype)
    items = rq.query(request)
    return rq.result_response(
        request,
        await gw.audited(
            request, principal, "history-type", [rtype], lambda c, x: ix.history(c, x, rtype, None, items)
        ),
    )


def _validate_doc(doc: Doc) -> Operation:
    outcome = {"description": "OperationOutcome", **content(ref("OperationOutcome"))}
    return {"requestBody": doc.body, "responses": responses({200: outcome}, (*COMMON, 413, 415))}


@router.route(
    "POST", "/{type}/$validate", "operation", types=WRITABLE, summary="$validate", openapi=_validate_doc
)
async def validate(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype = p["type"]
    ix.check_type(rtype, writable=True)
    body = await rq.json_body(request, gw.settings.max_body_bytes)
    if isinstance(body, dict) and body.get("resourceType") == "Parameters":
        params = body.get("parameter")
        found = (
            [x.get("resource") for x in params if isinstance(x, dict) and x.get("name") == "resource"]
            if isinstance(params, list)
            else []
        )
        body = found[0] if found else None

    def work(conn: Connection, ctx: ix.Ctx) -> ix.Result:
        if not (principal.perms.allows(rtype, "c") or principal.perms.allows(rtype, "u")):
            raise FhirError(
                403, "forbidden", "AUTH-003", f"$validate needs create or update on {rtype}", rtype
            )
        outcome = outcome_of(validate_resource(body, rtype))
        patients = list(patient_refs(body, gw.store.base_url)) if isinstance(body, dict) else []
        return ix.Result(200, orjson.dumps(outcome), {}, "E", "operation", [f"{rtype}/$validate"], patients)

    return rq.result_response(request, await gw.audited(request, principal, "operation", [rtype], work))


# -- an instance: read, update, delete, history, vread ---------------------------------------------------


def _instance(p: dict, path: str, *, writable: bool = False) -> tuple[str, str]:
    """The type and id of an instance path; ``_history`` and ``$operation`` are not ids."""
    rtype, rid = p["type"], p["id"]
    if rid in ("_history", "_search", "$validate") or rid.startswith("$"):
        raise rq.NotServed(path)
    ix.check_type(rtype, writable=writable)
    ix.check_id(rid)
    return rtype, rid


def _read_doc(doc: Doc) -> Operation:
    found = {"description": doc.rtype, "headers": ETAG, **doc.resource}
    return {"responses": responses({200: found}, (*COMMON, 410))}


@router.route("GET", "/{type}/{id}", "read", types=TYPES, summary="read", openapi=_read_doc)
async def read(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path)
    return rq.result_response(
        request,
        await gw.audited(
            request, principal, "read", [f"{rtype}/{rid}"], lambda c, x: ix.read(c, x, rtype, rid)
        ),
    )


def _update_doc(doc: Doc) -> Operation:
    if_match = {
        "name": "If-Match",
        "in": "header",
        "schema": {"type": "string", "pattern": r'^W/"[1-9][0-9]{0,5}"$'},
    }
    updated = {"description": "updated", "headers": ETAG, **doc.resource}
    return {
        "parameters": [if_match],
        "requestBody": doc.body,
        "responses": responses({200: updated}, WRITE_ERRORS),
    }


@router.route(
    "PUT", "/{type}/{id}", "update", types=WRITABLE, summary="update (If-Match)", openapi=_update_doc
)
async def update(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path, writable=True)
    if_match = ix.parse_etag(request.headers.get("if-match"))
    body = await rq.json_body(request, gw.settings.max_body_bytes)
    if isinstance(body, dict) and "id" not in body and body.get("resourceType") == rtype:
        body["id"] = rid  # lenient: the URL names the resource
    return rq.result_response(
        request,
        await gw.audited(
            request,
            principal,
            "update",
            [f"{rtype}/{rid}"],
            lambda c, x: ix.update(c, x, rtype, rid, body, if_match),
            writes=True,
        ),
    )


def _delete_doc(doc: Doc) -> Operation:
    return {"responses": responses({204: {"description": "deleted"}}, (*COMMON, 409))}


@router.route("DELETE", "/{type}/{id}", "delete", types=WRITABLE, summary="delete", openapi=_delete_doc)
async def delete(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path, writable=True)
    return rq.result_response(
        request,
        await gw.audited(
            request,
            principal,
            "delete",
            [f"{rtype}/{rid}"],
            lambda c, x: ix.delete(c, x, rtype, rid),
            writes=True,
        ),
    )


@router.route(
    "GET",
    "/{type}/{id}/_history",
    "history-instance",
    types=WRITABLE,
    summary="instance history",
    openapi=_history_doc,
)
async def history_instance(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path)
    items = rq.query(request)
    return rq.result_response(
        request,
        await gw.audited(
            request,
            principal,
            "history-instance",
            [f"{rtype}/{rid}"],
            lambda c, x: ix.history(c, x, rtype, rid, items),
        ),
    )


@router.route("GET", "/{type}/{id}/_history/{vid}", "vread", types=TYPES, summary="vread", openapi=_read_doc)
async def vread(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    rtype, rid = _instance(p, request.url.path)
    vid = p["vid"]
    return rq.result_response(
        request,
        await gw.audited(
            request,
            principal,
            "vread",
            [f"{rtype}/{rid}/_history/{vid}"],
            lambda c, x: ix.vread(c, x, rtype, rid, vid),
        ),
    )
