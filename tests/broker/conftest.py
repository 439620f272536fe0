"""One broker contract, every adapter: the ``harness`` fixture.

Each test of ``test_conformance.py`` runs against every entry of ``ADAPTERS``: today
``paper`` (the paper broker over a real SQLite file); the MT5 adapter over a fake terminal
adds one entry, a function that builds its ``Harness``. Every harness starts in the same
world, so that the tests can state amounts:

- hedging accounts in USD at 1:100 with 10,000.00, for any user id (the fake terminal
  maps the test users onto its accounts the way ``mt5.owner`` does);
- the ``DEFAULT_SYMBOLS`` specifications (EURUSD: 100,000 a lot, 5 digits, 0.01 steps);
- the market open, and no price at all until the test feeds one with ``quote``.

``quote`` feeds a tick and returns once the broker has acted on it and announced what it
did (the paper broker: ``on_quote`` then ``flush``; MT5: the fake terminal's tick, then one
poll), so the tests never sleep. ``stored`` tells whether a record was stored, exactly as
it is, before the event that announces it reached the listener.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fxgate.brokers.paper.broker import PaperBroker
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.domain.trading import Account, Deal, Order, Position
from fxgate.services.ports.broker import Broker, BrokerEvent
from fxgate.services.ports.store.trading import TradingStore
from fxgate.store.sqlite import SQLiteStore

T0 = 1_700_000_000.0  # Tuesday 2023-11-14 22:13:20 UTC


@dataclass
class Harness:
    """A started broker, the controls the tests drive it with, and what it announced."""

    broker: Broker
    feed: Callable[[Quote], Awaitable[None]]
    set_open: Callable[[bool], None]
    saved: Callable[[], Sequence[Order | Deal | Position | Account]]
    #: The broker's clock, and moving it forward (expiries are due then, announced at
    #: the next ``quote``), so that time-driven tests never sleep.
    now: Callable[[], float] = field(default=lambda: T0)
    advance: Callable[[float], None] = field(default=lambda seconds: None)
    events: list[BrokerEvent] = field(default_factory=list)
    #: The market moves to ``bid``/``ask`` and an aggressor on ``side`` trades ``lots``
    #: at the touch (the ask for a buy, the bid for a sell): what the broker's tape
    #: (``BrokerTape``) reports, announced by the time it returns.
    execute: Callable[[str, str, str, str, str], Awaitable[None]] | None = None
    #: For each announced trading event: was that exact snapshot stored before it?
    stored_first: list[bool] = field(default_factory=list)

    async def quote(self, symbol: str, bid: str, ask: str) -> None:
        b, a = float(bid), float(ask)
        await self.feed(Quote(symbol, b, a, b, 1, 0, T0, b, b, b, b, 0.0, 0.0))

    def trading_events(self, user_id: str | None = None) -> list[BrokerEvent]:
        """Announced trading changes (not quotes, not floating revaluations)."""
        return [
            e
            for e in self.events
            if e.user_id is not None
            and not e.floating
            and (user_id is None or e.user_id == user_id)
        ]

    def clear(self) -> None:
        self.events.clear()
        self.stored_first.clear()

    def listen(self, event: BrokerEvent) -> None:
        self.events.append(event)
        if event.user_id is not None and not event.floating:
            data = event.data
            assert isinstance(data, Order | Deal | Position | Account)
            self.stored_first.append(data in self.saved())


class SpyStore:
    """The real trading store, noting every record (a frozen snapshot) it was asked to
    save and did."""

    def __init__(self, store: TradingStore) -> None:
        self._store = store
        self.saved: list[Order | Deal | Position | Account] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def save(self, **batches: Sequence[Order | Deal | Position | Account]) -> None:
        await self._store.save(**batches)  # type: ignore[arg-type]
        for records in batches.values():
            self.saved.extend(records)


@asynccontextmanager
async def paper(tmp_path: Path) -> AsyncIterator[Harness]:
    store = SQLiteStore(tmp_path / "state" / "fxgate.sqlite3")
    await store.open()
    spy = SpyStore(store.trading)
    market = {"open": True}
    clock = itertools.count(int(T0))
    skipped = {"seconds": 0.0}

    def now() -> float:
        return float(next(clock)) + skipped["seconds"]

    def advance(seconds: float) -> None:
        skipped["seconds"] += seconds

    broker = PaperBroker(
        DEFAULT_SYMBOLS,
        spy,  # type: ignore[arg-type]
        settings=PaperSettings(),  # the defaults: USD, 1:100, 10,000, hedging
        is_open=lambda symbol, now: market["open"],
        clock=now,
        revalue_interval=3600,  # floating revaluations are not under test here
    )

    async def feed(quote: Quote) -> None:
        broker.on_quote(quote)
        await broker.flush()

    def set_open(value: bool) -> None:
        market["open"] = value

    async def execute(symbol: str, bid: str, ask: str, side: str, lots: str) -> None:
        # The paper tape prints a tick's volume (in smallest lots) on the side the bid
        # moved: see fxgate/brokers/paper/tape.py.
        b, a = float(bid), float(ask)
        step = float(broker.engine.specs[symbol].volume_step)
        ticks = round(float(lots) / step)
        await feed(Quote(symbol, b, a, b, ticks, 0, now(), b, b, b, b, 0.0, 0.0))

    harness = Harness(broker, feed, set_open, lambda: spy.saved, now, advance, execute=execute)
    broker.subscribe(harness.listen)
    await broker.start()
    try:
        yield harness
    finally:
        await broker.stop()
        await store.close()


class PerUser:
    """One MT5 adapter per user (one terminal is one account, owned by one user), seen
    as one broker: each user's calls go to their own adapter; market reads to the first."""

    name = "mt5"

    def __init__(self, brokers: dict[str, Any]) -> None:
        self.brokers = brokers
        self.first = next(iter(brokers.values()))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.first, name)

    def _of(self, user_id: str) -> Any:
        return self.brokers[user_id]

    @property
    def healthy(self) -> bool:
        return all(b.healthy for b in self.brokers.values())

    async def start(self) -> None:
        for b in self.brokers.values():
            await b.start()

    async def stop(self) -> None:
        for b in self.brokers.values():
            await b.stop()

    async def flush(self) -> None:
        for b in self.brokers.values():
            await b.flush()

    def subscribe(self, listener: Any) -> Any:
        undo = [b.subscribe(listener) for b in self.brokers.values()]
        return lambda: [u() for u in undo]

    def open_position(self, user_id: str, ticket: int) -> Any:
        return self._of(user_id).open_position(user_id, ticket)

    def __getattribute__(self, name: str) -> Any:
        per_user = {
            "account",
            "account_terms",
            "order_calc_margin",
            "order_calc_profit",
            "positions",
            "position",
            "orders",
            "deals",
            "place_order",
            "modify_order",
            "cancel_order",
            "close_position",
            "modify_position",
        }
        if name in per_user:
            brokers = object.__getattribute__(self, "brokers")

            async def call(user_id: str, *args: Any, **kwargs: Any) -> Any:
                return await getattr(brokers[user_id], name)(user_id, *args, **kwargs)

            return call
        return object.__getattribute__(self, name)


@asynccontextmanager
async def mt5(tmp_path: Path) -> AsyncIterator[Harness]:
    """Alice and Bob each own a fake terminal (10,000 USD at 1:100, hedging) and the
    adapter that drives it; ``quote`` sets the price in both terminals, then polls."""
    from tests.mt5.support import fake_terminal, make_adapter

    store = SQLiteStore(tmp_path / "state" / "fxgate.sqlite3")
    await store.open()
    spy = SpyStore(store.trading)
    fakes = {
        user: fake_terminal(first_ticket=first, priced=False)
        for user, first in (("alice", 50_000_000), ("bob", 60_000_000))
    }
    brokers = {u: make_adapter(f, spy, u) for u, f in fakes.items()}  # type: ignore[arg-type]
    broker = PerUser(brokers)

    async def feed(quote: Quote) -> None:
        for f in fakes.values():
            f.set_price(quote.symbol, quote.bid, quote.ask)
        await broker.flush()

    def set_open(value: bool) -> None:
        for f in fakes.values():
            with f.lock:
                for s in DEFAULT_SYMBOLS:
                    (f.faults.closed.discard if value else f.faults.closed.add)(s.symbol)

    def advance(seconds: float) -> None:
        for f in fakes.values():
            f.advance(seconds)

    async def execute(symbol: str, bid: str, ask: str, side: str, lots: str) -> None:
        for f in fakes.values():  # one market: each terminal sees the trade
            f.set_price(symbol, float(bid), float(ask))
            f.trade(symbol, float(ask if side == "buy" else bid), float(lots), side)
        await broker.flush()

    first = next(iter(fakes.values()))
    harness = Harness(
        broker,  # type: ignore[arg-type]
        feed,
        set_open,
        lambda: spy.saved,
        first.now,
        advance,
        execute=execute,
    )
    broker.subscribe(harness.listen)
    await broker.start()
    try:
        yield harness
    finally:
        await broker.stop()
        await store.close()


#: Adapter name -> a context manager that starts it in the common world (see above).
ADAPTERS: dict[str, Callable[[Path], AbstractAsyncContextManager[Harness]]] = {
    "paper": paper,
    "mt5": mt5,
}


@pytest.fixture(params=sorted(ADAPTERS))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    async with ADAPTERS[request.param](tmp_path) as h:
        yield h
