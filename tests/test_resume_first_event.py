"""Server-side resume of a stream that had no message when the user went away (issue 10,
item 2): the user's first-ever order, placed by REST while their dashboard was away,
is replayed to the next connection (``recovered``), not hidden behind a fresh snapshot.

With the Redis bus the mark of such a stream used to hold an epoch the node made up,
while Redis gave the stream's first message an epoch of its own: the epochs differed
and the user got a snapshot. Now the mark's epoch is created in Redis (as Centrifuge
creates a stream's epoch when its position is read) and the first message keeps it.
Redis losing the stream after the mark (FLUSHALL) still means a snapshot, never a gap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Daemon, Daemons, until
from tests.sioclient import SioClient
from tests.test_redis_bus import Cluster, Node, cluster
from tests.test_resume_durable import (
    assert_fill_notified,
    pending_limit_order_on_a_dashboard,
    wait_filled,
)
from tests.trading_helpers import Admin, Trader
from tests.wsclient import Client

__all__ = ["cluster"]  # the fixture (a Redis cluster, stopped after the test), used by name

CHANNELS = {"channels": ["positions", "orders", "account"]}


async def sio(d: Daemon, token: str) -> SioClient:
    return await SioClient(d.url("")).connect(token, ["websocket"])


def prefix(cluster: Cluster) -> str:
    return cluster.root.name.replace("-", "_")[-20:]


async def mark_kept(cluster: Cluster, user_id: str) -> None:
    """The node noted where the user's streams stood (the mark is in Redis): the user
    is away for the node, not merely for the client."""
    key = f"{prefix(cluster)}:resume:{user_id}"
    await until(lambda: cluster.redis.command("EXISTS", key) == b":1\r\n", what="the mark")


async def sio_away(d: Daemon, trader: Trader, positions: int = 0) -> None:
    """A Socket.IO dashboard of a user (with no trading history yet) subscribes and goes."""
    c = await sio(d, trader.token)
    await c.emit("subscribe", CHANNELS)
    await c.wait("account_update")
    assert len(await c.wait("positions_update")) == positions
    await c.heartbeat(1)
    await c.close()


async def sio_back(d: Daemon, trader: Trader) -> tuple[dict[str, Any], SioClient]:
    again = await sio(d, trader.token)
    await again.emit("subscribe", CHANNELS)
    ack: dict[str, Any] = await again.wait("subscribed")
    return ack, again


async def assert_sio_replayed(d: Daemon, trader: Trader, order: dict[str, Any]) -> None:
    ack, again = await sio_back(d, trader)
    try:
        # Each stream recovered: the missed events, not the fresh-state path.
        assert sorted(ack.get("recovered", [])) == ["account", "orders", "positions"], ack
        positions = await again.wait("positions_update", lambda ps: len(ps) == 1)
        assert positions[0]["ticket"] == order["ticket"]
        await again.heartbeat(2)
        # The account events of the fill, replayed (a snapshot is one account_update).
        assert again.seen("account_update"), again.events
    finally:
        await again.close()


async def first_market_order(d: Daemon, trader: Trader) -> dict[str, Any]:
    order = trader.buy(0.1, symbol="EURUSD")
    assert order["status"] == "filled", order
    return order


# -- Redis bus -------------------------------------------------------------------------


async def test_redis_first_ever_order_while_away_is_replayed_on_the_same_node(
    cluster: Cluster,
) -> None:
    [a] = cluster.start(1)
    Admin(a).quote("EURUSD", "1.08490", "1.08500")
    ivy = Trader.issued(a)
    await sio_away(a, ivy)
    await mark_kept(cluster, ivy.user_id)
    order = await first_market_order(a, ivy)
    await assert_sio_replayed(a, ivy, order)


async def test_redis_first_ever_order_while_away_is_replayed_on_another_node(
    cluster: Cluster,
) -> None:
    a, b = cluster.start(2)
    Admin(a).quote("EURUSD", "1.08490", "1.08500")
    jon = Trader.issued(a)
    await sio_away(a, jon)
    await mark_kept(cluster, jon.user_id)
    order = await first_market_order(b, jon)
    await assert_sio_replayed(b, jon, order)


async def test_redis_losing_the_stream_after_the_mark_means_a_snapshot(
    cluster: Cluster,
) -> None:
    [a] = cluster.start(1)
    Admin(a).quote("EURUSD", "1.08490", "1.08500")
    kim = Trader.issued(a)
    await sio_away(a, kim)
    await mark_kept(cluster, kim.user_id)
    assert cluster.redis.command("FLUSHALL") == b"+OK\r\n"  # the epochs go with it
    order = await first_market_order(a, kim)
    ack, again = await sio_back(a, kim)
    try:
        # Tried (the node kept its own mark) and refused: fresh state, all of it.
        assert ack.get("recovered") == [], ack
        positions = await again.wait("positions_update", lambda ps: len(ps) == 1)
        assert positions[0]["ticket"] == order["ticket"]
        assert (await again.wait("account_update"))["margin"] > 0
    finally:
        await again.close()


async def seed003(d: Daemon, token: str) -> Client:
    c = await Client.connect(d.ws_url("/ws"))
    await c.send({"type": "auth", "token": token})
    assert (await c.recv())["type"] == "auth_success"
    return c


async def test_redis_first_ever_order_while_away_is_replayed_to_ws_seed003(
    cluster: Cluster,
) -> None:
    a, b = cluster.start(2)
    Admin(a).quote("EURUSD", "1.08490", "1.08500")
    lea = Trader.issued(a)
    c = await seed003(a, lea.token)
    await c.barrier()
    await c.close()
    await mark_kept(cluster, lea.user_id)
    order = await first_market_order(a, lea)
    again = await seed003(b, lea.token)  # back on another node
    try:
        msgs = await again.barrier()
        orders = [m["data"] for m in msgs if m["type"] == "order_update"]
        # The missed fill itself: today's state has no pending order to show.
        assert [o["status"] for o in orders if o["id"] == order["id"]] == ["filled"], msgs
    finally:
        await again.close()


async def test_redis_a_stream_with_messages_this_node_never_saw_is_not_marked_past_them(
    cluster: Cluster,
) -> None:
    [a] = cluster.start(1)
    Admin(a).quote("EURUSD", "1.08490", "1.08500")
    max_ = Trader.issued(a)
    await first_market_order(a, max_)  # in Redis before b starts
    b: Node = cluster.node().start()
    await sio_away(b, max_, positions=1)  # b holds none of its streams: ambiguous
    await mark_kept(cluster, max_.user_id)
    max_.buy(0.05, symbol="EURUSD")
    ack, again = await sio_back(b, max_)
    try:
        assert "positions" not in ack.get("recovered", []), ack
        assert len(await again.wait("positions_update", lambda ps: len(ps) == 2)) == 2
    finally:
        await again.close()


# -- local bus, store history ----------------------------------------------------------


async def test_local_first_ever_order_while_away_is_replayed(market: Daemon) -> None:
    nia = Trader.issued(market)
    Admin(market).quote("EURUSD", "1.08490", "1.08500")
    await sio_away(market, nia)
    order = await first_market_order(market, nia)
    await assert_sio_replayed(market, nia, order)


async def test_local_first_ever_order_across_a_clean_restart_is_replayed(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    d = make_daemon.new(tmp_path / "state", quiet=True).start()
    Admin(d).quote("EURUSD", "1.08490", "1.08500")
    oli = Trader.issued(d)
    await sio_away(d, oli)
    d.stop()  # the mark goes to the store
    d.start()
    Admin(d).quote("EURUSD", "1.08490", "1.08500")
    order = await first_market_order(d, oli)
    await assert_sio_replayed(d, oli, order)


async def test_local_first_ever_order_then_a_clean_restart_is_replayed(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    d = make_daemon.new(tmp_path / "state", quiet=True).start()
    Admin(d).quote("EURUSD", "1.08490", "1.08500")
    pia = Trader.issued(d)
    await sio_away(d, pia)
    order = await first_market_order(d, pia)
    d.stop()  # the fill is in the store's history only
    d.start()
    await assert_sio_replayed(d, pia, order)


async def test_redis_a_dashboard_gets_a_first_ever_fill_on_a_node_started_after_it(
    cluster: Cluster,
) -> None:
    [a] = cluster.start(1)
    hana = Trader.issued(a)
    # No deal before: the user's trades stream does not exist anywhere when they go.
    order_id = await pending_limit_order_on_a_dashboard(a, hana)
    await mark_kept(cluster, hana.user_id)
    Admin(a).quote("NZDUSD", "0.59400", "0.59410")
    await wait_filled(hana, order_id)
    b = cluster.node().start()  # started after the fill: only Redis holds it
    await assert_fill_notified(b, hana)
