"""The simulated FX market: quotes that look and behave like a real feed's."""

from __future__ import annotations

import calendar
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from itertools import pairwise

import pytest

from fxgate.brokers.paper import feed
from fxgate.brokers.paper.feed import MarketSimulator
from fxgate.brokers.paper.hours import make_hours
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote, SymbolSpec


def utc(*fields: int) -> float:
    padded = (*fields, 0, 0, 0)[:6]
    return float(calendar.timegm((*padded, 0, 0, 0)))


MONDAY_10 = utc(2024, 1, 8, 10)
SPECS = {s.symbol: s for s in DEFAULT_SYMBOLS}


def market(
    start: float = MONDAY_10,
    *,
    seed: int | None = 1,
    hours: str = "24x7",
    tick_rate: float = 2.0,
    symbols: Sequence[SymbolSpec] = DEFAULT_SYMBOLS,
    rollover_hour: int = 22,
) -> MarketSimulator:
    return MarketSimulator(
        symbols,
        seed,
        make_hours(hours),
        lambda: start,
        tick_rate=tick_rate,
        rollover_hour=rollover_hour,
    )


def run(sim: MarketSimulator, start: float, seconds: float, every: float) -> list[Quote]:
    quotes: list[Quote] = []
    for i in range(1, int(seconds / every) + 1):
        quotes += sim.step(start + i * every)
    return quotes


def by_symbol(quotes: list[Quote]) -> dict[str, list[Quote]]:
    out: dict[str, list[Quote]] = defaultdict(list)
    for q in quotes:
        out[q.symbol].append(q)
    return out


# -- reproducibility -------------------------------------------------------------------


def test_the_same_seed_replays_the_same_market() -> None:
    first = run(market(seed=42), MONDAY_10, 300, 0.5)
    second = run(market(seed=42), MONDAY_10, 300, 0.5)
    assert len(first) > 1000
    assert first == second
    assert market(seed=42).latest_all() == market(seed=42).latest_all()


def test_another_seed_or_no_seed_gives_another_market() -> None:
    seeded = run(market(seed=42), MONDAY_10, 60, 0.5)
    assert run(market(seed=43), MONDAY_10, 60, 0.5) != seeded
    assert run(market(seed=None), MONDAY_10, 60, 0.5) != run(market(seed=None), MONDAY_10, 60, 0.5)


def test_quotes_do_not_depend_on_how_often_the_caller_steps() -> None:
    fine = run(market(seed=9), MONDAY_10, 120, 0.1)
    coarse = run(market(seed=9), MONDAY_10, 120, 10.0)
    assert [(q.symbol, q.ts, q.bid, q.ask) for q in fine] == [
        (q.symbol, q.ts, q.bid, q.ask) for q in coarse
    ]


# -- every quote is well formed ---------------------------------------------------------


def test_every_quote_is_quantized_consistent_and_within_its_day() -> None:
    sim = market(seed=5, tick_rate=1.0)
    previous = MONDAY_10
    seen: set[str] = set()
    for i in range(1, 3_001):
        now = MONDAY_10 + i * 1.5
        quotes = sim.step(now)
        assert [q.ts for q in quotes] == sorted(q.ts for q in quotes)
        for q in quotes:
            seen.add(q.symbol)
            scale = 10**q.digits
            assert q.digits == SPECS[q.symbol].digits
            assert previous < q.ts <= now
            assert 0 < q.bid < q.ask
            assert round(q.bid * scale) / scale == q.bid
            assert round(q.ask * scale) / scale == q.ask
            assert q.spread_points == round((q.ask - q.bid) * scale) >= 1
            assert q.last == q.bid
            assert isinstance(q.volume, int)
            assert q.volume >= 1
            assert q.day_low <= q.bid <= q.day_high
            assert q.day_low <= q.open <= q.day_high
            assert q.change == round(q.bid - q.close, q.digits)
            assert q.change_percent == pytest.approx(q.change / q.close * 100, abs=6e-5)
            assert round(q.change_percent, 4) == q.change_percent
        previous = now
    assert seen == set(SPECS)


def test_a_new_market_already_has_a_plausible_quote_per_symbol() -> None:
    sim = market(seed=2)
    quotes = sim.latest_all()
    assert list(quotes) == list(SPECS)
    for symbol, q in quotes.items():
        start = float(SPECS[symbol].start_price)
        assert q is sim.latest(symbol)
        assert q.ts == MONDAY_10
        assert abs(q.bid / start - 1) < 0.001
        assert abs(q.close / start - 1) < 0.05
        assert q.close != q.bid
        assert q.change == round(q.bid - q.close, q.digits)
        assert q.day_low <= min(q.bid, q.open) <= max(q.bid, q.open) <= q.day_high
    assert sim.latest("DOGEUSD") is None


# -- realism ----------------------------------------------------------------------------


def test_spreads_stay_near_typical_in_the_london_session() -> None:
    quotes = run(market(seed=6), MONDAY_10, 1_800, 1.0)
    for symbol, ticks in by_symbol(quotes).items():
        typical = SPECS[symbol].typical_spread_points
        spreads = [q.spread_points for q in ticks]
        assert 0.85 * typical <= statistics.median(spreads) <= 1.2 * typical, symbol
        assert min(spreads) >= max(1, int(0.75 * typical)), symbol
        assert max(spreads) <= feed.MAX_SPREAD_MULTIPLE * typical, symbol
        assert len(set(spreads)) > 3, "the spread floats"


def mean_spread_ratio(quotes: list[Quote]) -> float:
    return statistics.mean(q.spread_points / SPECS[q.symbol].typical_spread_points for q in quotes)


def test_spreads_widen_at_the_rollover() -> None:
    start = utc(2024, 1, 9, 21, 55)
    around_rollover = run(market(start, seed=8), start, 900, 1.0)
    london = run(market(seed=8), MONDAY_10, 900, 1.0)
    assert mean_spread_ratio(around_rollover) > 2 * mean_spread_ratio(london)


def test_spreads_widen_when_gold_reopens_after_its_daily_break() -> None:
    start = utc(2024, 1, 9, 22, 55)
    gold = [s for s in DEFAULT_SYMBOLS if s.symbol == "XAUUSD"]
    quotes = run(market(start, seed=8, hours="forex", symbols=gold), start, 3_900, 1.0)
    first_minutes = [q for q in quotes if q.ts < utc(2024, 1, 9, 23, 5)]
    later = [q for q in quotes if q.ts >= utc(2024, 1, 9, 23, 40)]
    assert first_minutes
    assert later
    assert mean_spread_ratio(first_minutes) > 1.5 * mean_spread_ratio(later)


def test_a_day_moves_as_much_as_the_spec_says() -> None:
    """Realized volatility of 5-minute mids over a simulated day, per symbol."""
    sim = market(seed=11, tick_rate=0.05)
    logs: dict[str, list[float]] = defaultdict(list)
    for i in range(1, 289):
        sim.step(MONDAY_10 + i * 300)
        for symbol, q in sim.latest_all().items():
            logs[symbol].append(math.log((q.bid + q.ask) / 2))
    for symbol, mids in logs.items():
        realized = math.sqrt(sum((b - a) ** 2 for a, b in pairwise(mids)))
        assert 0.7 < realized / SPECS[symbol].daily_volatility < 1.4, symbol


def test_prices_revert_instead_of_wandering_off_over_a_year() -> None:
    """Hourly steps for a year (one tick an hour, a suspended caller's catch-up)."""
    sim = market(seed=12)
    excursions: list[float] = []
    sq: dict[str, float] = defaultdict(float)
    hours = 365 * 24
    for i in range(1, hours + 1):
        for q in sim.step(MONDAY_10 + i * 3_600.0):
            sq[q.symbol] += math.log(q.bid / float(SPECS[q.symbol].start_price)) ** 2
    for symbol, total in sq.items():
        excursions.append(math.sqrt(total / hours) / SPECS[symbol].daily_volatility)
    # A random walk's RMS excursion over a year is ~13.5 daily moves; with a 20-day
    # half-life it settles at ~3.8.
    assert statistics.mean(excursions) < 6
    assert max(excursions) < 9


# -- arrival ----------------------------------------------------------------------------


def test_each_symbol_ticks_at_the_configured_rate_but_not_on_every_step() -> None:
    sim = market(seed=13, tick_rate=2.0)
    per_step: list[int] = []
    counts: dict[str, int] = defaultdict(int)
    for i in range(1, 20_001):
        quotes = sim.step(MONDAY_10 + i * 0.05)
        per_step.append(len({q.symbol for q in quotes}))
        for q in quotes:
            counts[q.symbol] += 1
    assert set(counts) == set(SPECS)
    for symbol, n in counts.items():
        assert 1_800 < n < 2_200, symbol  # 2/s for 1000 s: 2000 +- 45
    assert max(per_step) < len(SPECS)
    assert per_step.count(0) > 5_000


def test_a_caller_back_from_a_long_pause_gets_one_tick_per_symbol_not_the_backlog() -> None:
    sim = market(seed=14, tick_rate=5.0)
    sim.step(MONDAY_10 + 1)
    back = MONDAY_10 + 3_601
    quotes = sim.step(back)
    assert sorted(q.symbol for q in quotes) == sorted(SPECS)
    assert all(q.ts == back for q in quotes)


# -- market hours -----------------------------------------------------------------------


def test_nothing_ticks_at_the_weekend_and_everything_ticks_again_after_sunday_2200() -> None:
    start = utc(2024, 1, 5, 21, 30)
    friday_close, sunday_open = utc(2024, 1, 5, 22), utc(2024, 1, 7, 22)
    sim = market(start, seed=15, hours="forex", tick_rate=0.5)
    quotes = run(sim, start, 49 * 3_600, 10.0)  # to Sunday 22:30
    assert not [q for q in quotes if friday_close <= q.ts < sunday_open]
    for symbol, ticks in by_symbol(quotes).items():
        assert any(q.ts < friday_close for q in ticks), symbol
        assert any(sunday_open <= q.ts < sunday_open + 60 for q in ticks), symbol


def test_latest_keeps_fridays_quote_through_the_weekend() -> None:
    start = utc(2024, 1, 5, 21, 59)
    sim = market(start, seed=16, hours="forex")
    run(sim, start, 120, 1.0)
    friday = sim.latest("EURUSD")
    assert sim.step(utc(2024, 1, 6, 12)) == []
    assert sim.latest("EURUSD") is friday


def test_gold_pauses_for_its_daily_break_while_currencies_trade() -> None:
    start = utc(2024, 1, 9, 21)
    brk, reopen = utc(2024, 1, 9, 22), utc(2024, 1, 9, 23)
    symbols = [s for s in DEFAULT_SYMBOLS if s.symbol in ("EURUSD", "XAUUSD")]
    quotes = run(market(start, seed=17, hours="forex", symbols=symbols), start, 3 * 3_600, 2.0)
    ticks = by_symbol(quotes)
    assert not [q for q in ticks["XAUUSD"] if brk <= q.ts < reopen]
    assert any(reopen <= q.ts < reopen + 60 for q in ticks["XAUUSD"])
    assert any(q.ts < brk for q in ticks["XAUUSD"])
    assert len([q for q in ticks["EURUSD"] if brk <= q.ts < reopen]) > 5_000


# -- set_quote --------------------------------------------------------------------------


def test_set_quote_moves_the_price_and_the_walk_continues_from_there() -> None:
    sim = market(seed=18)
    close = sim.latest("EURUSD")
    assert close is not None
    q = sim.set_quote("EURUSD", 1.2, 1.20012, MONDAY_10 + 1)
    assert (q.bid, q.ask, q.spread_points, q.last, q.ts) == (1.2, 1.20012, 12, 1.2, MONDAY_10 + 1)
    assert q.day_high == 1.2
    assert q.close == close.close
    assert q.change == round(1.2 - close.close, 5)
    assert sim.latest("EURUSD") is q
    later = [x for x in run(sim, MONDAY_10 + 1, 120, 1.0) if x.symbol == "EURUSD"]
    assert len(later) > 100
    assert all(abs(x.bid - 1.2) < 0.003 for x in later)
    assert all(x.ts > MONDAY_10 + 1 for x in later)
    assert all(x.day_high >= 1.2 for x in later)


def test_set_quote_rounds_to_the_symbols_digits_and_refuses_nonsense() -> None:
    sim = market(seed=19)
    q = sim.set_quote("USDJPY", 150.12345, 150.1371, MONDAY_10)
    assert (q.bid, q.ask, q.spread_points) == (150.123, 150.137, 14)
    with pytest.raises(ValueError, match="bid < ask"):
        sim.set_quote("USDJPY", 150.2, 150.1, MONDAY_10)
    with pytest.raises(ValueError, match="bid < ask"):
        sim.set_quote("USDJPY", 150.1, 150.1, MONDAY_10)
    with pytest.raises(ValueError, match="DOGEUSD"):
        sim.set_quote("DOGEUSD", 1.0, 2.0, MONDAY_10)


def test_set_quote_lowers_the_day_low() -> None:
    sim = market(seed=20)
    q = sim.set_quote("XAUUSD", 1_900.0, 1_900.3, MONDAY_10)
    assert q.day_low == 1_900.0
    assert q.spread_points == 30


# -- the trading day --------------------------------------------------------------------


@pytest.mark.parametrize("rollover_hour", [22, 0])
def test_the_day_rolls_over_and_yesterdays_last_bid_becomes_the_close(rollover_hour: int) -> None:
    rollover = utc(2024, 1, 9, 22) if rollover_hour == 22 else utc(2024, 1, 10, 0)
    start = rollover - 3_600
    sim = market(start, seed=21, rollover_hour=rollover_hour, symbols=DEFAULT_SYMBOLS[:1])
    quotes = run(sim, start, 7_200, 1.0)
    before = [q for q in quotes if q.ts < rollover]
    after = [q for q in quotes if q.ts >= rollover]
    assert len(before) > 1_000
    assert len(after) > 1_000
    assert len({q.close for q in before}) == 1
    first = after[0]
    assert first.close == before[-1].bid
    assert first.open == first.day_high == first.day_low == first.bid
    assert all(q.close == first.close and q.open == first.open for q in after)
    assert after[-1].day_high == max(q.bid for q in after)
    assert after[-1].day_low == min(q.bid for q in after)
    assert after[-1].change == round(after[-1].bid - before[-1].bid, 5)


def test_the_weekend_gap_rolls_fridays_close_into_mondays_trading_day() -> None:
    start = utc(2024, 1, 5, 21, 30)
    sim = market(start, seed=22, hours="forex", symbols=DEFAULT_SYMBOLS[:1])
    quotes = run(sim, start, 49 * 3_600, 10.0)
    friday = [q for q in quotes if q.ts < utc(2024, 1, 5, 22)]
    sunday = [q for q in quotes if q.ts >= utc(2024, 1, 7, 22)]
    assert sunday[0].close == friday[-1].bid
    assert sunday[0].open == sunday[0].bid


# -- construction -----------------------------------------------------------------------


def test_bad_construction_is_refused() -> None:
    with pytest.raises(ValueError, match="tick_rate"):
        market(tick_rate=0)
    with pytest.raises(ValueError, match="duplicate"):
        market(symbols=[DEFAULT_SYMBOLS[0], DEFAULT_SYMBOLS[0]])
    with pytest.raises(ValueError, match="at least one"):
        market(symbols=[])
    with pytest.raises(ValueError, match="rollover_hour"):
        market(rollover_hour=24)


def test_defaults_are_the_24x7_market_of_the_default_symbols() -> None:
    sim = MarketSimulator(clock=lambda: utc(2024, 1, 6, 12))
    assert list(sim.specs) == list(SPECS)
    assert sim.hours.name == "24x7"
    assert sim.tick_rate == feed.DEFAULT_TICK_RATE
    assert sim.step(utc(2024, 1, 6, 12, 0, 30))
