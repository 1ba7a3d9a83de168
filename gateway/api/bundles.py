"""Transaction and batch Bundles (FHIR R4 http.html §3.1.0.11).

Transaction: all entries in one database transaction, processed DELETE, POST, PUT, GET (the order the
specification gives); ``urn:uuid:`` fullUrls of created entries are replaced by the new ``Type/id`` in
every reference of the Bundle before anything is written; ``ifNoneExist`` is honoured. Any entry failing
rolls back the whole Bundle and the answer is that entry's OperationOutcome with its status (the
location names ``Bundle.entry[i]``). Each entry's action writes its own AuditEvent in the same
transaction. Batch: every entry on its own transaction; failures become OperationOutcome entries.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import parse_qsl, urlsplit

import orjson
from sqlalchemy import Connection

from gateway.api import interactions as ix
from gateway.fhir.outcome import FhirError
from gateway.fhir.resources import RESOURCES

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
MAX_ENTRIES = 1000


def _bad(message: str, where: str) -> FhirError:
    return FhirError(400, "invalid", "API-040", message, where)


def _check_bundle(body: object) -> tuple[str, list[dict]]:
    if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        raise _bad("POST to the base takes a Bundle", "Bundle")
    kind = body.get("type")
    if kind not in ("transaction", "batch"):
        raise _bad("Bundle.type must be transaction or batch", "Bundle.type")
    entries = body.get("entry", [])
    if not isinstance(entries, list):
        raise _bad("Bundle.entry must be an array", "Bundle.entry")
    if len(entries) > MAX_ENTRIES:
        raise _bad(f"at most {MAX_ENTRIES} entries per Bundle", "Bundle.entry")
    for i, e in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(e, dict):
            raise _bad("an entry must be an object", where)
        req = e.get("request")
        if (
            not isinstance(req, dict)
            or not isinstance(req.get("method"), str)
            or req["method"] not in ORDER
            or not isinstance(req.get("url"), str)
        ):
            raise _bad("entry.request needs a method (GET, POST, PUT, DELETE) and a url", f"{where}.request")
        if req["method"] in ("PATCH", "HEAD"):
            raise FhirError(
                405, "not-supported", "API-014", f"{req['method']} is not supported", f"{where}.request"
            )
        if req["method"] in ("POST", "PUT") and not isinstance(e.get("resource"), dict):
            raise _bad(f"a {req['method']} entry needs a resource", f"{where}.resource")
    return kind, entries


def _split_url(url: str, base: str) -> tuple[list[str], list[tuple[str, str]]]:
    if url.startswith(base + "/"):
        url = url[len(base) + 1 :]
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        raise _bad("entry.request.url must be relative to this server", "request.url")
    try:
        query = parse_qsl(
            parts.query, keep_blank_values=True, strict_parsing=bool(parts.query), max_num_fields=100
        )
    except ValueError:
        raise _bad("entry.request.url has a broken query", "request.url") from None
    path = [p for p in parts.path.split("/") if p]
    if not path or path[0] not in RESOURCES:
        raise FhirError(
            404, "not-supported", "API-010", "entry.request.url names no served resource type", "request.url"
        )
    return path, query


def _rewrite(node, mapping: dict[str, str]):
    """Replace references to fullUrls created in this transaction."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and value in mapping:
                node[key] = mapping[value]
            else:
                _rewrite(value, mapping)
    elif isinstance(node, list):
        for item in node:
            _rewrite(item, mapping)


def _entry_response(result: ix.Result) -> dict:
    response: dict = {"status": str(result.status)}
    if "Location" in result.headers:
        response["location"] = result.headers["Location"]
    if "ETag" in result.headers:
        response["etag"] = result.headers["ETag"]
    if result.resource is not None and result.resource.last_updated:
        response["lastModified"] = ix.fhir_instant(result.resource.last_updated)
    entry: dict = {"response": response}
    if result.body is not None:
        entry["resource"] = orjson.Fragment(result.body)
    if result.resource is not None:
        entry["fullUrl"] = f"{result.resource.rtype}/{result.resource.rid}"
    return entry


def run_entry(conn: Connection, ctx: ix.Ctx, entry: dict, rid: str | None = None) -> ix.Result:
    """Perform one Bundle entry (its request) on ``conn``; ``rid``: the id a created resource gets."""
    req = entry["request"]
    method = req["method"]
    path, query = _split_url(req["url"], ctx.base)
    rtype = path[0]
    if method == "GET":
        if len(path) == 1:
            return ix.search(conn, ctx, rtype, query)
        if len(path) == 2:
            ix.check_id(path[1])
            return ix.read(conn, ctx, rtype, path[1])
        if len(path) == 4 and path[2] == "_history":
            return ix.vread(conn, ctx, rtype, path[1], path[3])
        raise _bad("unsupported GET url in a Bundle", "request.url")
    if method == "POST":
        if len(path) != 1:
            raise _bad("POST goes to [type]", "request.url")
        cond = req.get("ifNoneExist")
        if cond is not None and not isinstance(cond, str):
            raise _bad("ifNoneExist must be a string", "request.ifNoneExist")
        return ix.create(conn, ctx, rtype, entry["resource"], cond, rid=rid)
    if method == "PUT":
        if len(path) == 1:
            return ix.conditional_update(conn, ctx, rtype, query, entry["resource"])
        ix.check_id(path[1])
        return ix.update(
            conn, ctx, rtype, path[1], entry["resource"], ix.parse_etag(req.get("ifMatch"), "ifMatch")
        )
    if len(path) == 1:
        return ix.conditional_delete(conn, ctx, rtype, query)
    ix.check_id(path[1])
    return ix.delete(conn, ctx, rtype, path[1])


def _assign_ids(conn: Connection, ctx: ix.Ctx, entries: list[dict], ids: dict[int, str]) -> dict[str, str]:
    """Give every created entry its id before anything is written, so references can be rewritten first;
    an ``ifNoneExist`` that matches maps the fullUrl to the resource it found."""
    mapping: dict[str, str] = {}
    seen: set[str] = set()
    for i, e in enumerate(entries):
        full = e.get("fullUrl")
        if isinstance(full, str):
            if full in seen:
                raise _bad("two entries share one fullUrl", f"Bundle.entry[{i}].fullUrl")
            seen.add(full)
        if e["request"]["method"] != "POST":
            continue
        path, _ = _split_url(e["request"]["url"], ctx.base)
        ids[i] = str(uuid.uuid4())
        cond = e["request"].get("ifNoneExist")
        if isinstance(cond, str):
            from gateway.store import criteria_key

            items, _digest = criteria_key(path[0], cond)
            found = ctx.store.match(conn, ctx.orgs, path[0], items)
            if len(found) == 1:
                ids[i] = found[0]
        if isinstance(full, str):
            mapping[full] = f"{path[0]}/{ids[i]}"
    return mapping


def process(
    body: object,
    ctx: ix.Ctx,
    transaction_scope: Callable,
    audit: Callable,
    audit_failure: Callable | None = None,
) -> tuple[str, bytes]:
    """Run a transaction or batch Bundle. ``transaction_scope()`` opens a DB transaction (a context manager
    yielding a connection); ``audit(conn, result)`` records one entry's AuditEvent on that connection;
    ``audit_failure(error, entry)`` records a failed batch entry. Returns (bundle type, response body)."""
    kind, entries = _check_bundle(body)
    results: list[dict | None] = [None] * len(entries)
    if kind == "transaction":
        order = sorted(range(len(entries)), key=lambda i: ORDER[entries[i]["request"]["method"]])
        with transaction_scope() as conn:
            try:
                ids: dict[int, str] = {}
                mapping = _assign_ids(conn, ctx, entries, ids)
            except FhirError as exc:
                exc.location = exc.location or "Bundle.entry"
                raise
            for e in entries:
                if e["request"]["method"] in ("POST", "PUT"):
                    _rewrite(e["resource"], mapping)
            for i in order:
                e = entries[i]
                try:
                    result = run_entry(conn, ctx, e, ids.get(i))
                    if e["request"]["method"] == "POST" and result.resource and result.resource.rid != ids[i]:
                        raise FhirError(
                            409,
                            "conflict",
                            "API-031",
                            "a conditional create in this transaction "
                            "raced with another request; send the transaction again",
                            "ifNoneExist",
                        )
                except FhirError as exc:
                    exc.location = f"Bundle.entry[{i}]" + (f" {exc.location}" if exc.location else "")
                    raise
                audit(conn, result)
                results[i] = _entry_response(result)
        response_type = "transaction-response"
    else:
        for i, e in enumerate(entries):
            try:
                with transaction_scope() as conn:
                    result = run_entry(conn, ctx, e)
                    audit(conn, result)
                results[i] = _entry_response(result)
            except FhirError as exc:
                if audit_failure is not None:
                    audit_failure(exc, e)
                results[i] = {"response": {"status": str(exc.status), "outcome": exc.outcome()}}
        response_type = "batch-response"
    bundle = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "type": response_type,
        "entry": [r for r in results if r is not None],
    }
    return kind, orjson.dumps(bundle)
