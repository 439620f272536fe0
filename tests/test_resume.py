"""Server-side resume (issue 8, item 6) on the dialects without offsets other than
Socket.IO (tests/test_socketio.py has its own): a user whose connection drops gets the
events missed meanwhile when the next one opens within ``ws.recovery_window``."""

from __future__ import annotations

from tests.conftest import Daemon, until
from tests.dashboard_client import dashboard, first_of_each
from tests.trading_helpers import Admin, Trader
from tests.wsclient import Client


async def seed003(daemon: Daemon, token: str) -> Client:
    c = await Client.connect(daemon.ws_url("/ws"))
    await c.send({"type": "auth", "token": token})
    assert (await c.recv())["type"] == "auth_success"
    return c


async def test_ws_seed003_replays_a_fill_missed_while_away(market: Daemon) -> None:
    admin = Admin(market)
    admin.quote("AUDUSD", "0.66000", "0.66010")
    gina = Trader.issued(market)
    c = await seed003(market, gina.token)
    await c.barrier()
    limit = gina.order(symbol="AUDUSD", type="limit", side="buy", quantity=0.1, price=0.655)
    await c.wait_for(lambda m: m["type"] == "order_update" and m["data"]["id"] == limit["id"])
    await c.close()

    admin.quote("AUDUSD", "0.65400", "0.65410")  # fills while nobody is connected
    await until(
        lambda: [o for o in gina.orders() if o["id"] == limit["id"] and o["status"] == "filled"],
        what="the fill",
    )
    again = await seed003(market, gina.token)
    try:
        msgs = await again.barrier()
        orders = [m["data"] for m in msgs if m["type"] == "order_update"]
        # The missed fill itself, not only today's state (which has no pending order).
        assert [o["status"] for o in orders if o["id"] == limit["id"]][-1] == "filled", orders
        assert [m for m in msgs if m["type"] == "position_update"]
    finally:
        await again.close()


async def test_ws_dashboard_replays_a_fill_missed_while_away_as_its_notification(
    market: Daemon,
) -> None:
    admin = Admin(market)
    admin.quote("NZDUSD", "0.60000", "0.60010")
    hana = Trader.issued(market)
    c = await dashboard(market, hana.token)
    await first_of_each(c, {"trading_status", "analytics"})
    limit = hana.order(symbol="NZDUSD", type="limit", side="buy", quantity=0.1, price=0.595)
    await c.barrier()
    await c.close()

    admin.quote("NZDUSD", "0.59400", "0.59410")  # fills while nobody is connected
    await until(
        lambda: [o for o in hana.orders() if o["id"] == limit["id"] and o["status"] == "filled"],
        what="the fill",
    )
    again = await dashboard(market, hana.token)
    try:
        msgs = await again.read_until(
            lambda ms: (
                any(m["type"] == "notification" and m["data"]["type"] == "order_filled" for m in ms)
                and any(m["type"] == "analytics" for m in ms)
            )
        )
        [note] = [m for m in msgs if m["type"] == "notification"]
        assert "NZDUSD" in note["data"]["message"]
        assert note["user_id"] == hana.user_id
        status = next(m for m in msgs if m["type"] == "trading_status")
        assert [p["symbol"] for p in status["data"]["open_positions"]] == ["NZDUSD"]
        stats = next(m for m in msgs if m["type"] == "analytics")
        # the fill once in recent activity (read with the state, not again replayed)
        actions = [a for a in stats["data"]["recent_activity"] if a["symbol"] == "NZDUSD"]
        assert [a["action"] for a in actions] == ["Order Filled"]
        # and a second tab opening meanwhile is a fresh subscriber, not a resume
        tab = await dashboard(market, hana.token)
        async with tab:
            fresh = await tab.barrier()
            assert not [m for m in fresh if m["type"] == "notification"], fresh
    finally:
        await again.close()
