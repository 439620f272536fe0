"""The MT5 adapter's own behaviour over the fake terminal: faults, reconnection, the
order that must never be sent twice, requotes, trades made outside fxgate, ownership,
and the tick stream (none lost, none repeated, stale when the terminal goes).

In process: one fake terminal, one adapter with a real SQLite store, polled by the test
with ``flush()`` (the adapter's loops poll every hour here), so nothing sleeps; waits
for reconnection poll a condition with a deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from fxgate.brokers.mt5.broker import Mt5Broker
from fxgate.brokers.mt5.thread import ThreadTerminal
from fxgate.domain.errors import AuthorizationError, TradingError
from fxgate.domain.trading import OrderRequest, OrderStatus, OrderType, Side
from fxgate.services.ports.broker import BrokerEvent, BrokerEventKind
from fxgate.store.sqlite import SQLiteStore
from tests.conftest import until
from tests.mt5.support import (
    FAKE_USER,
    BoundTerminal,
    FakeTerminal,
    fake_terminal,
    make_adapter,
)

OWNER = "u_owner"


@dataclass
class World:
    fake: FakeTerminal
    broker: Mt5Broker
    events: list[BrokerEvent] = field(default_factory=list)

    def trading(self, kind: BrokerEventKind | None = None) -> list[BrokerEvent]:
        return [
            e
            for e in self.events
            if e.user_id is not None and not e.floating and (kind is None or e.kind is kind)
        ]

    async def price(self, symbol: str, bid: float, ask: float) -> None:
        self.fake.set_price(symbol, bid, ask)
        await self.broker.flush()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    fake = fake_terminal()
    broker = make_adapter(fake, store.trading, OWNER)
    w = World(fake, broker)
    broker.subscribe(w.events.append)
    await broker.start()
    await w.price("EURUSD", 1.08490, 1.08500)
    w.events.clear()
    try:
        yield w
    finally:
        await broker.stop()
        await store.close()


def buy(volume: str = "1", **kw: Any) -> OrderRequest:
    return OrderRequest("EURUSD", OrderType.MARKET, Side.BUY, D(volume), **kw)


def faults(w: World, **values: Any) -> None:
    with w.fake.lock:
        for k, v in values.items():
            setattr(w.fake.faults, k, v)


# -- never twice ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["timeout", "raise"])
async def test_an_order_whose_answer_was_lost_is_found_not_sent_again(
    world: World, mode: str
) -> None:
    faults(world, lost_answers=1, lost_mode=mode)
    order = await world.broker.place_order(OWNER, buy(client_order_id="cid-1"))
    assert order.status is OrderStatus.FILLED
    assert order.client_order_id == "cid-1"
    with world.fake.lock:
        positions = world.fake.engine.positions(FAKE_USER)
    assert [p.ticket for p in positions] == [order.ticket]  # executed once, not twice
    assert [e.data.ticket for e in world.trading(BrokerEventKind.ORDER)] == [order.ticket]
    assert world.broker.healthy


# -- faults ----------------------------------------------------------------------------


async def test_an_ipc_timeout_takes_the_broker_down_and_it_reconnects_and_resyncs(
    world: World,
) -> None:
    b = world.broker
    faults(world, fail_calls=1, fail_code=-10005, fail_message="IPC timeout")
    faults(world, terminal_down=True)  # and the terminal stays away for a while
    await b.flush()
    assert (b.healthy, b.health) == (False, "DOWN")
    with pytest.raises(TradingError) as info:
        await b.place_order(OWNER, buy())
    assert info.value.details["reason"] == "terminal_unavailable"
    # While it is away, a trader opens a position by hand: not queued by us, found later.
    ticket = world.fake.open_by_hand("EURUSD", "buy", "0.5")
    faults(world, terminal_down=False)
    await until(lambda: b.healthy)
    assert b.health == "HEALTHY"
    await b.flush()
    kinds = [e.kind for e in world.trading()]
    assert kinds == [
        BrokerEventKind.ORDER,
        BrokerEventKind.DEAL,
        BrokerEventKind.POSITION,
        BrokerEventKind.ACCOUNT,
    ]
    assert all(e.user_id == OWNER for e in world.trading())
    assert (await b.position(OWNER, ticket)).volume == D("0.5")
    await b.flush()
    assert len(world.trading()) == 4  # exactly once


async def test_the_terminal_not_running_at_start_up(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    fake = fake_terminal()
    with fake.lock:
        fake.faults.terminal_down = True
    broker = make_adapter(fake, store.trading, OWNER)
    try:
        await broker.start()  # does not fail: it keeps trying
        assert not broker.healthy
        assert broker.last_error is not None
        with pytest.raises(TradingError):
            await broker.place_order(OWNER, buy())
        with fake.lock:
            fake.faults.terminal_down = False
        await until(lambda: broker.healthy)
        assert await broker.symbol("EURUSD")
    finally:
        await broker.stop()
        await store.close()


async def test_a_wrong_login_is_not_logged_in_and_unhealthy(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    fake = fake_terminal()
    broker = make_adapter(
        fake, store.trading, OWNER, connect_kwargs={"login": 1, "password": "nope"}
    )
    try:
        await broker.start()
        assert not broker.healthy
        assert "Authorization failed" in (broker.last_error or "")
    finally:
        await broker.stop()
        await store.close()


class Breakable(BoundTerminal):
    broken = False

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = super().__getattr__(name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.broken:
                raise EOFError("connection closed by peer")
            return fn(*args, **kwargs)

        return call


async def test_the_bridge_gone_and_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    api = Breakable(fake_terminal())
    broker = Mt5Broker(
        ThreadTerminal(lambda: api),
        store.trading,
        owner=OWNER,
        symbols=["EURUSD"],
        poll_interval=3600,
        trade_poll_interval=3600,
        reconnect_min=0.01,
        reconnect_max=0.05,
    )
    try:
        await broker.start()
        assert broker.healthy
        api.broken = True
        await broker.flush()
        assert not broker.healthy
        with pytest.raises(TradingError):
            await broker.place_order(OWNER, buy())
        api.broken = False
        await until(lambda: broker.healthy)
    finally:
        await broker.stop()
        await store.close()


async def test_autotrading_off_degrades_and_refuses_orders_clearly(world: World) -> None:
    b = world.broker
    with world.fake.lock:
        world.fake.autotrading = False
    await b.flush()
    assert (b.healthy, b.health) == (False, "DEGRADED")
    with pytest.raises(TradingError) as info:
        await b.place_order(OWNER, buy())
    assert info.value.message == "AutoTrading is disabled in the terminal"
    assert world.trading() == []
    with world.fake.lock:
        world.fake.autotrading = True
    await b.flush()
    assert b.healthy


async def test_a_requote_is_retried_a_bounded_number_of_times(world: World) -> None:
    faults(world, requotes=2)
    order = await world.broker.place_order(OWNER, buy("0.1"))
    assert order.status is OrderStatus.FILLED
    faults(world, requotes=50)
    with pytest.raises(TradingError) as info:
        await world.broker.place_order(OWNER, buy("0.1"))
    assert info.value.details["reason"] == "requote"
    assert info.value.details["retcode"] == 10004
    assert len(await world.broker.positions(OWNER)) == 1


# -- the account's owner and trades made elsewhere -------------------------------------


async def test_only_the_owner_trades_and_sees_the_account(world: World) -> None:
    b = world.broker
    with pytest.raises(AuthorizationError):
        await b.place_order("someone_else", buy())
    await b.place_order(OWNER, buy())
    assert await b.positions("someone_else") == []
    assert (await b.account("someone_else")).balance == 0


async def test_a_position_opened_by_hand_appears_as_the_owners(world: World) -> None:
    ticket = world.fake.open_by_hand("EURUSD", "sell", "0.3")
    await world.broker.flush()
    pos = await world.broker.position(OWNER, ticket)
    assert (pos.side, pos.volume, pos.user_id) == (Side.SELL, D("0.3"), OWNER)
    (deal,) = [e.data for e in world.trading(BrokerEventKind.DEAL)]
    assert deal.position_ticket == ticket
    world.fake.close_by_hand(ticket)
    await world.broker.flush()
    assert await world.broker.positions(OWNER) == []
    closed = [e.data for e in world.trading(BrokerEventKind.POSITION)][-1]
    assert closed.status.value == "closed"


# -- ticks -----------------------------------------------------------------------------


async def test_every_tick_between_two_polls_arrives_once(world: World) -> None:
    feed = world.broker.feed
    feed.step(time.time())  # drop what the fixture produced
    prices = [(round(1.085 + i / 1e5, 5), round(1.0851 + i / 1e5, 5)) for i in range(5)]
    for bid, ask in prices:
        world.fake.set_price("EURUSD", bid, ask)
    await world.broker.flush()
    await world.broker.flush()  # a second poll repeats nothing
    got = [(q.bid, q.ask) for q in feed.step(time.time()) if q.symbol == "EURUSD"]
    assert got == prices


async def test_two_sweeps_at_once_deliver_each_tick_once(world: World) -> None:
    """A ``flush()`` beside the loop's own sweep: the cursors cross to the worker with
    the job, so the second sweep must wait for the first one's, not read the same ticks."""
    feed = world.broker.feed
    feed.step(time.time())
    world.fake.set_price("EURUSD", 1.0851, 1.0852)
    await asyncio.gather(world.broker.flush(), world.broker.flush())
    got = [(q.bid, q.ask) for q in feed.step(time.time()) if q.symbol == "EURUSD"]
    assert got == [(1.0851, 1.0852)]


async def test_quotes_go_stale_once_when_the_terminal_is_lost(world: World) -> None:
    feed = world.broker.feed
    feed.step(time.time())
    faults(world, terminal_down=True)
    await world.broker.flush()
    stale = [q for q in feed.step(time.time()) if q.symbol == "EURUSD"]
    assert [(q.stale, q.bid) for q in stale] == [(True, 1.0849)]
    assert [q for q in feed.step(time.time()) if q.symbol == "EURUSD"] == []  # not repeated


# -- market data ----------------------------------------------------------------------


async def test_candles_come_from_the_terminals_history(world: World) -> None:
    from fxgate.services.ports.broker import BrokerCandles

    b = world.broker
    assert isinstance(b, BrokerCandles)
    for interval in ("1m", "5m", "15m", "1h", "4h", "1d"):
        bars = await b.candles("EURUSD", interval, None, None, 50)
        assert len(bars) == 50, interval
        times = [c.open_time for c in bars]
        assert times == sorted(times)
        assert all(D(c.low) <= D(c.open) <= D(c.high) for c in bars)
    last = bars[-1].open_time
    ranged = await b.candles("EURUSD", "1d", last - timedelta(days=3), last, 10)
    assert [c.open_time for c in ranged] == [last - timedelta(days=n) for n in (3, 2, 1)]


async def test_the_order_book_and_symbol_selection(world: World) -> None:
    b = world.broker
    book = await b.order_book("EURUSD", 3)
    assert 0 < len(book.bids) <= 3
    assert book.bids[0].price < book.asks[0].price
    with world.fake.lock:
        world.fake.selected.discard("USDCAD")
    b._specs.pop("USDCAD", None)  # as if never streamed
    spec = await b.symbol("USDCAD")  # selected into Market Watch before use
    assert spec.symbol == "USDCAD"
    with world.fake.lock:
        assert "USDCAD" in world.fake.selected


# -- revaluations and restarts -----------------------------------------------------------


async def test_a_price_move_only_revalues_floating(world: World) -> None:
    b = world.broker
    await b.place_order(OWNER, buy())
    world.events.clear()
    await world.price("EURUSD", 1.08600, 1.08610)
    moved = [e for e in world.events if e.kind is BrokerEventKind.POSITION]
    assert moved
    assert all(e.floating for e in moved)
    assert moved[-1].data.profit == D("100.00")  # (1.08600 - 1.08500) * 100,000
    assert world.trading() == []


async def test_a_restart_announces_only_what_changed_while_fxgate_was_away(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    fake = fake_terminal()
    first = make_adapter(fake, store.trading, OWNER)
    await first.start()
    fake.set_price("EURUSD", 1.08490, 1.08500)
    await first.flush()
    kept = (await first.place_order(OWNER, buy())).ticket
    await first.stop()

    fake.set_price("EURUSD", 1.08520, 1.08530)
    by_hand = fake.open_by_hand("EURUSD", "sell", "0.2")  # while fxgate is stopped
    second = make_adapter(fake, store.trading, OWNER)
    events: list[BrokerEvent] = []
    second.subscribe(events.append)
    try:
        await second.start()
        await second.flush()
        news = [e for e in events if not e.floating and e.user_id == OWNER]
        tickets = {e.data.ticket for e in news if e.kind is not BrokerEventKind.ACCOUNT}
        assert by_hand in tickets
        assert kept not in tickets  # known before the restart: not announced again
        assert [e.kind for e in news].count(BrokerEventKind.DEAL) == 1
        assert {p.ticket for p in await second.positions(OWNER)} == {kept, by_hand}
    finally:
        await second.stop()
        await store.close()


async def test_changes_the_store_refused_are_announced_after_the_next_write(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fxgate.services.ports.store.errors import StoreUnavailableError

    b = world.broker
    real = b.store.save
    failures = {"left": 3}

    async def flaky(**batches: Any) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError("disk I/O error")
        await real(**batches)

    monkeypatch.setattr(b.store, "save", flaky)
    with pytest.raises(StoreUnavailableError):
        await b.place_order(OWNER, buy())
    assert world.trading() == []  # nothing announced that is not stored
    await b.flush()
    kinds = [e.kind for e in world.trading()]
    assert kinds == [
        BrokerEventKind.ORDER,
        BrokerEventKind.DEAL,
        BrokerEventKind.POSITION,
        BrokerEventKind.ACCOUNT,
    ]
    await b.flush()
    assert len(world.trading()) == 4


async def test_a_terminal_without_its_trade_server_is_degraded(world: World) -> None:
    b = world.broker
    faults(world, disconnected=True)
    await b.flush()
    assert b.health == "DEGRADED"
    with pytest.raises(TradingError) as info:
        await b.place_order(OWNER, buy())
    assert info.value.details["retcode"] == 10031
    faults(world, disconnected=False)
    await b.flush()
    assert b.health == "HEALTHY"


async def test_a_call_the_package_refuses_is_a_trading_error(world: World) -> None:
    faults(world, fail_calls=1, fail_code=-2, fail_message='Invalid "comment" argument',
           fail_only=["order_check"])  # fmt: skip
    with pytest.raises(TradingError) as info:
        await world.broker.place_order(OWNER, buy())
    assert info.value.details["terminal"] == 'Invalid "comment" argument'
    assert world.broker.healthy  # the terminal is fine: only that request was refused
    assert world.trading() == []


async def test_no_symbols_named_streams_the_market_watch(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    fake = fake_terminal(market_watch=["EURUSD", "USDJPY"])
    broker = make_adapter(fake, store.trading, OWNER, symbols=())
    try:
        await broker.start()
        assert sorted(broker.feed.specs) == ["EURUSD", "USDJPY"]
        assert {s.symbol for s in await broker.symbols()} == {"EURUSD", "USDJPY"}
    finally:
        await broker.stop()
        await store.close()
