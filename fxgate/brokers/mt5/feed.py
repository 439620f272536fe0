"""The streamed symbols' ticks, polled from the terminal, as the market service's source.

Each poll (:func:`.jobs.read_ticks`, in the worker) asks ``copy_ticks_from`` for the
ticks since each symbol's :class:`Cursor` and answers only the new ones, with the cursors
that moved; :meth:`TickFeed.take` moves them with the ticks, so a sweep lost halfway
moves none. The market
service steps this source as it steps the paper simulator, and is woken (``wake_with``)
as soon as a poll has buffered quotes: a timer guessing when the poll is back added up
to 10 ms to a tick's latency.

A symbol whose ticks stopped (the terminal gone, a market that stopped quoting) is not
repeated: its last quote is sent once more with ``stale`` set, when no tick came for
``stale_after`` seconds or the terminal was lost, and the next real tick clears it.

The market's tape (``BrokerTape``) comes from the same ticks: ``COPY_TICKS_ALL`` holds
the trade ticks too (``TICK_FLAG_LAST``/``VOLUME``), so the sweep that makes the quotes
makes the prints, with no second call per symbol, and the cursor that keeps a tick from
being lost or repeated keeps a print from it. A print's id is ``SYMBOL-time_msc-n``, the
tick's place in the terminal's history (n counts the ticks at that millisecond), so it
is the same whichever poll read it. Only ticks read from the history print: the first
read of a symbol (and one whose history cannot be read) is ``symbol_info_tick``'s
latest tick, which says nothing of the trades before it. A symbol whose server sends no
trades (spot FX CFDs) has an empty tape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from fxgate.brokers.mt5 import convert
from fxgate.brokers.mt5.jobs import CursorState
from fxgate.domain.errors import refused
from fxgate.domain.market import MarketTrade, Quote, SymbolSpec
from fxgate.services.ports.broker import TapeListener

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Cursor:
    """Where a symbol's tick stream stands: the last ``time_msc`` delivered and how
    many ticks at exactly that millisecond were."""

    msc: int = 0
    at_msc: int = 0
    history: bool = True


@dataclass(slots=True)
class Day:
    day: int = -1
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0  # the previous day's last bid
    last: float = 0.0

    def update(self, bid: float, ts: float) -> tuple[float, float, float, float]:
        day = int(ts // 86400)
        if day != self.day:
            if self.day >= 0:
                self.close = self.last
            self.day, self.open, self.high, self.low = day, bid, bid, bid
            if not self.close:
                self.close = bid
        self.high = max(self.high, bid)
        self.low = min(self.low, bid)
        self.last = bid
        return self.open, self.high, self.low, self.close


class TickFeed:
    """The ``QuoteSource`` of the mt5 backend (``fxgate.services.market``)."""

    def __init__(
        self,
        interval: float,
        *,
        stale_after: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.interval = interval
        self.stale_after = stale_after
        self._clock = clock
        self._specs: dict[str, SymbolSpec] = {}
        self.cursors: dict[str, Cursor] = {}
        self._days: dict[str, Day] = {}
        self._latest: dict[str, Quote] = {}
        self._buffer: list[Quote] = []
        self._received: dict[str, float] = {}
        self._next = 0.0
        self._wake: Callable[[], None] | None = None
        self.polled_at = 0.0
        self.tape_listeners: list[TapeListener] = []

    @property
    def specs(self) -> Mapping[str, SymbolSpec]:
        return self._specs

    def stream(self, spec: SymbolSpec, prev_close: float = 0.0) -> None:
        if spec.symbol not in self._specs:
            self._specs[spec.symbol] = spec
            self.cursors[spec.symbol] = Cursor()
            self._days[spec.symbol] = Day(close=prev_close)

    def cursor_states(self) -> dict[str, CursorState]:
        """The cursors as a sweep takes them (plain tuples, to cross to the worker)."""
        return {s: (c.msc, c.at_msc, c.history) for s, c in self.cursors.items()}

    def take(
        self,
        ticks: dict[str, list[dict[str, Any]]],
        moved: dict[str, CursorState] | None = None,
    ) -> list[Quote]:
        """New ticks from a poll become quotes, buffered for the market service; the
        cursors the sweep moved move with them; trade ticks go to the tape listeners."""
        moved = moved or {}
        prints = self._prints(ticks, moved) if self.tape_listeners else []
        for symbol, (msc, at_msc, history) in moved.items():
            cur = self.cursors[symbol]
            cur.msc, cur.at_msc, cur.history = msc, at_msc, history
        self.polled_at = self._clock()
        self._next = self.polled_at + self.interval
        out: list[Quote] = []
        for symbol, rows in ticks.items():
            spec = self._specs[symbol]
            day = self._days[symbol]
            for row in rows:
                bid = float(row["bid"])
                ts = convert.secs(row["time_msc"])
                q = convert.quote(symbol, row, spec.digits, day.update(bid, ts))
                self._latest[symbol] = q
                out.append(q)
            self._received[symbol] = self.polled_at
        self._buffer.extend(out)
        if out and self._wake is not None:
            self._wake()
        for trade in prints:
            for listener in self.tape_listeners:
                try:
                    listener(trade)
                except Exception:  # one listener's bug must not stop the quotes
                    log.exception("tape listener failed")
        return out

    def _prints(
        self, ticks: dict[str, list[dict[str, Any]]], moved: dict[str, CursorState]
    ) -> list[MarketTrade]:
        """The trade ticks among ``ticks`` read from the history (before the cursors
        move: a tick's ordinal at its millisecond continues the cursor's count)."""
        out: list[MarketTrade] = []
        for symbol, rows in ticks.items():
            cur = self.cursors[symbol]
            if not cur.msc or not moved.get(symbol, (0, 0, cur.history))[2]:
                continue  # symbol_info_tick's latest tick, not the history
            digits = self._specs[symbol].digits
            prev, n = cur.msc, cur.at_msc
            for row in rows:
                msc = int(row["time_msc"])
                n = n + 1 if msc == prev else 1
                prev = msc
                if int(row.get("flags") or 0) & convert.TRADE_TICK:
                    trade = convert.market_trade(symbol, row, digits, f"{symbol}-{msc}-{n}")
                    if trade is not None:
                        out.append(trade)
        return out

    def wake_with(self, wake: Callable[[], None]) -> None:
        """The market service's wake-up, called when a poll buffered quotes."""
        self._wake = wake

    # -- QuoteSource ------------------------------------------------------------------------

    def step(self, now: float) -> list[Quote]:
        out, self._buffer = self._buffer, []
        for symbol, q in self._latest.items():
            if not q.stale and now - self._received.get(symbol, now) > self.stale_after:
                q = self._latest[symbol] = replace(q, stale=True)
                out.append(q)
        return out

    def mark_stale(self) -> None:
        """The terminal is gone: every last quote is stale now, not in ``stale_after``."""
        for symbol in self._latest:
            self._received[symbol] = float("-inf")
        if self._latest and self._wake is not None:
            self._wake()

    def next_due(self) -> float:
        """Now when a poll left quotes. A woken service needs no other time (it steps at
        its ``MAX_SLEEP`` anyway, often enough for ``stale_after``); else the next poll's
        time, and once that has passed (the poll is still in the worker, or the terminal
        is away) a short wait, so that it neither spins nor adds more than ~10 ms."""
        now = self._clock()
        if self._buffer:
            return now
        if self._wake is not None:
            return now + self.stale_after
        if self._next > now:
            return self._next
        return now + min(self.interval / 10, 0.01)

    def latest(self, symbol: str) -> Quote | None:
        return self._latest.get(symbol)

    def set_quote(self, symbol: str, bid: float, ask: float, now: float) -> Quote:
        raise refused("Prices come from the MetaTrader 5 terminal", "not_supported")
