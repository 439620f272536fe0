"""The order-book and tape producers (``fxgate.services.depth``) and the paper tape."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from fxgate.brokers.paper.tape import TapeMaker
from fxgate.domain.errors import TradingError
from fxgate.domain.events import Event
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.domain.trading import BookLevel, OrderBook
from fxgate.services.depth import BOOK_CHANNEL, TAPE_CHANNEL, DepthFeed

SPECS = {s.symbol: s for s in DEFAULT_SYMBOLS}


def q(bid: float, volume: int = 4, symbol: str = "BTCUSD") -> Quote:
    return Quote(symbol, bid, bid + 35, bid, volume, 3500, 1.0, bid, bid, bid, bid, 0.0, 0.0)


def test_the_paper_tape_prints_each_tick_with_volume_on_the_side_the_price_moved() -> None:
    tape = TapeMaker(SPECS)
    first = tape.on_quote(q(95000.0))
    assert first is not None
    assert (first.side, first.price, first.volume, first.id) == ("sell", 95000.0, 0.04, "BTCUSD-1")
    up = tape.on_quote(q(95010.0, volume=2))
    assert up is not None
    assert (up.side, up.price, up.volume, up.id) == ("buy", 95045.0, 0.02, "BTCUSD-2")
    assert tape.on_quote(q(95010.0, volume=0)) is None  # a price set by hand: no trade
    assert tape.on_quote(q(1.0, symbol="NOPE")) is None


class Broker:
    def __init__(self) -> None:
        self.reads = 0
        self.gate = asyncio.Event()

    async def order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        self.reads += 1
        await self.gate.wait()
        if symbol == "GONE":
            raise TradingError("no price")
        level = BookLevel(Decimal(self.reads), Decimal(1))
        return OrderBook(symbol, (level,), (level,), 1.0)


async def test_books_are_read_only_when_watched_and_never_queue_up() -> None:
    broker, published, watched = Broker(), [], {"BTCUSD"}
    tasks: list[asyncio.Task[Any]] = []

    def spawn(coro: Any) -> asyncio.Task[Any]:
        tasks.append(asyncio.get_running_loop().create_task(coro))
        return tasks[-1]

    feed = DepthFeed(broker, published.append, lambda ch, s: s in watched, spawn)  # type: ignore[arg-type]
    feed.on_quote(q(1.0, symbol="ETHUSD"))  # nobody watches ETHUSD
    for _ in range(5):  # five ticks while the first read is in flight: one more read
        feed.on_quote(q(1.0))
    broker.gate.set()
    await asyncio.gather(*tasks)
    assert broker.reads == 2
    assert [e.channel for e in published] == [BOOK_CHANNEL, BOOK_CHANNEL]
    assert published[-1].data.bids[0].price == Decimal(2)  # the newest book last
    watched.add("GONE")
    feed.on_quote(q(1.0, symbol="GONE"))
    await asyncio.gather(*tasks)
    assert len(published) == 2  # an error skips the tick, logs, publishes nothing


def test_the_tape_is_published_only_for_watched_symbols() -> None:
    published: list[Event] = []
    feed = DepthFeed(None, published.append, lambda ch, s: s == "BTCUSD", lambda c: None)  # type: ignore[arg-type]
    tape = TapeMaker(SPECS)
    for quote in (q(1.0, symbol="ETHUSD"), q(95000.0)):
        trade = tape.on_quote(quote)
        assert trade is not None
        feed.on_trade(trade)
    assert [(e.channel, e.key) for e in published] == [(TAPE_CHANNEL, "BTCUSD")]
