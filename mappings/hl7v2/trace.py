"""The trace of input nothing consumed (after Microsoft FHIR-Converter's unused-segment report).

Every ``from_segment`` names the fields it reads; a valued field outside that set is reported as a
warning (``HL7-053``) and a segment no mapping of the message reads as ``HL7-054``, so nothing a sender
put in a message is dropped silently. The warnings travel back to the sender as ERR segments with
severity ``W`` next to an ``AA``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from mappings.hl7v2.er7 import Segment
from mappings.problems import ProblemSink


def warn_unread(
    seg: Segment, read: frozenset[int], sink: ProblemSink, listed: frozenset[int] = frozenset()
) -> None:
    """``HL7-053`` for every valued field of ``seg`` not in ``read`` (the explicit null ``""`` counts as
    empty): an error, so the message is refused, unless the field is in ``listed`` (deliberately not
    mapped: reported as information ``HL7-060``, once per segment)."""
    fields = seg.fields
    skipped: list[int] = []
    for n in _unread(read, len(fields), 3 if fields[0] == "MSH" else 1):
        f = fields[n]
        if f and f != '""':
            if n in listed:
                skipped.append(n)
            elif listed:
                sink.error(
                    "HL7-053",
                    seg.loc(n),
                    f"{seg.fields[0]}-{n} is not mapped by the gateway; the message is refused rather than "
                    "accepted without it",
                )
            else:
                sink.warning(
                    "HL7-053",
                    seg.loc(n),
                    f"{seg.fields[0]}-{n} is not read by the gateway; its value is not kept",
                )
    if skipped:
        sink.info(
            "HL7-060",
            seg.loc(),
            "not mapped by design: " + ", ".join(f"{fields[0]}-{n}" for n in skipped),
        )


@lru_cache(maxsize=512)
def _unread(read: frozenset[int], count: int, start: int) -> tuple[int, ...]:
    """The field numbers from ``start`` below ``count`` not in ``read`` (looked at for every segment of
    every message: the loop over only these is 2 us less a message than one over every field)."""
    return tuple(n for n in range(start, count) if n not in read)


def warn_unread_segments(segments: Iterable[Segment], sink: ProblemSink) -> None:
    """``HL7-054`` for each segment the message mapping did not consume."""
    for seg in segments:
        sink.warning("HL7-054", seg.loc(), f"segment {seg.fields[0]} is not read by the gateway; not kept")
