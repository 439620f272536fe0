"""The MT5 adapter on a node that lost the leader lease: the store refuses its write
(a newer leader's fencing token), and the adapter lets go of the terminal.

In process, as in ``test_mt5_adapter.py``: the fake terminal, a real SQLite store behind
the cluster's fenced store (the wrapper every leader writes through), with this node's
token 1. "Another leader" then writes with token 2, so this node's next write is refused
by the store itself (``StaleFenceError``), exactly as after a Redis failover. What a user
of the node notices: one WARNING naming the reason, no traceback, no retry; the polling
stops, the terminal is disconnected, and trades are refused without reaching it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from fxgate.brokers.mt5.broker import Mt5Broker
from fxgate.bus.cluster.fence import FencedTradingStore
from fxgate.domain.errors import ErrorCode
from fxgate.domain.trading import OrderRequest, OrderType, Side
from fxgate.services.ports.store.errors import StoreFencedError
from fxgate.store.sqlite import SQLiteStore
from tests.conftest import until
from tests.mt5.support import FAKE_USER, FakeTerminal, fake_terminal, make_adapter
from tests.test_cluster_nodes import FENCED

OWNER = "u_owner"
POLLING = {"mt5-ticks", "mt5-trades", "mt5-reconnect"}


@dataclass
class Node:
    fake: FakeTerminal
    broker: Mt5Broker
    store: SQLiteStore
    #: Every job the adapter gave its terminal worker: ("call", "order_send"), ...
    calls: list[tuple[str, Any]] = field(default_factory=list)
    #: len(calls) when the store refused this node's write.
    refused_at: list[int] = field(default_factory=list)

    async def newer_leader_writes(self) -> None:
        await self.store.trading.next_sequence("another-leader", fence=2)

    def after_refusal(self) -> list[tuple[str, Any]]:
        assert len(self.refused_at) == 1, "refused once, never retried"
        return self.calls[self.refused_at[0] :]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    fake = fake_terminal()
    refused_at: list[int] = []
    calls: list[tuple[str, Any]] = []
    fenced = FencedTradingStore(
        store.trading,
        lambda: True,  # the clock says this node leads: only the store's token fences it
        token=lambda: 1,
        superseded=lambda: refused_at.append(len(calls)),
    )
    # Polled for real, briskly: a poll that kept running after the refusal would show.
    broker = make_adapter(fake, fenced, OWNER, poll_interval=0.02, trade_poll_interval=0.02)
    real_run = broker.terminal.run

    async def run(job: str, *args: Any) -> Any:
        calls.append((job, args[0] if job == "call" else None))
        return await real_run(job, *args)

    broker.terminal.run = run  # type: ignore[method-assign]
    fake.set_price("EURUSD", 1.08490, 1.08500)
    await broker.start()
    n = Node(fake, broker, store, calls, refused_at)
    try:
        yield n
    finally:
        await broker.stop()
        await store.close()


def buy(volume: str = "1") -> OrderRequest:
    return OrderRequest("EURUSD", OrderType.MARKET, Side.BUY, D(volume))


def polling_tasks() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if not t.done()} & POLLING


def assert_one_warning_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    fenced = [r for r in caplog.records if r.getMessage() == FENCED]
    assert [r.levelno for r in fenced] == [logging.WARNING]
    assert "a newer trading leader has written" in fenced[0].reason
    assert fenced[0].exc_info is None
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]


async def stopped(node: Node) -> None:
    await until(lambda: not node.fake.initialized, what="the terminal disconnected")
    await until(lambda: not polling_tasks(), what="the polling loops ended")


async def test_a_poll_whose_write_the_store_refuses_stops_the_adapter_once(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fxgate")
    b = node.broker
    assert b.connected
    assert polling_tasks() == {"mt5-ticks", "mt5-trades"}
    await node.newer_leader_writes()
    node.fake.open_by_hand("EURUSD", "buy", "0.5")  # the next trade poll must store it
    await stopped(node)

    assert_one_warning_no_traceback(caplog)
    # After the refusal the terminal was only told goodbye: no poll, no retry, no trade.
    assert node.after_refusal() == [("call", "shutdown")]
    assert (b.connected, b.health) == (False, "DOWN")
    with pytest.raises(StoreFencedError) as refused:
        await b.place_order(OWNER, buy())
    assert refused.value.code is ErrorCode.SERVICE_UNAVAILABLE
    await b.flush()
    assert node.after_refusal() == [("call", "shutdown")]
    assert len([r for r in caplog.records if r.getMessage() == FENCED]) == 1


async def test_a_trade_whose_write_the_store_refuses_is_answered_and_not_repeated(
    node: Node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fxgate")
    b = node.broker
    await node.newer_leader_writes()
    with pytest.raises(StoreFencedError) as refused:
        await b.place_order(OWNER, buy())
    assert refused.value.code is ErrorCode.SERVICE_UNAVAILABLE
    await stopped(node)

    assert_one_warning_no_traceback(caplog)
    with node.fake.lock:
        sent = node.fake.engine.positions(FAKE_USER)
    assert len(sent) == 1  # sent once; the new leader finds it in the terminal
    assert node.after_refusal() == [("call", "shutdown")]
    with pytest.raises(StoreFencedError):
        await b.place_order(OWNER, buy())
    assert node.after_refusal() == [("call", "shutdown")]  # refused before the terminal
