"""Several daemons (real processes) on one real redis-server: one trading leader, trading
commands from any node, take-over when the leader dies, and ``serve --workers N``.

Three nodes A, B, C share the module's Redis and one state directory (one SQLite file:
the store every node reads). A is started first and takes the lease. The tests run in
the order of the file and share the nodes to keep daemon starts few (two cores).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import os
import signal
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import Daemon, until
from tests.redis_fixtures import RedisServer
from tests.test_redis_bus import Cluster, Node, connect, health
from tests.trading_helpers import Admin, Trader, unique
from tests.wsclient import Client

pytestmark = pytest.mark.timeout(180)
HTTP = httpx.Client(timeout=15)
_prefix = itertools.count(1)


class Nodes(Cluster):
    def node(self, **env: str) -> Node:
        return super().node(FXGATE_BUS_REDIS_PREFIX=self.prefix, FXGATE_BUS_LEADER_LEASE="2", **env)

    prefix = "cl"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[Nodes]:
    c = Nodes(tmp_path_factory.mktemp("cluster"), redis_server)
    c.prefix = f"cl{next(_prefix)}_{os.getpid()}"
    try:
        c.start(3)
        yield c
    finally:
        c.stop_all()


def leads(node: Daemon) -> bool:
    """Leads now: elected, and not demoted since."""
    log = node.log()
    return log.rfind("elected trading leader") > log.rfind("lost the trading lease")


def order_messages(got: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in got if m.get("type") == "order" and not m["data"].get("snapshot")]


async def test_a_rest_order_on_b_fills_on_leader_a_and_reaches_b_and_c_clients(
    nodes: Nodes,
) -> None:
    a, b, c = nodes.nodes
    assert leads(a)
    assert not leads(b)
    assert not leads(c)
    trader = Trader.issued(b)
    async with await connect(b, trader.user_id) as on_b, await connect(c, trader.user_id) as on_c:
        for cl in (on_b, on_c):
            await cl.subscribe("orders", "trades")
            await cl.barrier()
        order = trader.buy(0.1, clientOrderId="b-1")
        assert order["status"] == "filled"
        for cl in (on_b, on_c):
            got = await cl.read_until(
                lambda ms: (
                    any(m.get("type") == "trade" for m in ms)
                    and any(m["data"].get("orderId") == order["id"] for m in order_messages(ms))
                ),
                timeout=10,
            )
            assert {m["data"]["orderId"] for m in order_messages(got)} == {order["id"]}
    # The same clientOrderId again, through C this time: the same order, nothing new.
    again = Trader(c, trader.user_id, trader.token).order(
        expect=200, symbol="EURUSD", type="market", side="buy", quantity=0.1, clientOrderId="b-1"
    )
    assert again["id"] == order["id"]
    orders = Trader(c, trader.user_id, trader.token).orders()
    assert [o["id"] for o in orders] == [order["id"]]


async def test_one_market_feed_the_leaders_and_followers_snapshots_show_its_prices(
    nodes: Nodes,
) -> None:
    a, _, c = nodes.nodes
    user = unique("md")

    def eurusd(m: dict[str, Any]) -> bool:
        return m.get("type") == "market_data" and m["data"]["symbol"] == "EURUSD"

    async with await connect(c, user) as live:
        await live.subscribe({"name": "market-data", "filters": {"symbol": ["EURUSD"]}})
        Admin(a).quote("EURUSD", "1.23456", "1.23466")  # on the leader's feed
        tick = await live.wait_for(lambda m: eurusd(m) and m["data"]["bid"] == 1.23456, 10)
        assert not tick["data"].get("snapshot")
    async with await connect(c, user) as fresh:
        await fresh.subscribe({"name": "market-data", "filters": {"symbol": ["EURUSD"]}})
        first = await fresh.wait_for(eurusd, 5)
        assert first["data"]["bid"] == 1.23456, "a follower's snapshot is the leader's price"


async def test_an_order_announced_before_its_leader_died_unmarked_is_not_announced_twice(
    nodes: Nodes,
) -> None:
    """The leader announced an order and died before marking it announced: the next
    leader, asked for it again by its clientOrderId, announces again only what is not in
    the streams' history, so clients see each order event and each fill once. (Here the
    mark is deleted by hand: a death in that window is too narrow to hit on purpose.)"""
    a, b, c = nodes.nodes
    trader = Trader.issued(b)
    r = redis.Redis(port=nodes.redis.port)
    async with await connect(c, trader.user_id) as watcher:
        await watcher.subscribe("orders", "trades")
        await watcher.barrier()
        order = trader.buy(0.1, clientOrderId="once")
        mark = f"{nodes.prefix}:cmd:announced:{trader.user_id}:{order['id']}"
        assert r.delete(mark) == 1
        body = {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.1}
        again = trader.order(expect=200, **body, clientOrderId="once")
        assert again["id"] == order["id"]
        last = trader.buy(0.1, clientOrderId="after-once")
        seen = await watcher.read_until(
            lambda ms: (
                any(m["data"]["orderId"] == last["id"] for m in order_messages(ms))
                and any(
                    m.get("type") == "trade" and m["data"]["orderTicket"] == last["ticket"]
                    for m in ms
                )
            ),
            timeout=15,
        )
    r.close()
    assert "announcing again an order a dead leader stored" in a.log(), "the path ran"
    versions = [
        (m["data"]["status"], m["data"]["updatedAt"])
        for m in order_messages(seen)
        if m["data"]["orderId"] == order["id"]
    ]
    assert versions, "the order was announced"
    assert len(versions) == len(set(versions)), f"an order event seen twice: {versions}"
    fills = [
        m["data"]["executionId"]
        for m in seen
        if m.get("type") == "trade" and m["data"]["orderTicket"] == order["ticket"]
    ]
    assert len(fills) == 1, f"its fill seen {len(fills)} times"


async def test_the_leader_killed_during_a_burst_loses_and_doubles_no_acknowledged_order(
    nodes: Nodes,
) -> None:
    a, b, c = nodes.nodes
    trader = Trader.issued(b)
    cids = [unique("burst") for _ in range(16)]
    acked: dict[str, str] = {}

    def place(cid: str) -> None:
        """What a client does: send again with the same clientOrderId until answered."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            r = trader.post(
                "/trading/orders",
                {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.01,
                 "clientOrderId": cid},
            )  # fmt: skip
            if r.status_code in (200, 201):
                acked[cid] = r.json()["data"]["id"]
                return
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
        raise AssertionError(f"{cid} never acknowledged")

    async with await connect(c, trader.user_id) as watcher:
        await watcher.subscribe("orders", "trades")
        await watcher.barrier()
        pool = concurrent.futures.ThreadPoolExecutor(4)
        loop = asyncio.get_running_loop()
        burst = [loop.run_in_executor(pool, place, cid) for cid in cids]
        await until(lambda: len(acked) >= 4, timeout=20, what="the burst under way")
        killed_at = time.monotonic()
        assert a.proc is not None
        a.proc.send_signal(signal.SIGKILL)  # orders in flight, some on the leader
        await asyncio.gather(*burst)
        pool.shutdown()
        leader = await until(
            lambda: next((n for n in (b, c) if leads(n)), None), timeout=10, what="a new leader"
        )
        assert time.monotonic() - killed_at < 2 + 8, "a new leader within the lease (and then some)"
        # One more order, on the new leader, after every acknowledgement: each stream is
        # in order, so once its fill is seen, every earlier event (a repeat too) is.
        last = Trader(leader, trader.user_id, trader.token).buy(0.01, clientOrderId="last")
        seen = await watcher.read_until(
            lambda ms: (
                any(m["data"]["orderId"] == last["id"] for m in order_messages(ms))
                and any(
                    m.get("type") == "trade" and m["data"]["orderTicket"] == last["ticket"]
                    for m in ms
                )
            ),
            timeout=15,
        )
        orders_seen = order_messages(seen)
        offsets = [m["offset"] for m in orders_seen]
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets))), (
            "the trading stream is gap-free across the change of leader"
        )
        assert {m["data"]["orderId"] for m in orders_seen} >= set(acked.values())
        # Every order event and every execution exactly once, though the new leader
        # announced again the orders its predecessor stored without an announced mark.
        versions = [
            (m["data"]["orderId"], m["data"]["status"], m["data"]["updatedAt"]) for m in orders_seen
        ]
        assert len(versions) == len(set(versions)), "an order event seen twice"
        executions = [
            m["data"]["executionId"]
            for m in seen
            if m.get("type") == "trade" and not m["data"].get("snapshot")
        ]
        assert len(executions) == len(set(executions)), "an execution seen twice"
        assert len(executions) == len(cids) + 1, "every fill seen"

    assert sorted(acked) == sorted(cids)
    on_new = Trader(leader, trader.user_id, trader.token)
    orders = on_new.orders()
    by_cid = [o["clientOrderId"] for o in orders]
    assert sorted(by_cid) == sorted([*cids, "last"]), "every acknowledged order stored once"
    assert {o["id"] for o in orders} == {*acked.values(), last["id"]}
    positions = on_new.positions()
    assert len(positions) == len(cids) + 1, "the new leader's broker holds each fill once"


FENCED = "lost the leader lease: trading writes refused, stopping the broker"


async def test_a_paused_leader_loses_its_lease_to_another_and_serves_on_as_follower(
    nodes: Nodes,
) -> None:
    alive = [n for n in nodes.nodes if n.proc is not None and n.proc.poll() is None]
    old = next(n for n in alive if leads(n))
    other = next(n for n in alive if n is not old)
    assert old.proc is not None
    # An open position on the leader, revalued at a new price: unsaved records, which the
    # broker tries to store when it stops, after the pause (and the fence refuses).
    opened = Trader.issued(old).buy(0.1, clientOrderId="before-pause")
    assert opened["status"] == "filled"
    Admin(old).quote("EURUSD", "1.23556", "1.23566")
    old.proc.send_signal(signal.SIGSTOP)  # a stalled VM, a debugger: no renewal, no exit
    try:
        await until(lambda: leads(other), timeout=10, what="the other node elected")
    finally:
        old.proc.send_signal(signal.SIGCONT)
    await until(
        lambda: "lost the trading lease" in old.log(), timeout=10, what="the old leader demoted"
    )
    # Its refused writes are one expected warning, not a traceback per write.
    await until(lambda: FENCED in old.log(), timeout=10, what="the refused writes reported")
    lines = old.log().splitlines()
    assert sum(FENCED in line for line in lines) == 1
    assert not [x for x in lines if "LeaseLostError" in x and "Traceback" in x]
    assert not [x for x in lines if "could not store trading records" in x]
    # The old leader serves on as a follower: its orders go to the new leader.
    trader = Trader.issued(old)
    order = trader.buy(0.1, clientOrderId="after-pause")
    assert order["status"] == "filled"
    assert old.log().count("elected trading leader") == 1
    assert not leads(old)
    positions = Trader(other, trader.user_id, trader.token).positions()
    assert [p["ticket"] for p in positions] == [order["ticket"]]


async def test_trading_commands_are_refused_clearly_while_redis_is_down(
    nodes: Nodes, redis_server: RedisServer
) -> None:
    follower = next(n for n in nodes.nodes if n.proc is not None and n.proc.poll() is None
                    and not leads(n))  # fmt: skip
    trader = Trader.issued(follower)
    redis_server.stop()
    try:
        await until(lambda: health(follower)["components"].get("redis") == "DOWN", timeout=10)
        r = trader.post(
            "/trading/orders",
            {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.1},
        )
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "SERVICE_UNAVAILABLE"
        assert "cannot reach Redis" in error["message"]
    finally:
        redis_server.start()


# -- serve --workers N ------------------------------------------------------------------


class NotifySocket:
    """systemd's end of sd_notify: each datagram with the pid that sent it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setblocking(False)
        self.got: list[tuple[int, str]] = []

    def read(self) -> list[tuple[int, str]]:
        while True:
            try:
                data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
            except BlockingIOError:
                return self.got
            pid = next(
                (struct.unpack("iII", d[:12])[0] for lvl, kind, d in ancillary
                 if lvl == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS),
                -1,
            )  # fmt: skip
            self.got.append((pid, data.decode()))

    def saw(self, text: str) -> bool:
        return any(text in m for _, m in self.read())


def children(pid: int) -> set[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return {int(p) for p in path.read_text().split()} if path.exists() else set()


async def test_workers_share_one_port_a_killed_worker_comes_back_and_sigterm_drains_all(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    notify = NotifySocket(tmp_path / "notify")
    d = Daemon(
        tmp_path / "workers",
        {
            "NOTIFY_SOCKET": str(notify.path),
            "WATCHDOG_USEC": "1000000",
            "FXGATE_SERVER_WORKERS": "2",
            "FXGATE_BUS_BACKEND": "redis",
            "FXGATE_BUS_REDIS_URL": redis_server.url,
            "FXGATE_BUS_REDIS_PREFIX": f"wk{os.getpid()}",
            "FXGATE_PAPER_TICK_RATE": "0.0001",
        },
    ).start()
    try:
        assert d.proc is not None
        await until(lambda: len(children(d.proc.pid)) == 2, timeout=20, what="two workers")  # type: ignore[union-attr]
        workers = children(d.proc.pid)
        # Only the supervisor notifies: READY once both workers serve, then WATCHDOG.
        await until(lambda: notify.saw("WATCHDOG=1"), timeout=10, what="WATCHDOG=1")
        ready = [m for _, m in notify.read() if m.startswith("READY=1")]
        assert len(ready) == 1
        assert "with 2 workers" in ready[0]
        assert {pid for pid, _ in notify.read()} == {d.proc.pid}
        user = unique("w")
        token = d.token(user)
        clients = [await Client.connect(d.ws_url() + "?token=" + token) for _ in range(8)]
        for cl in clients:
            await cl.type("connection")

        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        back = await until(
            lambda: (now := children(d.proc.pid)) and len(now) == 2 and victim not in now and now,  # type: ignore[union-attr]
            timeout=20,
            what="the killed worker restarted",
        )
        assert back - workers, "a new worker process took the dead one's place"
        # Its clients were cut off; they reconnect, to the workers that accept.
        for i, cl in enumerate(clients):
            try:
                await cl.barrier(timeout=2)
            except Exception:
                await cl.close()
                clients[i] = await Client.connect(d.ws_url() + "?token=" + token)
                await clients[i].type("connection")
        await until(lambda: HTTP.get(d.url("/health")).status_code == 200, timeout=10)

        # SIGTERM: every worker tells its clients and closes them with 1001.
        d.proc.send_signal(signal.SIGTERM)
        for cl in clients:
            notice = await cl.wait_for(lambda m: m.get("type") == "system", timeout=10)
            assert notice["data"]["status"] == "RESTARTING"
            assert await cl.closed_with(timeout=10) == 1001
        assert d.proc.wait(20) == 0
        assert not any(Path(f"/proc/{pid}").exists() for pid in back)
        assert notify.saw("STOPPING=1")
        assert {pid for pid, _ in notify.read()} == {d.proc.pid}
    finally:
        d.stop(timeout=5)
        notify.sock.close()
