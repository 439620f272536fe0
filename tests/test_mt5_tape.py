"""The MT5 adapter's market tape (seed 004's ``trades``): the trade ticks of the streamed
symbols (``TICK_FLAG_LAST``/``VOLUME``) become the same prints the paper market makes,
each once, in order, across polls and a lost terminal; a symbol without exchange trades
(spot FX) prints nothing.

The adapter over the fake terminal in process (polled with ``flush()``), and the feed's
conversion in memory (the corner cases a fake that always stamps the side cannot make).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from fxgate.brokers.mt5.broker import Mt5Broker
from fxgate.brokers.mt5.feed import TickFeed
from fxgate.domain.market import MarketTrade, SymbolSpec
from fxgate.services.ports.broker import BrokerTape
from fxgate.store.sqlite import SQLiteStore
from tests.conftest import ROOT, Daemons, free_port, until
from tests.fake_mt5 import FAKE_PATH as FAKE
from tests.fake_mt5 import RemoteControl
from tests.mt5.support import FakeTerminal, fake_terminal, make_adapter
from tests.wsclient import Client

OWNER = "u_owner"


@dataclass
class Tape:
    fake: FakeTerminal
    broker: Mt5Broker
    prints: list[MarketTrade] = field(default_factory=list)

    def of(self, symbol: str) -> list[tuple[float, float, str]]:
        return [(t.price, t.volume, t.side) for t in self.prints if t.symbol == symbol]


@pytest.fixture
async def tape(tmp_path: Path) -> AsyncIterator[Tape]:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    fake = fake_terminal()
    broker = make_adapter(fake, store.trading, OWNER)
    t = Tape(fake, broker)
    assert isinstance(broker, BrokerTape)
    broker.subscribe_tape(t.prints.append)
    await broker.start()
    await broker.flush()  # the first sweep: each symbol's latest tick (no history yet)
    try:
        yield t
    finally:
        await broker.stop()
        await store.close()


async def test_trades_between_two_polls_are_printed_once_in_order(tape: Tape) -> None:
    tape.fake.trade("BTCUSD", 95_010.5, 0.25, "buy")
    tape.fake.set_price("BTCUSD", 95_000.0, 95_020.0)  # a quote between two prints
    tape.fake.trade("BTCUSD", 95_000.0, 1.5, "sell")
    await tape.broker.flush()
    await tape.broker.flush()  # a second poll repeats nothing
    assert tape.of("BTCUSD") == [(95_010.5, 0.25, "buy"), (95_000.0, 1.5, "sell")]
    first, second = tape.prints
    assert first.id != second.id
    assert first.id.startswith("BTCUSD-")
    assert first.ts < second.ts
    assert abs(second.ts - tape.fake.now()) < 5

    msc = tape.fake.trade("BTCUSD", 95_030.0, 0.1, "buy")
    await tape.broker.flush()
    assert tape.of("BTCUSD")[2:] == [(95_030.0, 0.1, "buy")]
    assert tape.prints[-1].ts == msc / 1000


async def test_a_forex_symbol_prints_nothing(tape: Tape) -> None:
    for i in range(3):
        tape.fake.set_price("EURUSD", 1.085 + i / 1e4, 1.0851 + i / 1e4)
    await tape.broker.flush()
    quotes = [q for q in tape.broker.feed.step(tape.fake.now()) if q.symbol == "EURUSD"]
    assert len(quotes) >= 3  # the ticks came, as quotes
    assert tape.prints == []


async def test_trades_made_while_the_terminal_was_away_are_printed_once(tape: Tape) -> None:
    tape.fake.trade("BTCUSD", 95_001.0, 0.5, "buy")
    await tape.broker.flush()
    with tape.fake.lock:
        tape.fake.faults.terminal_down = True
        tape.fake.initialized = False
    await tape.broker.flush()
    assert not tape.broker.connected
    with tape.fake.lock:
        tape.fake.faults.terminal_down = False
    tape.fake.trade("BTCUSD", 95_002.0, 0.7, "sell")  # while fxgate was away
    await until(lambda: tape.broker.connected, what="reconnected")
    await tape.broker.flush()
    await tape.broker.flush()
    assert tape.of("BTCUSD") == [(95_001.0, 0.5, "buy"), (95_002.0, 0.7, "sell")]


async def test_the_simulated_exchange_prints_its_ticks_volumes(tmp_path: Path) -> None:
    """``trade_symbols``: the fake's own market makes trades from its ticks' volumes."""
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    fake = fake_terminal(trade_symbols=["BTCUSD"], random_ticks=True, clock="manual")
    broker = make_adapter(fake, store.trading, OWNER, symbols=["BTCUSD", "EURUSD"])
    prints: list[MarketTrade] = []
    broker.subscribe_tape(prints.append)
    await broker.start()
    try:
        await broker.flush()  # the cursors start at each symbol's latest tick
        fake.advance(30)  # 30 s of market: ticks on both, trades on BTCUSD
        await broker.flush()
        assert len(prints) >= 3
        assert {p.symbol for p in prints} == {"BTCUSD"}
        assert all(p.side in ("buy", "sell") and p.volume > 0 for p in prints)
        assert len({p.id for p in prints}) == len(prints)
    finally:
        await broker.stop()
        await store.close()


# -- the feed's conversion, in memory -----------------------------------------------------

SPEC = SymbolSpec("BTCUSD", "Bitcoin", "crypto", "BTC", "USD", 2, Decimal(1))
LAST, VOLUME, BUY, SELL, BID = 0x08, 0x10, 0x20, 0x40, 0x02


def tick(msc: int, flags: int, last: float = 0.0, vol: float = 0.0, **kw: Any) -> dict[str, Any]:
    row = {"time_msc": msc, "bid": 100.0, "ask": 101.0, "last": last, "volume": int(vol),
           "flags": flags, "volume_real": vol}  # fmt: skip
    return {**row, **kw}


def feed_with_tape() -> tuple[TickFeed, list[MarketTrade]]:
    feed = TickFeed(0.1)
    feed.stream(SPEC)
    prints: list[MarketTrade] = []
    feed.tape_listeners.append(prints.append)
    return feed, prints


def test_the_first_read_of_a_symbol_prints_nothing_then_history_does() -> None:
    feed, prints = feed_with_tape()
    # symbol_info_tick's latest tick (no cursor yet): a trade tick says nothing of the tape
    feed.take(
        {"BTCUSD": [tick(1_000, LAST | VOLUME | BUY, 100.5, 1)]}, {"BTCUSD": (1_000, 1, True)}
    )
    assert prints == []
    feed.take({"BTCUSD": [tick(1_000, LAST | BUY, 100.7, 2), tick(1_001, BID)]},
              {"BTCUSD": (1_001, 1, True)})  # fmt: skip
    assert [(p.price, p.volume, p.side, p.id) for p in prints] == [
        (100.7, 2.0, "buy", "BTCUSD-1000-2")  # the second tick at that millisecond
    ]


def test_without_a_side_flag_the_price_against_the_quote_decides() -> None:
    feed, prints = feed_with_tape()
    feed.take({"BTCUSD": [tick(1_000, BID)]}, {"BTCUSD": (1_000, 1, True)})
    rows = [
        tick(2_000, LAST | VOLUME, 101.0, 1),  # at the ask: a buyer
        tick(2_000, VOLUME, 100.0, 1),  # at the bid, same price as before: a seller
        tick(2_001, LAST | VOLUME, 100.4, 1),  # below the mid: a seller
        tick(2_002, LAST | VOLUME | SELL, 0.0, 1),  # no price: no print
        tick(2_003, LAST | VOLUME | BUY, 100.9, 0),  # no volume: no print
    ]
    feed.take({"BTCUSD": rows}, {"BTCUSD": (2_003, 1, True)})
    assert [(p.side, p.id) for p in prints] == [
        ("buy", "BTCUSD-2000-1"), ("sell", "BTCUSD-2000-2"), ("sell", "BTCUSD-2001-1"),
    ]  # fmt: skip


def test_a_symbol_read_without_history_prints_nothing() -> None:
    feed, prints = feed_with_tape()
    feed.take({"BTCUSD": [tick(1_000, BID)]}, {"BTCUSD": (1_000, 1, True)})
    # copy_ticks_from failed: the sweep fell back to symbol_info_tick for this symbol
    feed.take({"BTCUSD": [tick(5_000, LAST | BUY, 100.9, 1)]}, {"BTCUSD": (5_000, 1, False)})
    assert prints == []


# -- end to end: seed 004's /ws/market-data on an MT5 daemon -------------------------------


async def test_a_market_data_client_gets_the_mt5_tape(make_daemon: Daemons) -> None:
    port = free_port()
    d = make_daemon(
        FXGATE_BROKER_BACKEND="mt5",
        FXGATE_MT5_OWNER=OWNER,
        FXGATE_MT5_SYMBOLS='["EURUSD", "BTCUSD"]',
        FXGATE_MT5_POLL_INTERVAL="0.05",
        FXGATE_WS_ANONYMOUS_MARKET_DATA="true",
        PYTHONPATH=os.pathsep.join([str(FAKE), str(ROOT)]),
        FAKE_MT5_SCENARIO=json.dumps({"random_ticks": False}),
        FAKE_MT5_CONTROL=f"127.0.0.1:{port}",
    )
    control = RemoteControl(port)
    async with await Client.connect(d.ws_url("/ws/market-data")) as c:
        await c.type("connected")
        for symbol in ("BTC/USD", "EURUSD"):
            await c.send({"type": "subscribe", "channel": "trades", "symbol": symbol})
            await c.type("subscribed")
        # The adapter reads a symbol's history from its second sweep on: wait for one
        # quote that came after the subscription, then trade.
        await c.send({"type": "subscribe", "channel": "quotes", "symbol": "BTC/USD"})
        await c.type("subscribed")
        await asyncio.to_thread(control.set_price, symbol="BTCUSD", bid=95_000.0, ask=95_020.0)
        await c.wait_for(lambda m: m["type"] == "quote" and m["data"]["bid"] == 95_000.0)
        await asyncio.to_thread(control.set_price, symbol="EURUSD", bid=1.0849, ask=1.085)
        await asyncio.to_thread(
            control.trade, symbol="BTCUSD", price=95_020.0, volume=0.3, side="buy"
        )
        await asyncio.to_thread(
            control.trade, symbol="BTCUSD", price=95_000.0, volume=1.25, side="sell"
        )
        got = await c.read_until(lambda ms: sum(m["type"] == "trade" for m in ms) >= 2, timeout=10)
        trades = [m for m in got if m["type"] == "trade"]
        assert [(m["symbol"], m["channel"]) for m in trades] == [("BTC/USD", "trades")] * 2
        assert [(m["data"]["price"], m["data"]["quantity"], m["data"]["side"]) for m in trades] == [
            (95_020.0, 0.3, "buy"),
            (95_000.0, 1.25, "sell"),
        ]
        assert all(m["data"]["id"] and m["data"]["timestamp"].endswith("Z") for m in trades)
        assert trades[0]["data"]["id"] != trades[1]["data"]["id"]
        # EURUSD ticked (spot FX: no exchange trades) and printed nothing.
        assert not [m for m in await c.barrier() if m["type"] == "trade"]
