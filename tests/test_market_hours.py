"""The paper market's schedules: always open, or the real FX week with the metals' break."""

from __future__ import annotations

import calendar
import math
import random

import pytest

from fxgate.brokers.paper.hours import (
    HOURS_CHOICES,
    SESSION_NAMES,
    AlwaysOpen,
    ForexHours,
    MarketHours,
    make_hours,
)

HOUR = 3_600


def utc(*fields: int) -> float:
    """Epoch seconds of a UTC (year, month, day, hour, minute, second)."""
    padded = (*fields, 0, 0, 0)[:6]
    return float(calendar.timegm((*padded, 0, 0, 0)))


FRIDAY_2200 = utc(2024, 1, 5, 22)
SATURDAY_NOON = utc(2024, 1, 6, 12)
SUNDAY_2200 = utc(2024, 1, 7, 22)
TUESDAY_2200 = utc(2024, 1, 9, 22)


def test_24x7_is_open_at_the_weekend_and_never_closes() -> None:
    hours = make_hours("24x7")
    assert hours.name == "24x7"
    assert hours.is_open("EURUSD", SATURDAY_NOON)
    assert hours.is_open("XAUUSD", TUESDAY_2200 + 1_800)
    assert hours.next_open("EURUSD", SATURDAY_NOON) == SATURDAY_NOON
    assert hours.next_close("EURUSD", SATURDAY_NOON) == math.inf
    assert hours.session_name(SATURDAY_NOON) == "london"


def test_forex_week_opens_sunday_2200_and_closes_friday_2200() -> None:
    hours = make_hours("forex")
    assert hours.name == "forex"
    assert hours.is_open("EURUSD", FRIDAY_2200 - 1)
    assert not hours.is_open("EURUSD", FRIDAY_2200)
    assert not hours.is_open("EURUSD", SATURDAY_NOON)
    assert not hours.is_open("EURUSD", SUNDAY_2200 - 1)
    assert hours.is_open("EURUSD", SUNDAY_2200)
    assert hours.next_open("EURUSD", SATURDAY_NOON) == SUNDAY_2200
    assert hours.next_open("EURUSD", FRIDAY_2200) == SUNDAY_2200
    assert hours.next_close("EURUSD", utc(2024, 1, 10, 9)) == utc(2024, 1, 12, 22)
    assert hours.next_close("EURUSD", SATURDAY_NOON) == SATURDAY_NOON


@pytest.mark.parametrize("day", [8, 9, 10, 11])  # Monday to Thursday
def test_gold_stops_for_the_daily_break_but_currencies_do_not(day: int) -> None:
    hours = ForexHours()
    brk = utc(2024, 1, day, 22)
    assert hours.is_open("XAUUSD", brk - 1)
    assert not hours.is_open("XAUUSD", brk)
    assert not hours.is_open("XAUUSD", brk + HOUR - 1)
    assert hours.is_open("XAUUSD", brk + HOUR)
    assert hours.is_open("EURUSD", brk + 1_800)
    assert hours.next_open("XAUUSD", brk + 1_800) == brk + HOUR
    assert hours.next_close("XAUUSD", brk - 10 * HOUR) == brk


def test_gold_opens_with_currencies_on_sunday_and_closes_with_them_on_friday() -> None:
    hours = ForexHours()
    assert hours.is_open("XAUUSD", SUNDAY_2200 + 1_800)
    assert hours.next_close("XAUUSD", utc(2024, 1, 11, 23, 30)) == utc(2024, 1, 12, 22)
    assert not hours.is_open("XAGUSD", TUESDAY_2200 + 60)


@pytest.mark.parametrize("hours", [AlwaysOpen(), ForexHours()], ids=lambda h: h.name)
@pytest.mark.parametrize("symbol", ["EURUSD", "XAUUSD"])
def test_next_open_and_next_close_agree_with_is_open(hours: MarketHours, symbol: str) -> None:
    rng = random.Random(5)
    two_weeks = 14 * 86_400
    for _ in range(300):
        ts = utc(2024, 1, 1) + rng.uniform(0, two_weeks)
        opens = hours.next_open(symbol, ts)
        assert opens >= ts
        assert hours.is_open(symbol, opens)
        if opens > ts:
            assert not hours.is_open(symbol, opens - 1e-3)
        closes = hours.next_close(symbol, opens)
        assert closes > opens
        if closes != math.inf:
            assert not hours.is_open(symbol, closes)
            assert hours.is_open(symbol, closes - 1e-3)
            assert all(hours.is_open(symbol, opens + k * (closes - opens) / 50) for k in range(50))


@pytest.mark.parametrize(
    ("hour", "name"),
    [
        (22, "sydney"),
        (23, "sydney"),
        (0, "tokyo"),
        (7, "tokyo"),
        (8, "london"),
        (12, "london"),
        (13, "london_new_york_overlap"),
        (16, "london_new_york_overlap"),
        (17, "new_york"),
        (21, "new_york"),
    ],
)
def test_sessions_follow_the_utc_clock_on_a_trading_day(hour: int, name: str) -> None:
    wednesday = utc(2024, 1, 10, hour, 30)
    assert make_hours("forex").session_name(wednesday) == name
    assert make_hours("24x7").session_name(wednesday) == name
    assert name in SESSION_NAMES


def test_forex_weekend_session_is_closed() -> None:
    hours = make_hours("forex")
    assert hours.session_name(SATURDAY_NOON) == "closed"
    assert hours.session_name(FRIDAY_2200) == "closed"
    assert hours.session_name(SUNDAY_2200) == "sydney"


def test_unknown_schedule_names_the_valid_choices() -> None:
    with pytest.raises(ValueError, match="24x7") as err:
        make_hours("weekdays")
    assert "forex" in str(err.value)
    assert "weekdays" in str(err.value)
    assert set(HOURS_CHOICES) == {"24x7", "forex"}
