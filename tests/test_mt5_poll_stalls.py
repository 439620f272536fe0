"""What keeps the MT5 adapter's polls from stalling the event loop and delaying ticks
(issue 7's benchmark targets, ``bench/mt5.py``): a price move revalues the open
positions a slice per turn of the loop, not all in one callback; and a trade poll is
asked of the worker where it delays no tick sweep (the worker runs one job at a time).

In process: the adapter over the fake terminal in a thread, its loops fast, the worker
wrapped to record when each job waited and ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fxgate.brokers.mt5 import session
from fxgate.brokers.mt5.thread import ThreadTerminal
from fxgate.services.ports.broker import BrokerEvent, BrokerEventKind
from fxgate.services.ports.store.trading import TradingStore
from fxgate.store.sqlite import SQLiteStore
from tests.conftest import until
from tests.mt5.support import BoundTerminal, fake_terminal, make_adapter

OWNER = "u_owner"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TradingStore]:
    s = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await s.open()
    try:
        yield s.trading
    finally:
        await s.close()


async def test_a_price_move_revalues_the_positions_a_slice_per_loop_turn(
    store: TradingStore,
) -> None:
    fake = fake_terminal()
    positions = 4 * session.REVALUE_SLICE + 3
    for i in range(positions):
        fake.open_by_hand("EURUSD", "buy" if i % 2 else "sell", "0.01")
    broker = make_adapter(fake, store, OWNER)
    await broker.start()
    try:
        await broker.flush()
        turn = 0
        arrivals: list[tuple[int, BrokerEvent]] = []
        broker.subscribe(lambda e: arrivals.append((turn, e)))

        async def count_turns() -> None:
            nonlocal turn
            while True:
                await asyncio.sleep(0)
                turn += 1

        counter = asyncio.create_task(count_turns())
        fake.set_price("EURUSD", 1.09000, 1.09010)
        await broker.flush()
        counter.cancel()
    finally:
        await broker.stop()
    moved = [(t, e) for t, e in arrivals if e.kind is BrokerEventKind.POSITION]
    assert len(moved) == positions
    assert all(e.floating for _, e in moved)
    assert len({e.data.ticket for _, e in moved}) == positions  # each once
    # Other callbacks ran between the slices: no turn carried more than one slice.
    per_turn: dict[int, int] = {}
    for t, _ in moved:
        per_turn[t] = per_turn.get(t, 0) + 1
    assert max(per_turn.values()) <= session.REVALUE_SLICE
    assert len(per_turn) >= positions // session.REVALUE_SLICE
    # The account's revaluation still comes after the positions'.
    kinds = [e.kind for _, e in arrivals]
    assert kinds[-1] is BrokerEventKind.ACCOUNT


class Recorded:
    """The worker, recording how long each job waited for the one before it."""

    def __init__(self, inner: ThreadTerminal, state_cost: float) -> None:
        self.inner = inner
        self.state_cost = state_cost
        self.one_at_a_time = asyncio.Lock()
        self.waits: dict[str, list[float]] = {}

    async def run(self, job: str, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        asked = loop.time()
        async with self.one_at_a_time:
            self.waits.setdefault(job, []).append(loop.time() - asked)
            if job == "read_state":  # a terminal (or fake) slow to list 200 positions
                await asyncio.sleep(self.state_cost)
            return await self.inner.run(job, *args)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return await self.run("call", name, args, kwargs)

    def forget(self) -> None:
        self.inner.forget()

    async def close(self) -> None:
        await self.inner.close()


async def test_a_trade_poll_waits_for_a_gap_between_tick_sweeps(store: TradingStore) -> None:
    """Tick sweeps every 50 ms and trade polls every 100 ms fall due together at every
    trade poll; a trade poll taking 20 ms in the worker then held that sweep's ticks
    back 20 ms. Asked for after the sweep, it is done before the next one."""
    fake = fake_terminal()
    api = BoundTerminal(fake)
    worker = Recorded(ThreadTerminal(lambda: api), state_cost=0.02)
    broker = make_adapter(fake, store, OWNER, poll_interval=0.05, trade_poll_interval=0.1)
    broker.terminal = worker
    await broker.start()
    try:
        await until(lambda: len(worker.waits.get("read_state", [])) >= 12, what="trade polls")
    finally:
        await broker.stop()
    sweeps = worker.waits["read_ticks"]
    assert len(sweeps) >= 12
    # A sweep queued behind a trade poll waits its 20 ms (the old order: ~15 of them
    # in this run; a few allowed for a loaded machine).
    assert sum(1 for w in sweeps if w > 0.015) <= 3, sorted(sweeps)[-5:]
