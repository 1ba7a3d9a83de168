"""The routes about the server itself: ``/metadata``, SMART configuration, health, the token endpoint and
this API's OpenAPI document. All but the OpenAPI document are public (no token).

FHIR R4 http.html §3.1.0.12 (capabilities); SMART App Launch 2.x Backend Services (configuration, token:
``client_credentials`` with a ``private_key_jwt`` client assertion, RFC 7523).
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response

from gateway.api import requests as rq
from gateway.api.describe import ERRORS, OUTCOME, Doc, Operation, content
from gateway.api.gateway import Gateway
from gateway.api.routing import Router
from gateway.api.smart import smart_configuration as smart_document
from gateway.auth.tokens import OAuthError, Principal
from gateway.fhir.outcome import FhirError

log = logging.getLogger("hisgw.api")
router = Router()


def _metadata_doc(doc: Doc) -> Operation:
    statement = {
        "type": "object",
        "required": ["resourceType", "rest"],
        "properties": {"resourceType": {"enum": ["CapabilityStatement"]}},
    }
    return {"responses": {"200": {"description": "CapabilityStatement", **content(statement)}}}


@router.route(
    "GET", "/metadata", "capabilities", public=True, summary="CapabilityStatement", openapi=_metadata_doc
)
async def metadata(gw: Gateway, request: Request, principal: Principal | None, p: dict) -> Response:
    return rq.fhir(200, gw.capability)


def _smart_doc(doc: Doc) -> Operation:
    schema = {"type": "object", "required": ["token_endpoint", "grant_types_supported"]}
    return {
        "responses": {"200": {"description": "SMART configuration", **content(schema, "application/json")}}
    }


@router.route(
    "GET",
    "/.well-known/smart-configuration",
    public=True,
    summary="SMART configuration (Backend Services)",
    openapi=_smart_doc,
)
async def smart_configuration(
    gw: Gateway, request: Request, principal: Principal | None, p: dict
) -> Response:
    return rq.json_answer(smart_document(gw.settings))


HEALTH = "application/health+json"


def _health_doc(doc: Doc) -> Operation:
    health = {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["pass", "fail"]}}}
    return {
        "responses": {
            "200": {"description": "up", **content(health, HEALTH)},
            "503": {"description": "database down", **content(health, HEALTH)},
        }
    }


@router.route("GET", "/health", public=True, summary="Liveness and database check", openapi=_health_doc)
async def health(gw: Gateway, request: Request, principal: Principal | None, p: dict) -> Response:
    try:
        with gw.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        status, code = "pass", 200
    except Exception:  # noqa: BLE001 - the answer is the health state
        status, code = "fail", 503
    return rq.json_answer({"status": status}, code, HEALTH)


def _token_doc(doc: Doc) -> Operation:
    form = {
        "type": "object",
        "required": ["grant_type", "client_assertion_type", "client_assertion", "scope"],
        "properties": {
            "grant_type": {"enum": ["client_credentials"]},
            "client_assertion_type": {"enum": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]},
            "client_assertion": {"type": "string"},
            "scope": {"type": "string"},
        },
    }
    oauth_error = {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
    }
    token = {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string"},
            "token_type": {"enum": ["bearer"]},
            "expires_in": {"type": "integer", "maximum": 300},
            "scope": {"type": "string"},
        },
    }
    return {
        "requestBody": {"required": True, **content(form, rq.FORM)},
        "responses": {
            "200": {"description": "access token", **content(token, "application/json")},
            **{
                str(s): {
                    "description": ERRORS[s] if s in ERRORS else "error",
                    **content(oauth_error, "application/json"),
                }
                for s in (400, 401, 413, 415)
            },
        },
    }


@router.route(
    "POST",
    "/auth/token",
    public=True,
    summary="OAuth2 token endpoint: client_credentials with a private_key_jwt client assertion",
    openapi=_token_doc,
)
async def token(gw: Gateway, request: Request, principal: Principal | None, p: dict) -> Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    try:
        raw = await rq.body(request, gw.settings.max_body_bytes, form=True)
        form = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20))
        return rq.json_answer(gw.tokens.token(form), headers=headers)
    except OAuthError as exc:
        log.info("token refused", extra={"error": exc.error})
        error = {"error": exc.error, "error_description": exc.description}
        return rq.json_answer(error, exc.status, headers=headers)
    except (ValueError, UnicodeDecodeError):
        error = {"error": "invalid_request", "error_description": "broken form body"}
        return rq.json_answer(error, 400, headers=headers)
    except FhirError as exc:
        error = {"error": "invalid_request", "error_description": exc.message}
        return rq.json_answer(error, exc.status if exc.status in (413, 415) else 400, headers=headers)


def _openapi_doc(doc: Doc) -> Operation:
    return {
        "responses": {
            "200": {"description": "this document", **content({"type": "object"}, "application/json")},
            "401": {"description": ERRORS[401], **content(OUTCOME)},
            "406": {"description": ERRORS[406], **content(OUTCOME)},
        }
    }


@router.route("GET", "/openapi.json", summary="This API's OpenAPI document", openapi=_openapi_doc)
async def openapi(gw: Gateway, request: Request, principal: Principal | None, p: dict) -> Response:
    return Response(gw.openapi, media_type="application/json")
