"""What the segment modules share: unread-element warnings and dates (``docs/dialects/edifact.md`` §3)."""

from __future__ import annotations

import datetime as dt
import re

from mappings.edifact.syntax import Segment
from mappings.problems import ProblemSink

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.\-_:]")


def safe_id(text: str) -> str:
    """A local id (``[A-Za-z0-9.-_:]{1,64}``) made from message values."""
    return _ID_UNSAFE.sub("-", text)[:64] or "edi"


def warn_unread(seg: Segment, read: set[int], sink: ProblemSink, why: str = "") -> None:
    """``EDI-014`` for every non-empty element outside ``read``: the gateway does not keep it."""
    for e, comps in enumerate(seg.elements, 1):
        if e not in read and any(comps):
            sink.warning(
                "EDI-014",
                seg.loc(e),
                f"element {e} of {seg.tag} is not kept{': ' + why if why else ''} ({':'.join(comps)[:30]!r})",
            )


def warn_unread_components(seg: Segment, e: int, read: set[int], sink: ProblemSink) -> None:
    if e > len(seg.elements):
        return
    for c, text in enumerate(seg.elements[e - 1], 1):
        if c not in read and text:
            sink.warning("EDI-014", seg.loc(e, c), f"component {c} of {seg.tag} element {e} is not kept")


def year(text: str) -> int | None:
    """A 4-digit year, or a 2-digit one: 00-69 is 20xx, 70-99 19xx (the writer always writes 2 digits
    where Dutch medical Edifact does)."""
    if not text.isdigit() or not text.isascii():
        return None
    if len(text) == 4:
        return int(text)
    if len(text) == 2:
        y = int(text)
        return 2000 + y if y < 70 else 1900 + y
    return None


def read_date(seg: Segment, e: int, sink: ProblemSink) -> dt.date | None:
    """Element ``e`` as ``Y:M:D`` (components); ``EDI-020`` when it is not a date."""
    y, mo, d = year(seg.get(e, 1)), seg.get(e, 2), seg.get(e, 3)
    try:
        if y is None or not (mo.isdigit() and d.isdigit()):
            raise ValueError
        return dt.date(y, int(mo), int(d))
    except (ValueError, OverflowError):
        sink.error(
            "EDI-020",
            seg.loc(e),
            f"{':'.join(seg.elements[e - 1]) if e <= len(seg.elements) else ''!r} is not a date Y:M:D",
        )
        return None


def read_time(seg: Segment, e: int, sink: ProblemSink) -> dt.time | None:
    """Element ``e`` as ``HH:MM`` (components); absent is midnight-free ``None``."""
    h, mi = seg.get(e, 1), seg.get(e, 2)
    if not h and not mi:
        return None
    try:
        if not (h.isdigit() and mi.isdigit()):
            raise ValueError
        return dt.time(int(h), int(mi))
    except (ValueError, OverflowError):
        sink.error("EDI-020", seg.loc(e), f"{h}:{mi} is not a time HH:MM")
        return None


def date_parts(d: dt.date, four: bool) -> tuple[str, str, str]:
    return (f"{d.year:04d}" if four else f"{d.year % 100:02d}", f"{d.month:02d}", f"{d.day:02d}")


def time_parts(t: dt.datetime) -> tuple[str, str]:
    return (f"{t.hour:02d}", f"{t.minute:02d}")
