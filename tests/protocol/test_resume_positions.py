"""The resume book with a shared history (``SharedPositions``, the Redis bus), in memory:
a stream the node holds no message of is marked where the shared history puts it, and
the node's stream takes that epoch, so its first message replays; anything unclear or
unreachable is left to a snapshot, never marked past."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, cast

from fxgate.hub.hub import Hub, Subscription
from fxgate.hub.resume import ResumeBook
from tests.protocol.fakes import Orders


class SharedHistory:
    """The marks and positions a Redis bus would keep: streams by (channel, key)."""

    def __init__(self, streams: dict[tuple[str, str], tuple[int, str]] | None = None) -> None:
        self.streams = dict(streams or {})
        self.kept: dict[str, Mapping[str, Any]] = {}
        self.fail = False
        self.gate: asyncio.Event | None = None
        self.asked: list[tuple[str, str]] = []
        #: Set once a read of positions is under way (held at ``gate``, if any).
        self.asking = asyncio.Event()

    def put_mark(self, user_id: str, mark: Mapping[str, Any], ttl: float) -> None:
        self.kept[user_id] = mark

    async def take_mark(self, user_id: str) -> Mapping[str, Any] | None:
        return self.kept.pop(user_id, None)

    def drop_mark(self, user_id: str) -> None:
        self.kept.pop(user_id, None)

    async def positions(
        self, streams: Sequence[tuple[str, str]]
    ) -> Mapping[tuple[str, str], tuple[int, str]] | None:
        self.asked.extend(streams)
        self.asking.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            return None
        for s in streams:
            self.streams.setdefault(s, (0, f"redis-{s[0]}"))
        return {s: self.streams[s] for s in streams}


def redis_message(hub: Hub, user: str, offset: int, epoch: str) -> bool:
    """A message of the user's orders stream as the Redis bus hands it to the hub."""
    ch = hub.channels["orders"]
    return hub.fan_out(ch, user, {"n": offset}, "t", f"m{offset}", offset, epoch)


def orders_of(hub: Hub, user: str) -> Subscription:
    """The user's subscription to their orders stream (the sink plays no part here)."""
    return Subscription(cast(Any, None), hub.channels["orders"], {}, {}, (user,))


async def settled(book: ResumeBook, user: str) -> None:
    await book.load(user, 0.0)


async def test_a_stream_the_node_never_saw_is_marked_in_the_shared_epoch() -> None:
    hub = Hub([Orders()], epoch="node")
    shared = SharedHistory()
    book = ResumeBook(hub, 120.0, marks=shared)
    book.opened("u")
    book.closed("u", 1.0)
    assert shared.kept == {}  # not before the position is known
    await settled(book, "u")
    assert shared.asked == [("orders", "u")]
    assert shared.kept["u"]["streams"] == {"orders": [0, "redis-orders"]}
    assert hub.position("orders", "u") == (0, "redis-orders")  # the node's stream agrees
    # The first message Redis numbers is an ordinary next message here...
    assert redis_message(hub, "u", 1, "redis-orders")
    since = book.since("u", "orders", 2.0)
    assert since == (0, "redis-orders")
    # ...and what the user missed, replayed.
    sub = orders_of(hub, "u")
    replay = hub.replay(sub, since)
    assert replay is not None
    assert [e["offset"] for e in replay.envelopes] == [1]


async def test_a_stream_with_messages_the_node_never_saw_is_left_to_a_snapshot() -> None:
    hub = Hub([Orders()], epoch="node")
    shared = SharedHistory({("orders", "u"): (3, "E")})
    book = ResumeBook(hub, 120.0, marks=shared)
    book.opened("u")
    book.closed("u", 1.0)
    await settled(book, "u")
    assert shared.kept["u"]["streams"] == {}
    assert book.since("u", "orders", 2.0) is None
    assert hub.position("orders", "u") == (0, "node")


async def test_unreachable_positions_leave_the_mark_as_it_was() -> None:
    hub = Hub([Orders()], epoch="node")
    shared = SharedHistory()
    shared.fail = True
    book = ResumeBook(hub, 120.0, marks=shared)
    book.opened("u")
    book.closed("u", 1.0)
    await settled(book, "u")
    # The node's own epoch: no message Redis numbers matches it, so a snapshot.
    assert shared.kept["u"]["streams"] == {"orders": [0, "node"]}
    assert redis_message(hub, "u", 1, "E")
    since = book.since("u", "orders", 2.0)
    sub = orders_of(hub, "u")
    assert hub.replay(sub, since) is None


async def test_a_stream_the_node_saw_is_marked_as_it_stands_without_asking() -> None:
    hub = Hub([Orders()], epoch="node")
    shared = SharedHistory()
    book = ResumeBook(hub, 120.0, marks=shared)
    assert redis_message(hub, "u", 4, "E")
    book.opened("u")
    book.closed("u", 1.0)
    assert shared.kept["u"]["streams"] == {"orders": [4, "E"]}  # at once
    assert shared.asked == []


async def test_a_user_back_before_the_position_is_read_waits_for_it() -> None:
    hub = Hub([Orders()], epoch="node")
    shared = SharedHistory()
    shared.gate = asyncio.Event()
    book = ResumeBook(hub, 120.0, marks=shared)
    book.opened("u")
    book.closed("u", 1.0)
    loading = asyncio.create_task(book.load("u", 2.0))
    # The read began (closed() started it) and is held; loading, scheduled before this
    # wake-up, has run up to its wait by now.
    await shared.asking.wait()
    assert not loading.done()  # the mark would still hold the node's made-up epoch
    shared.gate.set()
    await loading
    assert book.since("u", "orders", 2.0) == (0, "redis-orders")


async def test_a_connection_open_again_by_then_keeps_no_shared_mark() -> None:
    hub = Hub([Orders()], epoch="node")
    shared = SharedHistory()
    shared.gate = asyncio.Event()
    book = ResumeBook(hub, 120.0, marks=shared)
    book.opened("u")
    book.closed("u", 1.0)
    book.opened("u")  # back (on this node) while the position is read
    shared.gate.set()
    await book.settle()
    assert shared.kept == {}
