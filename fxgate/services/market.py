"""The market-data service: drives a quote source and hands every quote on.

The paper simulator has no clock of its own; this service steps it at the configured
tick rate and passes each quote to its listeners (the broker's matching, candles) and
then to the bus. A listener that raises is logged and does not stop the feed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from fxgate.domain.events import Event
from fxgate.domain.market import Quote, SymbolSpec

log = logging.getLogger(__name__)

CHANNEL = "market-data"


class QuoteSource(Protocol):
    @property
    def specs(self) -> Mapping[str, SymbolSpec]: ...

    def step(self, now: float) -> list[Quote]: ...

    def latest(self, symbol: str) -> Quote | None: ...

    def set_quote(self, symbol: str, bid: float, ask: float, now: float) -> Quote: ...


class MarketService:
    def __init__(
        self,
        source: QuoteSource,
        publish: Callable[[Event], None],
        *,
        tick_rate: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self._publish = publish
        self._clock = clock
        n = max(1, len(source.specs))
        # Wake often enough that quotes are not batched by more than ~5 ms, but not
        # more often than needed: one wake per expected tick, within [5 ms, 250 ms].
        self.interval = min(0.25, max(0.005, 1.0 / (tick_rate * n)))
        self._listeners: list[Callable[[Quote], None]] = []
        self.last_tick_at: float | None = None
        self.ticks = 0
        self.running = False

    @property
    def symbols(self) -> list[str]:
        return list(self.source.specs)

    def add_listener(self, fn: Callable[[Quote], None]) -> None:
        self._listeners.append(fn)

    def latest(self, symbols: Iterable[str] | None = None) -> list[Quote]:
        names = self.source.specs if symbols is None else symbols
        return [q for s in names if (q := self.source.latest(s)) is not None]

    def set_quote(self, symbol: str, bid: float, ask: float) -> Quote:
        quote = self.source.set_quote(symbol, bid, ask, self._clock())
        self._emit(quote)
        return quote

    def _emit(self, quote: Quote) -> None:
        for fn in self._listeners:
            try:
                fn(quote)
            except Exception:
                log.exception("quote listener failed", extra={"symbol": quote.symbol})
        self._publish(Event(CHANNEL, quote, key=quote.symbol, ts=quote.ts))
        self.ticks += 1
        self.last_tick_at = quote.ts

    def step(self) -> None:
        for quote in self.source.step(self._clock()):
            self._emit(quote)

    async def run(self) -> None:
        self.running = True
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        try:
            while True:
                self.step()
                next_at += self.interval
                delay = next_at - loop.time()
                if delay < 0:  # fell behind (a stall): don't try to catch up in a burst
                    next_at = loop.time()
                    delay = 0
                await asyncio.sleep(delay)
        finally:
            self.running = False
