"""``POST /api/v1/publish``: back-end services put events into channels (like Centrifugo's
server publish API).

An admin token, or a service token with the ``publish`` scope, publishes one event or a
batch; each event is validated against
its channel (known channel, the channel's required fields, a ``userId`` for a per-user
channel) and a batch is checked whole before anything goes out. A refused request is a
422 VALIDATION_ERROR and publishes nothing: the tests prove "nothing" by publishing a
sentinel afterwards and checking it is the first thing the subscriber sees.
"""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import Daemon
from tests.trading_helpers import HTTP, Admin, Trader, bearer, error
from tests.wsclient import Client


def alert(title: str, **extra: Any) -> dict[str, Any]:
    return {"type": "SYSTEM", "severity": "INFO", "title": title, "message": f"{title}!", **extra}


async def first_live(c: Client, kind: str, timeout: float = 5) -> dict[str, Any]:
    return await c.wait_for(
        lambda m: m.get("type") == kind and not m["data"].get("snapshot"), timeout
    )


def sentinel(admin: Admin, user_id: str, title: str = "sentinel") -> None:
    r = admin.publish({"channel": "alerts", "data": alert(title), "userId": user_id})
    assert r.status_code == 200, r.text


async def test_an_alert_for_one_user_reaches_only_that_user(market: Daemon) -> None:
    admin = Admin(market)
    x, y = Trader.issued(market), Trader.issued(market)
    cx = await x.socket("alerts")
    cy = await y.socket("alerts")
    try:
        data = alert("Maintenance", alertId="alert_ext_1", actions=["ACKNOWLEDGE"])
        r = admin.publish({"channel": "alerts", "data": data, "userId": x.user_id})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True
        assert body["data"] == {"published": 1}

        msg = await first_live(cx, "alert")
        assert msg["channel"] == "alerts"
        assert msg["data"] == data
        assert set(msg) == {"type", "channel", "data", "timestamp", "id", "offset", "epoch"}
        assert await cy.barrier() == []  # the publish has answered: all is sent
    finally:
        await cx.close()
        await cy.close()


async def test_market_data_needs_symbol_bid_and_ask(market: Daemon) -> None:
    admin = Admin(market)
    x = Trader.issued(market)
    eur = await x.socket({"name": "market-data", "filters": {"symbol": "EURUSD"}})
    gbp = await x.socket({"name": "market-data", "filters": {"symbol": "GBPUSD"}})
    try:
        await eur.barrier()  # past the snapshot
        await gbp.barrier()
        tick = {"symbol": "EURUSD", "bid": 1.1, "ask": 1.10012, "last": 1.1}
        r = admin.publish({"channel": "market-data", "data": tick})
        assert r.status_code == 200, r.text
        msg = await first_live(eur, "market_data")
        assert (msg["channel"], msg["data"]) == ("market-data", tick)
        assert await gbp.barrier() == []  # keyed by symbol

        for missing in ("symbol", "bid", "ask"):
            bad = {k: v for k, v in tick.items() if k != missing}
            err = error(
                admin.publish({"channel": "market-data", "data": bad}), 422, "VALIDATION_ERROR"
            )
            assert missing in repr(err["details"])
        ok = {**tick, "bid": 1.2, "ask": 1.2001}
        assert admin.publish({"channel": "market-data", "data": ok}).status_code == 200
        assert (await first_live(eur, "market_data"))["data"] == ok  # nothing came between
    finally:
        await eur.close()
        await gbp.close()


async def test_a_batch_publishes_every_event_in_order(market: Daemon) -> None:
    admin = Admin(market)
    x, y = Trader.issued(market), Trader.issued(market)
    cx = await x.socket("alerts", "trades")
    cy = await y.socket("alerts")
    try:
        trade = {"executionId": "ext-1", "symbol": "EURUSD", "action": "BUY", "volume": 0.1}
        r = admin.publish(
            {
                "events": [
                    {"channel": "alerts", "data": alert("one"), "userId": x.user_id},
                    {"channel": "alerts", "data": alert("for y"), "userId": y.user_id},
                    {"channel": "trades", "data": trade, "userId": x.user_id},
                    {"channel": "alerts", "data": alert("two"), "userId": x.user_id},
                ]
            }
        )
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"published": 4}
        got = [await cx.recv() for _ in range(3)]
        assert [(m["type"], m["data"].get("title")) for m in got] == [
            ("alert", "one"),
            ("trade", None),
            ("alert", "two"),
        ]
        assert got[1]["data"] == trade
        assert got[2]["offset"] == got[0]["offset"] + 1  # the user's alerts stream
        (only,) = [m for m in await cy.barrier() if m["type"] == "alert"]
        assert only["data"]["title"] == "for y"
        assert await cx.barrier() == []
    finally:
        await cx.close()
        await cy.close()


@pytest.mark.parametrize(
    ("body", "where"),
    [
        pytest.param({"channel": "nope", "data": alert("a")}, "nope", id="unknown-channel"),
        pytest.param({"channel": "alerts", "data": alert("a")}, "user", id="no-user-id"),
        pytest.param(
            {
                "channel": "alerts",
                "data": {"type": "SYSTEM", "title": "t", "message": "m"},
                "userId": "X",
            },
            "severity",
            id="missing-field",
        ),
        pytest.param(
            {"channel": "alerts", "data": {**alert("a"), "severity": None}, "userId": "X"},
            "severity",
            id="null-field",
        ),
        pytest.param({"channel": "alerts", "data": [1, 2], "userId": "X"}, "data", id="data-list"),
        pytest.param({"channel": "alerts", "userId": "X"}, "data", id="no-data"),
        pytest.param(
            {"channel": "alerts", "data": alert("a"), "userId": "X", "user": "X"},
            "user",
            id="unknown-field",
        ),
        pytest.param({"events": []}, "events", id="empty-batch"),
        pytest.param(
            {
                "events": [
                    {"channel": "alerts", "data": alert("ok"), "userId": "X"},
                    {"channel": "alerts", "data": {"title": "no type"}, "userId": "X"},
                    {"channel": "alerts", "data": alert("ok too"), "userId": "X"},
                ]
            },
            "1",
            id="batch-with-one-bad-event",
        ),
        pytest.param(
            {
                "events": [
                    {"channel": "alerts", "data": alert("ok"), "userId": "X"},
                    {
                        "channel": "orders",
                        "data": {"orderId": "o1", "symbol": "EURUSD", "status": "FILLED"},
                    },
                ]
            },
            "user",
            id="batch-per-user-event-without-user",
        ),
    ],
)
async def test_refused_events_are_422_and_nothing_is_published(
    market: Daemon, body: dict[str, Any], where: str
) -> None:
    admin = Admin(market)
    x = Trader.issued(market)
    body = _with_user(body, x.user_id)
    c = await x.socket("alerts", "orders")
    try:
        err = error(admin.publish(body), 422, "VALIDATION_ERROR")
        assert where in repr(err).lower() or where in err["message"].lower(), err
        sentinel(admin, x.user_id)
        msg = await c.wait_for(lambda m: m.get("channel") in {"alerts", "orders"})
        assert msg["data"]["title"] == "sentinel"  # nothing of the refused request came first
    finally:
        await c.close()


def _with_user(body: Any, user_id: str) -> Any:
    """``body`` with the placeholder user "X" replaced by a real one."""
    if isinstance(body, dict):
        return {k: user_id if (k == "userId" and v == "X") else _with_user(v, user_id)
                for k, v in body.items()}  # fmt: skip
    if isinstance(body, list):
        return [_with_user(v, user_id) for v in body]
    return body


def test_only_admins_publish(market: Daemon) -> None:
    url = market.url("/api/v1/publish")
    body = {"channel": "alerts", "data": alert("a"), "userId": "someone"}
    for role in ("trader", "viewer"):
        r = HTTP.post(url, json=body, headers=bearer(market.token(f"pub-{role}", role)))
        err = error(r, 403, "AUTHORIZATION_ERROR")
        assert err["details"] == {"required": "admin"}
    error(HTTP.post(url, json=body), 401, "AUTHENTICATION_ERROR")
    expired = market.token("pub-admin-old", "admin", ttl=-5)
    error(HTTP.post(url, json=body, headers=bearer(expired)), 401, "AUTHENTICATION_ERROR")


async def test_a_service_token_with_the_publish_scope_publishes_and_nothing_more(
    market: Daemon,
) -> None:
    """A backend service gets the one right it needs: a viewer token with ``publish``,
    issued by the operator's CLI. It publishes into a user's channel, and is still a
    viewer everywhere else (it cannot set paper prices)."""
    out = market.cli(
        "token", "issue", "--user", "pricing-svc", "--role", "viewer", "--scope", "publish"
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    service = out.stdout.strip()
    assert jwt.decode(service, options={"verify_signature": False})["scope"] == "publish"
    x = Trader.logged_in(market)
    c = await x.socket("alerts")
    try:
        r = HTTP.post(
            market.url("/api/v1/publish"),
            json={"channel": "alerts", "data": alert("from-a-service"), "userId": x.user_id},
            headers=bearer(service),
        )
        assert r.status_code == 200, r.text
        assert (await first_live(c, "alert"))["data"]["title"] == "from-a-service"
    finally:
        await c.close()
    quote = {"symbol": "EURUSD", "bid": 1.1, "ask": 1.1001}
    r = HTTP.post(market.url("/api/v1/paper/quotes"), json=quote, headers=bearer(service))
    assert error(r, 403, "AUTHORIZATION_ERROR")["details"] == {"required": "admin"}
    bad = market.cli("token", "issue", "--user", "pricing-svc", "--scope", "everything")
    assert bad.returncode == 2
    assert "invalid choice" in bad.stderr


def test_a_backend_may_publish_more_than_the_per_user_rest_limit(daemon: Daemon) -> None:
    """The shared daemon keeps the default REST limit (100 requests a minute per user).
    ``docs/rest.md`` names "a backend publishing events" as the machine endpoint that
    ``rate_limited=False`` is for: a processing service pushing events one by one must
    not be cut off after 100 a minute."""
    headers = bearer(daemon.token("publisher-service", "admin"))
    url = daemon.url("/api/v1/publish")
    body = {"channel": "system", "data": {"status": "HEALTHY", "message": "tick"}}
    with httpx.Client(headers=headers, timeout=10) as client:
        statuses = [client.post(url, json=body).status_code for _ in range(110)]
    assert statuses == [200] * 110, statuses[-15:]
