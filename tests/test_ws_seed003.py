"""Seed 003's front end against ``/ws``: a real daemon, a real WebSocket client.

The client does what seed 003's ``websocketManager`` does: it opens ``/ws``, sends
``{"type":"auth","token"}``, subscribes with ``{"type":"subscribe","channel","symbols"}``
and reads events ``{type, data, timestamp, channel?}``, while REST places the orders.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from tests.conftest import Daemon, Daemons
from tests.trading_helpers import Admin, Trader, check_names_its_field, error, unique
from tests.wsclient import Client

PRICE_FIELDS = {"symbol", "bid", "ask", "last", "change", "changePercent", "volume", "timestamp"}
ORDER_FIELDS = {"id", "symbol", "status", "filledQuantity", "averagePrice", "updatedAt"}
POSITION_FIELDS = {"id", "symbol", "quantity", "currentPrice", "unrealizedPnL", "updatedAt"}
PORTFOLIO_FIELDS = {"totalValue", "availableBalance", "unrealizedPnL", "dayPnL", "updatedAt"}
NEWS_FIELDS = {"id", "title", "content", "source", "impact", "symbols", "publishedAt"}
EVENT = {"type", "data", "timestamp"}


async def connect(daemon: Daemon) -> Client:
    return await Client.connect(daemon.ws_url("/ws"))


async def authed(daemon: Daemon, token: str) -> Client:
    """Connected and authenticated the seed's way; the first message is the answer."""
    c = await connect(daemon)
    await c.send({"type": "auth", "token": token})
    ok = await c.recv()
    assert ok["type"] == "auth_success", ok
    assert set(ok) == EVENT
    return c


def of(kind: str, msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in msgs if m["type"] == kind]


async def test_auth_subscribe_receive_unsubscribe(daemon: Daemon, user: str) -> None:
    c = await connect(daemon)
    try:
        await c.send({"type": "auth", "token": daemon.token(user)})
        ok = await c.recv()  # nothing came before the answer to auth
        assert ok["type"] == "auth_success"
        assert ok["data"]["userId"] == user
        assert set(ok["data"]) == {"userId", "sessionId", "expiresAt"}
        await c.barrier()  # past the user's own state

        await c.send(
            {"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD", "GBPUSD"]}
        )
        ack = await c.recv()
        assert ack == {
            "type": "subscribed",
            "channel": "price_updates",
            "data": {"channel": "price_updates", "symbols": ["EURUSD", "GBPUSD"], "all": False},
            "timestamp": ack["timestamp"],
        }
        msgs = await c.read_until(
            lambda got: {m["data"]["symbol"] for m in got} == {"EURUSD", "GBPUSD"} and len(got) >= 4
        )
        for m in msgs:
            assert set(m) == {*EVENT, "channel"}
            assert (m["type"], m["channel"]) == ("price_update", "price_updates")
            assert set(m["data"]) == PRICE_FIELDS
            assert m["data"]["bid"] < m["data"]["ask"]
            assert m["data"]["timestamp"].endswith("Z")

        await c.send({"type": "unsubscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
        got = await c.read_until(lambda got: bool(got) and got[-1]["type"] == "unsubscribed")
        assert got[-1]["data"] == {"channel": "price_updates", "symbols": ["GBPUSD"], "all": False}
        after = await c.read_until(lambda got: len(got) >= 3)
        assert {m["data"]["symbol"] for m in after} == {"GBPUSD"}
    finally:
        await c.close()


async def test_a_query_token_is_taken_too(daemon: Daemon, user: str) -> None:
    c = await Client.connect(daemon.ws_url("/ws") + f"?token={daemon.token(user)}")
    try:
        ok = await c.recv()
        assert (ok["type"], ok["data"]["userId"]) == ("auth_success", user)
        await c.send({"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
        assert (await c.type("price_update"))["data"]["symbol"] == "EURUSD"
    finally:
        await c.close()


async def test_a_market_order_over_rest_appears_as_the_users_updates(market: Daemon) -> None:
    admin = Admin(market)
    admin.quote("EURUSD", "1.10000", "1.10010")
    x, y = Trader.issued(market), Trader.issued(market)
    cx, cy = await authed(market, x.token), await authed(market, y.token)
    try:
        await cx.barrier()
        await cy.barrier()
        placed = x.buy(0.1)
        msgs = await cx.read_until(
            lambda got: (
                any(m["type"] == "order_update" and m["data"]["status"] == "filled" for m in got)
                and bool(of("position_update", got))
                and bool(of("portfolio_update", got))
            )
        )
        msgs += await cx.barrier()
        for m in msgs:
            assert set(m) == EVENT, m  # the user's own streams carry no channel
        (order,) = [m["data"] for m in of("order_update", msgs) if m["data"]["status"] == "filled"]
        assert set(order) == ORDER_FIELDS
        rest_order = x.get_order(placed["id"])
        assert order == {
            "id": placed["id"],
            "symbol": "EURUSD",
            "status": "filled",
            "filledQuantity": 0.1,
            "averagePrice": 1.1001,
            "updatedAt": rest_order["updatedAt"],
        }
        (rest_position,) = x.positions()
        position = of("position_update", msgs)[-1]["data"]
        assert set(position) == POSITION_FIELDS
        assert position["id"] == rest_position["id"]
        assert position["id"].startswith("pos_")
        assert (position["symbol"], position["quantity"]) == ("EURUSD", 0.1)
        assert position["currentPrice"] == rest_position["currentPrice"] == 1.1
        assert position["unrealizedPnL"] == rest_position["unrealizedPnL"]
        portfolio = of("portfolio_update", msgs)[-1]["data"]
        assert set(portfolio) == PORTFOLIO_FIELDS
        rest = x.portfolio()
        for key in ("totalValue", "availableBalance", "unrealizedPnL", "dayPnL"):
            assert portfolio[key] == pytest.approx(float(rest[key])), key

        assert await cy.barrier() == []  # the other user sees nothing
        x.close(rest_position["ticket"])
        closed = await cx.read_until(
            lambda got: any(
                m["type"] == "position_update" and m["data"]["quantity"] == 0 for m in got
            )
        )
        (gone,) = [m for m in of("position_update", closed) if m["data"]["quantity"] == 0]
        assert gone["data"]["id"] == rest_position["id"]
        assert await cy.barrier() == []
    finally:
        await cx.close()
        await cy.close()


async def test_a_reconnect_starts_with_the_users_state(market: Daemon) -> None:
    admin = Admin(market)
    admin.quote("GBPUSD", "1.25000", "1.25020")
    x = Trader.issued(market)
    x.buy(0.2, "GBPUSD")
    pending = x.order(symbol="GBPUSD", type="limit", side="buy", quantity=0.1, price=1.2)
    c = await authed(market, x.token)
    try:
        msgs = await c.barrier()
        (order,) = of("order_update", msgs)
        assert (order["data"]["id"], order["data"]["status"]) == (pending["id"], "pending")
        (position,) = of("position_update", msgs)
        assert position["data"]["id"] == x.positions()[0]["id"]
        assert of("portfolio_update", msgs)
    finally:
        await c.close()


@pytest.mark.parametrize(
    "frame",
    [{"type": "auth", "token": "not-a-jwt"}, {"type": "auth"}, {"type": "auth", "token": ""}],
    ids=["bad", "missing", "empty"],
)
async def test_bad_and_missing_credentials_get_an_error_then_4001(
    daemon: Daemon, frame: dict[str, Any]
) -> None:
    c = await connect(daemon)
    await c.send(frame)
    err = await c.recv()
    assert set(err) == EVENT
    assert err["type"] == "error"
    assert err["data"]["code"] == "AUTHENTICATION_ERROR"
    assert err["data"]["message"]
    assert await c.closed_with() == 4001


async def test_an_expired_token_is_refused_4001(daemon: Daemon, user: str) -> None:
    c = await connect(daemon)
    await c.send({"type": "auth", "token": daemon.token(user, ttl=-10)})
    assert (await c.recv())["data"]["code"] == "AUTHENTICATION_ERROR"
    assert await c.closed_with() == 4001


async def test_the_auth_window_closes_4001(make_daemon: Daemons) -> None:
    d = make_daemon(FXGATE_WS_AUTH_TIMEOUT="0.5")
    c = await connect(d)
    assert await c.closed_with(timeout=5) == 4001


async def test_malformed_frames_get_errors_while_other_clients_stream(
    daemon: Daemon, user: str
) -> None:
    bad = await authed(daemon, daemon.token(user))
    good = await authed(daemon, daemon.token(user + "_w"))
    try:
        for c in (bad, good):
            await c.send({"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
            await c.type("subscribed")
        frames: list[tuple[Any, str]] = [
            ("{oops", "frame"),
            (b"\x00binary", "frame"),
            ('"just a string"', "frame"),
            ({"type": "dance"}, "type"),
            ({"type": "subscribe", "channel": "everything"}, "channel"),
            ({"type": "subscribe", "channel": "price_updates", "symbols": "EURUSD"}, "symbols"),
            ({"type": "subscribe", "channel": "price_updates", "symbols": ["XXXYYY"]}, "symbols"),
        ]
        for frame, field in frames:
            await bad.send(frame)
            err = await bad.type("error")
            assert set(err) == EVENT
            assert err["data"]["code"] == "VALIDATION_ERROR", err
            assert err["data"]["details"]["field"] == field, err
            check_names_its_field(err["data"])
        # Both still stream: the bad client's connection stayed open.
        for c in (bad, good):
            assert (await c.type("price_update"))["data"]["symbol"] == "EURUSD"
    finally:
        await bad.close()
        await good.close()
    assert "Traceback" not in daemon.log()


async def test_market_news_published_reaches_its_subscribers(market: Daemon) -> None:
    admin = Admin(market)
    euro = await authed(market, Trader.issued(market).token)
    every = await authed(market, Trader.issued(market).token)
    try:
        await euro.send({"type": "subscribe", "channel": "market_news", "symbols": ["EURUSD"]})
        await every.send({"type": "subscribe", "channel": "market_news"})
        await euro.type("subscribed")
        await every.type("subscribed")
        item = {
            "title": "ECB holds rates",
            "content": "The ECB left its rates unchanged.",
            "source": "Reuters",
            "impact": "high",
            "symbols": ["EURUSD", "EURGBP"],
        }
        r = admin.publish({"channel": "news", "data": {**item, "id": "news_1"}})
        assert r.status_code == 200, r.text
        r = admin.publish({"channel": "news", "data": {**item, "symbols": ["USDJPY"]}})
        assert r.status_code == 200, r.text
        msg = await euro.type("market_news")
        assert set(msg) == {*EVENT, "channel"}
        assert msg["channel"] == "market_news"
        assert set(msg["data"]) == NEWS_FIELDS
        assert msg["data"] == {
            **item,
            "id": "news_1",
            "symbols": ["EURGBP", "EURUSD"],
            "publishedAt": msg["data"]["publishedAt"],
        }
        assert of("market_news", await euro.barrier()) == []  # not the USDJPY item
        got = [await every.type("market_news"), await every.type("market_news")]
        assert [m["data"]["symbols"] for m in got] == [["EURGBP", "EURUSD"], ["USDJPY"]]
        assert got[1]["data"]["id"].startswith("news_")

        err = error(
            admin.publish({"channel": "news", "data": {**item, "impact": "huge"}}),
            422,
            "VALIDATION_ERROR",
        )
        (problem,) = err["details"]["errors"]
        assert problem["details"]["field"] == "data.impact"
        assert "impact" in problem["message"]
        assert of("market_news", await every.barrier()) == []  # nothing was published
    finally:
        await euro.close()
        await every.close()


async def test_sigterm_sends_each_dialect_its_notice_before_1001(fresh_daemon: Daemon) -> None:
    d = fresh_daemon.start()
    seed = [await authed(d, d.token(f"seed{i}")) for i in range(2)]
    canonical = await Client.connect(d.ws_url() + f"?token={d.token('canon')}")
    await canonical.recv()
    for c in seed:
        await c.send({"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
        await c.type("subscribed")
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    for c in seed:
        notice = await c.wait_for(lambda m: m["type"] == "system")
        assert set(notice) == EVENT
        assert notice["data"]["status"] == "RESTARTING"
        assert await c.closed_with() == 1001
    notice = await canonical.wait_for(lambda m: m["type"] == "system")
    assert notice["channel"] == "system"  # the canonical envelope, for /api/ws
    assert await canonical.closed_with() == 1001
    assert await asyncio.to_thread(d.proc.wait, 5) == 0


def seed_002_signal(uuid: str, symbol: str = "EURUSD", **fields: Any) -> dict[str, Any]:
    return {
        "uuid": uuid,
        "symbol": symbol,
        "side": "buy",
        "volume": 0.01,
        "tp": 1.1050,
        "sl": 1.0950,
        "source": "RSI_Strategy",
        "confidence": 0.85,
        "timestamp": "2026-01-05T12:00:00Z",
        "validators": [
            {
                "name": "AI_Validator",
                "type": "ai",
                "approved": True,
                "confidence": 0.92,
                "reason": "Strong bullish pattern detected",
                "timestamp": "2026-01-05T12:00:01Z",
            }
        ],
        "status": "approved",
        **fields,
    }


async def test_ai_signals_come_from_the_signals_channel(market: Daemon) -> None:
    admin = Admin(market)
    admin.quote("EURUSD", "1.10000", "1.10010")
    x, y = Trader.issued(market), Trader.issued(market)
    cx, cy = await authed(market, x.token), await authed(market, y.token)
    try:
        await cx.send({"type": "subscribe", "channel": "ai_signals", "symbols": ["EURUSD"]})
        ack = await cx.type("subscribed")
        assert ack["data"] == {"channel": "ai_signals", "symbols": ["EURUSD"], "all": False}
        await cy.send({"type": "subscribe", "channel": "ai_signals"})
        await cy.type("subscribed")
        await cx.barrier()  # past the snapshot (signals published before)
        await cy.barrier()
        uuid = unique("sig")
        r = admin.publish({"channel": "signals", "data": seed_002_signal(uuid)})
        assert r.status_code == 200, r.text
        other = seed_002_signal(unique("sig"), "GBPUSD", side="sell")
        assert admin.publish({"channel": "signals", "data": other}).status_code == 200
        mine = seed_002_signal(unique("sig"), status="rejected")
        r = admin.publish({"channel": "signals", "data": mine, "userId": y.user_id})
        assert r.status_code == 200, r.text

        msg = await cx.type("ai_signal")
        assert set(msg) == {*EVENT, "channel"}
        assert msg["channel"] == "ai_signals"
        assert msg["data"] == {
            "symbol": "EURUSD",
            "signal": "buy",
            "confidence": 0.85,
            "reasoning": "AI_Validator: Strong bullish pattern detected",
            "price": 1.1001,  # the ask it would buy at: the signal carries no price
            "generatedAt": "2026-01-05T12:00:00.000Z",
        }
        assert of("ai_signal", await cx.barrier()) == []  # not GBPUSD, not y's own
        got = [await cy.type("ai_signal") for _ in range(3)]
        assert [(m["data"]["symbol"], m["data"]["signal"]) for m in got] == [
            ("EURUSD", "buy"),
            ("GBPUSD", "sell"),
            ("EURUSD", "hold"),  # rejected by its validators
        ]
    finally:
        await cx.close()
        await cy.close()
