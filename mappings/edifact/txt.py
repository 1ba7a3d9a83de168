"""TXT (free text): ``TXT:<n>+<line>'``, one line of at most ``MAX_LINE`` characters per segment.

Reading: each TXT is one line, joined with ``\\n``; an empty TXT is an empty line. Writing: each line
of the text; a line longer than the limit is wrapped **without losing a character**: it is broken after
the last space within the limit (the space stays at the end of the first part, nothing is trimmed) or,
with no space, hard at the limit. ``"".join(wrap(line)) == line`` always holds (a property test checks
it). The same wrapping serves OPB comment lines (``docs/dialects/edifact.md`` §5).
"""

from __future__ import annotations

from mappings.edifact.common import warn_unread
from mappings.edifact.syntax import Segment, Writer
from mappings.problems import ProblemSink

MAX_LINE = 70
"""TXT and OPB text: an..70 (the limit Dutch MEDVRI/MEDLAB writers keep to)."""


def wrap(line: str, limit: int = MAX_LINE) -> list[str]:
    """``line`` in parts of at most ``limit`` characters whose concatenation is ``line``."""
    if len(line) <= limit:
        return [line]
    parts: list[str] = []
    rest = line
    while len(rest) > limit:
        cut = rest.rfind(" ", 0, limit)
        cut = cut + 1 if cut > 0 else limit
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        parts.append(rest)
    return parts


def lines_of(text: str, limit: int = MAX_LINE) -> list[str]:
    """Every line of ``text`` (``\\n``, ``\\r\\n`` and ``\\r`` end a line), wrapped."""
    out: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        out.extend(wrap(line, limit))
    return out


def from_segment(seg: Segment, sink: ProblemSink, limit: int = MAX_LINE) -> str:
    warn_unread(seg, {1}, sink)
    text = seg.get(1)
    if len(seg.elements) >= 1 and len(seg.elements[0]) > 1:
        text = ":".join(seg.elements[0])  # a component separator in text that was not released: keep it
        sink.warning("EDI-015", seg.loc(1), "an unreleased ':' in text: read as a character")
    if len(text) > limit:
        sink.warning(
            "EDI-016", seg.loc(1), f"a line of {len(text)} characters; the limit is {limit}: kept whole"
        )
    return text


def to_segments(w: Writer, text: str, tag: str = "TXT", prefix: tuple[str, ...] = ()) -> list[str]:
    """One segment per (wrapped) line, numbered from 1 after ``prefix``."""
    return [w.segment(tag, line, numbers=(*prefix, str(i))) for i, line in enumerate(lines_of(text), 1)]
