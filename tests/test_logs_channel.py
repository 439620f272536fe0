"""The ``logs`` channel (issue 8, item 5): a dashboard's log panel, fed by the services.

A trader subscribed to ``logs`` sees a line for each of their orders, fills, refusals
and closes, with seed 002's fields and nothing of anybody else's. An admin also sees
the daemon's own lines (started, signing key rotated, stopping); a trader never does.
No token, password, API secret or signature ever reaches the channel.
"""

from __future__ import annotations

import signal
from typing import Any

from tests.conftest import Daemon, Daemons
from tests.test_mt5_e2e import mt5_daemon
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


async def test_modifying_and_cancelling_a_pending_order_are_lines_too(market: Daemon) -> None:
    admin = Admin(market)
    admin.quote("EURUSD", "1.08490", "1.08500")
    x = Trader.issued(market)
    c = await x.socket("logs")
    try:
        order = x.buy(0.5, type="limit", price=1.08000)
        placed = await line(c, "Order placed: EURUSD BUY 0.5 (limit, pending)")
        assert placed["extra"]["orderId"] == order["id"]
        r = x.put(f"/trading/orders/{order['id']}", {"price": 1.081})
        assert r.status_code == 200, r.text
        moved = await line(c, "Order modified: EURUSD")
        assert (moved["extra"]["orderId"], moved["extra"]["price"]) == (order["id"], "1.081")
        assert x.delete(f"/trading/orders/{order['id']}").status_code == 200
        assert (await line(c, "Order cancelled: EURUSD"))["extra"]["orderId"] == order["id"]
    finally:
        await c.close()


async def test_a_trader_resumes_the_logs_from_an_offset(market: Daemon) -> None:
    admin = Admin(market)
    admin.quote("EURUSD", "1.08490", "1.08500")
    x = Trader.issued(market)
    c = await x.socket("logs")
    x.buy(0.1)
    seen = await c.wait_for(lambda m: m.get("type") == "log" and "Order placed" in str(m["data"]))
    await c.close()
    x.buy(0.2)  # while away: a fill and an order line
    since = {"offset": seen["offset"], "epoch": seen["epoch"]}
    back = await x.socket()
    try:
        ack = await back.subscribe({"name": "logs", "since": since})
        assert ack["channels"][0]["recovered"] is True
        missed = lines(await back.barrier())
        assert [m["message"].split(":")[0] for m in missed] == ["Fill", "Order placed"]
        assert "0.2" in missed[1]["message"]
    finally:
        await back.close()


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
        new_key = await line(cb, "Signing key rotated", timeout=10)
        assert (new_key["module"], new_key["extra"]["kid"]) == ("auth.keyring", kid)
        assert lines(await ct.barrier()) == []

        # A log line a back end publishes without a user is a system line too.
        r = Admin(d).publish(
            {"channel": "logs", "data": {"level": "ERROR", "message": "Feed lost", "module": "ext"}}
        )
        assert r.status_code == 200, r.text
        assert (await line(cb, "Feed lost"))["level"] == "ERROR"
        assert lines(await ct.barrier()) == []
    finally:
        await cb.close()
        await ct.close()

    # Retiring the old key (which closes the sessions it signed): an admin signed in
    # with the new key is told; then the daemon stops, and says so first.
    boss = Trader(d, boss.user_id, d.token(boss.user_id, "admin"))
    trader = Trader(d, trader.user_id, d.token(trader.user_id, "trader"))
    cb = await boss.socket("logs")
    ct = await trader.socket("logs")
    try:
        await cb.barrier()
        retired = d.cli("keys", "retire", new_key["extra"]["previousKid"])
        assert retired.returncode == 0, retired.stderr
        gone = await line(cb, "Signing keys retired", timeout=10)
        assert gone["extra"]["kids"] == new_key["extra"]["previousKid"]
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


async def test_a_line_published_by_a_back_end_is_checked_and_its_secrets_dropped(
    market: Daemon,
) -> None:
    admin = Admin(market)
    x, y = Trader.issued(market), Trader.issued(market)
    cx = await x.socket("logs")
    cy = await y.socket("logs")
    try:
        await cx.barrier()
        await cy.barrier()
        jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
        data = {
            "level": "INFO",
            "message": f"Rebalanced with {jwt_like}",
            "module": "rebalancer",
            "extra": {"ticket": 7, "apiSecret": "s3cr3t", "note": jwt_like, "ok": True},
        }
        r = admin.publish({"channel": "logs", "data": data, "userId": x.user_id})
        assert r.status_code == 200, r.text
        got = await line(cx, "Rebalanced")
        assert got["message"] == "Rebalanced with [redacted]"
        assert got["extra"] == {"ticket": 7, "ok": True}
        assert lines(await cy.barrier()) == []
        for change, field in (
            ({"level": "LOUD"}, "data.level"),
            ({"message": ""}, "data.message"),
            ({"module": "m" * 65}, "data.module"),
            ({"extra": {"deep": {"a": 1}}}, "data.extra.deep"),
            ({"extra": {"long": "x" * 201}}, "data.extra.long"),
            ({"colour": "red"}, "data.colour"),
            ({"timestamp": "noon"}, "data.timestamp"),
        ):
            bad = {"channel": "logs", "data": {**data, **change}, "userId": x.user_id}
            err = error(admin.publish(bad), 422, "VALIDATION_ERROR")
            assert err["details"]["field"] == field, err
        assert lines(await cx.barrier()) == []
    finally:
        await cx.close()
        await cy.close()


async def test_a_risk_alert_is_a_warning_line_of_its_user(make_daemon: Daemons) -> None:
    d = make_daemon(
        quiet=True, FXGATE_PAPER_INITIAL_BALANCE="1000", FXGATE_RISK_MAX_DAILY_LOSS="100"
    )
    admin, trader, other = Admin(d), Trader.issued(d), Trader.issued(d)
    admin.quote("EURUSD", "1.08490", "1.08500")
    c = await trader.socket("logs")
    co = await other.socket("logs")
    try:
        trader.buy(0.5)
        # (1.08320 - 1.08500) * 50,000 = -90.00: 90 % of the daily limit.
        admin.quote("EURUSD", "1.08320", "1.08330")
        alert = await line(c, "Risk alert: Daily loss has reached 90%")
        assert (alert["level"], alert["module"]) == ("WARNING", "risk")
        assert alert["extra"]["type"] == "RISK_LIMIT"
        assert alert["extra"]["threshold"] == 80
        assert lines(await co.barrier()) == []
    finally:
        await c.close()
        await co.close()


async def test_admins_see_the_broker_connection_go_down_and_come_back(
    make_daemon: Daemons,
) -> None:
    """On MetaTrader 5 (the fake terminal): the terminal goes away and comes back; the
    admin's log panel says so, a trader's does not."""
    d, control = mt5_daemon(make_daemon)
    boss, trader = Trader.issued(d, role="admin"), Trader.issued(d)
    cb = await boss.socket("logs")
    ct = await trader.socket("logs")
    try:
        await cb.barrier()
        control("terminal_down", down=True)
        down = await line(cb, "Broker down", timeout=15)
        assert (down["level"], down["module"]) == ("ERROR", "health")
        assert (down["extra"]["component"], down["extra"]["status"]) == ("broker", "DOWN")
        control("terminal_down", down=False)
        up = await line(cb, "Broker up", timeout=15)
        assert up["level"] == "INFO"
        assert not any(m["module"] == "health" for m in lines(await ct.barrier()))
    finally:
        await cb.close()
        await ct.close()
