"""A risk alert on a node whose leader term is over: the store refuses it, quietly.

In memory but for the store: the trading service with the node's own background tasks
(:class:`~fxgate.app.tasks.Tasks`, which logs a crashed task), a real SQLite store
behind the cluster's fenced store with this node's token 1, and a broker double that
only hands the service its account snapshots (all the daily-loss watch reads). The
leader raises an alert; "another leader" then writes with token 2, and the next alert's
``save_alert`` is refused by the store itself (``StaleFenceError``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from decimal import Decimal as D
from pathlib import Path
from typing import Any, cast

import pytest

from fxgate.app.tasks import Tasks
from fxgate.bus.cluster.fence import FencedTradingStore
from fxgate.domain.events import Event
from fxgate.domain.trading import Account, AccountMode
from fxgate.services.ports.broker import Broker, BrokerEvent, BrokerEventKind, BrokerListener
from fxgate.services.ports.store.errors import StaleFenceError
from fxgate.services.risk import RiskLimits
from fxgate.services.trading import TradingService
from fxgate.store.sqlite import SQLiteStore
from tests.conftest import until

USER = "u_trader"
NOW = time.time()
TODAY = time.strftime("%Y-%m-%d", time.gmtime(NOW))
FENCED = "lost the leader lease: risk alerts not stored or announced on this node"


class AccountsOnly:
    """The broker as the service's event path sees it: a source of broker events."""

    def __init__(self) -> None:
        self.listeners: list[BrokerListener] = []

    def subscribe(self, listener: BrokerListener) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener)

    def emit(self, account: Account) -> None:
        for listener in self.listeners:
            listener(BrokerEvent(BrokerEventKind.ACCOUNT, account, account.user_id, True))


@dataclass
class Leader:
    service: TradingService
    broker: AccountsOnly
    store: SQLiteStore
    published: list[Event]
    spawned: list[asyncio.Task[Any]] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)

    async def loss(self, amount: str, user: str = USER) -> None:
        """``user``'s account snapshot with the day's loss at ``amount`` (the limit is
        100), then every background task it started, finished."""
        equity = D("10000") - D(amount)
        self.broker.emit(
            Account(user, "USD", 100, AccountMode.HEDGING, D("10000"), equity, NOW, NOW,
                    TODAY, D("10000"))
        )  # fmt: skip
        # A task's done callbacks run in the order they were added: the spawner's
        # (which logs) before gather's, so by the time gather returns they have run.
        await asyncio.gather(*self.spawned, return_exceptions=True)

    def alerts(self) -> list[Any]:
        return [e.data for e in self.published if e.channel == "alerts"]


@pytest.fixture
async def leader(tmp_path: Path) -> AsyncIterator[Leader]:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    tasks = Tasks()
    broker = AccountsOnly()
    published: list[Event] = []
    node = Leader(cast(TradingService, None), broker, store, published)

    def spawn(coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        task = tasks.spawn(coro, name=name)
        node.spawned.append(task)
        return task

    fenced = FencedTradingStore(
        store.trading,
        lambda: True,  # the clock says this node leads: only the store's token fences it
        token=lambda: 1,
        superseded=lambda: node.refused.append(1),
    )
    node.service = TradingService(
        cast(Broker, broker),
        cast(Any, fenced),
        published.append,
        audit=store.audit,
        limits=RiskLimits(max_daily_loss=D("100")),
        spawn=spawn,
        clock=lambda: NOW,
    )
    try:
        yield node
    finally:
        await tasks.cancel_all()
        await store.close()


async def test_a_risk_alert_the_store_refuses_is_one_warning_not_a_crashed_task(
    leader: Leader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="fxgate")
    await leader.loss("85")  # 85 % of the limit: the leader raises the WARNING alert
    assert [a["severity"] for a in leader.alerts()] == ["WARNING"]

    await leader.store.trading.next_sequence("another-leader", fence=2)
    await leader.loss("120")  # 120 %: CRITICAL, refused by the store
    await leader.loss("90", user="u_other")  # nothing more from this node, no retry

    assert leader.refused == [1], "one refused write, never retried"
    assert [a["severity"] for a in leader.alerts()] == ["WARNING"]  # none unstored
    stored = await leader.store.trading.list_all_alerts()
    assert [o.doc["severity"] for o in stored] == ["WARNING"]
    fenced = [r for r in caplog.records if r.getMessage() == FENCED]
    assert [r.levelno for r in fenced] == [logging.WARNING]
    assert "a newer trading leader has written" in fenced[0].reason
    loud = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert loud == [], [r.getMessage() for r in loud]


async def test_any_background_task_a_fence_ends_is_a_warning_not_a_crash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="fxgate")

    async def fenced_write() -> None:
        raise StaleFenceError("a newer trading leader has written (fencing token 2 > 1)")

    task = Tasks().spawn(fenced_write(), name="some-trading-write")
    await asyncio.gather(task, return_exceptions=True)
    await until(
        lambda: [r for r in caplog.records if r.name == "fxgate.node"],
        what="the task's end logged (Tasks logs in its done callback)",
    )
    [record] = [r for r in caplog.records if r.name == "fxgate.node"]
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert (record.task, record.reason) == ("some-trading-write", str(task.exception()))
