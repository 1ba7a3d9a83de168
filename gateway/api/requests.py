"""Reading a request and writing an answer: the helpers every handler module uses.

Query strings, bodies (size-limited while streaming, media type checked), JSON, the ``Accept`` check, and
the FHIR answers (a :class:`~gateway.api.interactions.Result`, an OperationOutcome). FHIR R4 http.html
§3.1.0.1 (content types), §3.1.0.4 (``Prefer: return``).
"""

from __future__ import annotations

from email.utils import parsedate_to_datetime
from urllib.parse import parse_qsl

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from gateway.api.interactions import Result
from gateway.fhir.outcome import FHIR_JSON, FhirError
from mappings.problems import GatewayError

MAX_PARAMS = 100
JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")
FORM = "application/x-www-form-urlencoded"


class NotServed(GatewayError):
    """Nothing is served for this method on this path: answered 405 with ``Allow`` (404 if nothing at all).

    The route table knows what is served, so ``gateway/api/app.py`` writes the answer; a handler only
    says that its path is not one it serves (``/Patient/$everything``)."""

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path


def query(request: Request) -> list[tuple[str, str]]:
    """The query parameters in order, repeated names kept; refused if broken, over-long or holding NUL."""
    return _pairs(request.scope.get("query_string", b"").decode("latin-1"))


async def search_form(request: Request, limit: int) -> list[tuple[str, str]]:
    """``POST [type]/_search`` (FHIR R4 http.html §3.1.0.9 "search"): the URL's parameters then the
    form body's, read as one query (same limits, same refusals)."""
    raw = (await body(request, limit, form=True)).decode("latin-1")
    url = request.scope.get("query_string", b"").decode("latin-1")
    return _pairs("&".join(x for x in (url, raw) if x))


def _pairs(raw: str) -> list[tuple[str, str]]:
    if not raw:
        return []
    try:
        items = parse_qsl(raw, keep_blank_values=True, max_num_fields=MAX_PARAMS, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise FhirError(
            400,
            "invalid",
            "API-021",
            f"the query string is broken or has over {MAX_PARAMS} parameters",
            "query",
        ) from None
    if any("\x00" in k or "\x00" in v for k, v in items):
        raise FhirError(400, "invalid", "API-021", "the query string holds a NUL character", "query")
    return items


async def body(request: Request, limit: int, *, form: bool = False) -> bytes:
    """The body, if its media type is JSON (or a form) and it is at most ``limit`` bytes."""
    ctype = (request.headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if form:
        if ctype != FORM:
            raise FhirError(415, "not-supported", "API-003", f"send {FORM}", "Content-Type")
    elif ctype not in JSON_TYPES:
        raise FhirError(415, "not-supported", "API-003", "send application/fhir+json", "Content-Type")
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise FhirError(413, "too-costly", "API-002", f"the body is over {limit} bytes", "body")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise FhirError(413, "too-costly", "API-002", f"the body is over {limit} bytes", "body")
            chunks.append(chunk)
    except ClientDisconnect:  # the client left mid-body: its error, not an incident (issue 14)
        raise FhirError(
            400,
            "incomplete",
            "API-008",
            "the client closed the connection before its body was complete",
            "body",
        ) from None
    return b"".join(chunks)


async def json_body(request: Request, limit: int) -> object:
    """The JSON body (see :func:`body`), parsed."""
    raw = await body(request, limit)
    if b"\\u0000" in raw:  # NUL cannot be stored (PostgreSQL text) and has no place in FHIR strings
        raise FhirError(400, "invalid", "API-006", "the body holds a NUL character (\\u0000)", "body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FhirError(400, "invalid", "API-001", f"the body is not valid JSON: {exc}", "body") from None


def check_accept(request: Request) -> None:
    """Refuse (406) an ``Accept`` or ``_format`` that JSON cannot satisfy."""
    accept = request.headers.get("accept")
    fmt = request.query_params.get("_format")
    for value in (accept, fmt):
        if (
            value
            and "json" not in value
            and "*/*" not in value
            and "application/*" not in value
            and value != "json"
        ):
            raise FhirError(
                406, "not-supported", "API-051", "this gateway answers application/fhir+json only", "Accept"
            )


def fhir(status: int, body: bytes | None, headers: dict[str, str] | None = None) -> Response:
    """A FHIR JSON answer (no body, no media type when ``body`` is empty); empty headers left out."""
    return Response(
        content=body or b"",
        status_code=status,
        media_type=FHIR_JSON if body else None,
        headers={k: v for k, v in (headers or {}).items() if v},
    )


def json_answer(value: object, status: int = 200, media_type: str = "application/json", **kw) -> Response:
    """A plain JSON answer (not a FHIR resource: SMART configuration, OAuth2, outbox state)."""
    return Response(orjson.dumps(value), status_code=status, media_type=media_type, **kw)


def _not_modified(request: Request, result: Result) -> bool:
    """Conditional read (FHIR R4 http.html §3.1.0.5.2, RFC 9110 §13.1.2 and §13.1.3): the copy the
    caller holds is current if ``If-None-Match`` names the version's ETag or, without that header,
    ``If-Modified-Since`` is not before ``Last-Modified``."""
    if result.status != 200 or result.subtype not in ("read", "vread"):
        return False
    etag = result.headers.get("ETag")
    wanted = request.headers.get("if-none-match")
    if wanted is not None:
        tags = {t.strip().removeprefix("W/") for t in wanted.split(",")}
        return etag is not None and ("*" in tags or etag.removeprefix("W/") in tags)
    since, modified = request.headers.get("if-modified-since"), result.headers.get("Last-Modified")
    if since and modified:
        try:
            return parsedate_to_datetime(modified) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False  # an unreadable date is ignored (RFC 9110 §13.1.3)
    return False


WRITES = ("create", "update", "patch")


def result_response(request: Request, result: Result) -> Response:
    """An interaction's answer, shaped by ``Prefer: return=`` (FHIR R4 http.html §3.1.0.8.4: ``minimal``
    no body, ``OperationOutcome`` an outcome instead of the resource, ``representation`` the resource)
    and answered 304 to a conditional read that the caller's copy satisfies."""
    if _not_modified(request, result):
        keep = {k: v for k, v in result.headers.items() if k in ("ETag", "Last-Modified")}
        return Response(status_code=304, headers=keep)
    prefer = request.headers.get("prefer", "")
    content = result.body
    if "return=minimal" in prefer and result.status in (200, 201):
        content = None
    elif "return=OperationOutcome" in prefer and result.status in (200, 201) and result.subtype in WRITES:
        where = result.entities[0] if result.entities else result.subtype
        content = orjson.dumps(
            {
                "resourceType": "OperationOutcome",
                "issue": [
                    {
                        "severity": "information",
                        "code": "informational",
                        "details": {"text": f"{result.subtype} of {where} done"},
                        "expression": [where],
                    }
                ],
            }
        )
    return fhir(result.status, content, result.headers)


def error_response(error: FhirError, extra_headers: dict[str, str] | None = None) -> Response:
    """The OperationOutcome of ``error`` with its status and headers."""
    return Response(
        content=error.body(),
        status_code=error.status,
        media_type=FHIR_JSON,
        headers={**error.headers, **(extra_headers or {})},
    )
