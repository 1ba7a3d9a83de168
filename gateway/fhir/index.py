"""Search index rows extracted from a resource at write time (FHIR R4 search.html §3.1.1, parameter types).

Four kinds, one table each (``gateway/schema.py``):

- token: ``(system, code)`` from Identifier, CodeableConcept, Coding, code, boolean;
- reference: ``(target_type, target_id)`` from a relative or our own absolute reference; a logical
  reference by identifier (``Reference.identifier``) becomes a token row of ``<param>:identifier``;
- date: the instant range ``[lo, hi)`` a date, dateTime, instant or Period covers, in UTC, as
  fixed-width ISO strings (they sort as text on every database);
- string: the value case- and accent-folded (FHIR string search is case and accent insensitive,
  "starts with" by default) next to the exact text (``:exact``).

A date without a time zone is read in the gateway's zone (Europe/Amsterdam): FHIR leaves it to the server.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from gateway.fhir.resources import RESOURCES, SearchParam

ZONE = ZoneInfo("Europe/Amsterdam")
MIN_INSTANT = "0001-01-01T00:00:00.000000"
MAX_INSTANT = "9999-12-31T23:59:59.999999"
_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def fold(text: str) -> str:
    """Case and accent folding for string search (``"Özdemir"`` -> ``"ozdemir"``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def date_range(value: str) -> tuple[str, str] | None:
    """The UTC range ``[lo, hi)`` a FHIR date/dateTime/instant covers; ``None`` if it is not one."""
    m = _DATE_RE.match(value)
    if not m:
        return None
    try:
        y = int(m["y"])
        if m["m"] is None:
            start, end = dt.datetime(y, 1, 1), (dt.datetime(y + 1, 1, 1) if y < 9999 else None)
        elif m["d"] is None:
            mo = int(m["m"])
            start = dt.datetime(y, mo, 1)
            end = dt.datetime(y + (mo == 12), mo % 12 + 1, 1) if (y, mo) != (9999, 12) else None
        elif m["H"] is None:
            start = dt.datetime(y, int(m["m"]), int(m["d"]))
            end = start + dt.timedelta(days=1) if start.date() < dt.date.max else None
        else:
            frac = (m["f"] or "")[:6].ljust(6, "0")
            start = dt.datetime(
                y, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), int(m["S"] or 0), int(frac)
            )
            if m["S"] is None:
                step = dt.timedelta(minutes=1)
            elif m["f"] is None:
                step = dt.timedelta(seconds=1)
            else:
                step = dt.timedelta(microseconds=1)
            end = start + step
            if m["tz"]:
                tz = (
                    dt.UTC
                    if m["tz"] == "Z"
                    else dt.timezone(
                        (1 if m["tz"][0] == "+" else -1)
                        * dt.timedelta(hours=int(m["tz"][1:3]), minutes=int(m["tz"][4:6]))
                    )
                )
                return _utc(start.replace(tzinfo=tz)), _utc(end.replace(tzinfo=tz))
    except (ValueError, OverflowError):
        return None
    lo = _utc(start.replace(tzinfo=ZONE)) if start.year > 1 else MIN_INSTANT
    hi = _utc(end.replace(tzinfo=ZONE)) if end is not None and end.year < 9999 else MAX_INSTANT
    return lo, hi


def walk(node: Any, path: str) -> Iterator[Any]:
    """Every value at a dotted element path; lists are flattened; ``x[x]`` expands choice elements."""
    parts = path.split(".")

    def step(value: Any, i: int) -> Iterator[Any]:
        if isinstance(value, list):
            for item in value:
                yield from step(item, i)
            return
        if i == len(parts):
            yield value
            return
        if not isinstance(value, dict):
            return
        name = parts[i]
        if name.endswith("[x]"):
            stem = name[:-3]
            for key, child in value.items():
                if key.startswith(stem) and key[len(stem) : len(stem) + 1].isupper():
                    yield from step(child, i + 1)
        elif name in value:
            yield from step(value[name], i + 1)

    yield from step(node, 0)


def parse_reference(ref: str, base_url: str) -> tuple[str, str] | None:
    """``"Patient/12"`` or ``"<base>/Patient/12[/_history/3]"`` -> ``("Patient", "12")``; others None."""
    if base_url and ref.startswith(base_url + "/"):
        ref = ref[len(base_url) + 1 :]
    parts = ref.split("/")
    if (
        len(parts) in (2, 4)
        and parts[0] in RESOURCES
        and parts[1]
        and (len(parts) == 2 or parts[2] == "_history")
    ):
        return parts[0], parts[1]
    return None


class Rows:
    """The index rows of one resource, grouped by table."""

    __slots__ = ("token", "reference", "date", "string")

    def __init__(self) -> None:
        self.token: set[tuple[str, str, str]] = set()  # (param, system, code)
        self.reference: set[tuple[str, str, str]] = set()  # (param, target_type, target_id)
        self.date: set[tuple[str, str, str]] = set()  # (param, lo, hi)
        self.string: set[tuple[str, str, str]] = set()  # (param, folded, exact)


def _tokens(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, bool):
        yield "", "true" if value else "false"
    elif isinstance(value, str):
        yield "", value
    elif isinstance(value, dict):
        if "coding" in value:
            for c in value.get("coding") or ():
                if isinstance(c, dict) and isinstance(c.get("code"), str):
                    yield str(c.get("system") or ""), c["code"]
        elif isinstance(value.get("value"), str):  # Identifier
            yield str(value.get("system") or ""), value["value"]
        elif isinstance(value.get("code"), str):  # Coding
            yield str(value.get("system") or ""), value["code"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in (
            "text",
            "family",
            "given",
            "prefix",
            "suffix",
            "line",
            "city",
            "district",
            "postalCode",
            "country",
        ):
            v = value.get(key)
            for s in v if isinstance(v, list) else [v]:
                if isinstance(s, str):
                    yield s


def _dates(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        r = date_range(value)
        if r:
            yield r
    elif isinstance(value, dict) and ("start" in value or "end" in value):  # Period; open ends are unbounded
        start = date_range(value["start"]) if isinstance(value.get("start"), str) else None
        end = date_range(value["end"]) if isinstance(value.get("end"), str) else None
        yield (start[0] if start else MIN_INSTANT), (end[1] if end else MAX_INSTANT)


def index_param(rows: Rows, param: SearchParam, resource: dict, base_url: str) -> None:
    """Add the rows of one search parameter."""
    for path in param.paths:
        for value in walk(resource, path):
            if param.kind == "token":
                for system, code in _tokens(value):
                    rows.token.add((param.name, system[:255], code[:255]))
            elif param.kind == "reference":
                if not isinstance(value, dict):
                    continue
                ref = value.get("reference")
                if isinstance(ref, str):
                    target = parse_reference(ref, base_url)
                    if target and (not param.targets or target[0] in param.targets):
                        rows.reference.add((param.name, *target))
                ident = value.get("identifier")
                if isinstance(ident, dict) and isinstance(ident.get("value"), str):
                    rows.token.add(
                        (
                            param.name + ":identifier",
                            str(ident.get("system") or "")[:255],
                            ident["value"][:255],
                        )
                    )
            elif param.kind == "date":
                for lo, hi in _dates(value):
                    rows.date.add((param.name, lo, hi))
            else:
                for s in _strings(value):
                    rows.string.add((param.name, fold(s)[:200], s[:200]))


def index_rows(resource: dict, base_url: str) -> Rows:
    """Every search index row of a resource (its type's parameters, ``gateway/fhir/resources.py``)."""
    rows = Rows()
    for param in RESOURCES[resource["resourceType"]].params.values():
        index_param(rows, param, resource, base_url)
    return rows
