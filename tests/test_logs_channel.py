"""The ``logs`` channel (issue 8, item 5): a dashboard's log panel, fed by the services.

A trader subscribed to ``logs`` sees a line for each of their orders, fills, refusals
and closes, with seed 002's fields and nothing of anybody else's. An admin also sees
the daemon's own lines (started, signing key rotated, stopping); a trader never does.
No token, password, API secret or signature ever reaches the channel.
"""

from __future__ import annotations

import signal
from typing import Any

from fxgate.services.activity import ActivityFeed, safe_extra
from fxgate.services.health import DOWN, HEALTHY, HealthMonitor
from tests.conftest import Daemon, Daemons
from tests.trading_helpers import HTTP, Admin, Trader, error
from tests.wsclient import Client

SEED_FIELDS = {"timestamp", "level", "message", "module", "extra"}


def lines(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["data"] for m in messages if m.get("channel") == "logs"]


async def line(c: Client, starts: str, timeout: float = 5) -> dict[str, Any]:
    """The first log line whose message starts with ``starts``."""
    msg = await c.wait_for(
        lambda m: m.get("type") == "log" and m["data"]["message"].startswith(starts), timeout
    )
    assert msg["channel"] == "logs"
    assert set(msg) == {"type", "channel", "data", "timestamp", "id", "offset", "epoch"}
    data: dict[str, Any] = msg["data"]
    assert set(data) - {"snapshot"} == SEED_FIELDS, data
    return data


async def test_a_trader_sees_the_lines_of_their_own_orders_and_nobody_elses(
    market: Daemon,
) -> None:
    admin = Admin(market)
    admin.quote("EURUSD", "1.08490", "1.08500")
    x, y = Trader.issued(market), Trader.issued(market)
    cx = await x.socket("logs")
    cy = await y.socket("logs")
    try:
        assert lines(await cx.barrier()) == []  # a new user has no lines yet
        await cy.barrier()
        order = x.buy(0.1)
        fill = await line(cx, "Fill: EURUSD BUY 0.1 @ 1.08500")
        assert (fill["level"], fill["module"]) == ("INFO", "trading")
        assert fill["extra"]["symbol"] == "EURUSD"
        assert fill["extra"]["entry"] == "in"
        placed = await line(cx, "Order placed: EURUSD BUY 0.1")
        assert placed["extra"]["orderId"] == order["id"]
        assert placed["extra"]["status"] == "filled"
        assert placed["timestamp"].endswith("Z")

        too_big = x.post(
            "/trading/orders", {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 50}
        )
        error(too_big, 400, "INSUFFICIENT_BALANCE_ERROR")
        refused = await line(cx, "Order rejected: EURUSD BUY 50")
        assert refused["level"] == "WARNING"
        assert refused["extra"]["code"] == "INSUFFICIENT_BALANCE_ERROR"
        assert refused["extra"]["reason"] == "insufficient_margin"

        (position,) = x.positions()
        x.close(position["ticket"])
        await line(cx, "Position closed: EURUSD")

        assert lines(await cy.barrier()) == []  # y saw none of x's lines
    finally:
        await cx.close()
        await cy.close()


async def test_a_new_subscriber_gets_its_recent_lines_and_filters_narrow_them(
    market: Daemon,
) -> None:
    admin = Admin(market)
    admin.quote("EURUSD", "1.08490", "1.08500")
    x = Trader.issued(market)
    x.buy(0.1)
    x.post("/trading/orders", {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 50})
    c = await x.socket("logs")
    warn = await x.socket({"name": "logs", "filters": {"level": "warning"}})
    try:
        got = lines(await c.barrier())
        assert [m["message"].split(":")[0] for m in got] == [
            "Fill",
            "Order placed",
            "Order rejected",
        ]
        assert all(m["snapshot"] is True for m in got)
        assert [m["level"] for m in lines(await warn.barrier())] == ["WARNING"]
        assert not any(m["module"] == "daemon" for m in got)  # no system line for a trader
    finally:
        await c.close()
        await warn.close()


async def test_admins_get_the_system_lines_and_traders_do_not(make_daemon: Daemons) -> None:
    d = make_daemon(quiet=True)
    boss = Trader.issued(d, role="admin")
    trader = Trader.issued(d)
    cb = await boss.socket("logs")
    ct = await trader.socket("logs")
    try:
        started = await line(cb, "fxgate ")  # the snapshot: before any client could connect
        assert started["message"].endswith("started")
        assert (started["module"], started["snapshot"]) == ("daemon", True)
        assert started["extra"]["broker"] == "paper"
        assert lines(await ct.barrier()) == []

        rotated = d.cli("keys", "rotate")
        assert rotated.returncode == 0, rotated.stderr
        kid = rotated.stdout.strip()
        line_ = await line(cb, "Signing key rotated", timeout=10)
        assert line_["extra"]["kid"] == kid
        assert line_["module"] == "auth.keyring"

        # A log line a back end publishes without a user is a system line too.
        r = Admin(d).publish(
            {"channel": "logs", "data": {"level": "ERROR", "message": "Feed lost", "module": "ext"}}
        )
        assert r.status_code == 200, r.text
        assert (await line(cb, "Feed lost"))["level"] == "ERROR"
        assert lines(await ct.barrier()) == []

        assert d.proc is not None
        d.proc.send_signal(signal.SIGTERM)
        stopping = await line(cb, "fxgate stopping")
        assert stopping["level"] == "WARNING"
    finally:
        await cb.close()
        await ct.close()


async def test_a_refresh_as_a_trader_drops_an_admins_system_lines(market: Daemon) -> None:
    uid = "logs-demoted-admin"
    boss = Trader(market, uid, market.token(uid, "admin"))
    c = await boss.socket("logs")
    try:
        await c.barrier()
        await c.send({"type": "auth", "token": market.token(uid, "trader")})
        assert (await c.type("auth"))["status"] == "success"
        dropped = await c.type("error")
        assert dropped["code"] == "AUTHORIZATION_ERROR"
        assert dropped["details"]["channels"] == ["logs"]
        again = await c.subscribe("logs")  # as a trader: the user's own lines only
        assert again["status"] == "success"
    finally:
        await c.close()


async def test_no_secret_ever_reaches_the_logs_channel(market: Daemon) -> None:
    admin = Admin(market)
    admin.quote("EURUSD", "1.08490", "1.08500")
    x = Trader.logged_in(market)
    boss = Trader.issued(market, role="admin")
    cx = await x.socket("logs")
    cb = await boss.socket("logs")
    raw: list[str] = []
    try:
        key = x.post("/auth/api-keys", {"name": "bot"})
        assert key.status_code == 201, key.text
        secret = key.json()["data"]["secret"]
        x.buy(0.1, clientOrderId="cid-secret-test", comment="hello")
        x.post(
            "/trading/orders", {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 50}
        )
        bad = HTTP.post(
            market.url("/api/v1/auth/login"), json={"email": "nobody@example.com", "password": "pw"}
        )
        assert bad.status_code == 401
        for c in (cx, cb):
            raw.extend(str(m) for m in await c.barrier())
        assert any("Order placed" in r for r in raw)
        for needle in (
            x.token,
            boss.token,
            secret,
            "correct horse battery",
            admin.headers["Authorization"],
        ):
            assert not any(needle in r for r in raw), needle
        assert not any("eyJ" in r for r in raw)  # nothing shaped like a JWT
    finally:
        await cx.close()
        await cb.close()


def test_the_feed_drops_what_looks_like_a_secret() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    extra = safe_extra(
        {
            "orderId": "o1",
            "token": "t",
            "accessToken": "t",
            "password": "p",
            "apiSecret": "s",
            "hmac": "h",
            "signature": "s",
            "Authorization": "Bearer x",
            "note": f"Bearer {jwt_like}",
            "nested": {"token": "t"},
            "volume": 0.1,
            "ok": True,
        }
    )
    assert extra == {"orderId": "o1", "volume": 0.1, "ok": True}

    published: list[Any] = []
    feed = ActivityFeed(published.append, clock=lambda: 0.0)
    feed.user("u1", "DEBUG", "not shown", "trading")
    feed.user("u1", "INFO", "shown", "trading", password="p", symbol="EURUSD")
    feed.system("WARNING", "system", "daemon")
    assert [(e.channel, e.user_id, e.data["message"]) for e in published] == [
        ("logs", "u1", "shown"),
        ("logs", None, "system"),
    ]
    assert published[0].data == {
        "timestamp": "1970-01-01T00:00:00.000Z",
        "level": "INFO",
        "message": "shown",
        "module": "trading",
        "extra": {"symbol": "EURUSD"},
    }


async def test_the_health_monitor_says_when_the_broker_goes_down_and_comes_back() -> None:
    published: list[Any] = []
    monitor = HealthMonitor(activity=ActivityFeed(published.append))
    state = {"broker": HEALTHY}
    monitor.add_check("broker", lambda: state["broker"])
    await monitor.check()  # the first report is no change
    state["broker"] = DOWN
    await monitor.check()
    await monitor.check()  # still down: said once
    state["broker"] = HEALTHY
    await monitor.check()
    said = [(e.user_id, e.data["level"], e.data["message"]) for e in published]
    assert said == [
        (None, "ERROR", "Broker down (was healthy)"),
        (None, "INFO", "Broker up (was down)"),
    ]
    assert published[0].data["extra"] == {
        "component": "broker",
        "status": "DOWN",
        "previous": "HEALTHY",
    }
