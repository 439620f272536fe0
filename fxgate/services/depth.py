"""Publishing the order book and the market's tape (seed 004's ``orderbook``/``trades``).

Both are produced only for symbols somebody subscribed to (``wanted``, the hub's
two-lookup check), so a quiet channel costs one dict lookup per tick and nothing else.

The book is read from the broker after each tick of a wanted symbol (the paper broker's
synthetic book around the new quote; MT5's ``market_book_get``). At most one read per
symbol is in flight: ticks that arrive meanwhile ask for one more read when it returns,
so a slow terminal is polled as fast as it answers and never queues reads. Each update
is the whole book (a client replaces what it has), conflated per symbol by the hub.

The tape comes from brokers that implement ``BrokerTape``; events are published as
they arrive, in order, and never conflated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fxgate.domain.errors import FxgateError
from fxgate.domain.events import Event
from fxgate.domain.market import MarketTrade, Quote
from fxgate.services.ports.broker import Broker

log = logging.getLogger(__name__)

BOOK_CHANNEL = "orderbook"
TAPE_CHANNEL = "market-trades"

#: Whether ``(channel, symbol)`` has subscribers.
Wanted = Callable[[str, str], bool]


class DepthFeed:
    def __init__(
        self,
        broker: Broker,
        publish: Callable[[Event], None],
        wanted: Wanted,
        spawn: Callable[[Coroutine[Any, Any, Any]], asyncio.Task[Any]],
        *,
        depth: int = 10,
    ) -> None:
        self.broker = broker
        self._publish = publish
        self._wanted = wanted
        self._spawn = spawn
        self.depth = depth
        #: symbol -> whether another read was asked for while one is in flight
        self._reading: dict[str, bool] = {}

    def on_quote(self, quote: Quote) -> None:
        """A market listener: read the book again if somebody watches it."""
        symbol = quote.symbol
        if symbol in self._reading:
            self._reading[symbol] = True
            return
        if not self._wanted(BOOK_CHANNEL, symbol):
            return
        self._reading[symbol] = False
        self._spawn(self._read(symbol))

    async def _read(self, symbol: str) -> None:
        try:
            while True:
                try:
                    book = await self.broker.order_book(symbol, self.depth)
                except FxgateError as exc:  # no price yet, a symbol gone: skip this tick
                    log.debug("no order book for %s: %s", symbol, exc.message)
                else:
                    self._publish(Event(BOOK_CHANNEL, book, key=symbol, ts=book.ts))
                if not self._reading.get(symbol) or not self._wanted(BOOK_CHANNEL, symbol):
                    return
                self._reading[symbol] = False
        except Exception:
            log.exception("order book read failed", extra={"symbol": symbol})
        finally:
            self._reading.pop(symbol, None)

    def on_trade(self, trade: MarketTrade) -> None:
        """A ``BrokerTape`` listener: publish the print if somebody watches the tape."""
        if self._wanted(TAPE_CHANNEL, trade.symbol):
            self._publish(Event(TAPE_CHANNEL, trade, key=trade.symbol, ts=trade.ts))
