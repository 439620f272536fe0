"""How soon a tick the adapter polled reaches the market service's listeners: the
service is woken by the sweep that buffered it (not by a timer that guesses), and the
poll loops keep fixed deadlines (the period is the interval, not the interval plus the
poll). In memory: the adapter's feed and loop, no terminal.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from fxgate.brokers.mt5.feed import TickFeed
from fxgate.brokers.mt5.session import poll_every
from fxgate.domain.events import Event
from fxgate.domain.market import SymbolSpec
from fxgate.services.market import MAX_SLEEP, MarketService
from tests.conftest import until

SPEC = SymbolSpec("EURUSD", "Euro vs US Dollar", "forex", "EUR", "USD", 5, Decimal(100_000))


def tick(msc: int, bid: float) -> dict[str, Any]:
    return {"time_msc": msc, "bid": bid, "ask": bid + 0.0001, "last": 0.0, "volume": 0}


async def test_a_polled_tick_is_published_at_once_not_when_a_timer_fires() -> None:
    feed = TickFeed(3600)  # the next poll is an hour away: only a wake-up can be quick
    feed.stream(SPEC)
    arrived: asyncio.Queue[Event] = asyncio.Queue()
    market = MarketService(feed, arrived.put_nowait)
    task = asyncio.create_task(market.run())
    try:
        feed.take({"EURUSD": [tick(1_000, 1.1)]})
        await asyncio.wait_for(arrived.get(), 1)
        await asyncio.sleep(0.01)  # the service is now asleep, until its MAX_SLEEP
        feed.take({"EURUSD": [tick(2_000, 1.2)]})
        quote = (await asyncio.wait_for(arrived.get(), MAX_SLEEP / 5)).data
        assert quote.bid == 1.2
    finally:
        task.cancel()


async def test_polls_start_one_interval_apart_however_long_a_poll_takes() -> None:
    starts: list[float] = []
    loop = asyncio.get_running_loop()

    async def slow_poll() -> None:
        starts.append(loop.time())
        await asyncio.sleep(0.06)

    task = asyncio.create_task(poll_every(0.1, slow_poll))
    try:
        await until(lambda: len(starts) >= 5, what="five polls started")
    finally:
        task.cancel()
    period = (starts[-1] - starts[0]) / (len(starts) - 1)
    assert period < 0.13  # sleeping the interval after each poll made it 0.16
