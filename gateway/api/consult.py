"""The consult operations (issue 6; ``docs/consult.md`` §4): each route with its handler and description.

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

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from gateway.api import interactions as ix
from gateway.api import requests as rq
from gateway.api.describe import COMMON, Doc, Operation, bundle_answer, content, responses
from gateway.api.gateway import Gateway
from gateway.api.routing import Router
from gateway.auth.tokens import Principal
from gateway.consult.params import Params

router = Router()
PARAMETERS_SCHEMA = {
    "type": "object",
    "required": ["resourceType"],
    "properties": {
        "resourceType": {"type": "string", "enum": ["Parameters"]},
        "parameter": {"type": "array"},
    },
}


def _parameters_doc(doc: Doc, *, creates: bool = False) -> Operation:
    """An operation taking ``Parameters``; ``creates``: it may answer 201 with the consult's Task."""
    body = {"schema": PARAMETERS_SCHEMA, "example": {"resourceType": "Parameters", "parameter": []}}
    ok: dict[int, dict] = {200: {"description": "the result", **content({"type": "object"})}}
    if creates:
        ok[201] = {"description": "the consult's Task", **content({"type": "object"})}
    return {
        "tags": ["consult"],
        "requestBody": {"required": True, "content": {"application/fhir+json": body}},
        "responses": responses(ok, (*COMMON, 409, 413, 415, 422)),
    }


def _list_doc(doc: Doc, *, specialist: bool = True) -> Operation:
    """A read answering a Bundle, for a hospital optionally of one ``specialist``."""
    op: Operation = {"tags": ["consult"], "responses": responses({200: bundle_answer()}, COMMON)}
    if specialist:
        op["parameters"] = [{"name": "specialist", "in": "query", "schema": {"type": "string"}}]
    return op


def env_of(gw: Gateway):
    """The consult environment of a gateway (created on first use: the system clock)."""
    if gw.consult_env is None:
        from gateway.consult.calendar import SystemClock
        from gateway.consult.workflow import Env

        gw.consult_env = Env.default(SystemClock())
    return gw.consult_env


def _task_id(p: dict) -> str:
    rid = p["id"]
    ix.check_id(rid)
    return rid


async def _params(request: Request, gw: Gateway, operation: str) -> Params:
    return Params(await rq.json_body(request, gw.settings.max_body_bytes), operation)


async def _parameters_operation(
    gw: Gateway, request: Request, principal: Principal, name: str, target: str, fn
) -> Response:
    """A write operation taking ``Parameters``: ``fn(conn, ctx, env, params)`` in one audited transaction."""
    params = await _params(request, gw, name)
    env = env_of(gw)
    return rq.result_response(
        request,
        await gw.audited(
            request, principal, "operation", [target], lambda c, x: fn(c, x, env, params), writes=True
        ),
    )


@router.route(
    "POST",
    "/Task/$send-consult",
    "operation",
    summary="send a digital consult",
    openapi=lambda doc: _parameters_doc(doc, creates=True),
)
async def consult_send(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import workflow

    return await _parameters_operation(
        gw, request, principal, "$send-consult", "Task/$send-consult", workflow.send
    )


@router.route(
    "GET",
    "/Task/$worklist",
    "operation",
    summary="consults of the practice or the specialist",
    openapi=_list_doc,
)
async def consult_worklist(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import workflow

    specialist = _specialist_query(request)
    env = env_of(gw)

    def work(c, x):
        x.require("Task", "search-type")
        return workflow.worklist(c, x, env, specialist)

    return rq.result_response(request, await gw.audited(request, principal, "operation", ["Task"], work))


@router.route(
    "GET", "/Task/$overdue", "operation", summary="open consults past their due time", openapi=_list_doc
)
async def consult_overdue(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import workflow

    specialist = _specialist_query(request)
    env = env_of(gw)

    def work(c, x):
        x.require("Task", "search-type")
        return workflow.overdue(c, x, env, specialist)

    return rq.result_response(request, await gw.audited(request, principal, "operation", ["Task"], work))


def _specialist_query(request: Request) -> str | None:
    items = rq.query(request)
    found = [v for k, v in items if k == "specialist"]
    return found[0] if found else None


def _transition(action_of: Callable[[Params], str]):
    """The handler of a state transition of one consult (``workflow.transition``), ``action_of(params)``."""

    async def handler(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
        from gateway.consult import workflow

        task_id = _task_id(p)
        params = await _params(request, gw, request.url.path.rsplit("/", 1)[-1])
        action = action_of(params)
        env = env_of(gw)
        return rq.result_response(
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


def _close_action(params: Params) -> str:
    declaration = params.get("declaration", bool, required=True)
    return "close-with-declaration" if declaration else "close-administratively"


consult_pickup = router.route(
    "POST",
    "/Task/{id}/$pickup",
    "operation",
    summary="pick a consult up",
    openapi=_parameters_doc,
    name="consult_pickup",
)(_transition(lambda params: "pickup"))
consult_answer = router.route(
    "POST",
    "/Task/{id}/$answer",
    "operation",
    summary="answer a consult",
    openapi=_parameters_doc,
    name="consult_answer",
)(_transition(lambda params: "answer"))
consult_follow_up = router.route(
    "POST",
    "/Task/{id}/$follow-up",
    "operation",
    summary="ask a follow-up question",
    openapi=_parameters_doc,
    name="consult_follow_up",
)(_transition(lambda params: "follow-up"))
consult_close = router.route(
    "POST",
    "/Task/{id}/$close",
    "operation",
    summary="close with declaration or administratively",
    openapi=_parameters_doc,
    name="consult_close",
)(_transition(_close_action))
consult_cancel = router.route(
    "POST",
    "/Task/{id}/$cancel",
    "operation",
    summary="cancel a consult",
    openapi=_parameters_doc,
    name="consult_cancel",
)(_transition(lambda params: "cancel"))


@router.route(
    "POST",
    "/ChargeItem/$declarations",
    "operation",
    summary="quarterly declarations",
    openapi=_parameters_doc,
)
async def consult_declarations(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import declarations

    params = await _params(request, gw, "$declarations")
    env = env_of(gw)

    def work(c, x):
        x.require("ChargeItem", "search-type")
        return declarations.operation(c, x, env, params)

    return rq.result_response(
        request, await gw.audited(request, principal, "operation", ["ChargeItem"], work, writes=True)
    )


@router.route(
    "POST",
    "/Communication/$converse",
    "operation",
    summary="conversations about a patient",
    openapi=_parameters_doc,
)
async def consult_converse(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import conversations

    return await _parameters_operation(
        gw, request, principal, "$converse", "Communication/$converse", conversations.operation
    )


@router.route(
    "GET",
    "/Communication/$overdue-replies",
    "operation",
    summary="replies past due",
    openapi=lambda doc: _list_doc(doc, specialist=False),
)
async def consult_overdue_replies(gw: Gateway, request: Request, principal: Principal, p: dict) -> Response:
    from gateway.consult import conversations

    env = env_of(gw)

    def work(c, x):
        x.require("Communication", "search-type")
        return conversations.overdue_replies(c, x, env)

    return rq.result_response(
        request, await gw.audited(request, principal, "operation", ["Communication"], work)
    )
