"""Shared value forms: basic ISO 8601 dates and moments, exact decimals."""

import datetime as dt

import pytest

from adapters.forms import basic_date, basic_moment, exact_decimal, format_date, format_moment


@pytest.mark.parametrize(
    "day", [dt.date(1, 1, 1), dt.date(999, 1, 2), dt.date(2024, 2, 29), dt.date(9999, 12, 31)]
)
def test_dates_round_trip_with_four_year_digits(day):
    assert len(format_date(day)) == 8 and basic_date(format_date(day)) == day


@pytest.mark.parametrize("moment", [dt.datetime(999, 1, 2, 3, 4, 5), dt.datetime(2026, 10, 25, 2, 30)])
def test_moments_round_trip(moment):
    assert len(format_moment(moment)) == 14 and basic_moment(format_moment(moment)) == moment


@pytest.mark.parametrize("bad", ["2026-02-03", "20260230", "2026020", "２０２６０２０３", " 20260203", ""])
def test_bad_dates_refused(bad):
    with pytest.raises(ValueError):
        basic_date(bad)


def test_decimals_exact_and_finite():
    assert str(exact_decimal("5.40")) == "5.40"
    for bad in ("NaN", "Infinity", " 1", "1,5", "x"):
        with pytest.raises(ValueError):
            exact_decimal(bad)
