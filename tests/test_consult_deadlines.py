"""Acceptance 3 (issue 6): deadlines and overdue lists with a controlled clock, across weekends and both
DST changes (Europe/Amsterdam: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from gateway.consult.calendar import (
    FixedClock,
    Term,
    due_time,
    load_config,
    quarter_bounds,
    quarter_of,
    reply_due,
)
from gateway.consult.workflow import Env
from tests.test_consult_support import act, hospital_directory, ok, send

AMS = ZoneInfo("Europe/Amsterdam")
H48 = Term(hours=48)


def local(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=AMS)


@pytest.mark.parametrize(
    ("sent", "term", "due_local", "why"),
    [
        (local(2026, 7, 6, 10, 0), H48, local(2026, 7, 8, 10, 0), "summer, no change"),
        (local(2026, 10, 23, 17, 0), H48, local(2026, 10, 25, 16, 0), "48 real hours over the autumn change"),
        (local(2026, 10, 24, 12, 0), H48, local(2026, 10, 26, 11, 0), "Saturday, over the autumn change"),
        (local(2026, 3, 27, 12, 0), H48, local(2026, 3, 29, 13, 0), "48 real hours over the spring change"),
        (local(2026, 3, 28, 1, 30), H48, local(2026, 3, 30, 2, 30), "a due time after the gap"),
        (
            local(2026, 10, 23, 15, 0),
            Term(hours=None, working_days=3),
            local(2026, 10, 28, 15, 0),
            "three working days keep the wall clock over a weekend and the autumn change",
        ),
        (
            local(2026, 3, 27, 9, 15),
            Term(hours=None, working_days=1),
            local(2026, 3, 30, 9, 15),
            "Friday + 1 working day = Monday, over the spring change",
        ),
        (
            local(2026, 3, 28, 10, 0),
            Term(hours=None, working_days=1),
            local(2026, 3, 30, 10, 0),
            "sent on Saturday: Monday",
        ),
        (
            local(2026, 12, 24, 10, 0),
            Term(hours=None, working_days=1),
            local(2026, 12, 28, 10, 0),
            "Christmas (holidays from the python-holidays library) and the weekend do not count",
        ),
        (
            local(2026, 4, 2, 11, 0),
            Term(hours=None, working_days=2),
            local(2026, 4, 7, 11, 0),
            "Thursday before Easter + 2: Good Friday counts (left out in config.toml), Easter Monday not",
        ),
        (
            local(2026, 4, 24, 14, 0),
            Term(hours=None, working_days=3),
            local(2026, 4, 30, 14, 0),
            "Friday + 3 over the weekend and King's Day (Monday 27 April 2026)",
        ),
        (
            local(2027, 4, 26, 9, 0),
            Term(hours=None, working_days=1),
            local(2027, 4, 28, 9, 0),
            "King's Day 2027 is a Tuesday: Monday + 1 working day is Wednesday",
        ),
        (
            local(2026, 5, 13, 9, 0),
            Term(hours=None, working_days=1),
            local(2026, 5, 15, 9, 0),
            "Ascension Day (Thursday 14 May 2026) does not count",
        ),
        (
            local(2026, 5, 22, 9, 0),
            Term(hours=None, working_days=1),
            local(2026, 5, 26, 9, 0),
            "Whit Monday (25 May 2026) does not count",
        ),
        (
            local(2027, 3, 25, 16, 0),
            Term(hours=None, working_days=3),
            local(2027, 3, 31, 16, 0),
            "Easter 2027 moves with the year (Monday 29 March does not count): no hand-kept list",
        ),
    ],
)
def test_due_time(sent, term, due_local, why):
    cfg = load_config()
    due = due_time(sent.astimezone(dt.UTC), term, tz=cfg.timezone, holidays=cfg.holidays)
    assert due == due_local.astimezone(dt.UTC), why
    assert due.tzinfo is not None


def test_reply_terms_per_subject():
    t = local(2026, 10, 24, 12, 0)
    assert reply_due(t, "Medicatie") - t == dt.timedelta(hours=24)
    for subject in ("Zorg", "Administratie", "Overig"):
        assert reply_due(t, subject) - t == dt.timedelta(hours=48)
    # 24 real hours across the autumn change: the wall clock says 11:00 the next day
    assert reply_due(t, "Medicatie").astimezone(AMS).hour == 11


def test_quarters_are_dutch_local_time():
    assert quarter_of(dt.datetime(2026, 9, 30, 21, 59, tzinfo=dt.UTC)) == "2026Q3"  # 23:59 CEST
    assert quarter_of(dt.datetime(2026, 9, 30, 22, 0, tzinfo=dt.UTC)) == "2026Q4"  # 00:00 CEST
    start, end = quarter_bounds("2026Q3")
    assert start == local(2026, 7, 1).astimezone(dt.UTC) and end == local(2026, 10, 1).astimezone(dt.UTC)
    assert quarter_bounds("2026Q4")[1] == local(2027, 1, 1).astimezone(dt.UTC)
    with pytest.raises(ValueError):
        quarter_bounds("2026Q5")


def _overdue(svc, as_: str, specialist: str | None = None) -> list[str]:
    q = f"?specialist=PractitionerRole/{specialist}" if specialist else ""
    bundle = ok(svc.request("GET", f"/Task/$overdue{q}", as_=as_))
    ids = [e["resource"]["id"] for e in bundle.get("entry", [])]
    assert bundle["total"] == len(ids)
    return ids


def test_overdue_over_a_weekend_and_dst_with_a_controlled_clock(service):
    sent = local(2026, 10, 23, 16, 0)  # Friday; the clocks go back on Sunday 25 October
    clock = FixedClock(sent.astimezone(dt.UTC))
    cfg = dataclasses.replace(load_config(), specialisms={"Neurologie": {"working_days": 3}})
    service.app.state.gateway.consult_env = Env(clock, cfg)
    d = hospital_directory(service)
    cardio = ok(send(service, d, specialism="Cardiologie"), 201)  # 48 h: Sunday 15:00 CET
    neuro = ok(send(service, d, specialism="Neurologie"), 201)  # 3 working days: Wednesday 16:00 CET
    assert cardio["restriction"]["period"]["end"] == "2026-10-25T14:00:00.000Z"
    assert neuro["restriction"]["period"]["end"] == "2026-10-28T15:00:00.000Z"
    hart, zenuw = d.specialists["dr. Hart"], d.specialists["dr. Zenuw"]

    clock.set(local(2026, 10, 25, 14, 59).astimezone(dt.UTC))
    assert _overdue(service, "practice-a") == []
    clock.set(local(2026, 10, 25, 15, 1).astimezone(dt.UTC))
    assert _overdue(service, "practice-a") == [cardio["id"]]
    assert _overdue(service, "hospital-h", hart) == [cardio["id"]]  # a cardiologist sees cardiology
    assert _overdue(service, "hospital-h", zenuw) == []  # not the neurologist
    ok(act(service, cardio["id"], "pickup", specialist="dr. Hart", directory=d))
    assert _overdue(service, "practice-a") == [cardio["id"]]  # picked up is not answered

    clock.set(local(2026, 10, 28, 15, 59).astimezone(dt.UTC))
    assert _overdue(service, "practice-a") == [cardio["id"]]
    clock.set(local(2026, 10, 28, 16, 0, 1).astimezone(dt.UTC))
    assert sorted(_overdue(service, "practice-a")) == sorted([cardio["id"], neuro["id"]])
    assert _overdue(service, "hospital-h", zenuw) == [neuro["id"]]
    assert _overdue(service, "practice-b") == []  # another practice sees none of it

    ok(act(service, cardio["id"], "answer", specialist="dr. Hart", directory=d, text="Advies."))
    assert _overdue(service, "practice-a") == [neuro["id"]]
    # a follow-up question starts a new term (48 h from now)
    ok(act(service, cardio["id"], "follow-up", as_="practice-a", text="Nog een vraag."))
    assert cardio["id"] not in _overdue(service, "practice-a")
    clock.advance(hours=48, seconds=1)
    assert cardio["id"] in _overdue(service, "practice-a")


def test_holidays_come_from_the_library_not_a_hand_list():
    """Issue 20: python-holidays (NL) gives every year's holidays; config.toml only leaves some out."""
    cfg = load_config()
    for day in (
        dt.date(2026, 4, 6),  # Easter Monday
        dt.date(2026, 4, 27),  # King's Day
        dt.date(2026, 5, 14),  # Ascension
        dt.date(2026, 5, 25),  # Whit Monday
        dt.date(2030, 4, 22),  # Easter Monday, years ahead
        dt.date(2025, 4, 26),  # King's Day on a Saturday
    ):
        assert day in cfg.holidays, day
    assert dt.date(2026, 4, 3) not in cfg.holidays  # Good Friday: left out in config.toml
    assert dt.date(2026, 4, 7) not in cfg.holidays
