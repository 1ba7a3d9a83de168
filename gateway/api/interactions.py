"""The FHIR RESTful interactions (FHIR R4 http.html), shared by the routes and by Bundle entries.

Each function works inside the caller's open transaction and returns a :class:`Result`: the HTTP
answer plus what the audit record needs (action, interaction, objects, patients). Scopes are checked
here, per interaction and type, so a Bundle entry is held to the same rules as a direct request.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson
from sqlalchemy import ColumnElement, Connection, func, or_, select

from gateway.audit import Agent, visible_events
from gateway.auth.tokens import Principal
from gateway.fhir import cursor
from gateway.fhir.index import date_range
from gateway.fhir.outcome import PROBLEM_SYSTEM, FhirError, problems_error
from gateway.fhir.resources import RESOURCES
from gateway.fhir.search import SYSTEM_ALIASES, date_clause, parse_search, split_values
from gateway.fhir.validation import check_shape, has_errors, validate
from gateway.schema import audit_log, audit_patient
from gateway.settings import Settings
from gateway.store import Store, Stored, now_instant, patients_of_bodies

LETTER = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search-type": "s",
    "history-type": "s",
    "create": "c",
    "update": "u",
    "delete": "d",
}
ACTION = {
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "search-type": "E",
    "history-type": "E",
    "create": "C",
    "update": "U",
    "delete": "D",
    "operation": "E",
    "transaction": "E",
    "batch": "E",
}
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ETAG = re.compile(r'^(?:W/)?"(\d{1,9})"$')


@dataclass
class Ctx:
    """One caller in one request: identity, tenant, audit agent and the services."""

    principal: Principal
    agent: Agent
    store: Store
    settings: Settings

    @property
    def orgs(self) -> tuple[str, ...]:
        return self.principal.orgs

    @property
    def base(self) -> str:
        return self.store.base_url

    def require(self, rtype: str, interaction: str) -> None:
        letter = LETTER[interaction]
        if not self.principal.perms.allows(rtype, letter):
            raise FhirError(
                403,
                "forbidden",
                "AUTH-003",
                f"the token's scopes do not allow {interaction} on {rtype}",
                rtype,
            )


@dataclass
class Result:
    """An interaction's answer and its audit facts."""

    status: int
    body: bytes | None
    headers: dict[str, str] = field(default_factory=dict)
    action: str = "R"
    subtype: str = "read"
    entities: list[str] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)
    query: list[str] | None = None
    resource: Stored | None = None


@functools.lru_cache(maxsize=4096)
def http_date(column: str) -> str:
    """``Last-Modified`` (RFC 9110 HTTP-date) of a stored UTC instant column."""
    t = dt.datetime.fromisoformat(column)
    return f"{_DAYS[t.weekday()]}, {t.day:02d} {_MONTHS[t.month - 1]} {t.year} {t:%H:%M:%S} GMT"


def fhir_instant(column: str) -> str:
    return column[:23] + "Z"


def parse_etag(value: str | None, header: str = "If-Match") -> int | None:
    if value is None:
        return None
    m = _ETAG.match(value.strip()) if isinstance(value, str) else None
    if not m:
        raise FhirError(400, "invalid", "API-033", f'{header} must be W/"<version>"', header)
    return int(m[1])


def check_id(rid: str) -> None:
    from gateway.fhir.validation import ID_RE

    if not ID_RE.match(rid):
        raise FhirError(404, "not-found", "API-011", "not a valid resource id", "id")


def check_type(rtype: str, *, writable: bool = False) -> None:
    rdef = RESOURCES.get(rtype)
    if rdef is None:
        raise FhirError(
            404, "not-supported", "API-010", f"{rtype!r} is not a resource type this gateway serves", "type"
        )
    if writable and rdef.read_only:
        raise FhirError(
            405, "not-supported", "API-014", f"{rtype} is read-only here", rtype, headers={"Allow": "GET"}
        )


def _stored_headers(ctx: Ctx, s: Stored, location: bool = True) -> dict[str, str]:
    headers = {"ETag": s.etag}
    if location:
        headers["Location"] = f"{ctx.base}/{s.rtype}/{s.rid}/_history/{s.version}"
    if s.last_updated:
        headers["Last-Modified"] = http_date(s.last_updated)
    return headers


def _checked(ctx: Ctx, body: object, rtype: str) -> dict:
    """The body as a resource of ``rtype``, validated (400 for the wrong shape, 422 for invalid content)."""
    problems = check_shape(body, rtype, json_rules=False)
    if not has_errors(problems) and ctx.settings.validate_on_write:
        problems = validate(body, rtype)
    if has_errors(problems):
        status = 400 if problems and problems[0].code in ("API-004", "API-005", "API-006") else 422
        raise problems_error(problems, status)
    _uri_systems(body)
    return body  # type: ignore[return-value]


def _uri_systems(resource: object) -> None:
    """Dutch identifier and code systems sent in their ``urn:oid:`` form are stored in their URI form
    (DOMAIN.md §8: accept both, emit the URI); search already matches both forms. Iterative: a body is
    nested as deep as the JSON parser allows."""
    stack = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            system = node.get("system")
            if isinstance(system, str) and system.startswith("urn:oid:") and system in SYSTEM_ALIASES:
                node["system"] = SYSTEM_ALIASES[system]
            stack.extend(v for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, (dict, list)))


# -- instance level ---------------------------------------------------------------------------------------


def read(conn: Connection, ctx: Ctx, rtype: str, rid: str) -> Result:
    ctx.require(rtype, "read")
    if rtype == "AuditEvent":
        return _read_audit(conn, ctx, rid)
    s = ctx.store.read(conn, ctx.orgs, rtype, rid)
    return Result(
        200,
        s.body,
        _stored_headers(ctx, s, location=False),
        "R",
        "read",
        [f"{rtype}/{rid}"],
        _patients_of_body(ctx, s),
        resource=s,
    )


def vread(conn: Connection, ctx: Ctx, rtype: str, rid: str, vid: str) -> Result:
    ctx.require(rtype, "vread")
    if rtype == "AuditEvent":
        if vid != "1":
            raise FhirError(404, "not-found", "API-013", "an AuditEvent has only version 1", "vid")
        r = _read_audit(conn, ctx, rid)
        r.subtype = "vread"
        return r
    if not vid.isdigit() or len(vid) > 9:
        raise FhirError(404, "not-found", "API-013", "a version id is a number", "vid")
    s = ctx.store.vread(conn, ctx.orgs, rtype, rid, int(vid))
    return Result(
        200,
        s.body,
        _stored_headers(ctx, s, location=False),
        "R",
        "vread",
        [f"{rtype}/{rid}/_history/{vid}"],
        _patients_of_body(ctx, s),
        resource=s,
    )


def _patients_of_body(ctx: Ctx, s: Stored) -> list[str]:
    from gateway.store import patient_refs

    if s.rtype == "Patient":
        return [f"Patient/{s.rid}"]
    return list(patient_refs(orjson.loads(s.body), ctx.base)) if s.body else []


def create(
    conn: Connection,
    ctx: Ctx,
    rtype: str,
    body: object,
    if_none_exist: str | None = None,
    rid: str | None = None,
) -> Result:
    check_type(rtype, writable=True)
    ctx.require(rtype, "create")
    res = _checked(ctx, body, rtype)
    if if_none_exist is not None:
        ctx.require(rtype, "search-type")
    s, created = ctx.store.create(conn, ctx.orgs, res, if_none_exist=if_none_exist, rid=rid)
    headers = _stored_headers(ctx, s)
    patients = list(s.patients) or _patients_of_body(ctx, s)
    return Result(
        201 if created else 200,
        s.body,
        headers,
        "C" if created else "R",
        "create",
        [f"{rtype}/{s.rid}"],
        patients,
        resource=s,
    )


def _refuse_if_workflow_managed(conn: Connection, rtype: str, rid: str, what: str) -> None:
    """A consult's Task and ServiceRequest change only through the consult operations (docs/consult.md):
    a plain update or delete would make the FHIR status disagree with the consult's real state."""
    if rtype not in ("Task", "ServiceRequest"):
        return
    from sqlalchemy import select

    from gateway.consult.schema import consult

    column = consult.c.id if rtype == "Task" else consult.c.service_request
    if conn.execute(select(consult.c.id).where(column == rid).limit(1)).first() is not None:
        raise FhirError(
            409,
            "business-rule",
            "CON-017",
            f"{rtype}/{rid} belongs to a digital consult: it changes only through the consult operations "
            f"($pickup, $answer, $follow-up, $close, $cancel), not by {what}",
            rtype,
        )


def update(
    conn: Connection,
    ctx: Ctx,
    rtype: str,
    rid: str,
    body: object,
    if_match: int | None,
    *,
    workflow: bool = False,
) -> Result:
    """Update; ``workflow``: the consult operations themselves write the consult's Task/ServiceRequest."""
    check_type(rtype, writable=True)
    ctx.require(rtype, "update")
    if not workflow:
        _refuse_if_workflow_managed(conn, rtype, rid, "an update")
    res = _checked(ctx, body, rtype)
    if res.get("id") != rid:
        raise FhirError(
            400, "invalid", "API-005", f"the body's id must be {rid!r} (the id in the URL)", f"{rtype}.id"
        )
    s = ctx.store.update(conn, ctx.orgs, rtype, rid, res, if_match=if_match)
    return Result(
        200, s.body, _stored_headers(ctx, s), "U", "update", [f"{rtype}/{rid}"], list(s.patients), resource=s
    )


def delete(conn: Connection, ctx: Ctx, rtype: str, rid: str) -> Result:
    check_type(rtype, writable=True)
    ctx.require(rtype, "delete")
    _refuse_if_workflow_managed(conn, rtype, rid, "a delete")
    s = ctx.store.delete(conn, ctx.orgs, rtype, rid)
    headers = {"ETag": s.etag} if s.version else {}
    return Result(204, None, headers, "D", "delete", [f"{rtype}/{rid}"], list(s.patients))


def conditional_update(
    conn: Connection, ctx: Ctx, rtype: str, items: list[tuple[str, str]], body: object
) -> Result:
    check_type(rtype, writable=True)
    ctx.require(rtype, "update")
    ctx.require(rtype, "search-type")
    found = ctx.store.match(conn, ctx.orgs, rtype, items, write=True)
    if len(found) > 1:
        raise FhirError(412, "duplicate", "API-032", "the criteria match more than one resource", "criteria")
    if not found:
        ctx.require(rtype, "create")
        if isinstance(body, dict):
            body.pop("id", None)
        return create(conn, ctx, rtype, body)
    if isinstance(body, dict) and "id" not in body:
        body["id"] = found[0]
    return update(conn, ctx, rtype, found[0], body, None)


def conditional_delete(conn: Connection, ctx: Ctx, rtype: str, items: list[tuple[str, str]]) -> Result:
    check_type(rtype, writable=True)
    ctx.require(rtype, "delete")
    ctx.require(rtype, "search-type")
    found = ctx.store.match(conn, ctx.orgs, rtype, items, write=True)
    if len(found) > 1:
        raise FhirError(412, "duplicate", "API-032", "the criteria match more than one resource", "criteria")
    if not found:
        return Result(204, None, {}, "D", "delete", [], [])
    return delete(conn, ctx, rtype, found[0])


# -- search and history -----------------------------------------------------------------------------------


def _links(
    ctx: Ctx, path: str, params: list[tuple[str, str]], count: int, offset: int, total: int | None, got: int
) -> list[dict]:
    kept = [(k, v) for k, v in params if k not in ("_count", "_offset")]

    def url(off: int) -> str:
        return f"{ctx.base}/{path}?" + urlencode(kept + [("_count", str(count)), ("_offset", str(off))])

    links = [{"relation": "self", "url": url(offset)}]
    more = (offset + got < total) if total is not None else (count > 0 and got == count)
    if count and more:
        links.append({"relation": "next", "url": url(offset + count)})
    if count and offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    return links


def _cursor_links(
    ctx: Ctx,
    path: str,
    params: list[tuple[str, str]],
    count: int,
    items: list[tuple[str, str]],
    next_key: list | None,
) -> list[dict]:
    """``self`` (this page, its ``_cursor`` included) and, when more follow, ``next`` with the keyset
    cursor after this page's last row (gateway/fhir/cursor.py)."""
    kept = [(k, v) for k, v in params if k not in ("_count", "_offset")] + [("_count", str(count))]
    here = [(k, v) for k, v in items if k == "_cursor"][:1]
    links = [{"relation": "self", "url": f"{ctx.base}/{path}?" + urlencode(kept + here)}]
    if count and next_key is not None:
        links.append(
            {
                "relation": "next",
                "url": f"{ctx.base}/{path}?" + urlencode([*kept, ("_cursor", cursor.encode(next_key))]),
            }
        )
    return links


def _bundle(kind: str, total: int | None, links: list[dict], entries: list[dict]) -> bytes:
    _, instant = now_instant()
    bundle: dict = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant},
        "type": kind,
    }
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    if entries:
        bundle["entry"] = entries
    return orjson.dumps(bundle)


def _ignored_outcome(names: list[str]) -> dict:
    return {
        "resource": {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "warning",
                    "code": "not-supported",
                    "details": {
                        "coding": [{"system": PROBLEM_SYSTEM, "code": "API-020"}],
                        "text": "ignored (unknown or unsupported here): " + ", ".join(dict.fromkeys(names)),
                    },
                    "expression": list(dict.fromkeys(names)),
                }
            ],
        },
        "search": {"mode": "outcome"},
    }


def search(
    conn: Connection, ctx: Ctx, rtype: str, items: list[tuple[str, str]], strict: bool = False
) -> Result:
    """Search a type; unknown parameters are ignored and reported unless ``strict`` (``handling=strict``)."""
    check_type(rtype)
    ctx.require(rtype, "search-type")
    if rtype == "AuditEvent":
        return _search_audit(conn, ctx, items, strict)
    spec = parse_search(
        rtype,
        items,
        orgs=ctx.orgs,
        base_url=ctx.base,
        page_size=ctx.settings.page_size,
        max_page_size=ctx.settings.max_page_size,
        strict=strict,
    )
    for _pname, target in spec.includes:
        if target:
            ctx.require(target, "read")
    for src, _p, _t in spec.revincludes:
        ctx.require(src, "search-type")
    found = ctx.store.search(conn, ctx.orgs, spec)
    included = [i for i in found.included if ctx.principal.perms.allows(i[0], "r")]
    entries = [
        {"fullUrl": f"{ctx.base}/{t}/{i}", "resource": orjson.Fragment(b), "search": {"mode": "match"}}
        for t, i, b in found.matches
    ]
    entries += [
        {"fullUrl": f"{ctx.base}/{t}/{i}", "resource": orjson.Fragment(b), "search": {"mode": "include"}}
        for t, i, b in included
    ]
    if spec.ignored:
        entries.append(_ignored_outcome(spec.ignored))
    links = _cursor_links(ctx, rtype, spec.params, spec.count, items, found.next_key)
    body = _bundle("searchset", found.total, links, entries)
    objects = [f"{t}/{i}" for t, i, _ in found.matches] + [f"{t}/{i}" for t, i, _ in included]
    return Result(
        200,
        body,
        {},
        "E",
        "search-type",
        [o for o in objects if not o.startswith("Patient/")],
        found.patients,
        query=[k for k, _ in items],
    )


def history(conn: Connection, ctx: Ctx, rtype: str, rid: str | None, items: list[tuple[str, str]]) -> Result:
    check_type(rtype)
    ctx.require(rtype, "history-instance" if rid else "history-type")
    if rtype == "AuditEvent":
        raise FhirError(
            405,
            "not-supported",
            "API-014",
            "the audit log has no history: it is append-only",
            "AuditEvent",
            headers={"Allow": "GET"},
        )
    count, offset, since = ctx.settings.page_size, 0, None
    for k, v in items:
        if k == "_count":
            count = _bounded(v, k, 0, ctx.settings.max_page_size)
        elif k == "_offset":
            offset = _bounded(v, k, 0, 10_000_000)
        elif k == "_since":
            rng = date_range(v)
            if rng is None:
                raise FhirError(400, "invalid", "API-021", "_since must be a FHIR instant", "_since")
            since = rng[0]
        elif k not in ("_format", "_pretty"):
            raise FhirError(400, "not-supported", "API-020", f"_history does not take {k!r}", k)
    total, rows = ctx.store.history(conn, ctx.orgs, rtype, rid, count=count, offset=offset, since=since)
    entries = []
    for row in rows:
        entry: dict = {"fullUrl": f"{ctx.base}/{rtype}/{row.res_id}"}
        if row.body is not None:
            entry["resource"] = orjson.Fragment(row.body)
        entry["request"] = {
            "method": row.method,
            "url": f"{rtype}/{row.res_id}" if row.method != "POST" else rtype,
        }
        entry["response"] = {
            "status": {"POST": "201", "PUT": "200", "DELETE": "204"}[row.method],
            "etag": f'W/"{row.version}"',
            "lastModified": fhir_instant(row.last_updated),
        }
        entries.append(entry)
    path = f"{rtype}/{rid}/_history" if rid else f"{rtype}/_history"
    body = _bundle("history", total, _links(ctx, path, items, count, offset, total, len(rows)), entries)
    ids = sorted({row.res_id for row in rows})
    patients = (
        [f"Patient/{i}" for i in ids]
        if rtype == "Patient"
        else patients_of_bodies((row.body for row in rows), ctx.base)
    )
    return Result(
        200,
        body,
        {},
        "R" if rid else "E",
        "history-instance" if rid else "history-type",
        [f"{rtype}/{i}" for i in ids if rtype != "Patient"],
        patients,
        query=None,
    )


def _bounded(value: str, name: str, lo: int, hi: int) -> int:
    if not value.isdigit() or not lo <= int(value) <= hi:
        raise FhirError(400, "invalid", "API-023", f"{name} must be a whole number from {lo} to {hi}", name)
    return int(value)


# -- the audit log as AuditEvent resources ----------------------------------------------------------------


def _read_audit(conn: Connection, ctx: Ctx, rid: str) -> Result:
    a = audit_log
    row = conn.execute(
        select(a.c.body, a.c.recorded).where(a.c.event_id == rid, visible_events(ctx.orgs))
    ).first()
    if row is None:
        raise FhirError(404, "not-found", "API-011", f"AuditEvent/{rid} is not known", f"AuditEvent/{rid}")
    return Result(
        200,
        bytes(row.body),
        {"ETag": 'W/"1"', "Last-Modified": http_date(row.recorded)},
        "R",
        "read",
        [f"AuditEvent/{rid}"],
        [],
    )


def _search_audit(conn: Connection, ctx: Ctx, items: list[tuple[str, str]], strict: bool) -> Result:
    """AuditEvent search: date, patient, action, outcome, _id, _count, _cursor (keyset on the log's
    sequence, newest first), _offset (own organisation's events)."""
    a, ap = audit_log, audit_patient
    conds: list[ColumnElement[bool]] = [visible_events(ctx.orgs)]
    count, offset = ctx.settings.page_size, 0
    ignored: list[str] = []
    used: list[tuple[str, str]] = []
    for k, v in items:
        if k not in (
            "_count",
            "_offset",
            "_cursor",
            "_id",
            "action",
            "outcome",
            "patient",
            "date",
            "_format",
            "_pretty",
            "_total",
        ):
            if strict:
                raise FhirError(
                    400, "not-supported", "API-020", f"AuditEvent has no search parameter {k!r} here", k
                )
            ignored.append(k)
            continue
        if not v and k not in ("_format", "_pretty"):
            raise FhirError(400, "invalid", "API-021", f"parameter {k} has no value", k)
        if k != "_cursor":
            used.append((k, v))
        if k == "_count":
            count = _bounded(v, k, 0, ctx.settings.max_page_size)
        elif k == "_offset":
            offset = _bounded(v, k, 0, 10_000_000)
        elif k == "_cursor":
            after_seq = cursor.decode(v, 1)[0]
            if not isinstance(after_seq, int):
                raise FhirError(400, "invalid", "API-023", "_cursor is not a cursor this server gave", k)
            conds.append(a.c.seq < after_seq)
            offset = 0
        elif k == "_id":
            conds.append(a.c.event_id.in_(v.split(",")))
        elif k in ("action", "outcome"):
            conds.append((a.c.action if k == "action" else a.c.outcome).in_(v.split(",")))
        elif k == "patient":
            refs = [x if x.startswith("Patient/") else f"Patient/{x}" for x in v.split(",")]
            conds.append(a.c.seq.in_(select(ap.c.seq).where(ap.c.patient.in_(refs))))
        elif k == "date":
            conds.append(
                or_(
                    *[date_clause(a.c.recorded, a.c.recorded, x, "date", point=True) for x in split_values(v)]
                )
            )
    total = conn.execute(select(func.count()).select_from(a).where(*conds)).scalar_one()
    rows = (
        conn.execute(
            select(a.c.event_id, a.c.body, a.c.seq)
            .where(*conds)
            .order_by(a.c.seq.desc())
            .limit(count + 1)
            .offset(offset)
        ).all()
        if count
        else []
    )
    next_key = None
    if len(rows) > count:
        rows = rows[:count]
        next_key = [rows[-1].seq]
    entries = [
        {
            "fullUrl": f"{ctx.base}/AuditEvent/{r.event_id}",
            "resource": orjson.Fragment(bytes(r.body)),
            "search": {"mode": "match"},
        }
        for r in rows
    ]
    if ignored:
        entries.append(_ignored_outcome(ignored))
    body = _bundle(
        "searchset", total, _cursor_links(ctx, "AuditEvent", used, count, items, next_key), entries
    )
    return Result(
        200,
        body,
        {},
        "E",
        "search-type",
        [f"AuditEvent/{r.event_id}" for r in rows],
        [],
        query=[k for k, _ in items],
    )
