"""DET (date and time): ``DET:<n>+<YY>:<MM>:<DD>+<HH>:<MM>'`` (``docs/dialects/edifact.md`` §4).

MEDVRI: the letter's date; MEDLAB: the observation time of report ``n``. Two-digit years as Dutch
senders write them (00-69 = 20xx); a four-digit year is read too. Minutes are the finest grain.
"""

from __future__ import annotations

import datetime as dt

from mappings.edifact.common import date_parts, read_date, read_time, time_parts, warn_unread
from mappings.edifact.syntax import Segment, Writer
from mappings.problems import ProblemSink


def from_segment(seg: Segment, sink: ProblemSink) -> dt.datetime | None:
    warn_unread(seg, {1, 2}, sink)
    d = read_date(seg, 1, sink)  # DET-1
    t = read_time(seg, 2, sink)  # DET-2
    if d is None:
        return None
    return dt.datetime.combine(d, t or dt.time())


def to_segment(w: Writer, moment: dt.datetime, number: int = 1) -> str:
    return w.segment("DET", date_parts(moment.date(), False), time_parts(moment), numbers=(str(number),))
