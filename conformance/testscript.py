"""A FHIR R4 TestScript executor for the subset the ``fhir-server`` suite uses (testscript.html).

Supported: ``fixture`` (a JSON file beside the script, ``${var}`` substituted when sent), ``variable``
(``expression`` FHIRPath or ``headerField`` on a fixture or a response, ``defaultValue``), ``setup`` /
``test`` / ``teardown`` actions, and

- operations (``TestScript.setup.action.operation``): ``type`` codes of testscript-operation-codes
  ``read vread create update delete search history transaction batch validate capabilities`` and our
  ``smart-token`` / ``smart-token-foreign-key`` (system :data:`OP_SYSTEM`); ``resource``, ``params``,
  ``url``, ``method``, ``accept``, ``contentType``, ``sourceId``, ``targetId``, ``responseId``,
  ``requestHeader``, ``origin`` (1 = the tester's client, 2 = the second client);
- asserts: ``response``, ``responseCode``, ``contentType``, ``headerField``, ``resource``, ``expression``
  (FHIRPath, fhirpathpy), ``compareToSourceId`` + ``compareToSourceExpression``, ``minimumId``,
  ``navigationLinks``, ``validateProfileId`` (FHIR R4B model classes for core profiles; our nl-core checks
  for ``http://nictiz.nl/fhir/StructureDefinition/nl-core-*``), ``requestMethod``, ``warningOnly``,
  operators ``equals notEquals in notIn greaterThan lessThan empty notEmpty contains notContains eval``.

Our extensions (``urn:his-gateway:fhir:extension:conformance-*``): ``requirement`` on a test names the
contract clause it checks; ``requires`` (script or test, repeatable) names a capability the endpoint must
declare, else the test is skipped with the reason; ``credentials`` on an operation (``none``,
``primary``, ``second``) chooses the token sent.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from conformance.mask import mask_body, mask_text
from conformance.model import Exchange, RunnerError, TestResult, Verdict
from conformance.smart import Credentials, TokenError

EXT = "urn:his-gateway:fhir:extension:conformance-"
OP_SYSTEM = "urn:his-gateway:conformance:operation"
NL_CORE = "http://nictiz.nl/fhir/StructureDefinition/nl-core-"
FHIR_JSON = "application/fhir+json"

RESPONSE_CODES = {
    "okay": 200,
    "created": 201,
    "noContent": 204,
    "notModified": 304,
    "bad": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "notFound": 404,
    "methodNotAllowed": 405,
    "conflict": 409,
    "gone": 410,
    "preconditionFailed": 412,
    "unprocessable": 422,
}
DEFAULT_METHOD = {
    "read": "GET",
    "vread": "GET",
    "search": "GET",
    "history": "GET",
    "capabilities": "GET",
    "create": "POST",
    "transaction": "POST",
    "batch": "POST",
    "validate": "POST",
    "update": "PUT",
    "delete": "DELETE",
    "smart-token": "POST",
    "smart-token-foreign-key": "POST",
    "operation": "POST",
}
_VAR = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")
DUTCH_OIDS = {
    "urn:oid:2.16.840.1.113883.2.4.6.3": "http://fhir.nl/fhir/NamingSystem/bsn",
    "urn:oid:2.16.840.1.113883.2.4.6.1": "http://fhir.nl/fhir/NamingSystem/agb-z",
    "urn:oid:2.16.528.1.1007.3.3": "http://fhir.nl/fhir/NamingSystem/ura",
    "urn:oid:2.16.528.1.1007.3.1": "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers",
    "urn:oid:2.16.528.1.1007.5.1": "http://fhir.nl/fhir/NamingSystem/big",
    "urn:oid:2.16.840.1.113883.2.4.6.4": "http://fhir.nl/fhir/NamingSystem/uzovi",
}


class ScriptError(RunnerError):
    """The script cannot be carried out as written (CONF-002), or the target not reached (CONF-003)."""


@dataclass
class Response:
    method: str
    url: str
    status: int
    headers: httpx.Headers
    body: bytes
    request_body: bytes

    def json(self) -> Any:
        try:
            return orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            return None


@dataclass
class FhirTarget:
    """Where and as whom the suite talks: the FHIR base, the token URL and up to two clients."""

    base_url: str
    http: httpx.Client
    token_url: str | None = None
    primary: Credentials | None = None
    second: Credentials | None = None
    bearer: str | None = None
    params: dict[str, str] | None = None

    def authorization(self, which: str) -> str | None:
        if which == "none":
            return None
        if which == "primary" and self.bearer:
            return f"Bearer {self.bearer}"
        creds = self.primary if which == "primary" else self.second
        if creds is None or self.token_url is None:
            return None
        return f"Bearer {creds.token(self.http, self.token_url)}"


def extensions(element: dict, name: str) -> list[str]:
    """The values of our extension ``name`` on an element (valueString / valueCode / valueUri)."""
    out = []
    for e in element.get("extension", []):
        if e.get("url") == EXT + name:
            out.append(str(e.get("valueString", e.get("valueCode", e.get("valueUri", "")))))
    return out


def capabilities_of(cs: dict | None) -> set[str]:
    """The capabilities a CapabilityStatement declares, as the strings ``requires`` names:

    ``interaction:<Type>.<code>``, ``conditional-create:<Type>``, ``conditional-update:<Type>``,
    ``search:<Type>.<param>``, ``include:<Type>``, ``operation:<Type>.<name>`` (also
    ``operation:<name>`` at system level), ``system:<code>`` (transaction, batch, history-system),
    ``smart`` (SMART-on-FHIR security service or the oauth-uris extension)."""
    caps: set[str] = set()
    if not isinstance(cs, dict) or cs.get("resourceType") != "CapabilityStatement":
        return caps
    for rest in cs.get("rest", []):
        if rest.get("mode", "server") != "server":
            continue
        sec = rest.get("security", {})
        codes = {c.get("code") for s in sec.get("service", []) for c in s.get("coding", [])}
        oauth = any("oauth-uris" in e.get("url", "") for e in sec.get("extension", []))
        if "SMART-on-FHIR" in codes or oauth:
            caps.add("smart")
        for i in rest.get("interaction", []):
            caps.add(f"system:{i.get('code')}")
        for op in rest.get("operation", []):
            caps.add(f"operation:{op.get('name')}")
        for r in rest.get("resource", []):
            t = r.get("type")
            for i in r.get("interaction", []):
                caps.add(f"interaction:{t}.{i.get('code')}")
            if r.get("conditionalCreate"):
                caps.add(f"conditional-create:{t}")
            if r.get("conditionalUpdate"):
                caps.add(f"conditional-update:{t}")
            if r.get("conditionalDelete") in ("single", "multiple"):
                caps.add(f"conditional-delete:{t}")
            if r.get("versioning") in ("versioned", "versioned-update"):
                caps.add(f"versioned:{t}")
            if r.get("versioning") == "versioned-update":
                caps.add(f"versioned-update:{t}")
            for p in r.get("searchParam", []):
                caps.add(f"search:{t}.{p.get('name')}")
            if r.get("searchInclude"):
                caps.add(f"include:{t}")
            if r.get("searchRevInclude"):
                caps.add(f"revinclude:{t}")
            for op in r.get("operation", []):
                caps.add(f"operation:{t}.{op.get('name')}")
                if op.get("name") == "send-consult":
                    caps.add("consult")  # the gateway's consult workflow (docs/consult.md §4)
            for prof in [r.get("profile"), *r.get("supportedProfile", [])]:
                if prof:
                    caps.add(f"profile:{prof}")
    return caps


def fhirpath(resource: Any, expression: str, env: dict[str, Any] | None = None) -> list:
    from fhirpathpy import evaluate

    return evaluate(resource if resource is not None else {}, expression, env or {})


def _truthy(result: list) -> bool:
    return bool(result) and all(
        v is True or (v not in (False, None, "") and not isinstance(v, bool)) for v in result
    )


def _compare(actual: list, operator: str, value: str | None) -> tuple[bool, str]:
    """FHIR TestScript assert operators on a FHIRPath result (or a header value as a one-item list);
    the message says what was found and what was wanted, whatever the verdict."""
    shown = ", ".join(str(v) for v in actual[:5]) or "(empty)"
    first = None if not actual else str(actual[0]).lower() if isinstance(actual[0], bool) else str(actual[0])
    msg = f"got {shown}; wanted {operator}" + (f" {value!r}" if value is not None else "")
    if operator == "empty":
        return not actual, msg
    if operator == "notEmpty":
        return bool(actual), msg
    if operator == "eval" or (value is None and operator == "equals"):
        return _truthy(actual), f"got {shown}; wanted true"
    value = value or ""
    if operator == "equals":
        return first == value, msg
    if operator == "notEquals":
        return first != value, msg
    if operator in ("in", "notIn"):
        hit = first in [v.strip() for v in value.split(",")]
        return hit == (operator == "in"), msg
    if operator in ("contains", "notContains"):
        hit = any(value in str(v) for v in actual)
        return hit == (operator == "contains"), msg
    if operator in ("greaterThan", "lessThan"):
        try:
            a, b = float(first or "nan"), float(value)
        except ValueError:
            return False, f"got {shown}: not a number"
        return (a > b) if operator == "greaterThan" else (a < b), msg
    raise ScriptError(f"unsupported assert operator {operator!r}")


def _subset(minimum: Any, actual: Any) -> bool:
    """Every element of ``minimum`` is in ``actual`` (arrays: each item matched by some item)."""
    if isinstance(minimum, dict):
        return isinstance(actual, dict) and all(
            k in ("id", "meta", "text") or (k in actual and _subset(v, actual[k])) for k, v in minimum.items()
        )
    if isinstance(minimum, list):
        return isinstance(actual, list) and all(any(_subset(m, a) for a in actual) for m in minimum)
    return minimum == actual


def nl_core_problems(resource: dict) -> list[str]:
    """Our nl-core profile check: valid FHIR R4 for the gateway's validator (structure, required
    bindings, BSN 11-test, AGB/URA digits), the nl-core profile in ``meta.profile``, and every Dutch
    identifier system in its URI form (DOMAIN.md §8: accept both, emit the URI)."""
    from mappings.fhir.validator import validate

    out = [f"{p.code} {p.location}: {p.message}" for p in validate(resource) if p.severity.value == "error"]
    profiles = resource.get("meta", {}).get("profile", [])
    if not any(str(p).startswith(NL_CORE) or "nictiz.nl" in str(p) for p in profiles):
        out.append(f"meta.profile {profiles or '(none)'} names no nl-core profile")

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            system = value.get("system")
            if isinstance(system, str) and system in DUTCH_OIDS:
                out.append(f"{path}.system is {system}; nl-core wants {DUTCH_OIDS[system]}")
            for k, v in value.items():
                walk(v, f"{path}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{path}[{i}]")

    walk(resource, resource.get("resourceType", "Resource"))
    return out


def core_problems(resource: dict) -> list[str]:
    """The base FHIR structure, checked with the fhir.resources R4B model classes."""
    from mappings.fhir.r4b import validate_with_models

    try:
        validate_with_models(resource)
    except Exception as exc:  # pydantic.ValidationError, or an unknown resource type
        return [str(exc).splitlines()[0] + " ..."]
    return []


class ScriptRun:
    """One TestScript against one target; :meth:`run` gives a :class:`TestResult` per ``test``."""

    def __init__(self, script: dict, folder: Path, target: FhirTarget, caps: set[str], source: str):
        self.script = script
        self.folder = folder
        self.target = target
        self.caps = caps
        self.source = source
        self.fixtures: dict[str, Any] = {}
        self.responses: dict[str, Response] = {}
        self.last: Response | None = None
        self.builtins = {
            "runId": uuid.uuid4().hex[:12],
            "baseUrl": target.base_url.rstrip("/"),
            **(target.params or {}),
        }
        self.profiles = {p["id"]: p.get("reference", "") for p in script.get("profile", [])}
        self.variables = {v["name"]: v for v in script.get("variable", [])}
        self.current: TestResult | None = None

    # -- values ---------------------------------------------------------------------------------------

    def _fixture(self, fid: str) -> Any:
        if fid not in self.fixtures:
            for f in self.script.get("fixture", []):
                if f.get("id") == fid:
                    ref = f.get("resource", {}).get("reference", "")
                    path = self.folder / ref
                    if not path.is_file():
                        raise ScriptError(f"fixture {fid!r}: file {ref!r} not found beside {self.source}")
                    self.fixtures[fid] = orjson.loads(path.read_bytes())
                    break
            else:
                raise ScriptError(f"no fixture or response {fid!r} in {self.source}")
        return self.fixtures[fid]

    def _source(self, sid: str | None) -> Any:
        """The body a variable or assert reads: a response by id, a fixture, or the last response."""
        if not sid:
            return self.last.json() if self.last else None
        if sid in self.responses:
            return self.responses[sid].json()
        return self.substitute(self._fixture(sid))

    def variable(self, name: str) -> str:
        if name in self.variables:
            v = self.variables[name]
            result: list = []
            if v.get("headerField"):
                resp = self.responses.get(v.get("sourceId", "")) or self.last
                if resp is not None and v["headerField"] in resp.headers:
                    result = [resp.headers[v["headerField"]]]
            elif v.get("expression"):
                result = fhirpath(self._source(v.get("sourceId")), self.substitute(v["expression"]))
            if result:
                return str(result[0])
            if "defaultValue" in v:
                return str(v["defaultValue"])
            raise ScriptError(f"variable {name!r} has no value (expression {v.get('expression')!r})")
        if name in self.builtins:
            return self.builtins[name]
        if name.startswith("param."):
            raise ScriptError(f"parameter {name[6:]!r} not given (--param {name[6:]}=...)")
        raise ScriptError(f"unknown variable ${{{name}}} in {self.source}")

    def substitute(self, value: Any) -> Any:
        if isinstance(value, str):
            return _VAR.sub(lambda m: self.variable(m.group(1)), value)
        if isinstance(value, list):
            return [self.substitute(v) for v in value]
        if isinstance(value, dict):
            return {k: self.substitute(v) for k, v in value.items()}
        return value

    # -- operations -----------------------------------------------------------------------------------

    def _target_id(self, op: dict) -> tuple[str | None, str | None]:
        """(id, version) of the resource an operation works on: its ``targetId`` response."""
        tid = op.get("targetId")
        if not tid:
            return None, None
        resp = self.responses.get(tid)
        if resp is None:
            raise ScriptError(f"targetId {tid!r} names no earlier response")
        body = resp.json() or {}
        rid = body.get("id") if isinstance(body, dict) else None
        vid = body.get("meta", {}).get("versionId") if isinstance(body, dict) else None
        loc = resp.headers.get("location") or resp.headers.get("content-location")
        if loc:
            m = re.search(r"/([^/]+)/([^/]+)(?:/_history/([^/]+))?/?$", loc)
            if m:
                rid = rid or m.group(2)
                vid = vid or m.group(3)
        return rid, vid

    def operation(self, op: dict) -> None:
        code = op.get("type", {}).get("code", "")
        method = (op.get("method") or DEFAULT_METHOD.get(code, "GET")).upper()
        base = self.target.base_url.rstrip("/")
        rtype = op.get("resource", "")
        params = self.substitute(op.get("params", ""))
        body: bytes | None = None
        headers = {"Accept": FHIR_JSON if op.get("accept", "json") in ("json", FHIR_JSON) else op["accept"]}
        if code in ("smart-token", "smart-token-foreign-key"):
            self._token_request(op, code, params)
            return
        if op.get("url"):
            url = self.substitute(op["url"])
            url = url if url.startswith(("http://", "https://")) else base + "/" + url.lstrip("/")
        else:
            rid, vid = self._target_id(op)
            if code in ("transaction", "batch") or (not rtype and code == "search" and not params):
                url = base + "/"
            elif code == "capabilities":
                url = base + "/metadata"
            elif code == "validate":
                url = f"{base}/{rtype}/$validate"
            elif rid and not params:
                url = f"{base}/{rtype}/{rid}"
                if code == "vread":
                    url += f"/_history/{vid}"
                if code == "history":
                    url += "/_history"
            else:
                url = f"{base}/{rtype}{params}" if rtype else f"{base}{params}"
        if op.get("sourceId"):
            doc = self._source(op["sourceId"])
            if code == "update" and isinstance(doc, dict):
                rid, _ = self._target_id(op)
                if rid:
                    doc = {**doc, "id": rid}
            body = orjson.dumps(doc)
            headers["Content-Type"] = (
                FHIR_JSON if op.get("contentType", "json") in ("json", FHIR_JSON) else op["contentType"]
            )
        for h in op.get("requestHeader", []):
            headers[h["field"]] = self.substitute(h["value"])
        which = (extensions(op, "credentials") or ["second" if op.get("origin") == 2 else "primary"])[0]
        try:
            auth = self.target.authorization(which)
        except TokenError as exc:
            raise ScriptError(str(exc), "CONF-003") from None
        if auth:
            headers["Authorization"] = auth
        self._send(op, method, url, headers, body)

    def _token_request(self, op: dict, code: str, params: str) -> None:
        creds = self.target.primary
        if creds is None or self.target.token_url is None:
            raise ScriptError("the SMART token tests need --client-id and --private-key")
        scope = params.removeprefix("?scope=") if params.startswith("?scope=") else None
        form = creds.token_form(self.target.token_url, scope, foreign_key=code.endswith("foreign-key"))
        body = httpx.QueryParams(form).__str__().encode()
        self._send(
            op,
            "POST",
            self.target.token_url,
            {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            body,
        )

    def _send(self, op: dict, method: str, url: str, headers: dict[str, str], body: bytes | None) -> None:
        try:
            r = self.target.http.request(method, url, headers=headers, content=body)
        except httpx.HTTPError as exc:
            raise ScriptError(f"{method} {mask_text(url)}: {type(exc).__name__}: {exc}", "CONF-003") from None
        resp = Response(method, url, r.status_code, r.headers, r.content, body or b"")
        self.last = resp
        if op.get("responseId"):
            self.responses[op["responseId"]] = resp
        if self.current is not None:
            shown_headers = "".join(f"{k}: {mask_text(v)}\n" for k, v in headers.items())
            self.current.exchanges.append(
                Exchange(
                    op.get("label") or op.get("description") or op.get("type", {}).get("code", "request"),
                    f"{method} {mask_text(url)}\n{shown_headers}\n"
                    + mask_body(body or b"", headers.get("Content-Type", "")),
                    f"HTTP {r.status_code}\n"
                    + "".join(
                        f"{k}: {mask_text(v)}\n"
                        for k, v in r.headers.items()
                        if k.lower()
                        in (
                            "content-type",
                            "location",
                            "etag",
                            "last-modified",
                            "www-authenticate",
                            "allow",
                            "content-location",
                        )
                    )
                    + "\n"
                    + mask_body(r.content, r.headers.get("content-type", "")),
                )
            )

    # -- asserts --------------------------------------------------------------------------------------

    def assertion(self, a: dict, result: TestResult) -> None:
        label = a.get("label") or a.get("description") or "assert"
        warn = bool(a.get("warningOnly"))
        last = self.responses.get(a["sourceId"]) if a.get("sourceId") in self.responses else self.last
        if last is None and not a.get("sourceId"):
            raise ScriptError(f"assert {label!r} before any request")

        def response() -> Response:
            """The response the assert is about (a fixture named by ``sourceId`` is not one)."""
            if last is None:
                raise ScriptError(f"assert {label!r}: {a.get('sourceId')!r} is not a response")
            return last

        op = a.get("operator", "equals")
        if "response" in a:
            status, want = response().status, RESPONSE_CODES[a["response"]]
            result.check(status == want, label, f"got HTTP {status}; wanted {want} ({a['response']})", warn)
        if "responseCode" in a:
            ok, msg = _compare([str(response().status)], op, a["responseCode"])
            result.check(ok, label, f"HTTP status: {msg}", warn)
        if "contentType" in a:
            ct = response().headers.get("content-type", "")
            media = "json" if a["contentType"] in ("json", FHIR_JSON) else a["contentType"]
            result.check(media in ct, label, f"got Content-Type {ct!r}; wanted {a['contentType']}", warn)
        if "headerField" in a:
            field_ = a["headerField"]
            headers = response().headers
            actual = [headers[field_]] if field_ in headers else []
            ok, msg = _compare(actual, op, self.substitute(a.get("value")) if "value" in a else None)
            result.check(ok, label, f"header {field_}: {msg}", warn)
        if "resource" in a:
            body = response().json()
            got = body.get("resourceType") if isinstance(body, dict) else None
            result.check(
                got == a["resource"], label, f"got resourceType {got!r}; wanted {a['resource']}", warn
            )
        if "expression" in a and "compareToSourceId" not in a:
            doc = self._source(a["sourceId"]) if a.get("sourceId") else response().json()
            value = self.substitute(a["value"]) if "value" in a else None
            try:
                actual = fhirpath(doc, self.substitute(a["expression"]))
            except Exception as exc:  # fhirpathpy raises plain exceptions on bad paths
                raise ScriptError(f"FHIRPath {a['expression']!r}: {exc}") from None
            ok, msg = _compare(actual, op, value)
            result.check(ok, label, f"{a['expression']}: {msg}", warn)
        if "compareToSourceId" in a:
            other = self._source(a["compareToSourceId"])
            here = self._source(a.get("sourceId")) if a.get("sourceId") else response().json()
            expr = a.get("compareToSourceExpression") or a.get("expression")
            if not expr:
                raise ScriptError(f"assert {label!r}: compareToSourceId without an expression")
            left, right = fhirpath(here, expr), fhirpath(other, expr)
            ok = (left == right) if op == "equals" else (left != right)
            result.check(ok, label, f"{expr}: {left[:3]} {op} {right[:3]}", warn)
        if "minimumId" in a:
            body = response().json()
            result.check(
                _subset(self._source(a["minimumId"]), body),
                label,
                f"response holds every element of fixture {a['minimumId']}",
                warn,
            )
        if "navigationLinks" in a:
            body = response().json() or {}
            rels = (
                {link.get("relation") for link in body.get("link", [])} if isinstance(body, dict) else set()
            )
            has = {"self", "first", "last"} <= rels or {"self", "next"} <= rels
            result.check(has == bool(a["navigationLinks"]), label, f"Bundle links {sorted(rels)}", warn)
        if "requestMethod" in a:
            result.check(
                response().method.lower() == a["requestMethod"].lower(),
                label,
                f"request method {response().method}",
                warn,
            )
        if "validateProfileId" in a:
            self._profile(a, response(), result, label, warn)

    def _profile(self, a: dict, resp: Response, result: TestResult, label: str, warn: bool) -> None:
        url = self.profiles.get(a["validateProfileId"], "")
        if not url:
            raise ScriptError(f"validateProfileId {a['validateProfileId']!r} names no TestScript.profile")
        body = resp.json()
        wanted = url.rsplit("/", 1)[-1]
        resources = [body] if isinstance(body, dict) else []
        if isinstance(body, dict) and body.get("resourceType") == "Bundle":
            resources = [
                e["resource"]
                for e in body.get("entry", [])
                if isinstance(e.get("resource"), dict) and e.get("search", {}).get("mode", "match") == "match"
            ]
        if url.startswith(NL_CORE):
            kind = {
                "nl-core-Patient": "Patient",
                "nl-core-HealthcareProvider-Organization": "Organization",
                "nl-core-HealthProfessional-Practitioner": "Practitioner",
            }.get(wanted)
            resources = [r for r in resources if kind is None or r.get("resourceType") == kind]
            check = nl_core_problems
        else:
            resources = [r for r in resources if r.get("resourceType") == wanted]
            check = core_problems
        if not resources:
            result.check(False, label, f"no {wanted} in the response to check against {url}", warn)
            return
        problems = [f"{r.get('resourceType')}/{r.get('id')}: {p}" for r in resources for p in check(r)]
        result.check(
            not problems,
            label,
            f"{len(resources)} resource(s) against {url}: "
            + ("; ".join(problems[:5]) if problems else "conform"),
            warn,
        )

    # -- the script -----------------------------------------------------------------------------------

    def _actions(self, actions: list[dict], result: TestResult) -> None:
        for action in actions:
            if "operation" in action:
                self.operation(action["operation"])
            if "assert" in action:
                self.assertion(action["assert"], result)

    def missing(self, element: dict) -> list[str]:
        return [
            c
            for c in [*extensions(self.script, "requires"), *extensions(element, "requires")]
            if c not in self.caps
        ]

    def run(self) -> list[TestResult]:
        name = self.script.get("id", self.source)
        tests = []
        for t in self.script.get("test", []):
            req = "; ".join(extensions(t, "requirement")) or "(no requirement named)"
            tests.append(
                (t, TestResult(f"{name}/{t.get('id', t.get('name'))}", t.get("name", ""), req, self.source))
            )
        if all(self.missing(t) for t, _ in tests):
            for t, r in tests:
                r.skip(_skip_reason(self.missing(t)))
            return [r for _, r in tests]
        setup = TestResult(f"{name}/setup", "setup", "", self.source)
        self.current = setup
        try:
            self._actions(self.script.get("setup", {}).get("action", []), setup)
        except ScriptError as exc:
            setup.error(str(exc))
        for t, r in tests:
            started = time.perf_counter()
            miss = self.missing(t)
            if miss:
                r.skip(_skip_reason(miss))
                continue
            if setup.verdict is not Verdict.PASS:
                r.error(f"setup failed: {setup.reason}")
                r.exchanges = list(setup.exchanges)
                continue
            self.current = r
            try:
                self._actions(t.get("action", []), r)
            except ScriptError as exc:
                r.error(str(exc))
            r.seconds = time.perf_counter() - started
        teardown = TestResult(f"{name}/teardown", "teardown", "", self.source)
        self.current = teardown
        try:
            self._actions(self.script.get("teardown", {}).get("action", []), teardown)
        except ScriptError:
            pass  # teardown is best effort (TestScript: its failures do not fail the tests)
        return [r for _, r in tests]


CAPABILITY_TEXT = {
    "smart": "SMART Backend Services (CapabilityStatement.rest.security)",
    "credentials": "client credentials given to the runner (--client-id, --private-key)",
    "second-client": "a second client of another organisation (--client2-id, --private-key2)",
}


def _skip_reason(missing: list[str]) -> str:
    parts = []
    for c in missing:
        if c.startswith("param:"):
            parts.append(f"parameter {c[6:]} not given (--param {c[6:]}=...)")
        elif c in ("credentials", "second-client"):
            parts.append(f"not given: {CAPABILITY_TEXT[c]}")
        else:
            parts.append(f"not declared: {CAPABILITY_TEXT.get(c, c)}")
    return "; ".join(parts)
