"""OHLC candles from quotes: epoch-aligned buckets that close when a later quote arrives."""

from __future__ import annotations

import calendar

import pytest

from fxgate.brokers.paper.feed import MarketSimulator
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.services.candles import INTERVALS, Candle, CandleBuilder, interval_seconds


def utc(*fields: int) -> int:
    padded = (*fields, 0, 0, 0)[:6]
    return calendar.timegm((*padded, 0, 0, 0))


T10 = utc(2024, 1, 10, 10)  # a Wednesday, 10:00 UTC


def quote(ts: float, bid: float, volume: int = 1, symbol: str = "EURUSD") -> Quote:
    return Quote(
        symbol=symbol,
        bid=bid,
        ask=round(bid + 0.0001, 5),
        last=bid,
        volume=volume,
        spread_points=10,
        ts=ts,
        open=1.0,
        day_high=2.0,
        day_low=0.5,
        close=1.0,
        change=0.0,
        change_percent=0.0,
    )


def test_a_minute_of_quotes_makes_one_open_candle() -> None:
    builder = CandleBuilder()
    assert builder.current("EURUSD", "1m") is None
    assert builder.update(quote(T10 + 5, 1.1000, 3)) == []
    assert builder.update(quote(T10 + 20, 1.1010, 4)) == []
    assert builder.update(quote(T10 + 40, 1.0990, 5)) == []
    assert builder.update(quote(T10 + 59.9, 1.1005, 6)) == []
    assert builder.current("EURUSD", "1m") == Candle(
        "EURUSD", "1m", T10, 1.1000, 1.1010, 1.0990, 1.1005, 18, closed=False
    )


def test_the_first_quote_of_the_next_minute_closes_the_candle() -> None:
    builder = CandleBuilder()
    builder.update(quote(T10 + 5, 1.1000, 3))
    builder.update(quote(T10 + 30, 1.1020, 4))
    closed = builder.update(quote(T10 + 60, 1.1015, 7))
    assert closed == [Candle("EURUSD", "1m", T10, 1.1000, 1.1020, 1.1000, 1.1020, 7, closed=True)]
    current = builder.current("EURUSD", "1m")
    assert current is not None
    assert (current.open_time, current.open, current.volume) == (T10 + 60, 1.1015, 7)
    five = builder.current("EURUSD", "5m")
    assert five is not None
    assert (five.open_time, five.high, five.close, five.volume) == (T10, 1.1020, 1.1015, 14)


def test_a_boundary_shared_by_several_intervals_closes_all_of_them_shortest_first() -> None:
    builder = CandleBuilder()
    builder.update(quote(T10 + 14 * 60 + 30, 1.1))
    closed = builder.update(quote(T10 + 15 * 60, 1.2))
    assert [(c.interval, c.open_time) for c in closed] == [
        ("1m", T10 + 14 * 60),
        ("5m", T10 + 10 * 60),
        ("15m", T10),
    ]


def test_day_and_four_hour_candles_align_to_utc_midnight() -> None:
    builder = CandleBuilder(["4h", "1d"])
    builder.update(quote(utc(2024, 1, 10, 21, 15), 1.10, 2))
    builder.update(quote(utc(2024, 1, 10, 23, 59, 59), 1.12, 3))
    closed = builder.update(quote(utc(2024, 1, 11, 0, 0, 0), 1.11, 4))
    assert [(c.interval, c.open_time, c.volume) for c in closed] == [
        ("4h", utc(2024, 1, 10, 20), 5),
        ("1d", utc(2024, 1, 10), 5),
    ]
    assert closed[1].close_time == utc(2024, 1, 11)


def test_quiet_minutes_leave_no_empty_candles() -> None:
    builder = CandleBuilder(["1m"])
    builder.update(quote(T10 + 1, 1.1))
    closed = builder.update(quote(T10 + 7 * 60 + 1, 1.2))
    assert [c.open_time for c in closed] == [T10]
    current = builder.current("EURUSD", "1m")
    assert current is not None
    assert current.open_time == T10 + 7 * 60


def test_a_late_quote_cannot_change_a_closed_candle() -> None:
    builder = CandleBuilder(["1m"])
    builder.update(quote(T10 + 10, 1.1, 1))
    builder.update(quote(T10 + 61, 1.2, 1))
    assert builder.update(quote(T10 + 50, 0.9, 100)) == []
    current = builder.current("EURUSD", "1m")
    assert current is not None
    assert (current.open_time, current.low, current.volume) == (T10 + 60, 1.2, 1)


def test_symbols_have_separate_candles() -> None:
    builder = CandleBuilder(["1m"])
    builder.update(quote(T10 + 1, 1.1, symbol="EURUSD"))
    assert builder.update(quote(T10 + 61, 150.0, symbol="USDJPY")) == []
    eur = builder.current("EURUSD", "1m")
    jpy = builder.current("USDJPY", "1m")
    assert eur is not None
    assert jpy is not None
    assert (eur.open_time, eur.close) == (T10, 1.1)
    assert (jpy.open_time, jpy.close) == (T10 + 60, 150.0)


def test_unknown_intervals_are_refused_with_the_choices() -> None:
    assert interval_seconds("4h") == 14_400
    assert dict(INTERVALS) == {
        "1m": 60,
        "5m": 300,
        "15m": 900,
        "1h": 3_600,
        "4h": 14_400,
        "1d": 86_400,
    }
    with pytest.raises(ValueError, match="1m, 5m, 15m, 1h, 4h, 1d"):
        interval_seconds("2m")
    with pytest.raises(ValueError, match="'1w'"):
        CandleBuilder().current("EURUSD", "1w")
    with pytest.raises(ValueError, match="'30s'"):
        CandleBuilder(["1m", "30s"])


def test_to_record_carries_every_field() -> None:
    candle = Candle("XAUUSD", "1h", T10, 2030.1, 2031.5, 2029.0, 2030.9, 120, closed=True)
    assert candle.to_record() == {
        "symbol": "XAUUSD",
        "interval": "1h",
        "open_time": T10,
        "open": 2030.1,
        "high": 2031.5,
        "low": 2029.0,
        "close": 2030.9,
        "volume": 120,
        "closed": True,
    }


def test_candles_from_the_simulated_feed_account_for_every_tick() -> None:
    sim = MarketSimulator(DEFAULT_SYMBOLS[:2], seed=3, clock=lambda: T10, tick_rate=3.0)
    builder = CandleBuilder(["1m", "5m"])
    closed: list[Candle] = []
    volume = 0
    bids: list[float] = []
    for i in range(1, 601):
        for q in sim.step(T10 + i):
            closed += builder.update(q)
            if q.symbol == "EURUSD":
                volume += q.volume
                bids.append(q.bid)
    minutes = [c for c in closed if c.symbol == "EURUSD" and c.interval == "1m"]
    current = builder.current("EURUSD", "1m")
    assert current is not None
    assert len(minutes) == 9
    assert sum(c.volume for c in minutes) + current.volume == volume
    assert minutes[0].open == bids[0]
    assert max(c.high for c in [*minutes, current]) == max(bids)
    assert min(c.low for c in [*minutes, current]) == min(bids)
    assert all(c.low <= min(c.open, c.close) <= max(c.open, c.close) <= c.high for c in minutes)
    assert [c.open_time for c in minutes] == [T10 + 60 * k for k in range(9)]
