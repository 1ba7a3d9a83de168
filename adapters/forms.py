"""Value forms the line and XML dialects share: basic ISO 8601 dates and moments, exact decimals.

``YYYYMMDD`` dates and ``YYYYMMDDHHMMSS`` moments (practice wall-clock time) are parsed by the C-level
``fromisoformat`` (Python 3.11 accepts the basic format): ``strptime`` costs about 5 us a call and a
typical dossier has 2,800 of them. Each parser raises ``ValueError`` for anything else.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation

_from_iso_date = dt.date.fromisoformat
_from_iso_moment = dt.datetime.fromisoformat


def basic_date(raw: str) -> dt.date:
    """``YYYYMMDD`` -> date; ValueError otherwise."""
    if len(raw) != 8 or not raw.isdigit():
        raise ValueError(raw)
    return _from_iso_date(raw)


def basic_moment(raw: str) -> dt.datetime:
    """``YYYYMMDDHHMMSS`` -> naive datetime; ValueError otherwise."""
    if len(raw) != 14 or not raw.isdigit():
        raise ValueError(raw)
    return _from_iso_moment(raw[:8] + "T" + raw[8:])


def exact_decimal(raw: str) -> Decimal:
    """A finite decimal written without surrounding space, digits kept as written; ValueError otherwise."""
    try:
        number = Decimal(raw)
    except InvalidOperation:
        raise ValueError(raw) from None
    if not number.is_finite() or raw.strip() != raw:
        raise ValueError(raw)
    return number


def format_date(value: dt.date) -> str:
    """date -> ``YYYYMMDD``, always four year digits (strftime writes year 999 as ``9990102``)."""
    return value.isoformat().replace("-", "")


def format_moment(value: dt.datetime) -> str:
    """whole-second naive datetime -> ``YYYYMMDDHHMMSS``, always four year digits."""
    return value.isoformat().replace("-", "").replace(":", "").replace("T", "")
