"""Stream positions for resume marks (``RedisBus.positions``), in one process against a
real ``redis-server``: a stream Redis has no trace of gets its epoch when its position
is read, and the first message published keeps it; a known stream is only read."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from tests.conftest import until
from tests.protocol.fakes import order
from tests.redis_fixtures import RedisServer
from tests.test_redis_hop import Node, node

pytestmark = pytest.mark.timeout(60)


__all__ = ["node"]  # the fixture (a node's hub and Redis bus), used by name


async def test_reading_a_missing_stream_creates_its_epoch_and_the_first_message_keeps_it(
    node: Node, redis_server: RedisServer
) -> None:
    r = redis.Redis(port=redis_server.port)
    meta, hist = node.bus._keys("orders", "alice")
    r.xadd(hist, {"d": "{}"}, id="7-0")  # a history whose meta hash expired: stale
    # Two connections closing in one loop iteration: read together.
    alice, bob = await asyncio.gather(
        node.bus.positions([("orders", "alice")]), node.bus.positions([("orders", "bob")])
    )
    assert alice is not None
    assert bob is not None
    offset, epoch = alice[("orders", "alice")]
    assert offset == 0
    assert bob[("orders", "bob")][1] != epoch
    assert r.hgetall(meta) == {b"e": epoch.encode(), b"s": b"0"}
    assert 0 < r.ttl(meta) <= node.bus._meta_ttl
    assert not r.exists(hist)
    # Read again: the same epoch, nothing created.
    assert await node.bus.positions([("orders", "alice")]) == {("orders", "alice"): (0, epoch)}

    node.bus.publish(order("alice", 1))
    await until(lambda: node.orders.got, what="the first order")
    first = json.loads(node.orders.got[0][0])
    assert (first["offset"], first["epoch"]) == (1, epoch)
    assert await node.bus.positions([("orders", "alice")]) == {("orders", "alice"): (1, epoch)}


async def test_a_redis_that_does_not_answer_leaves_the_mark_to_a_snapshot(
    redis_server: RedisServer,
) -> None:
    redis_server.running()
    n = Node(redis_server, timeout=0.3)
    await n.bus.start()
    try:
        assert redis_server.command("CLIENT", "PAUSE", "1500", "ALL") == b"+OK\r\n"
        loop = asyncio.get_running_loop()
        began = loop.time()
        # None: the resume book keeps the node's own position (a snapshot on resume).
        assert await n.bus.positions([("orders", "carl")]) is None
        assert loop.time() - began < 1.2  # the socket timeout, not the pause
    finally:
        redis_server.command("CLIENT", "UNPAUSE")
        await n.bus.stop()


def test_a_created_epoch_still_notices_a_redis_behind_what_a_node_saw(
    redis_server: RedisServer,
) -> None:
    """The publishing script's rewind test (ARGV 7/8) holds for an epoch a position
    read created: in step, the next offset; behind what a node saw, a new epoch."""
    from fxgate.bus.redis import POSITION_LUA, PUBLISH_LUA

    redis_server.running()
    r = redis.Redis(port=redis_server.port)
    meta, hist = "pos:{orders:u}:m", "pos:{orders:u}:h"
    r.delete(meta, hist)
    position = r.register_script(POSITION_LUA)
    publish = r.register_script(PUBLISH_LUA)

    def send(seen_epoch: str, seen: int, new: str) -> tuple[int, str]:
        offset, epoch = publish(
            keys=[meta, hist], args=["{}", 100, 60, 600, new, "pos:bus", seen_epoch, seen]
        )
        return int(offset), epoch.decode()

    assert position(keys=[meta, hist], args=["E1", 600]) == [0, b"E1"]
    assert position(keys=[meta, hist], args=["E9", 600]) == [0, b"E1"]  # read, not made
    assert send("E1", 0, "E2") == (1, "E1")  # the node adopted (0, E1): in step
    assert send("E1", 1, "E2") == (2, "E1")
    r.hset(meta, "s", 1)  # offset 2 lost (a failover)
    assert send("E1", 2, "E3") == (2, "E3")
