"""Keyset paging cursors (FHIR R4 http.html §3.1.0.3 "Paging": the server chooses the form of the
``next`` link; here an opaque ``_cursor``).

A page ends at a row whose sort key is ``(k1, ..., kn)`` (the search's sort columns, ``res_id`` last,
so the key is unique). The next page is "every row sorting after that key", evaluated afresh: rows
inserted or deleted between pages move no other row, so paging never skips or repeats a row that
existed throughout (an ``OFFSET`` shifts by one for each row deleted before it). The cursor is the key,
JSON in URL-safe base64; it carries no authority: the tenant filter and criteria of the request apply
to every page, so a forged cursor only moves the start of the caller's own result.
"""

from __future__ import annotations

import base64
import binascii

import orjson
from sqlalchemy import ColumnElement, and_, or_

from gateway.fhir.outcome import FhirError

MAX_CURSOR = 2048
"""Longest ``_cursor`` accepted (characters): a key of a few instants and ids is far shorter."""


def encode(values: list[str | int]) -> str:
    """The ``_cursor`` text for a sort key."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode("ascii").rstrip("=")


def decode(text: str, width: int, name: str = "_cursor") -> list[str | int]:
    """The sort key in ``text``; a 400 (``API-023``) unless it is a list of ``width`` strings or ints."""
    bad = FhirError(
        400, "invalid", "API-023", f"{name} is not a cursor this server gave for this search", name
    )
    if not text or len(text) > MAX_CURSOR:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise bad from None
    if (
        not isinstance(values, list)
        or len(values) != width
        or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values)
    ):
        raise bad
    return values


def after(keys: list[tuple[ColumnElement, bool]], values: list[str | int]) -> ColumnElement[bool]:
    """Rows sorting strictly after ``values`` in the order ``keys`` (expression, descending):
    ``k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...`` (``<`` for a descending key)."""
    alternatives = []
    for i, (expr, desc) in enumerate(keys):
        equal = [k == v for (k, _), v in zip(keys[:i], values[:i], strict=True)]
        beyond = expr < values[i] if desc else expr > values[i]
        alternatives.append(and_(*equal, beyond))
    return or_(*alternatives)
