"""The hub's recovery in memory: memory first, then a durable history; events numbered
by the bus (the Redis bus's offsets and epochs) delivered once, replayed or live."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from fxgate.hub.history import HistoryPage
from fxgate.hub.hub import Hub
from fxgate.protocol.canonical import CANONICAL
from tests.protocol.fakes import Orders
from tests.protocol.test_hub import RecordingSink


class DurableOrders(Orders):
    history_size = 5
    history_ttl: ClassVar[float] = 60.0


class FakeDurable:
    """A durable history holding every message, like Redis's streams."""

    def __init__(self, epoch: str) -> None:
        self.epoch = epoch
        self.kept: list[tuple[int, Mapping[str, Any]]] = []
        self.reads = 0

    def add(self, offset: int, n: int) -> Mapping[str, Any]:
        env = {
            "type": "order",
            "channel": "orders",
            "data": {"n": n, "symbol": "EURUSD"},
            "timestamp": "2026-01-01T00:00:00.000Z",
            "id": f"msg_{offset}",
            "offset": offset,
            "epoch": self.epoch,
        }
        self.kept.append((offset, env))
        return env

    async def read(self, channel: str, key: str, after: int, limit: int) -> HistoryPage | None:
        self.reads += 1
        top = self.kept[-1][0] if self.kept else 0
        return HistoryPage(self.epoch, top, [(o, e) for o, e in self.kept if o > after])


def numbered(hub: Hub, env: Mapping[str, Any]) -> bool:
    """What the Redis bus does with a message off the wire."""
    ch = hub.channels["orders"]
    return hub.fan_out(
        ch, "alice", env["data"], env["timestamp"], env["id"], env["offset"], env["epoch"]
    )


def ns(sink: RecordingSink) -> list[int]:
    return [json.loads(frame)["data"]["n"] for frame, _ in sink.got]


def test_a_numbered_event_keeps_its_offset_and_epoch_and_a_repeat_is_dropped() -> None:
    hub = Hub([DurableOrders()])
    alice = RecordingSink("alice", CANONICAL)
    hub.add(hub.make_subscription(alice, "orders", None))
    durable = FakeDurable("E1")
    assert numbered(hub, durable.add(7, 1))
    assert not numbered(hub, durable.kept[0][1])  # seen: dropped
    msg = json.loads(alice.got[0][0])
    assert (msg["offset"], msg["epoch"]) == (7, "E1")
    # Another epoch (Redis lost the stream): taken, the old memory forgotten.
    assert numbered(hub, FakeDurable("E2").add(1, 2))
    assert ns(alice) == [1, 2]
    assert hub.streams.get("orders", "alice").epoch == "E2"


async def test_recovery_past_memory_reads_the_durable_history_and_delivers_once() -> None:
    hub = Hub([DurableOrders()])
    durable = FakeDurable("E1")
    hub.durable = durable
    old = RecordingSink("alice", CANONICAL)
    hub.add(hub.make_subscription(old, "orders", None))
    for o in range(1, 4):
        env = durable.add(o, o)
    numbered(hub, env)  # this node started late: it has seen 3 only
    # Two more are in Redis but still in flight to this node.
    durable.add(4, 4)
    durable.add(5, 5)
    new = RecordingSink("alice", CANONICAL)
    sub = hub.make_subscription(new, "orders", None)
    replay = await hub.recover(sub, (1, "E1"), 300)
    hub.add(sub)
    assert replay is not None
    assert [e["data"]["n"] for e in replay.envelopes] == [2, 3, 4, 5]
    # The node's own subscriber got the in-flight ones now, and the bus's copies of
    # them are duplicates: nobody gets a message twice.
    assert ns(old) == [3, 4, 5]
    for _, env in durable.kept[3:]:
        assert not numbered(hub, env)
    numbered(hub, durable.add(6, 6))
    assert ns(old) == [3, 4, 5, 6]
    assert ns(new) == [6]


async def test_no_recovery_across_another_epoch_a_hole_or_the_cap() -> None:
    hub = Hub([DurableOrders()])
    durable = FakeDurable("E1")
    hub.durable = durable
    for o in (1, 2, 4):  # 3 was lost
        durable.add(o, o)
    sink = RecordingSink("alice", CANONICAL)
    sub = hub.make_subscription(sink, "orders", None)
    assert await hub.recover(sub, (0, "E0"), 300) is None
    assert await hub.recover(sub, (1, "E1"), 300) is None  # the hole
    replay = await hub.recover(sub, (3, "E1"), 300)
    assert replay is not None
    assert [e["offset"] for e in replay.envelopes] == [4]
    assert await hub.recover(sub, (0, "E1"), 2) is None  # more than the cap
    assert await hub.recover(sub, (9, "E1"), 300) is None  # ahead of the stream


def test_memory_recovery_needs_every_offset_in_its_epoch() -> None:
    hub = Hub([DurableOrders()])
    sink = RecordingSink("alice", CANONICAL)
    sub = hub.make_subscription(sink, "orders", None)
    durable = FakeDurable("E1")
    for o in (1, 2, 4):  # pub/sub lost 3
        numbered(hub, durable.add(o, o))
    assert hub.replay(sub, (2, "E1")) is None
    replay = hub.replay(sub, (4, "E1"))
    assert replay is not None
    assert replay.envelopes == []
