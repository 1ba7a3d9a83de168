"""FHIR R4 search (search.html) turned into SQL over the index tables, tenant filter included.

Supported: token (``system|code``, ``|code``, ``system|``, ``code``; ``:not``; on references
``:identifier``), reference (``Type/id``, ``id``, our absolute URL; ``:Type``; one level of chaining:
``patient.identifier=...``, ``subject:Patient.birthdate=...``), date (prefixes ``eq ne lt le gt ge sa eb``
and ``ap`` read as "overlaps"), string (starts-with, case and accent insensitive; ``:exact``,
``:contains``), ``_id``, ``_lastUpdated``; result parameters ``_count`` (paging by an opaque keyset
``_cursor`` in the ``next`` link, gateway/fhir/cursor.py; ``_offset`` still read), ``_sort``
(``_lastUpdated``, ``_id``, date parameters; ``-`` for descending), ``_include`` / ``_revinclude``
(``Type:param[:Target]``), ``_total`` (``none``/``accurate``),
``_summary=count``. Comma = OR within a parameter, repeating a parameter = AND. An unknown parameter,
modifier or prefix is a 400 with an OperationOutcome (``API-020`` ... ``API-023``): the gateway never
silently ignores a criterion, since that would return more patient data than asked for.

Every chained subquery applies the tenant filter to the chained resource as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, select
from sqlalchemy.sql import Select

from gateway.fhir import cursor
from gateway.fhir.index import MAX_INSTANT, MIN_INSTANT, date_range, fold, parse_reference
from gateway.fhir.outcome import FhirError
from gateway.fhir.resources import RESOURCES, SearchParam
from gateway.schema import idx_date, idx_reference, idx_string, idx_token, resource
from gateway.tenancy import visible

PREFIXES = ("eq", "ne", "lt", "le", "gt", "ge", "sa", "eb", "ap")
IGNORED = {"_format", "_pretty"}
SYSTEM_ALIASES = {
    "http://fhir.nl/fhir/NamingSystem/bsn": "urn:oid:2.16.840.1.113883.2.4.6.3",
    "http://fhir.nl/fhir/NamingSystem/agb-z": "urn:oid:2.16.840.1.113883.2.4.6.1",
    "http://fhir.nl/fhir/NamingSystem/uzi-nr-pers": "urn:oid:2.16.528.1.1007.3.1",
    "http://fhir.nl/fhir/NamingSystem/uzi-nr-sys": "urn:oid:2.16.528.1.1007.3.2",
    "http://fhir.nl/fhir/NamingSystem/ura": "urn:oid:2.16.528.1.1007.3.3",
    "http://fhir.nl/fhir/NamingSystem/big": "urn:oid:2.16.528.1.1007.5.1",
    "http://fhir.nl/fhir/NamingSystem/uzovi": "urn:oid:2.16.840.1.113883.2.4.6.4",
    "http://hl7.org/fhir/sid/icpc-1-nl": "urn:oid:2.16.840.1.113883.2.4.4.31.1",
}
SYSTEM_ALIASES.update({v: k for k, v in list(SYSTEM_ALIASES.items())})


def _bad(code: str, message: str, where: str) -> FhirError:
    return FhirError(400, "invalid" if code != "API-020" else "not-supported", code, message, where)


def split_values(value: str) -> list[str]:
    """Comma-separated alternatives; ``\\,`` is a literal comma (search.html §3.1.1.4.2)."""
    out, cur, i = [], [], 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value) and value[i + 1] in ",$|\\":
            cur.append(value[i + 1])
            i += 2
            continue
        if c == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    out.append("".join(cur))
    return out


def _split_token(value: str) -> tuple[str | None, str | None]:
    """``system|code`` -> (system, code); a missing part is None; ``|code`` gives system ``""``."""
    if "|" not in value:
        return None, value
    system, code = value.split("|", 1)
    return system, (code or None)


@dataclass
class SearchSpec:
    """A parsed search: SQL conditions on ``resource`` plus the result parameters."""

    rtype: str
    conditions: list[ColumnElement] = field(default_factory=list)
    count: int = 50
    offset: int = 0
    keys: list = field(default_factory=list)
    """The sort: (expression, descending) pairs, ``res_id`` last so that the key is unique."""
    cursor: list[str | int] | None = None
    """The sort key of the last row of the previous page (``_cursor``): this page starts after it."""
    includes: list[tuple[str, str | None]] = field(default_factory=list)
    revincludes: list[tuple[str, str, str | None]] = field(default_factory=list)
    total: bool = True
    summary_count: bool = False
    params: list[tuple[str, str]] = field(default_factory=list)
    """The accepted parameters in order (for the self and next links)."""
    ignored: list[str] = field(default_factory=list)
    """Unknown or unsupported parameters left out (lenient handling)."""


class _Builder:
    def __init__(self, orgs: tuple[str, ...], base_url: str):
        self.orgs = orgs
        self.base_url = base_url

    # each method returns a condition on the resource alias ``r`` (a subquery of matching ids)

    def condition(self, r, rtype: str, key: str, value: str, where: str) -> ColumnElement:
        chain = None
        if "." in key:
            key, chain = key.split(".", 1)
        name, _, modifier = key.partition(":")
        if name == "_id":
            if modifier or chain:
                raise _bad("API-022", "_id takes no modifier", where)
            return r.c.res_id.in_(split_values(value))
        if name == "_lastUpdated":
            if modifier or chain:
                raise _bad("API-022", "_lastUpdated takes no modifier", where)
            return or_(
                *[
                    date_clause(r.c.last_updated, r.c.last_updated, v, where, point=True)
                    for v in split_values(value)
                ]
            )
        param = RESOURCES[rtype].params.get(name)
        if param is None:
            raise _bad("API-020", f"{rtype} has no search parameter {name!r} here", where)
        if chain is not None:
            return self._chain(r, rtype, param, modifier, chain, value, where)
        values = split_values(value)
        if param.kind == "token":
            return self._token(r, rtype, param.name, modifier, values, where)
        if param.kind == "reference":
            if modifier == "identifier":
                return self._token(r, rtype, param.name + ":identifier", "", values, where)
            return self._reference(r, rtype, param, modifier, values, where)
        if param.kind == "date":
            if modifier:
                raise _bad("API-022", f"modifier :{modifier} is not supported on dates", where)
            d = idx_date
            alts = [date_clause(d.c.lo, d.c.hi, v, where) for v in values]
            return r.c.res_id.in_(
                select(d.c.res_id).where(d.c.res_type == rtype, d.c.param == param.name, or_(*alts))
            )
        return self._string(r, rtype, param.name, modifier, values, where)

    def _token(
        self, r, rtype: str, pname: str, modifier: str, values: list[str], where: str
    ) -> ColumnElement:
        if modifier not in ("", "not"):
            raise _bad("API-022", f"modifier :{modifier} is not supported on tokens", where)
        t = idx_token
        alts = []
        for v in values:
            system, code = _split_token(v)
            if code is None and not system:
                raise _bad("API-021", "a token needs a code or a system", where)
            parts = []
            if code is not None:
                parts.append(t.c.code == code[:255])
            if system is not None:
                systems = {system[:255]}
                if system in SYSTEM_ALIASES:
                    systems.add(SYSTEM_ALIASES[system])
                parts.append(t.c.system.in_(sorted(systems)))
            alts.append(and_(*parts))
        sub = select(t.c.res_id).where(t.c.res_type == rtype, t.c.param == pname, or_(*alts))
        return r.c.res_id.not_in(sub) if modifier == "not" else r.c.res_id.in_(sub)

    def _targets(self, param: SearchParam, modifier: str, where: str) -> tuple[str, ...]:
        if modifier:
            if modifier not in RESOURCES or (param.targets and modifier not in param.targets):
                raise _bad("API-022", f"modifier :{modifier} is not a target type of {param.name}", where)
            return (modifier,)
        return param.targets

    def _reference(
        self, r, rtype: str, param: SearchParam, modifier: str, values: list[str], where: str
    ) -> ColumnElement:
        targets = self._targets(param, modifier, where)
        ref = idx_reference
        alts = []
        for v in values:
            parsed = parse_reference(v, self.base_url)
            if parsed:
                if targets and parsed[0] not in targets:
                    raise _bad("API-021", f"{param.name} does not refer to {parsed[0]}", where)
                alts.append(and_(ref.c.target_type == parsed[0], ref.c.target_id == parsed[1]))
            elif v and "/" not in v and ":" not in v:
                cond = ref.c.target_id == v
                if len(targets) == 1:
                    cond = and_(cond, ref.c.target_type == targets[0])
                alts.append(cond)
            else:
                raise _bad("API-021", f"{v!r} is not a reference this gateway holds", where)
        return r.c.res_id.in_(
            select(ref.c.res_id).where(ref.c.res_type == rtype, ref.c.param == param.name, or_(*alts))
        )

    def _chain(
        self, r, rtype: str, param: SearchParam, modifier: str, chain: str, value: str, where: str
    ) -> ColumnElement:
        if param.kind != "reference":
            raise _bad("API-022", f"{param.name} is not a reference; it cannot be chained", where)
        if "." in chain:
            raise _bad("API-022", "only one level of chaining is supported", where)
        targets = self._targets(param, modifier, where)
        if len(targets) != 1:
            raise _bad(
                "API-022", f"chaining on {param.name} needs a type modifier ({param.name}:Type.x)", where
            )
        target = targets[0]
        inner = resource.alias()
        inner_ids = select(inner.c.res_id).where(
            inner.c.res_type == target,
            inner.c.deleted == false(),
            visible(inner.c.res_type, inner.c.res_id, self.orgs),
            self.condition(inner, target, chain, value, where),
        )
        ref = idx_reference
        return r.c.res_id.in_(
            select(ref.c.res_id).where(
                ref.c.res_type == rtype,
                ref.c.param == param.name,
                ref.c.target_type == target,
                ref.c.target_id.in_(inner_ids),
            )
        )

    def _string(
        self, r, rtype: str, pname: str, modifier: str, values: list[str], where: str
    ) -> ColumnElement:
        s = idx_string
        alts = []
        for v in values:
            if modifier == "exact":
                alts.append(s.c.exact == v[:200])
            elif modifier in ("", "contains"):
                pattern = fold(v)[:200].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                pattern = ("%" if modifier else "") + pattern + "%"
                alts.append(s.c.folded.like(pattern, escape="\\"))
            else:
                raise _bad("API-022", f"modifier :{modifier} is not supported on strings", where)
        return r.c.res_id.in_(select(s.c.res_id).where(s.c.res_type == rtype, s.c.param == pname, or_(*alts)))


def date_clause(lo, hi, value: str, where: str, point: bool = False) -> ColumnElement:
    """SQL for one date search value (with prefix) against a range ``[lo, hi)`` (or an instant)."""
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    raw = value[2:] if value[:2] in PREFIXES else value
    rng = date_range(raw)
    if rng is None:
        raise _bad("API-021", f"{value!r} is not a FHIR date with an optional prefix", where)
    plo, phi = rng
    if point:  # an instant (_lastUpdated): lo == hi == t
        inside = and_(lo >= plo, lo < phi)
        return {
            "eq": inside,
            "ap": inside,
            "ne": not_(inside),
            "gt": lo >= phi,
            "sa": lo >= phi,
            "lt": lo < plo,
            "eb": lo < plo,
            "ge": lo >= plo,
            "le": lo < phi,
        }[prefix]
    eq = and_(lo >= plo, hi <= phi)
    return {
        "eq": eq,
        "ne": not_(eq),
        "ap": and_(lo < phi, hi > plo),
        "gt": hi > phi,
        "lt": lo < plo,
        "ge": hi > plo,
        "le": lo < phi,
        "sa": lo >= phi,
        "eb": hi <= plo,
    }[prefix]


def _int(value: str, name: str, lo: int, hi: int) -> int:
    try:
        n = int(value)
    except ValueError:
        raise _bad("API-023", f"{name} must be a whole number", name) from None
    if not lo <= n <= hi:
        raise _bad("API-023", f"{name} must lie between {lo} and {hi}", name)
    return n


def parse_search(
    rtype: str,
    items: list[tuple[str, str]],
    *,
    orgs: tuple[str, ...],
    base_url: str,
    page_size: int,
    max_page_size: int,
    strict: bool = False,
    alias=None,
) -> SearchSpec:
    """Parse the query parameters of ``GET [base]/[type]?...`` into a :class:`SearchSpec`.

    An unknown parameter or an unsupported modifier is ignored (FHIR R4 search.html §3.1.1.4: "servers
    SHOULD ignore unknown or unsupported parameters"), left out of the self link and named in
    ``spec.ignored``; with ``strict`` (``Prefer: handling=strict``) it is a 400. A bad *value* of a
    supported parameter is always a 400.
    """
    r = alias if alias is not None else resource
    spec = SearchSpec(rtype, count=page_size)
    builder = _Builder(orgs, base_url)
    raw_cursor: str | None = None
    for key, value in items:
        if key in IGNORED:
            continue
        if key == "_cursor":
            raw_cursor = value
            continue
        try:
            _accept(spec, builder, r, rtype, key, value, max_page_size)
            spec.params.append((key, value))
        except FhirError as exc:
            if strict or exc.code not in ("API-020", "API-022"):
                raise
            spec.ignored.append(key)
    if spec.summary_count:
        spec.count = 0
    if not spec.keys:
        spec.keys = [(r.c.last_updated, False), (r.c.res_id, False)]
    if raw_cursor is not None:
        spec.cursor = cursor.decode(raw_cursor, len(spec.keys))
    return spec


def _accept(
    spec: SearchSpec, builder: _Builder, r, rtype: str, key: str, value: str, max_page_size: int
) -> None:
    """Apply one query parameter to ``spec``; raise FhirError when it cannot be applied."""
    where = key
    if key == "_count":
        spec.count = _int(value, "_count", 0, max_page_size)
    elif key == "_offset":
        spec.offset = _int(value, "_offset", 0, 10_000_000)
    elif key == "_total":
        if value not in ("none", "estimate", "accurate"):
            raise _bad("API-023", "_total is none, estimate or accurate", where)
        spec.total = value != "none"
    elif key == "_summary":
        if value != "count":
            raise _bad("API-020", "only _summary=count is supported", where)
        spec.summary_count = True
    elif key == "_sort":
        spec.keys = _sort(r, rtype, value)
    elif key == "_include":
        spec.includes.append(_include(rtype, value))
    elif key == "_revinclude":
        spec.revincludes.append(_revinclude(rtype, value))
    elif not value:
        raise _bad("API-021", f"parameter {key} has no value", where)
    else:
        spec.conditions.append(builder.condition(r, rtype, key, value, where))


def condition_for(rtype: str, items: list[tuple[str, str]], *, orgs: tuple[str, ...], base_url: str) -> list:
    """Only the criteria of a query (conditional create/update/delete); result parameters are refused."""
    builder = _Builder(orgs, base_url)
    out = []
    for key, value in items:
        if key.startswith("_") and key not in ("_id", "_lastUpdated"):
            raise _bad("API-034", f"{key} is not a criterion", key)
        if not value:
            raise _bad("API-034", f"parameter {key} has no value", key)
        out.append(builder.condition(resource, rtype, key, value, key))
    if not out:
        raise _bad("API-034", "a conditional operation needs at least one criterion", "criteria")
    return out


def _sort(r, rtype: str, value: str) -> list[tuple]:
    order: list[tuple] = []
    for part in value.split(","):
        desc = part.startswith("-")
        name = part[1:] if desc else part
        if name == "_lastUpdated":
            col = r.c.last_updated
        elif name == "_id":
            col = r.c.res_id
        else:
            param = RESOURCES[rtype].params.get(name)
            if param is None or param.kind != "date":
                raise _bad(
                    "API-023", f"_sort supports _lastUpdated, _id and date parameters, not {name!r}", "_sort"
                )
            d = idx_date
            agg = func.max(d.c.hi) if desc else func.min(d.c.lo)
            col = func.coalesce(
                select(agg)
                .where(d.c.res_type == rtype, d.c.res_id == r.c.res_id, d.c.param == name)
                .scalar_subquery(),
                MIN_INSTANT if desc else MAX_INSTANT,
            )
        order.append((col, desc))
    order.append((r.c.res_id, False))
    return order


def _include(rtype: str, value: str) -> tuple[str, str | None]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[0] != rtype:
        raise _bad("API-023", f"_include must be {rtype}:<param>[:<Type>]", "_include")
    param = RESOURCES[rtype].params.get(parts[1])
    if param is None or param.kind != "reference":
        raise _bad("API-023", f"{parts[1]!r} is not a reference parameter of {rtype}", "_include")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and (target not in RESOURCES or (param.targets and target not in param.targets)):
        raise _bad("API-023", f"{target!r} is not a target of {rtype}:{parts[1]}", "_include")
    return param.name, target


def _revinclude(rtype: str, value: str) -> tuple[str, str, str | None]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[0] not in RESOURCES:
        raise _bad("API-023", "_revinclude must be <Type>:<param>[:<Type>]", "_revinclude")
    param = RESOURCES[parts[0]].params.get(parts[1])
    if param is None or param.kind != "reference":
        raise _bad("API-023", f"{parts[1]!r} is not a reference parameter of {parts[0]}", "_revinclude")
    target = parts[2] if len(parts) == 3 else None
    if target is not None and target != rtype:
        raise _bad("API-023", f"_revinclude target must be {rtype}", "_revinclude")
    if param.targets and rtype not in param.targets:
        raise _bad("API-023", f"{parts[0]}:{parts[1]} does not refer to {rtype}", "_revinclude")
    return parts[0], param.name, target


def base_query(rtype: str, orgs: tuple[str, ...], conditions: list, alias=None) -> Select:
    """The ids of the current, visible resources of a type that meet every condition."""
    r = alias if alias is not None else resource
    return select(r.c.res_id).where(
        r.c.res_type == rtype, r.c.deleted == false(), visible(r.c.res_type, r.c.res_id, orgs), *conditions
    )
