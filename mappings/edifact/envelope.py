"""UNB <-> :class:`~mappings.edifact.canonical.Envelope` and a new envelope for outbound interchanges."""

from __future__ import annotations

import datetime as dt

from mappings.edifact.canonical import Envelope
from mappings.edifact.syntax import DEFAULT_CHARS, Interchange, ServiceChars


def from_interchange(ic: Interchange) -> Envelope:
    return Envelope(
        syntax=ic.syntax,
        syntax_version=ic.syntax_version,
        sender=ic.sender,
        recipient=ic.recipient,
        prepared_date=ic.prepared_date,
        prepared_time=ic.prepared_time,
        reference=ic.reference,
        sender_qualifier=ic.sender_qualifier,
        recipient_qualifier=ic.recipient_qualifier,
        application=ic.application,
        test=ic.test,
        una=None if ic.chars is None else ic.chars.una()[3:],
        newline=ic.newline,
    )


def chars_of(env: Envelope) -> ServiceChars:
    if env.una is None or len(env.una) != 6:
        return DEFAULT_CHARS
    u = env.una
    return ServiceChars(u[0], u[1], u[2], u[3], u[4], u[5])


def to_interchange(env: Envelope) -> Interchange:
    return Interchange(
        syntax=env.syntax,
        syntax_version=env.syntax_version,
        sender=env.sender,
        recipient=env.recipient,
        prepared_date=env.prepared_date,
        prepared_time=env.prepared_time,
        reference=env.reference,
        sender_qualifier=env.sender_qualifier,
        recipient_qualifier=env.recipient_qualifier,
        application=env.application,
        test=env.test,
        chars=None if env.una is None else chars_of(env),
        newline=env.newline,
    )


def prepared(env: Envelope) -> dt.datetime | None:
    """UNB-4 as a moment (``None`` when it is not ``YYMMDD`` + ``HHMM``)."""
    try:
        d, t = env.prepared_date, env.prepared_time
        year = int(d[:2]) + (2000 if int(d[:2]) < 70 else 1900) if len(d) == 6 else int(d[:4])
        rest = d[2:] if len(d) == 6 else d[4:]
        return dt.datetime(year, int(rest[:2]), int(rest[2:4]), int(t[:2] or 0), int(t[2:4] or 0))
    except (ValueError, IndexError, OverflowError):
        return None


def new(sender: str, recipient: str, reference: str, now: dt.datetime, syntax: str = "UNOC") -> Envelope:
    """An outbound envelope: UNA written, syntax UNOC version 1 (ISO 8859-1), segments ended by CR LF."""
    return Envelope(
        syntax=syntax,
        syntax_version="1",
        sender=sender,
        recipient=recipient,
        prepared_date=now.strftime("%y%m%d"),
        prepared_time=now.strftime("%H%M"),
        reference=reference,
        una=DEFAULT_CHARS.una()[3:],
        newline="\r\n",
    )
