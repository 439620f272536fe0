"""The server-side resume (``fxgate.hub.resume``) beyond one process: the mark is kept
where the history is (the store with the local bus, Redis with the Redis bus), so a
``/ws`` (seed 003) user whose connection closed gets the fill missed meanwhile after a
daemon restart, or on another node."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Daemon, Daemons, until
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
