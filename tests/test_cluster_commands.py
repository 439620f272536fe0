"""The cluster's pieces against a real redis-server, in one process: the leader lease and
its fence, and trading commands sent to the leader over the Redis stream.

The daemons-as-processes tests (tests/test_cluster_nodes.py) show the same end to end;
here each rule is pinned where it is cheap: who gets the lease, a paused leader that
writes nothing, a command answered once, a dead leader's commands taken over and not
run twice, and the errors a client sees when no leader or no Redis answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from fxgate.brokers.paper.broker import PaperBroker
from fxgate.bus.cluster.commands import GROUP, STREAM, ClusterCommands, CommandRouter
from fxgate.bus.cluster.fence import FencedTradingStore, LeaseLostError
from fxgate.bus.cluster.lanes import Lanes
from fxgate.bus.cluster.lease import Lease
from fxgate.bus.cluster.node import cancel_each
from fxgate.domain.errors import ErrorCode, FxgateError, NotFoundError
from fxgate.domain.market import DEFAULT_SYMBOLS, Quote
from fxgate.domain.trading import Order, OrderChanges, OrderRequest, OrderType, Position, Side
from fxgate.services.ports.store.errors import StaleFenceError
from fxgate.store.sqlite import SQLiteStore
from tests.conftest import until
from tests.redis_fixtures import RedisServer
from tests.store.builders import order as record

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Trading:
    """A trading service that records what it was asked (as the leader's would run it)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.by_cid: dict[str, Order] = {}

    async def place_order(
        self, user_id: str, request: OrderRequest, *, actor: str | None = None
    ) -> tuple[Order, bool]:
        self.calls.append(("place_order", user_id, request))
        cid = request.client_order_id
        if cid is not None and cid in self.by_cid:
            return self.by_cid[cid], False
        order = Order(
            id=f"ord_{len(self.calls)}",
            ticket=len(self.calls),
            user_id=user_id,
            symbol=request.symbol,
            type=request.type,
            side=request.side,
            volume=request.volume,
            created_at=1.0,
            updated_at=1.0,
            client_order_id=cid,
        )
        if cid is not None:
            self.by_cid[cid] = order
        return order, True

    async def modify_order(
        self, user_id: str, order_id: str, changes: OrderChanges, *, actor: str | None = None
    ) -> Order:
        raise NotFoundError("Order not found", details={"orderId": order_id})

    async def cancel_order(self, user_id: str, order_id: str, *, actor: str | None = None) -> Order:
        raise NotImplementedError

    async def close_position(
        self, user_id: str, ticket: int, volume: Decimal | None = None, *, actor: str | None = None
    ) -> Position:
        self.calls.append(("close_position", user_id, (ticket, volume)))
        return Position(
            ticket=ticket,
            user_id=user_id,
            symbol="EURUSD",
            side=Side.BUY,
            volume=volume or Decimal("1"),
            open_price=Decimal("1.1"),
            current_price=Decimal("1.2"),
            opened_at=1.0,
            updated_at=2.0,
        )

    async def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        *,
        actor: str | None = None,
    ) -> Position:
        raise NotImplementedError


def market(cid: str | None = None, volume: str = "0.10") -> OrderRequest:
    return OrderRequest("EURUSD", OrderType.MARKET, Side.BUY, Decimal(volume), client_order_id=cid)


@pytest.fixture
async def r(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis(port=redis_server.port)
    await client.flushall()
    yield client
    await client.aclose()


class Node:
    """One node's lease and router, as RedisCluster wires them."""

    def __init__(self, r: aioredis.Redis, name: str, *, timeout: float = 2.0) -> None:
        self.trading = Trading()
        self.clock = Clock()
        self.lease = Lease(r, name, lease=5.0, clock=self.clock)
        self.router = CommandRouter(r, name, self.lease, timeout=timeout)
        self.router.local = self.trading
        self.commands = ClusterCommands(self.router)
        self.tasks: list[asyncio.Task[None]] = []

    async def join(self) -> None:
        await self.router.ensure_group()
        self.tasks.append(asyncio.create_task(self.router.listen()))
        await self.router.wait_subscribed(5)

    async def lead(self) -> None:
        assert await self.lease.try_acquire()
        self.router.leading = True
        self.tasks.append(asyncio.create_task(self.router.serve()))

    async def leave(self) -> None:
        await cancel_each(self.tasks)


async def test_one_lease_holder_and_every_new_leader_has_a_larger_token(
    r: aioredis.Redis,
) -> None:
    a, b = Lease(r, "a", lease=1.0), Lease(r, "b", lease=1.0)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    assert await a.renew()
    assert a.valid()
    first = a.token
    await r.delete("fxgate:leader")  # as if the lease ran out while a was paused
    assert await b.try_acquire()
    assert b.token is not None
    assert first is not None
    assert b.token > first
    assert not await a.renew(), "the old leader cannot renew a lease another holds"
    assert not await a.still_mine()


async def test_a_paused_leader_stops_writing_when_its_lease_runs_out_by_its_own_clock(
    r: aioredis.Redis,
) -> None:
    clock = Clock()
    lease = Lease(r, "a", lease=5.0, clock=clock)
    assert await lease.try_acquire()

    class Inner:
        saved = 0

        async def save(self, **records: Any) -> None:
            self.saved += 1

    inner = Inner()
    fenced = FencedTradingStore(inner, lease.valid)
    await fenced.save()
    clock.now += 6  # a pause longer than the lease: no renewal could have happened
    with pytest.raises(LeaseLostError):
        await fenced.save()
    assert inner.saved == 1
    assert not await lease.still_mine()


async def test_the_first_refused_write_reports_the_lost_lease_at_once(
    r: aioredis.Redis,
) -> None:
    """After a pause, whichever task runs first: a write the fence refuses stops the
    broker (``on_lost``) then and there, not at the campaign's next step."""
    clock = Clock()
    lease = Lease(r, "a", lease=5.0, clock=clock)
    lost: list[str] = []
    elected = asyncio.Event()

    async def on_elected() -> None:
        elected.set()

    task = asyncio.create_task(lease.campaign(on_elected, lambda: lost.append("a")))
    await asyncio.wait_for(elected.wait(), 5)

    class Inner:
        saved = 0

        async def save(self, **records: Any) -> None:
            self.saved += 1

    inner = Inner()
    fenced = FencedTradingStore(inner, lease.valid, lease.ran_out)
    clock.now += 6
    with pytest.raises(LeaseLostError):
        await fenced.save()
    assert lost == ["a"], "reported by the refused write, before any renewal"
    with pytest.raises(LeaseLostError):
        await fenced.save()
    await cancel_each([task])
    assert lost == ["a"]
    assert inner.saved == 0


async def test_a_paper_broker_fenced_out_warns_once_and_stops_writing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    lease = {"valid": True}
    calls: list[int] = []
    refusals: list[int] = []

    def valid() -> bool:
        if not lease["valid"]:
            refusals.append(1)
        return lease["valid"]

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(store.trading, name)

        async def save(self, **records: Any) -> None:
            calls.append(1)
            await store.trading.save(**records)

    fenced = FencedTradingStore(Counting(), valid)
    broker = PaperBroker(DEFAULT_SYMBOLS, fenced, is_open=lambda symbol, ts: True)  # type: ignore[arg-type]
    await broker.start()
    try:
        broker.on_quote(Quote("EURUSD", 1.0849, 1.085, 1.0849, 1, 0, 0, 1, 1, 1, 1, 0.0, 0.0))
        buy = OrderRequest("EURUSD", OrderType.MARKET, Side.BUY, Decimal("0.1"))
        await broker.place_order("alice", buy)
        stored = len(calls)
        lease["valid"] = False
        with caplog.at_level(logging.INFO, logger="fxgate.brokers.paper.broker"):
            for _ in range(3):
                with pytest.raises(LeaseLostError):
                    await broker.place_order("alice", buy)
            await broker.stop()
    finally:
        await store.close()
    assert len(calls) == stored
    assert len(refusals) == 1, "one refused write (no retries), then none tried"
    records = [x for x in caplog.records if x.name == "fxgate.brokers.paper.broker"]
    assert [(x.levelno, x.getMessage()) for x in records] == [
        (logging.WARNING, "lost the leader lease: trading writes refused, stopping the broker")
    ]
    assert records[0].exc_info is None
    assert broker.refused > 0


async def test_an_old_leader_whose_clock_still_trusts_its_lease_is_refused_by_the_store(
    r: aioredis.Redis, tmp_path: Path
) -> None:
    """The lease key lost in a Redis failover: the old leader's clock says it still
    leads, a new leader is elected and writes. The store refuses the old one's write
    (its token is lower), and that refusal demotes it at once."""
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    old, new = Lease(r, "old", lease=5.0), Lease(r, "new", lease=5.0)
    lost: list[str] = []
    elected = asyncio.Event()

    async def on_elected() -> None:
        elected.set()

    task = asyncio.create_task(old.campaign(on_elected, lambda: lost.append("old")))
    try:
        await asyncio.wait_for(elected.wait(), 5)

        def fenced(lease: Lease) -> FencedTradingStore:
            return FencedTradingStore(
                store.trading,
                lease.valid,
                lease.ran_out,
                token=lambda: lease.fence_token,
                superseded=lease.superseded,
            )

        by_old, by_new = fenced(old), fenced(new)
        await by_old.save(orders=[record("o1")])
        await r.delete("fxgate:leader")  # the failover's replica never had the key
        assert await new.try_acquire()
        assert old.valid(), "the old leader's own clock has not noticed"
        await by_new.save(orders=[record("o2")])
        with pytest.raises(StaleFenceError):
            await by_old.save(orders=[record("o3")])
        assert lost == ["old"], "the store's refusal demoted the old leader then and there"
        assert not old.valid()
        with pytest.raises(LeaseLostError):  # and its clock fence refuses from now on
            await by_old.next_sequence("ticket")
        assert await by_new.next_sequence("ticket") == 1
        orders, _ = await store.trading.list_orders("u1")
        assert sorted(o.id for o in orders) == ["o1", "o2"]
    finally:
        await cancel_each([task])
        await store.close()


async def test_a_lost_lease_is_noticed_and_reported_once(r: aioredis.Redis) -> None:
    a, b = Lease(r, "a", lease=1.0), Lease(r, "b", lease=1.0)
    lost: list[str] = []
    elected = asyncio.Event()

    async def on_elected() -> None:
        elected.set()

    task = asyncio.create_task(a.campaign(on_elected, lambda: lost.append("a")))
    await asyncio.wait_for(elected.wait(), 5)
    await r.delete("fxgate:leader")
    assert await b.try_acquire()
    await until(lambda: lost, what="the old leader notices it lost the lease")
    await cancel_each([task])
    assert lost == ["a"]
    assert not a.valid()


async def test_a_leader_whose_first_write_the_store_refuses_is_a_follower_not_a_redis_error(
    r: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Elected, but the broker's start-up write is refused by the store (a newer leader's
    token is there): the lease is dropped once and the node follows; the log says why,
    not that Redis is unreachable."""
    a = Lease(r, "a", lease=1.0)
    lost: list[str] = []
    starts: list[int] = []

    async def on_elected() -> None:
        starts.append(1)
        raise StaleFenceError("a newer leader has written")

    caplog.set_level(logging.INFO, logger="fxgate")
    task = asyncio.create_task(a.campaign(on_elected, lambda: lost.append("a")))
    try:
        await until(lambda: lost, what="the refused start drops the lease")
        # Another campaign round or two: not elected again, nothing more reported.
        await until(lambda: not a.eligible and a.token is None, what="a follower")
    finally:
        await cancel_each([task])
    assert lost == ["a"]
    assert starts == [1]
    text = caplog.text
    assert "cannot reach Redis" not in text
    assert "the store has seen a newer leader's fencing token" in text
    assert "Traceback" not in text


async def test_an_order_sent_on_b_runs_once_on_leader_a_and_b_gets_the_order(
    r: aioredis.Redis,
) -> None:
    a, b = Node(r, "a"), Node(r, "b")
    await a.join()
    await b.join()
    await a.lead()
    try:
        order, created = await b.commands.place_order("u1", market("c-1"))
        assert created
        assert order.client_order_id == "c-1"
        assert order.volume == Decimal("0.10")
        again, created = await b.commands.place_order("u1", market("c-1"))
        assert not created
        assert again == order
        position = await b.commands.close_position("u1", 7, Decimal("0.05"))
        assert position.volume == Decimal("0.05")
        assert position.ticket == 7
        with pytest.raises(FxgateError) as refused:
            await b.commands.modify_order("u1", "ord_x", OrderChanges(price=Decimal("1.2")))
        assert refused.value.code is ErrorCode.NOT_FOUND_ERROR
        assert refused.value.status == 404
        assert refused.value.details == {"orderId": "ord_x"}
        assert [c[0] for c in a.trading.calls] == ["place_order", "place_order", "close_position"]
        assert b.trading.calls == [], "nothing ran on the node that is not leader"
        # The leader itself runs its commands directly, without the hop.
        await a.commands.place_order("u2", market())
        assert a.trading.calls[-1][1] == "u2"
    finally:
        await a.leave()
        await b.leave()


class Gated(Trading):
    """Orders of the user ``slow`` wait for ``gate``: a slow broker call."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.started: list[str] = []
        self.finished: list[str] = []

    async def place_order(
        self, user_id: str, request: OrderRequest, *, actor: str | None = None
    ) -> tuple[Order, bool]:
        tag = f"{user_id}:{request.client_order_id}"
        self.started.append(tag)
        if user_id == "slow":
            await self.gate.wait()
        try:
            return await super().place_order(user_id, request, actor=actor)
        finally:
            self.finished.append(tag)


async def test_a_slow_command_holds_no_other_users_and_one_users_commands_keep_their_order(
    r: aioredis.Redis,
) -> None:
    a, b = Node(r, "a"), Node(r, "b", timeout=10)
    gated = Gated()
    a.router.local = a.trading = gated
    await a.join()
    await b.join()
    await a.lead()
    try:
        first = asyncio.create_task(b.commands.place_order("slow", market("s-1")))
        await until(lambda: "slow:s-1" in gated.started, what="the slow order running")
        second = asyncio.create_task(b.commands.place_order("slow", market("s-2")))
        # Sent after s-2, so read after it: answered while both of slow's wait.
        order, created = await asyncio.wait_for(b.commands.place_order("fast", market("f-1")), 3)
        assert created
        assert order.user_id == "fast"
        assert gated.started == ["slow:s-1", "fast:f-1"], "s-2 waits for s-1, its user's"
        gated.gate.set()
        assert (await first)[0].client_order_id == "s-1"
        assert (await second)[0].client_order_id == "s-2"
        assert gated.started == ["slow:s-1", "fast:f-1", "slow:s-2"]
        assert gated.finished == ["fast:f-1", "slow:s-1", "slow:s-2"]
    finally:
        await a.leave()
        await b.leave()


async def test_lanes_run_at_most_their_limit_at_once_and_each_key_in_order() -> None:
    lanes = Lanes(2)
    running: set[str] = set()
    most = 0
    done: list[str] = []
    release = asyncio.Event()

    def job(key: str, n: int) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            nonlocal most
            assert key not in running, "two jobs of one key at once"
            running.add(key)
            most = max(most, len(running))
            await release.wait()
            running.discard(key)
            done.append(f"{key}{n}")

        return run

    for n in range(3):
        for key in ("a", "b", "c"):
            await lanes.submit(key, job(key, n))
    await until(lambda: len(running) == 2, what="two jobs running")
    release.set()
    await until(lambda: len(done) == 9, what="every job done")
    assert most == 2
    for key in ("a", "b", "c"):
        assert [d for d in done if d[0] == key] == [f"{key}0", f"{key}1", f"{key}2"]
    assert lanes.pending == 0
    await lanes.close()


async def test_no_leader_answers_a_clear_service_unavailable_and_the_command_is_dropped(
    r: aioredis.Redis,
) -> None:
    b = Node(r, "b", timeout=0.3)
    await b.join()
    try:
        with pytest.raises(FxgateError) as refused:
            await b.commands.place_order("u1", market("late"))
        assert refused.value.code is ErrorCode.SERVICE_UNAVAILABLE
        assert "no trading leader answered" in refused.value.message
        # A leader that comes later does not run what its sender already gave up on.
        a = Node(r, "a")
        await a.join()
        await a.lead()
        await a.commands.place_order("u3", market())  # a's own, run directly
        ok, _ = await b.commands.place_order("u1", market("after"))
        assert ok.client_order_id == "after"
        assert [c[2].client_order_id for c in a.trading.calls] == [None, "after"]
        await a.leave()
    finally:
        await b.leave()


async def test_a_new_leader_takes_over_the_pending_commands_of_a_dead_one(
    r: aioredis.Redis,
) -> None:
    """The dead leader read three commands and acked none: one it had answered (kept),
    one it had started without a clientOrderId, one it never started."""
    b = Node(r, "b", timeout=5)
    await b.join()
    await b.router.ensure_group()

    async def send(rid: str, request: OrderRequest) -> None:
        from fxgate.bus.cluster.wire import encode

        await r.xadd(
            STREAM,
            {
                "rid": rid,
                "op": "place_order",
                "user": "u1",
                "actor": "",
                "args": json.dumps({"request": encode(request)}),
                "reply": b.router.reply_channel,
                "deadline": repr(2e9),
            },
        )

    await send("done", market("c-done"))
    await send("started", market(None))
    await send("fresh", market("c-fresh"))
    await r.xreadgroup(GROUP, "dead", {STREAM: ">"}, count=10)  # delivered, never acked
    await r.set("fxgate:cmd:started:done", "dead")
    await r.set(
        "fxgate:cmd:result:done",
        json.dumps({"rid": "done", "ok": False, "error": {
            "code": "TRADING_ERROR", "message": "kept", "details": None, "status": 422,
        }}),
    )  # fmt: skip
    await r.set("fxgate:cmd:started:started", "dead")

    a = Node(r, "a")
    await a.join()
    await a.lead()
    try:

        async def all_acknowledged() -> bool:
            return (await r.xpending(STREAM, GROUP))["pending"] == 0

        await until(all_acknowledged, what="every command taken over and acknowledged")
        assert [c[2].client_order_id for c in a.trading.calls] == ["c-fresh"], (
            "the answered one is not run again, the started one without a clientOrderId"
            " is not risked twice"
        )
        started = json.loads(await r.get("fxgate:cmd:result:started"))
        assert started["error"]["code"] == "SERVICE_UNAVAILABLE"
        assert "outcome is unknown" in started["error"]["message"]
    finally:
        await a.leave()
        await b.leave()


async def test_trading_commands_are_refused_clearly_when_redis_cannot_be_reached() -> None:
    from tests.conftest import free_port

    gone = aioredis.Redis(port=free_port(), socket_connect_timeout=0.2)
    lease = Lease(gone, "b", lease=5.0)
    router = CommandRouter(gone, "b", lease, timeout=1)
    with pytest.raises(FxgateError) as refused:
        await ClusterCommands(router).place_order("u1", market("c-1"))
    assert refused.value.code is ErrorCode.SERVICE_UNAVAILABLE
    assert "cannot reach Redis" in refused.value.message
    await gone.aclose()
