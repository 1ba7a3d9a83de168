"""Deadlines: the clock, answer terms per specialism and working-day calendars (DOMAIN.md §2, §3).

- The answer to a consult is due 48 hours after it was sent, unless the specialism has its own term
  (``config.toml``): ``hours`` count elapsed time, so 48 h across a DST change are 48 real hours and the
  wall-clock time moves by one hour; ``working_days`` keep the Europe/Amsterdam wall-clock time and count
  Monday to Friday minus the public holidays (a consult sent on Saturday with one working day is due on
  Monday at the time it was sent). A wall-clock time that does not exist on the due day (02:30 on the
  last Sunday of March) is moved forward by the gap, as ``zoneinfo`` resolves it.
- Public holidays come from the kept ``holidays`` library (python-holidays, country ``NL``: New Year,
  Easter and Easter Monday, King's Day, Liberation Day, Ascension, Whit Monday, Christmas), not a hand
  list: :class:`Holidays`; ``config.toml`` may leave some out (Good Friday is no general day off) and add
  regional ones.
- Conversation replies are due after the subject's term (Medicatie 24 h, the others 48 h).
- The clock is injectable: every function takes the time it works with; the service holds a
  :class:`Clock` that tests replace with a :class:`FixedClock`.

Times are timezone-aware ``datetime`` values; the database holds UTC as ``YYYY-MM-DDTHH:MM:SS.ffffff``.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays as holiday_library

CONFIG_PATH = Path(__file__).with_name("config.toml")
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


class Clock(Protocol):
    """Where the workflow gets the time from (:class:`SystemClock`, or :class:`FixedClock` in tests)."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The real time (UTC)."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


@dataclass
class FixedClock:
    """A clock that stands still until moved (tests, rehearsals)."""

    at: dt.datetime

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, **delta: float) -> dt.datetime:
        self.at = self.at + dt.timedelta(**delta)
        return self.at

    def set(self, at: dt.datetime) -> None:
        self.at = at


@dataclass(frozen=True)
class Term:
    """An answer term: elapsed ``hours`` or ``working_days`` (exactly one)."""

    hours: float | None = 48
    working_days: int | None = None

    def __post_init__(self) -> None:
        if (self.hours is None) == (self.working_days is None):
            raise ValueError("a term is either hours or working_days")


class Holidays:
    """The public holidays of a country from python-holidays, minus the names left out, plus extra dates.

    ``day in Holidays()`` answers for any year: the library computes Easter and the days that move with it.
    """

    def __init__(
        self, country: str = "NL", *, leave_out: Iterable[str] = (), extra: Iterable[dt.date] = ()
    ) -> None:
        self.country = country
        self._calendar = holiday_library.country_holidays(country)
        self._leave_out = frozenset(leave_out)
        self._extra = frozenset(extra)

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, dt.date):
            return False
        if day in self._extra:
            return True
        names = self._calendar.get_list(day)
        return any(n not in self._leave_out for n in names)

    def name(self, day: dt.date) -> str | None:
        """The holiday's (English) name, or None on an ordinary day."""
        return "; ".join(self._calendar.get_list(day)) or ("extra" if day in self._extra else None)


@dataclass(frozen=True)
class ConsultConfig:
    """``config.toml`` read once: terms, attachments, subjects, tariffs, holidays."""

    timezone: ZoneInfo = AMSTERDAM
    default: Term = Term()
    specialisms: dict[str, dict] = field(default_factory=dict)
    subjects: dict[str, float] = field(default_factory=dict)
    tariffs: dict[str, dict] = field(default_factory=dict)
    holidays: Container[dt.date] = field(default_factory=Holidays)

    def term(self, specialism: str | None) -> Term:
        """The answer term of a specialism (by HealthcareService name), else the default."""
        spec = self.specialisms.get(specialism or "", {})
        if "working_days" in spec:
            return Term(hours=None, working_days=int(spec["working_days"]))
        if "hours" in spec:
            return Term(hours=float(spec["hours"]))
        return self.default

    def required_attachment(self, specialism: str | None) -> str | None:
        """The attachment a specialism needs (the family form for clinical genetics subspecialisms)."""
        return self.specialisms.get(specialism or "", {}).get("requires_attachment")


def _term(raw: dict) -> Term:
    if "working_days" in raw:
        return Term(hours=None, working_days=int(raw["working_days"]))
    return Term(hours=float(raw.get("hours", 48)))


@cache
def load_config(path: Path = CONFIG_PATH) -> ConsultConfig:
    """Read and check the consult configuration (cached per path)."""
    raw = tomllib.loads(path.read_text("utf-8"))
    return ConsultConfig(
        timezone=ZoneInfo(raw.get("timezone", "Europe/Amsterdam")),
        default=_term(raw.get("default", {})),
        specialisms=dict(raw.get("specialism", {})),
        subjects={k: float(v) for k, v in raw.get("subjects", {}).items()},
        tariffs=dict(raw.get("tariffs", {})),
        holidays=Holidays(
            raw.get("holidays", {}).get("country", "NL"),
            leave_out=raw.get("holidays", {}).get("leave_out", []),
            extra=[dt.date.fromisoformat(d) for d in raw.get("holidays", {}).get("extra", [])],
        ),
    )


def is_working_day(day: dt.date, holidays: Container[dt.date] = frozenset()) -> bool:
    """Monday to Friday and not a public holiday."""
    return day.weekday() < 5 and day not in holidays


def due_time(
    sent: dt.datetime, term: Term, *, tz: ZoneInfo = AMSTERDAM, holidays: Container[dt.date] = frozenset()
) -> dt.datetime:
    """When the answer to something sent at ``sent`` is due (UTC)."""
    if sent.tzinfo is None:
        raise ValueError("sent must be timezone-aware")
    if term.hours is not None:
        # in UTC: aware arithmetic in a local zone would add wall-clock hours, not elapsed ones
        return sent.astimezone(dt.UTC) + dt.timedelta(hours=term.hours)
    local = sent.astimezone(tz)
    day, counted = local.date(), 0
    while counted < (term.working_days or 0):
        day += dt.timedelta(days=1)
        if is_working_day(day, holidays):
            counted += 1
    wall = dt.datetime.combine(day, local.time().replace(tzinfo=None))
    # a wall-clock time in the spring-forward gap: zoneinfo reads it with the offset before the change,
    # which lands one hour later in real time (02:30 -> 03:30 CEST)
    return wall.replace(tzinfo=tz).astimezone(dt.UTC)


def reply_due(sent: dt.datetime, subject: str, config: ConsultConfig | None = None) -> dt.datetime:
    """When a reply in a conversation about ``subject`` is due (Medicatie 24 h, others 48 h)."""
    cfg = config or load_config()
    hours = cfg.subjects.get(subject)
    if hours is None:
        raise KeyError(subject)
    return sent.astimezone(dt.UTC) + dt.timedelta(hours=hours)


def column(t: dt.datetime) -> str:
    """A timezone-aware time as the database column (UTC, microseconds)."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def from_column(value: str) -> dt.datetime:
    """The timezone-aware UTC time of a database column."""
    return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)


def fhir_instant(t: dt.datetime) -> str:
    """A FHIR instant in UTC with milliseconds."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def quarter_of(t: dt.datetime, tz: ZoneInfo = AMSTERDAM) -> str:
    """The calendar quarter (``2026Q3``) a moment falls in, in Dutch local time."""
    local = t.astimezone(tz)
    return f"{local.year}Q{(local.month - 1) // 3 + 1}"


def quarter_bounds(quarter: str, tz: ZoneInfo = AMSTERDAM) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a quarter ``YYYYQn`` in UTC (local midnights)."""
    if len(quarter) != 6 or quarter[4] != "Q" or not quarter[:4].isdigit() or quarter[5] not in "1234":
        raise ValueError(f"{quarter!r} is not a quarter YYYYQn (e.g. 2026Q3)")
    year, q = int(quarter[:4]), int(quarter[5])
    start = dt.datetime(year, 3 * (q - 1) + 1, 1, tzinfo=tz)
    end = dt.datetime(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1, tzinfo=tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)
