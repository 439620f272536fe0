"""The server-side resume (``fxgate.hub.resume``) beyond one process: the mark is kept
where the history is (the store with the local bus, Redis with the Redis bus), so a
``/ws`` (seed 003) or ``/ws/dashboard`` (seed 000) user whose connection closed gets
the fill missed meanwhile after a daemon restart, or on another node."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Daemon, Daemons, until
from tests.dashboard_client import dashboard, first_of_each
from tests.redis_fixtures import RedisServer
from tests.test_redis_bus import Cluster
from tests.trading_helpers import Admin, Trader
from tests.wsclient import Client


async def seed003(daemon: Daemon, token: str) -> Client:
    c = await Client.connect(daemon.ws_url("/ws"))
    await c.send({"type": "auth", "token": token})
    assert (await c.recv())["type"] == "auth_success"
    return c


async def pending_limit_order(d: Daemon, gina: Trader) -> str:
    Admin(d).quote("AUDUSD", "0.66000", "0.66010")
    c = await seed003(d, gina.token)
    await c.barrier()
    limit = gina.order(symbol="AUDUSD", type="limit", side="buy", quantity=0.1, price=0.655)
    await c.wait_for(lambda m: m["type"] == "order_update" and m["data"]["id"] == limit["id"])
    await c.close()
    return str(limit["id"])


async def assert_replayed_fill(d: Daemon, gina: Trader, order_id: str) -> None:
    again = await seed003(d, gina.token)
    try:
        msgs = await again.barrier()
        orders = [m["data"] for m in msgs if m["type"] == "order_update"]
        # The missed fill itself (a replay), not today's state (no pending order).
        assert [o["status"] for o in orders if o["id"] == order_id][-1:] == ["filled"], orders
    finally:
        await again.close()


async def wait_filled(gina: Trader, order_id: str) -> None:
    await until(
        lambda: [o for o in gina.orders() if o["id"] == order_id and o["status"] == "filled"],
        what="the fill",
    )


async def test_a_fill_missed_across_a_clean_restart_is_replayed(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    d = make_daemon.new(tmp_path / "state", quiet=True).start()
    gina = Trader.issued(d)
    order_id = await pending_limit_order(d, gina)
    d.stop()  # the mark and the history go to the store
    d.start()
    Admin(d).quote("AUDUSD", "0.65400", "0.65410")  # fills while nobody is connected
    await wait_filled(gina, order_id)
    await assert_replayed_fill(d, gina, order_id)


async def test_a_fill_missed_is_replayed_on_another_node(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    if redis_server.proc is None:
        redis_server.start()
    cluster = Cluster(tmp_path, redis_server)
    try:
        a, b = cluster.start(2)
        gina = Trader.issued(a)
        order_id = await pending_limit_order(a, gina)
        Admin(a).quote("AUDUSD", "0.65400", "0.65410")
        await wait_filled(gina, order_id)
        await assert_replayed_fill(b, gina, order_id)
    finally:
        cluster.stop_all()


# -- seed 000's /ws/dashboard: the missed fill comes as its notification ------------------


async def pending_limit_order_on_a_dashboard(d: Daemon, hana: Trader) -> str:
    Admin(d).quote("NZDUSD", "0.60000", "0.60010")
    c = await dashboard(d, hana.token)
    await first_of_each(c, {"trading_status", "analytics"})
    limit = hana.order(symbol="NZDUSD", type="limit", side="buy", quantity=0.1, price=0.595)
    await c.barrier()
    await c.close()
    return str(limit["id"])


async def assert_fill_notified(d: Daemon, hana: Trader) -> None:
    again = await dashboard(d, hana.token)
    try:
        msgs = await again.read_until(
            lambda ms: any(
                m["type"] == "notification" and m["data"]["type"] == "order_filled" for m in ms
            ),
            10,
        )
        [note] = [m for m in msgs if m["type"] == "notification"]
        assert "NZDUSD" in note["data"]["message"], note
        assert note["user_id"] == hana.user_id
        # once: nothing more of it after the state and the replay
        later = await again.barrier()
        assert not [m for m in later if m["type"] == "notification"], later
    finally:
        await again.close()


async def test_a_dashboard_gets_a_fill_missed_across_a_clean_restart_as_its_notification(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    d = make_daemon.new(tmp_path / "state", quiet=True).start()
    hana = Trader.issued(d)
    order_id = await pending_limit_order_on_a_dashboard(d, hana)
    Admin(d).quote("NZDUSD", "0.59400", "0.59410")  # fills while nobody is connected
    await wait_filled(hana, order_id)
    d.stop()  # the mark and the history go to the store: the fill is in no memory
    d.start()
    await assert_fill_notified(d, hana)


async def test_a_dashboard_gets_a_fill_missed_on_another_node_as_its_notification(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    if redis_server.proc is None:
        redis_server.start()
    cluster = Cluster(tmp_path, redis_server)
    try:
        [a] = cluster.start(1)
        hana = Trader.issued(a)
        # A first deal, so that the user's trades stream exists in Redis when they go
        # away (its epoch is Redis's, the mark's too).
        Admin(a).quote("NZDUSD", "0.60000", "0.60010")
        hana.order(symbol="NZDUSD", type="market", side="sell", quantity=0.1)
        order_id = await pending_limit_order_on_a_dashboard(a, hana)
        Admin(a).quote("NZDUSD", "0.59400", "0.59410")
        await wait_filled(hana, order_id)
        b = cluster.node().start()  # started after the fill: only Redis holds it
        await assert_fill_notified(b, hana)
    finally:
        cluster.stop_all()
