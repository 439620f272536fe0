"""The paper market's price feed: a simulated FX market that ticks like a real one.

Each symbol has its own random number generator (seeded from the simulator's seed and the
symbol's name) and its own tick schedule, so a symbol's quotes depend only on the seed and
on the times ``step`` is called up to, not on how finely the caller slices time, nor on the
other symbols.

The model, per symbol:

- **Arrival.** Ticks arrive as a Poisson process of ``tick_rate`` per second, held constant
  through the day so that the load a benchmark puts on the gateway is predictable. While
  the ``MarketHours`` say the symbol is closed, it does not tick; the first tick after a
  reopening comes shortly after the open. A caller that falls more than
  ``MAX_CATCH_UP_SECONDS`` behind (a suspended process) skips the backlog and ticks once.
- **Mid price.** A geometric random walk: per tick the log price moves by the symbol's
  daily volatility scaled to the time since its last tick and to the session (quiet in
  Sydney/Tokyo, busiest in the London/New York overlap, normalized so that a whole day
  has exactly the spec's variance). A mild mean reversion (half-life of
  ``REVERSION_HALF_LIFE_DAYS``) pulls it towards its anchor, so that a long run does not
  wander off, and a few small jumps a day stand in for news.
- **Spread.** Around the symbol's typical spread, which is taken to be the spread of the
  liquid London and New York hours: a little wider in thin hours, about
  three times wider around the 22:00 UTC rollover and just after a reopening (weekend,
  metals' break), with rare short spikes; never below one point nor above
  ``MAX_SPREAD_MULTIPLE`` times typical.
- **Prices** are whole points (``bid``, ``ask`` are exactly the floats that the decimal
  prices at the symbol's digits parse to), and ``bid < ask`` always.
- **Volume** is a synthetic tick volume: a positive integer, larger in liquid hours. Like
  MetaTrader's tick volume for FX, only its relative size means something.
- **Day statistics.** The trading day rolls over at 22:00 UTC (the New York close, as FX
  brokers do, so that the ``forex`` week has exactly five trading days). At the rollover
  ``close`` becomes the previous day's last bid and ``open``/``day_high``/``day_low`` start
  again from the first bid of the new day; all of them are bid prices, as MetaTrader's are.
  Note that 1d candles are aligned to 00:00 UTC instead (see ``services.candles``).
- **last** is the bid: spot FX has no exchange and no last trade price, and the bid is
  what MetaTrader charts.

A new simulator already has a quote per symbol (``latest``), built as if the day had been
trading for a while: the start price, a plausible previous close and day range. So change
and change percent mean something from the first tick.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from types import MappingProxyType
from typing import Final

from fxgate.brokers.paper.hours import DAY, AlwaysOpen, MarketHours
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote, SymbolSpec

MAX_CATCH_UP_SECONDS: Final = 60.0
REVERSION_HALF_LIFE_DAYS: Final = 20.0
MAX_SPREAD_MULTIPLE: Final = 8
DEFAULT_TICK_RATE: Final = 2.0

_THETA: Final = math.log(2.0) / (REVERSION_HALF_LIFE_DAYS * DAY)  # per second
_MAX_GAP: Final = 3_600.0  # a weekend's gap moves the price like an hour of trading
_JUMPS_PER_DAY: Final = 4.0
_JUMP_SIZE: Final = 0.06  # standard deviation of a jump, as a fraction of daily volatility
_SPIKE_PROBABILITY: Final = 0.01
_REOPEN_WINDOW: Final = 1_800.0
_REOPEN_WIDENING: Final = 2.0  # spread is (1 + this) times typical at the open, decaying
_MEAN_TICK_VOLUME: Final = 20.0
_SLOT: Final = 300  # the session profile's resolution, in seconds

# Relative volatility and spread by UTC hour (see hours.py for the sessions).
_HOURLY_VOLATILITY: Final = (
    (0.75,) * 7 + (0.95,) + (1.2,) * 5 + (1.4,) * 4 + (1.0,) * 3 + (0.8, 0.6, 0.5, 0.5)
)
_HOURLY_SPREAD: Final = (1.15,) * 7 + (1.05,) + (1.0,) * 9 + (1.05,) * 3 + (1.15, 1.3, 1.5, 1.5)
_WIDER_SLOTS: Final = {
    21 * 12 + 11: 3.0,  # 21:55 rollover: liquidity providers step back
    22 * 12: 3.0,
    22 * 12 + 1: 3.0,
    8 * 12: 1.4,  # London open
    8 * 12 + 1: 1.4,
    13 * 12: 1.3,  # New York open
    13 * 12 + 1: 1.3,
}


def _slot_tables() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per 5-minute slot: the volatility multiplier, normalized to a mean variance of one
    so that a day keeps the spec's volatility, and the spread multiplier."""
    per_hour = DAY // 3_600
    slots_per_hour = 3_600 // _SLOT
    mean_variance = sum(v * v for v in _HOURLY_VOLATILITY) / per_hour
    norm = 1.0 / math.sqrt(mean_variance)
    vol = tuple(_HOURLY_VOLATILITY[s // slots_per_hour] * norm for s in range(DAY // _SLOT))
    spread = tuple(
        _WIDER_SLOTS.get(s, _HOURLY_SPREAD[s // slots_per_hour]) for s in range(DAY // _SLOT)
    )
    return vol, spread


_VOL_BY_SLOT, _SPREAD_BY_SLOT = _slot_tables()
_BY_TS: Final = attrgetter("ts")


class _SymbolState:
    """The walk and day statistics of one symbol, in integer points where exactness
    matters (prices) and in floats where speed does."""

    __slots__ = (
        "anchor_pts",
        "ask_pts",
        "bid_pts",
        "close_f",
        "close_pts",
        "day_end",
        "digits",
        "high_f",
        "high_pts",
        "jump_per_s",
        "jump_size",
        "last_ts",
        "latest",
        "low_f",
        "low_pts",
        "max_spread",
        "next_tick",
        "open_f",
        "open_pts",
        "open_until",
        "reopened_at",
        "rng",
        "scale",
        "sigma",
        "symbol",
        "typical",
        "x",
    )

    def __init__(self, spec: SymbolSpec, rng: random.Random) -> None:
        self.symbol = spec.symbol
        self.digits = spec.digits
        self.scale = 10**spec.digits
        self.rng = rng
        self.anchor_pts = float(spec.start_price) * self.scale
        self.x = 0.0  # log of mid / anchor
        self.sigma = spec.daily_volatility / math.sqrt(DAY)  # per square-root second
        self.jump_per_s = _JUMPS_PER_DAY / DAY
        self.jump_size = spec.daily_volatility * _JUMP_SIZE
        self.typical = float(max(1, spec.typical_spread_points))
        self.max_spread = max(1, spec.typical_spread_points) * MAX_SPREAD_MULTIPLE
        self.bid_pts = self.ask_pts = 0
        self.open_pts = self.high_pts = self.low_pts = self.close_pts = 0
        self.open_f = self.high_f = self.low_f = self.close_f = 0.0
        self.last_ts = self.next_tick = self.day_end = 0.0
        self.open_until = -math.inf
        self.reopened_at = -math.inf
        self.latest: Quote | None = None

    def set_day(self, open_pts: int, high_pts: int, low_pts: int, close_pts: int) -> None:
        scale = self.scale
        self.open_pts, self.open_f = open_pts, open_pts / scale
        self.high_pts, self.high_f = high_pts, high_pts / scale
        self.low_pts, self.low_f = low_pts, low_pts / scale
        self.close_pts, self.close_f = close_pts, close_pts / scale


class MarketSimulator:
    """Simulated quotes for the paper broker, advanced by whoever owns the clock.

    Pure and synchronous: the daemon's driver task calls ``step`` on a timer and publishes
    what it returns; tests call it with made-up times.
    """

    def __init__(
        self,
        symbols: Sequence[SymbolSpec] = DEFAULT_SYMBOLS,
        seed: int | None = None,
        hours: MarketHours | None = None,
        clock: Callable[[], float] = time.time,
        *,
        tick_rate: float = DEFAULT_TICK_RATE,
        rollover_hour: int = 22,
    ) -> None:
        if not symbols:
            raise ValueError("the market needs at least one symbol")
        names = [s.symbol for s in symbols]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate symbols in {names}")
        if not tick_rate > 0:
            raise ValueError(f"tick_rate must be positive, not {tick_rate}")
        if not 0 <= rollover_hour < 24:
            raise ValueError(f"rollover_hour must be 0-23, not {rollover_hour}")
        self._hours: MarketHours = hours if hours is not None else AlwaysOpen()
        self._clock = clock
        self._rate = float(tick_rate)
        self._rollover = rollover_hour * 3_600
        self._specs: Mapping[str, SymbolSpec] = MappingProxyType({s.symbol: s for s in symbols})
        master = random.Random(seed)  # only for an unseeded run: seeds per symbol
        now = float(clock())
        self._states: dict[str, _SymbolState] = {}
        for spec in symbols:
            sub_seed = f"{seed}:{spec.symbol}" if seed is not None else master.getrandbits(64)
            st = _SymbolState(spec, random.Random(sub_seed))
            self._states[spec.symbol] = st
            self._start(st, now)
        self._state_list = tuple(self._states.values())

    @property
    def specs(self) -> Mapping[str, SymbolSpec]:
        """The instruments, by symbol, in the order they were given."""
        return self._specs

    @property
    def hours(self) -> MarketHours:
        return self._hours

    @property
    def tick_rate(self) -> float:
        return self._rate

    def latest(self, symbol: str) -> Quote | None:
        """The last quote of ``symbol`` (there always is one), or None for an unknown one."""
        st = self._states.get(symbol)
        return st.latest if st is not None else None

    def latest_all(self) -> dict[str, Quote]:
        """A copy of every symbol's last quote, in spec order: a subscriber's snapshot."""
        return {sym: st.latest for sym, st in self._states.items() if st.latest is not None}

    def next_due(self) -> float:
        """When the next tick of any symbol is due (epoch seconds): the driver sleeps
        until then, so a tick is published when it happens, not at the next poll."""
        return min(st.next_tick for st in self._state_list)

    def step(self, now: float | None = None) -> list[Quote]:
        """Advance the market to ``now`` (default: the clock) and return the ticks that
        happened since the previous call, oldest first.

        A symbol may tick several times in one step if the caller steps less often than
        it ticks; each tick carries its own time, at or before ``now``.
        """
        now = float(self._clock() if now is None else now)
        out: list[Quote] = []
        hours = self._hours
        rate = self._rate
        for st in self._state_list:
            t = st.next_tick
            if t > now:
                continue
            if now - t > MAX_CATCH_UP_SECONDS:
                t = now
            expovariate = st.rng.expovariate
            while t <= now:
                if t >= st.open_until:
                    if not hours.is_open(st.symbol, t):
                        st.reopened_at = hours.next_open(st.symbol, t)
                        t = st.reopened_at + expovariate(rate)
                        continue
                    st.open_until = hours.next_close(st.symbol, t)
                out.append(self._tick(st, t))
                t += expovariate(rate)
            st.next_tick = t
        if len(out) > 1:
            out.sort(key=_BY_TS)
        return out

    def set_quote(self, symbol: str, bid: float, ask: float, now: float | None = None) -> Quote:
        """Put ``symbol`` at exactly ``bid``/``ask`` (rounded to its digits) and return the
        quote, which the caller publishes like a tick.

        The walk continues from the new mid and reverts towards it (it becomes the anchor),
        so a price set by a test or an operator stays put apart from the random walk; the
        spread goes back to the simulated one on the next tick. Day statistics include
        the new bid. Its volume is 0: nothing traded.
        """
        st = self._states.get(symbol)
        if st is None:
            raise ValueError(f"unknown symbol {symbol!r}")
        now = float(self._clock() if now is None else now)
        bid_pts = round(bid * st.scale)
        ask_pts = round(ask * st.scale)
        if bid_pts <= 0 or ask_pts <= bid_pts:
            raise ValueError(f"need 0 < bid < ask at {st.digits} digits, got {bid}/{ask}")
        st.anchor_pts = (bid_pts + ask_pts) / 2
        st.x = 0.0
        st.last_ts = now
        if st.next_tick <= now:
            st.next_tick = now + st.rng.expovariate(self._rate)
        return self._quote(st, now, bid_pts, ask_pts, 0)

    # -- the model -------------------------------------------------------------------

    def _day_end(self, t: float) -> float:
        """The first rollover after ``t``."""
        off = self._rollover
        return float(off + (math.floor((t - off) / DAY) + 1) * DAY)

    def _start(self, st: _SymbolState, now: float) -> None:
        """Give a new symbol a believable past: the day so far and yesterday's close."""
        rng = st.rng
        day_end = self._day_end(now)
        elapsed = max((now - (day_end - DAY)) / DAY, 0.05)
        dv = st.sigma * math.sqrt(DAY)
        mid = st.anchor_pts
        spread = int(st.typical * _SPREAD_BY_SLOT[int(now % DAY) // _SLOT] + 0.5)
        bid = max(1, int(mid - spread / 2 + 0.5))
        close = max(1, round(mid * math.exp(-rng.gauss(0.0, dv * math.sqrt(elapsed)))))
        day_open = max(1, round(close * math.exp(rng.gauss(0.0, dv * 0.05))))
        swing = dv * 0.3 * math.sqrt(elapsed)
        high = round(max(day_open, bid) * math.exp(abs(rng.gauss(0.0, swing))))
        low = max(1, round(min(day_open, bid) * math.exp(-abs(rng.gauss(0.0, swing)))))
        st.set_day(day_open, high, low, close)
        st.day_end = day_end
        st.last_ts = now
        st.next_tick = now + rng.expovariate(self._rate)
        self._quote(st, now, bid, bid + max(1, spread), 0)

    def _tick(self, st: _SymbolState, t: float) -> Quote:
        """One tick of the model at time ``t``; see the module docstring."""
        rng = st.rng
        random_ = rng.random
        dt = t - st.last_ts
        if dt > _MAX_GAP:
            dt = _MAX_GAP
        elif dt < 0.0:
            dt = 0.0
        slot = int(t % DAY) // _SLOT
        vol = _VOL_BY_SLOT[slot]
        widen = _SPREAD_BY_SLOT[slot]
        since_open = t - st.reopened_at
        if since_open < _REOPEN_WINDOW:
            reopen = 1.0 + _REOPEN_WIDENING * (1.0 - since_open / _REOPEN_WINDOW)
            if reopen > widen:
                widen = reopen

        x = st.x
        x += st.sigma * vol * math.sqrt(dt) * rng.gauss(0.0, 1.0) - _THETA * dt * x
        if random_() < st.jump_per_s * dt:
            x += st.jump_size * rng.gauss(0.0, 1.0)
        st.x = x
        mid = st.anchor_pts * math.exp(x)

        u = random_()
        spread_f = st.typical * widen * (0.8 + 0.4 * u)
        if random_() < _SPIKE_PROBABILITY:
            spread_f *= 1.5 + u
        spread = int(spread_f + 0.5)
        if spread < 1:
            spread = 1
        elif spread > st.max_spread:
            spread = st.max_spread
        bid = int(mid - spread * 0.5 + 0.5)
        if bid < 1:
            bid = 1
        volume = 1 + int(-math.log(1.0 - random_()) * _MEAN_TICK_VOLUME * vol)
        st.last_ts = t
        return self._quote(st, t, bid, bid + spread, volume)

    def _quote(self, st: _SymbolState, t: float, bid: int, ask: int, volume: int) -> Quote:
        """Record a new bid/ask in the day statistics and build the quote."""
        if t >= st.day_end:
            st.set_day(bid, bid, bid, st.bid_pts)
            st.day_end = self._day_end(t)
        elif bid > st.high_pts:
            st.high_pts, st.high_f = bid, bid / st.scale
        elif bid < st.low_pts:
            st.low_pts, st.low_f = bid, bid / st.scale
        st.bid_pts = bid
        st.ask_pts = ask
        scale = st.scale
        bid_f = bid / scale
        change = bid - st.close_pts
        # Positional, in Quote's field order: keywords cost 40% more on this hot path.
        quote = Quote(
            st.symbol,  # symbol
            bid_f,  # bid
            ask / scale,  # ask
            bid_f,  # last
            volume,  # volume
            ask - bid,  # spread_points
            t,  # ts
            st.open_f,  # open
            st.high_f,  # day_high
            st.low_f,  # day_low
            st.close_f,  # close
            change / scale,  # change
            round(change * 100.0 / st.close_pts, 4),  # change_percent
            st.digits,  # digits
        )
        st.latest = quote
        return quote
