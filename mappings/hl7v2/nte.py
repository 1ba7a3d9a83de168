"""NTE (HL7 v2.5 §2.15.10): free text, one NTE per line of the text (NTE-3 comment, FT).

A text is split on ``\\n`` into lines, each line one NTE (a CR of a CRLF stays in its line as ``\\X0D\\``),
so any text round-trips exactly; several NTE-3 repetitions in one segment are lines too.
"""

from __future__ import annotations

from mappings.hl7v2.er7 import FieldValue, Segment
from mappings.hl7v2.trace import warn_unread
from mappings.problems import ProblemSink

READ = frozenset({1, 2, 3})


def lines_from(segments: list[Segment], sink: ProblemSink) -> str | None:
    """The text of consecutive NTE segments (``None`` when there are none)."""
    if not segments:
        return None
    lines: list[str] = []
    for seg in segments:
        warn_unread(seg, READ, sink)
        reps = seg.reps(3) or [""]
        lines.extend(seg.codec.decode(r, seg.loc(3, i)) for i, r in enumerate(reps, 1))
    return "\n".join(lines)


def to_segments(text: str, source: str = "L") -> list[tuple[str, list[FieldValue]]]:
    return [("NTE", [str(i), source, line]) for i, line in enumerate(text.split("\n"), 1)]
