"""The Redis hop itself, in one process against a real ``redis-server``: how soon a
published event reaches the node's own hub, and that the pipelined script calls keep
their order and their count when Redis loses its scripts; the RESP reader on its own.

The multi-node stories (offsets shared by every node, faults, recovery) are
``tests/test_redis_bus.py``'s, with real daemons.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from fxgate.bus.redis import RedisBus
from fxgate.bus.resp import Link, ReplyError, pack
from fxgate.config.settings import BusSettings, Settings
from fxgate.hub.hub import Hub
from fxgate.protocol.canonical import CANONICAL
from tests.conftest import until
from tests.protocol.fakes import Orders, Quotes, order, quote
from tests.protocol.test_hub import RecordingSink
from tests.redis_fixtures import RedisServer

pytestmark = pytest.mark.timeout(60)

_prefix = itertools.count(1)


class DurableOrders(Orders):
    history_size = 1000
    history_ttl: ClassVar[float] = 60.0


class Node:
    def __init__(self, redis: RedisServer, timeout: float = 2.0) -> None:
        settings = Settings(
            bus=BusSettings(
                backend="redis",
                redis_url=redis.url,
                redis_prefix=f"hop{next(_prefix)}",
                redis_timeout=timeout,
            )
        )
        self.hub = Hub([Quotes(), DurableOrders()])
        self.bus = RedisBus(settings, self.hub)
        self.quotes = RecordingSink("q", CANONICAL)
        self.orders = RecordingSink("alice", CANONICAL)
        self.hub.add(self.hub.make_subscription(self.quotes, "quotes", None))
        self.hub.add(self.hub.make_subscription(self.orders, "orders", None))


@pytest.fixture
async def node(redis_server: RedisServer) -> AsyncIterator[Node]:
    redis_server.running()
    n = Node(redis_server)
    await n.bus.start()
    try:
        yield n
    finally:
        await n.bus.stop()


def received(sink: RecordingSink) -> list[dict[str, Any]]:
    return [json.loads(frame) for frame, _ in sink.got]


async def an_order_through_redis_again(n: Node, number: int) -> None:
    """Once the bus is healthy again, order ``number`` comes back through Redis (under
    Redis's epoch, not a local one)."""
    await until(n.bus.healthy, timeout=15, what="the bus healthy again")
    n.bus.publish(order("alice", number))
    after = await until(
        lambda: [m for m in received(n.orders) if m["data"]["n"] == number],
        what="an order through Redis again",
    )
    assert not after[0]["epoch"].startswith("local-")


async def test_an_event_reaches_the_hub_in_the_first_loop_iteration_after_redis_answers(
    node: Node, redis_server: RedisServer
) -> None:
    """No Task hand-offs on the way: the command is written while ``publish`` runs,
    and the message is fanned out by the read callback of the subscription socket.
    (On a busy node every loop iteration on the way carries a slice of the fan-out.)"""
    loop = asyncio.get_running_loop()
    iterations = 0
    at: dict[str, int] = {}
    sink = node.quotes
    plain_deliver = sink.deliver

    def deliver(frame: bytes, key: object | None = None) -> None:
        at.setdefault("delivered", iterations)
        plain_deliver(frame, key)

    sink.deliver = deliver  # type: ignore[method-assign]

    def count() -> None:
        nonlocal iterations
        iterations += 1
        if "delivered" not in at and iterations < 10_000:
            loop.call_soon(count)

    def publish() -> None:
        node.bus.publish(quote("EURUSD", 1.1))
        # Block the loop until Redis has run it: a PING on another connection answered
        # after the PUBLISH means the message is already in the subscription socket.
        assert redis_server.command("PING").startswith(b"+PONG")
        loop.call_soon(count)

    loop.call_soon(publish)
    await until(lambda: "delivered" in at, what="the quote through Redis")
    assert at["delivered"] <= 1, f"delivered {at['delivered']} loop iterations later"
    assert received(sink)[0]["data"]["bid"] == 1.1


async def test_a_burst_keeps_its_order_and_count_when_redis_loses_its_scripts(
    node: Node, redis_server: RedisServer
) -> None:
    bus = node.bus
    bus.publish(order("alice", 0))
    await until(lambda: len(node.orders.got) == 1, what="the first order")
    # Redis restarted with its data: the script cache is empty, the streams are not.
    assert redis_server.command("SCRIPT", "FLUSH").startswith(b"+OK")
    for n in range(1, 201):  # one burst, in flight together
        bus.publish(order("alice", n))
        if n % 50 == 0:
            bus.publish(quote("EURUSD", 1 + n / 1e5))  # plain publishes in between
            await asyncio.sleep(0)  # a new iteration: the burst goes out in several writes
    await bus.flush()
    await until(lambda: len(node.orders.got) == 201, what="every order")
    got = received(node.orders)
    assert [m["data"]["n"] for m in got] == list(range(201))
    assert [m["offset"] for m in got] == list(range(got[0]["offset"], got[0]["offset"] + 201))
    assert len({m["epoch"] for m in got}) == 1
    assert bus.local_deliveries == 0
    page = await bus.read("orders", "alice", got[0]["offset"] - 1, 1000)
    assert page is not None
    assert [env["data"]["n"] for _, env in page.entries] == list(range(201))
    assert len(node.quotes.got) == 4


async def test_a_stalled_redis_gets_its_unanswered_events_delivered_here(
    redis_server: RedisServer,
) -> None:
    redis_server.running()
    n = Node(redis_server, timeout=0.3)
    await n.bus.start()
    try:
        assert redis_server.command("CLIENT", "PAUSE", "1500", "ALL").startswith(b"+OK")
        for i in range(3):
            n.bus.publish(order("alice", i))
        await asyncio.wait_for(n.bus.flush(), 5)  # not stuck behind the stall
        got = received(n.orders)
        assert [m["data"]["n"] for m in got] == [0, 1, 2]
        assert got[0]["epoch"].startswith("local-")
        assert not n.bus.healthy()
        await an_order_through_redis_again(n, 3)
    finally:
        await n.bus.stop()


async def test_a_redis_that_turned_replica_gets_each_event_once_in_order(
    redis_server: RedisServer,
) -> None:
    """READONLY (a failover under way): the calls are held, the publisher reconnects
    and sends them again; refused there again (this plain URL names the same server,
    still a replica), they are delivered here, once each and in order, and the bus
    goes back to Redis when Redis is a master again."""
    redis_server.running()
    n = Node(redis_server, timeout=0.5)
    await n.bus.start()
    try:
        n.bus.publish(order("alice", 0))
        await asyncio.wait_for(n.bus.flush(), 5)
        assert redis_server.command("REPLICAOF", "127.0.0.1", "1").startswith(b"+OK")
        for i in range(1, 4):
            n.bus.publish(order("alice", i))
        await asyncio.wait_for(n.bus.flush(), 10)
        got = received(n.orders)
        assert [m["data"]["n"] for m in got] == [0, 1, 2, 3]
        assert got[1]["epoch"].startswith("local-")
        assert redis_server.command("REPLICAOF", "NO", "ONE").startswith(b"+OK")
        await an_order_through_redis_again(n, 4)
        assert [m["data"]["n"] for m in received(n.orders)] == [0, 1, 2, 3, 4]
    finally:
        redis_server.command("REPLICAOF", "NO", "ONE")
        await n.bus.stop()


async def test_the_publisher_comes_back_when_a_reconnect_fails_unexpectedly(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py has races of its own when a pool is disconnected under a connection in
    use (a Sentinel failover does that), and they raise ``AttributeError`` rather than a
    ``RedisError``. A reconnect that fails that way is one failed attempt, in the
    reroute and in the monitor alike, never the end of reconnecting."""
    import fxgate.bus.redis as redis_bus

    redis_server.running()
    n = Node(redis_server, timeout=0.5)
    await n.bus.start()
    real_take = redis_bus.take
    failures = 2  # the reroute's attempt, then the monitor's first

    async def take(client: Any, link: Link) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise AttributeError("'NoneType' object has no attribute 'feed'")
        await real_take(client, link)

    try:
        n.bus.publish(order("alice", 0))
        await asyncio.wait_for(n.bus.flush(), 5)
        monkeypatch.setattr(redis_bus, "take", take)
        # The server drops the publishing connection (as a failover drops every one).
        assert redis_server.command("CLIENT", "KILL", "TYPE", "normal").startswith(b":")
        await until(lambda: failures == 0, timeout=10, what="both failed attempts")
        await an_order_through_redis_again(n, 1)
    finally:
        await n.bus.stop()


# -- the RESP reader -----------------------------------------------------------------


def link_reading() -> tuple[Link, list[Any]]:
    """A Link with no socket: what it parses from ``data_received`` lands in the list."""
    got: list[Any] = []
    return Link(got.append, lambda exc: None), got


def test_replies_and_pushes_parse_in_resp2_and_resp3() -> None:
    link, got = link_reading()
    link.data_received(
        b"+OK\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n:7\r\n$2\r\nE1\r\n"
        b">3\r\n$7\r\nmessage\r\n$3\r\nbus\r\n$4\r\n1:E:\r\n"
        b"-NOSCRIPT No matching script\r\n_\r\n#t\r\n#f\r\n,1.5\r\n"
    )
    assert got[:6] == [b"OK", 42, b"hello", None, [7, b"E1"], [b"message", b"bus", b"1:E:"]]
    assert isinstance(got[6], ReplyError)
    assert str(got[6]).startswith("NOSCRIPT")
    # A RESP3 false is a reply like any other, not "the buffer needs more bytes".
    assert got[7:] == [None, True, False, 1.5]


def test_a_reply_cut_anywhere_waits_for_the_rest() -> None:
    whole = pack("EVALSHA", "abc", 2, "k:m", "k:h", '{"c":"orders","d":"é"}')
    expected = [b"EVALSHA", b"abc", b"2", b"k:m", b"k:h", '{"c":"orders","d":"é"}'.encode()]
    for cut in range(1, len(whole)):
        link, got = link_reading()
        link.data_received(whole[:cut])
        assert got == []
        link.data_received(whole[cut:] + whole)
        assert got == [expected, expected]


def test_what_is_not_resp_closes_the_link() -> None:
    aborted: list[bool] = []

    class Transport(asyncio.Transport):
        def abort(self) -> None:
            aborted.append(True)

    got: list[Any] = []
    link = Link(got.append, lambda exc: None)
    link.connection_made(Transport())
    link.data_received(b"+OK\r\n?what\r\n")
    assert got == [b"OK"]
    assert aborted == [True]


def test_the_hop_benchmark_runs() -> None:
    """``bench/redis_hop.py`` (the hop alone, publish → hub) keeps working: a brief run
    delivers every event through both buses."""
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, str(root / "bench" / "redis_hop.py"), "--seconds", "0.5", "--repeat", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    rows = out.splitlines()
    assert [r.split(" ", 1)[0] for r in rows] == ["local", "redis"], out
    assert "not delivered" not in out


async def test_a_pool_disconnect_drops_the_publishing_socket_and_the_bus_comes_back(
    node: Node,
) -> None:
    """What Sentinel's master watcher does on a failover (``pool.disconnect()``) reaches
    the bus's own socket at once, and the bus reconnects and publishes through Redis."""
    bus = node.bus
    bus.publish(order("alice", 1))
    await until(lambda: len(node.orders.got) == 1, what="the first order")
    await asyncio.wait_for(bus.client.connection_pool.disconnect(), 1)
    await until(lambda: not bus.healthy(), what="the bus noticing")
    await until(bus.healthy, timeout=10, what="the bus back")
    bus.publish(order("alice", 2))
    await until(lambda: len(node.orders.got) == 2, what="an order after it")
    first, second = received(node.orders)
    assert (second["epoch"], second["offset"]) == (first["epoch"], first["offset"] + 1)
    assert bus.local_deliveries == 0
