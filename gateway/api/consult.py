"""HTTP handlers of the consult operations (issue 6; ``docs/consult.md`` §4); routes in ``routes.py``.

=======================================  ===================================================================
``POST /Task/$send-consult``             practice: question + specialism/specialist + export or patient
``POST /Task/{id}/$pickup``              hospital: a specialist of the specialism picks the consult up
``POST /Task/{id}/$answer``              hospital: the specialist answers (queued for the GP's postbox)
``POST /Task/{id}/$follow-up``           practice: a follow-up question after an answer
``POST /Task/{id}/$close``               hospital: ``declaration`` true (rules!) or false (administrative)
``POST /Task/{id}/$cancel``              practice: cancel before the answer
``GET /Task/$worklist``                  the caller's consults (a hospital names ``specialist``)
``GET /Task/$overdue``                   open consults past their due time
``POST /ChargeItem/$declarations``       the quarter's declarations per insurer (CSV and FHIR Bundle)
``POST /Communication/$converse``        conversations: open, message, reply, feedback, referral links
``GET /Communication/$overdue-replies``  messages awaiting a reply past the subject's term
=======================================  ===================================================================

Each request is one transaction with its AuditEvent (``Gateway.audited``, like every interaction).
The workflow's clock is ``Gateway.consult_env`` (tests put a :class:`~gateway.consult.calendar.FixedClock`
there).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.api.app import Gateway, _json_body, _query, _result_response
from gateway.auth.tokens import Principal
from gateway.consult.params import Params
from gateway.fhir.outcome import FhirError


def env_of(gw: Gateway):
    """The consult environment of a gateway (created on first use: the system clock)."""
    env = getattr(gw, "consult_env", None)
    if env is None:
        from gateway.consult.calendar import SystemClock
        from gateway.consult.workflow import Env

        env = Env.default(SystemClock())
        gw.consult_env = env  # type: ignore[attr-defined]
    return env


def _task_id(p: dict) -> str:
    from gateway.api import interactions as ix

    rid = p["id"]
    ix.check_id(rid)
    return rid


async def _params(request: Request, gw: Gateway, operation: str) -> Params:
    return Params(await _json_body(request, gw), operation)


async def _parameters_operation(
    gw: Gateway, request: Request, principal: Principal, name: str, target: str, fn
) -> Response:
    """A write operation taking ``Parameters``: ``fn(conn, ctx, env, params)`` in one audited transaction."""
    params = await _params(request, gw, name)
    env = env_of(gw)
    return _result_response(
        request,
        await gw.audited(
            request, principal, "operation", [target], lambda c, x: fn(c, x, env, params), writes=True
        ),
    )


async def h_consult_send(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import workflow

    return await _parameters_operation(
        gw, request, principal, "$send-consult", "Task/$send-consult", workflow.send
    )


def _action(action_of):
    async def handler(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
        from gateway.consult import workflow

        task_id = _task_id(p)
        params = await _params(request, gw, request.url.path.rsplit("/", 1)[-1])
        action = action_of(params)
        env = env_of(gw)
        return _result_response(
            request,
            await gw.audited(
                request,
                principal,
                "operation",
                [f"Task/{task_id}"],
                lambda c, x: workflow.transition(c, x, env, task_id, action, params),
                writes=True,
            ),
        )

    return handler


h_consult_pickup = _action(lambda params: "pickup")
h_consult_answer = _action(lambda params: "answer")
h_consult_follow_up = _action(lambda params: "follow-up")
h_consult_cancel = _action(lambda params: "cancel")


def _close_action(params: Params) -> str:
    declaration = params.get("declaration", bool, required=True)
    return "close-with-declaration" if declaration else "close-administratively"


h_consult_close = _action(_close_action)


def _specialist_query(request: Request) -> str | None:
    items = _query(request)
    found = [v for k, v in items if k == "specialist"]
    return found[0] if found else None


async def h_consult_worklist(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import workflow

    specialist = _specialist_query(request)
    env = env_of(gw)

    def work(c, x):
        x.require("Task", "search-type")
        return workflow.worklist(c, x, env, specialist)

    return _result_response(request, await gw.audited(request, principal, "operation", ["Task"], work))


async def h_consult_overdue(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import workflow

    specialist = _specialist_query(request)
    env = env_of(gw)

    def work(c, x):
        x.require("Task", "search-type")
        return workflow.overdue(c, x, env, specialist)

    return _result_response(request, await gw.audited(request, principal, "operation", ["Task"], work))


async def h_consult_declarations(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import declarations

    params = await _params(request, gw, "$declarations")
    env = env_of(gw)

    def work(c, x):
        x.require("ChargeItem", "search-type")
        return declarations.operation(c, x, env, params)

    return _result_response(
        request, await gw.audited(request, principal, "operation", ["ChargeItem"], work, writes=True)
    )


async def h_consult_converse(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import conversations

    return await _parameters_operation(
        gw, request, principal, "$converse", "Communication/$converse", conversations.operation
    )


async def h_consult_overdue_replies(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import conversations

    env = env_of(gw)

    def work(c, x):
        x.require("Communication", "search-type")
        return conversations.overdue_replies(c, x, env)

    return _result_response(
        request, await gw.audited(request, principal, "operation", ["Communication"], work)
    )


HANDLERS: dict[str, Any] = {name[2:]: fn for name, fn in globals().items() if name.startswith("h_consult_")}

PARAMETERS_SCHEMA = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Parameters"]},
        "parameter": {"type": "array"},
    },
}


def openapi_operation(name: str, ref, content, responses) -> dict[str, Any]:
    """The OpenAPI description of a consult route (``gateway/api/openapi.py`` asks for it)."""
    if name not in HANDLERS:
        raise KeyError(name)
    op: dict[str, Any] = {"tags": ["consult"]}
    common = (400, 401, 403, 404, 406)
    if name in ("consult_worklist", "consult_overdue", "consult_overdue_replies"):
        if name != "consult_overdue_replies":
            op["parameters"] = [{"name": "specialist", "in": "query", "schema": {"type": "string"}}]
        op["responses"] = responses({200: {"description": "Bundle", **content(ref("Bundle"))}}, common)
        return op
    op["requestBody"] = {
        "required": True,
        "content": {
            "application/fhir+json": {
                "schema": PARAMETERS_SCHEMA,
                "example": {"resourceType": "Parameters", "parameter": []},
            }
        },
    }
    ok: dict[int, dict] = {200: {"description": "the result", **content({"type": "object"})}}
    if name == "consult_send":
        ok[201] = {"description": "the consult's Task", **content({"type": "object"})}
    op["responses"] = responses(ok, (*common, 409, 413, 415, 422))
    return op


__all__ = ["HANDLERS", "env_of", "openapi_operation", "FhirError"]
