"""Seed 004's front end against fxgate: ``/ws/market-data``, ``/ws/trading``, its REST calls
and ``fxgate serve --demo``, driven the way the seed's client does it (its message
shapes, ``BTC/USD`` symbols, the demo credentials, real WebSocket clients)."""

from __future__ import annotations

import hashlib
import hmac
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import Daemon, Daemons, free_port
from tests.test_rest_auth import audit
from tests.trading_helpers import HTTP, Trader, bearer
from tests.wsclient import Client

DEMO_KEY, DEMO_SECRET = "demo_api_key", "demo_secret"


def trading_api_signature(secret: str, api_key: str, timestamp: int) -> str:
    """What seed 004's ``TradingAPI.authenticate`` sends: HMAC-SHA256 (lowercase hex),
    keyed with the secret, of the login string docs/rest.md spells out, with
    ``Date.now()`` milliseconds; written out here independently of fxgate's code."""
    message = f"{timestamp}\n{api_key}\nPOST\n/auth/login"
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def kinds(msgs: list[dict[str, Any]]) -> set[str]:
    return {m["type"] for m in msgs}


def now_ms() -> int:
    return int(time.time() * 1000)


def auth_frame(
    api_key: str = DEMO_KEY, secret: str = DEMO_SECRET, ts: int | None = None
) -> dict[str, Any]:
    ts = now_ms() if ts is None else ts
    signature = trading_api_signature(secret, api_key, ts)
    return {"type": "auth", "api_key": api_key, "signature": signature, "timestamp": ts,
            "id": "login"}  # fmt: skip


@pytest.fixture(scope="module")
def demo(module_daemons: Daemons) -> Daemon:
    """``fxgate serve --demo`` with anonymous market data on and a ticking market."""
    d = module_daemons.new(FXGATE_WS_ANONYMOUS_MARKET_DATA="true", FXGATE_PAPER_TICK_RATE="5",
                           FXGATE_SERVER_RATE_LIMIT_PER_MINUTE="100000")  # fmt: skip
    d.args = ("--demo",)
    return d.start()


async def market_socket(d: Daemon, query: str = "") -> Client:
    c = await Client.connect(d.ws_url("/ws/market-data") + query)
    hello = await c.type("connected")
    assert hello["channels"] == ["quotes", "trades", "orderbook"]
    return c


async def trading_socket(d: Daemon, frame: dict[str, Any] | None = None) -> Client:
    c = await Client.connect(d.ws_url("/ws/trading"))
    await c.send(frame or auth_frame())
    ok = await c.type("auth")
    assert ok["status"] == "success"
    assert ok["id"] == "login"
    return c


def program_trader(d: Daemon) -> tuple[str, str, str]:
    """A second user with an API key of their own: (user id, key, secret)."""
    person = Trader.logged_in(d)
    r = HTTP.post(d.url("/api/v1/auth/api-keys"), headers=person.headers, json={"name": "bot"})
    assert r.status_code == 201, r.text
    data = r.json()["data"]
    return person.user_id, data["id"], data["secret"]


# -- /ws/market-data ---------------------------------------------------------------------


async def test_btc_usd_quotes_trades_and_order_book_answered_as_asked(demo: Daemon) -> None:
    async with await market_socket(demo) as c:  # no token: anonymous is on here
        await c.send({"type": "subscribe", "channel": "quotes", "symbol": "BTC/USD", "id": 1})
        ack = await c.type("subscribed")
        assert (ack["channel"], ack["symbol"], ack["id"]) == ("quotes", "BTC/USD", "1")
        quote = await c.type("quote")
        assert quote["symbol"] == "BTC/USD"
        assert quote["channel"] == "quotes"
        data = quote["data"]
        for field in ("price", "change", "changePercent", "volume", "bid", "ask", "timestamp"):
            assert data[field] is not None, field  # what useSymbol('BTC/USD') reads
        assert data["symbol"] == "BTC/USD"
        assert 10_000 < data["price"] < 500_000
        assert data["bid"] < data["ask"]
        assert data["timestamp"].endswith("Z")

        await c.send({"type": "subscribe", "channel": "orderbook", "symbol": "BTC/USD"})
        book = await c.wait_for(lambda m: m["type"] == "orderbook")
        assert book["action"] == "snapshot"
        assert book["symbol"] == "BTC/USD"
        bids, asks = book["data"]["bids"], book["data"]["asks"]
        assert bids
        assert asks
        assert all(len(level) == 2 and level[1] > 0 for level in bids + asks)
        assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
        assert bids[0][0] < asks[0][0]
        update = await c.wait_for(lambda m: m["type"] == "orderbook" and m["action"] == "update")
        assert update["data"]["bids"][0][0] < update["data"]["asks"][0][0]

        await c.send({"type": "subscribe", "channel": "trades", "symbol": "BTC/USD"})
        trade = await c.wait_for(lambda m: m["type"] == "trade", timeout=10)
        assert trade["symbol"] == "BTC/USD"
        assert trade["data"]["side"] in ("buy", "sell")
        assert trade["data"]["quantity"] > 0
        assert 10_000 < trade["data"]["price"] < 500_000

        # The broker's own spelling is answered in that spelling.
        await c.send({"type": "subscribe", "channel": "quotes", "symbol": "ETHUSD"})
        eth = await c.wait_for(lambda m: m["type"] == "quote" and m["symbol"] == "ETHUSD")
        assert eth["data"]["symbol"] == "ETHUSD"

        await c.send({"type": "unsubscribe", "channel": "quotes", "symbol": "BTC/USD"})
        gone = await c.type("unsubscribed")
        assert (gone["channel"], gone["symbol"]) == ("quotes", "BTC/USD")
        await c.barrier()
        # Two book updates later (ticks have come), no BTC quote came after the unsubscribe.
        seen = await c.read_until(
            lambda ms: sum(m["type"] == "orderbook" for m in ms) >= 2, timeout=10
        )
        assert not [m for m in seen if m["type"] == "quote" and m["symbol"] == "BTC/USD"]


async def test_anonymous_clients_are_refused_with_4001_by_default(daemon: Daemon) -> None:
    c = await Client.connect(daemon.ws_url("/ws/market-data"))
    err = await c.type("error")
    assert err["code"] == "AUTHENTICATION_ERROR"
    assert await c.closed_with() == 4001
    # With a token it works on the same server.
    token = daemon.token("md-viewer", "viewer")
    async with await market_socket(daemon, f"?token={token}") as ok:
        await ok.send({"type": "subscribe", "channel": "quotes", "symbol": "EUR/USD"})
        await ok.type("subscribed")
        assert (await ok.type("quote"))["symbol"] == "EUR/USD"
    # A bad token is refused before the upgrade, as on every endpoint.
    r = HTTP.get(daemon.url("/ws/market-data?token=nope"), headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})  # fmt: skip
    assert r.status_code == 401


async def test_bad_frames_get_errors_and_nobody_stops_streaming(demo: Daemon) -> None:
    async with await market_socket(demo) as watcher, await market_socket(demo) as c:
        await watcher.send({"type": "subscribe", "channel": "quotes", "symbol": "BTC/USD"})
        await watcher.type("subscribed")
        bad: list[Any] = [
            "{not json",
            b"\x00binary",
            '["a list"]',
            {"type": "dance"},
            {"type": "subscribe", "channel": "news", "symbol": "BTC/USD", "id": "x"},
            {"type": "subscribe", "channel": ["quotes"], "symbol": "BTC/USD"},
            {"type": "subscribe", "channel": "quotes"},
            {"type": "subscribe", "channel": "quotes", "symbol": "DOGE/USD", "id": "d"},
            {"type": "unsubscribe", "channel": "trades", "symbol": "BTC/USD"},
            {"type": "subscribe", "channel": "quotes", "symbol": "x" * 70_000},
        ]
        for frame in bad:
            await c.send(frame)
            err = await c.type("error")
            assert err["code"] in ("VALIDATION_ERROR",), err
        errors = await c.barrier()
        assert not errors  # one answer each, and the socket is still up (pong came)
        await c.send({"type": "subscribe", "channel": "quotes", "symbol": "DOGE/USD", "id": "d"})
        assert (await c.type("error"))["id"] == "d"  # the answer names the request
        # The other client kept streaming all along.
        assert (await watcher.type("quote", timeout=5))["symbol"] == "BTC/USD"


# -- /ws/trading -------------------------------------------------------------------------


async def test_an_order_sent_and_cancelled_over_the_socket(demo: Daemon) -> None:
    async with await trading_socket(demo) as c:
        await c.send({"type": "place_order", "id": "o1", "order": {
            "symbol": "BTC/USD", "side": "buy", "type": "limit", "quantity": 1.0,
            "price": 43000.00}})  # fmt: skip
        # The answer and the update, in whichever order they come.
        got = await c.read_until(lambda ms: {"order_placed", "order_update"} <= kinds(ms))
        [placed] = [m for m in got if m["type"] == "order_placed"]
        assert placed["id"] == "o1"
        order = placed["data"]
        assert (order["symbol"], order["side"], order["type"]) == ("BTC/USD", "buy", "limit")
        assert (order["quantity"], order["price"], order["status"]) == (1.0, 43000.0, "pending")
        [update] = [m for m in got if m["type"] == "order_update"]
        assert update["data"]["id"] == order["id"]
        assert update["data"]["symbol"] == "BTC/USD"

        await c.send({"type": "cancel_order", "id": "c1", "orderId": order["id"]})
        got = await c.read_until(lambda ms: {"order_cancelled", "order_update"} <= kinds(ms))
        [cancelled] = [m for m in got if m["type"] == "order_cancelled"]
        assert cancelled["id"] == "c1"
        assert cancelled["data"]["status"] == "cancelled"
        [done] = [m for m in got if m["type"] == "order_update"]
        assert (done["data"]["id"], done["data"]["status"]) == (order["id"], "cancelled")

        # The same service as REST: its risk checks, listed by REST, audited.
        await c.send({"type": "place_order", "id": "big", "order": {
            "symbol": "BTC/USD", "side": "buy", "type": "market", "quantity": 15}})  # fmt: skip
        refused = await c.type("error")
        assert (refused["id"], refused["code"]) == ("big", "INSUFFICIENT_BALANCE_ERROR")
        token = demo.token("demo", "trader")
        listed = HTTP.get(demo.url(f"/api/v1/trading/orders/{order['id']}"), headers=bearer(token))
        assert listed.json()["data"]["status"] == "cancelled"
        entries = {(e.action, e.target) for e in audit(demo, "demo")}
        assert {("order.place", order["id"]), ("order.cancel", order["id"])} <= entries
        assert ("order.rejected", "BTCUSD") in entries
        logins = [e for e in audit(demo, "demo") if e.action == "auth.login"]
        assert any(e.details.get("via") == "ws/trading" for e in logins)

        # Idempotency by clientOrderId, as REST.
        market = {"symbol": "BTC/USD", "side": "buy", "type": "market", "quantity": 0.01,
                  "clientOrderId": "seed004-once"}  # fmt: skip
        await c.send({"type": "place_order", "id": "m1", "order": market})
        got = await c.read_until(
            lambda ms: {"order_placed", "trade_execution", "position_update"} <= kinds(ms)
        )
        [first] = [m for m in got if m["type"] == "order_placed"]
        assert first["data"]["status"] == "filled"
        [execution] = [m for m in got if m["type"] == "trade_execution"]
        assert execution["data"]["symbol"] == "BTC/USD"
        assert execution["data"]["orderId"] == first["data"]["id"]
        position = next(m for m in got if m["type"] == "position_update")
        assert position["data"]["side"] == "long"
        assert position["data"]["symbol"] == "BTC/USD"
        await c.send({"type": "place_order", "id": "m2", "order": market})
        again = await c.type("order_placed")
        assert again["duplicate"] is True
        assert again["data"]["id"] == first["data"]["id"]


async def test_a_rest_order_shows_on_the_socket_and_another_user_sees_nothing(
    demo: Daemon,
) -> None:
    other_id, other_key, other_secret = program_trader(demo)
    async with (
        await trading_socket(demo) as mine,
        await trading_socket(demo, auth_frame(other_key, other_secret)) as theirs,
    ):
        # seed 004's TradingAPI: authenticate, then createOrder over REST
        ts = now_ms()
        body = {"api_key": DEMO_KEY, "signature": trading_api_signature(DEMO_SECRET, DEMO_KEY, ts),
                "timestamp": ts}  # fmt: skip
        login = HTTP.post(demo.url("/api/v1/auth/login"), json=body)
        assert login.status_code == 200, login.text
        assert login.json()["data"]["user"]["id"] == "demo"
        token = bearer(login.json()["data"]["accessToken"])
        body = {"symbol": "BTC/USD", "side": "buy", "type": "market", "quantity": 0.02}
        r = HTTP.post(demo.url("/api/v1/trading/orders"), headers=token, json=body)
        assert r.status_code == 201, r.text
        assert r.json()["data"]["symbol"] == "BTC/USD"  # answered in the form asked
        order_id = r.json()["data"]["id"]
        update = await mine.wait_for(
            lambda m: m["type"] == "order_update" and m["data"]["id"] == order_id
        )
        assert update["data"]["status"] == "filled"
        balances = HTTP.get(demo.url("/api/v1/trading/balances"), headers=token)
        assert balances.status_code == 200, balances.text
        [usd] = balances.json()["data"]
        assert usd["currency"] == "USD"
        assert usd["locked"] > 0
        assert usd["available"] < usd["equity"]
        for path in ("/trading/portfolio", "/trading/positions", "/trading/orders"):
            assert HTTP.get(demo.url("/api/v1" + path), headers=token).status_code == 200
        listed = HTTP.get(demo.url("/api/v1/trading/orders"), headers=token,
                          params={"symbol": "BTC/USD"}).json()["data"]  # fmt: skip
        assert order_id in {o["id"] for o in listed}
        assert {o["symbol"] for o in listed} == {"BTC/USD"}
        assert not await theirs.barrier()  # the other user saw nothing of it
    assert other_id != "demo"


async def test_a_replayed_or_stale_signature_is_refused(demo: Daemon) -> None:
    frame = auth_frame()
    async with await trading_socket(demo, frame):
        pass
    for bad in (frame, auth_frame(ts=now_ms() - 120_000), auth_frame(secret="wrong")):
        c = await Client.connect(demo.ws_url("/ws/trading"))
        await c.send(bad)
        err = await c.type("error")
        assert err["code"] == "AUTHENTICATION_ERROR"
        assert err["id"] == "login"
        assert await c.closed_with() == 4001
    # A signature used on the socket is spent for the REST login too: one replay table.
    body = {k: frame[k] for k in ("api_key", "signature", "timestamp")}
    assert HTTP.post(demo.url("/api/v1/auth/login"), json=body).status_code == 401


async def test_a_trading_socket_is_an_api_key_session_its_owner_alone_can_end(
    demo: Daemon,
) -> None:
    owner = Trader.logged_in(demo)
    r = owner.post("/auth/api-keys", {"name": "bot"})
    assert r.status_code == 201, r.text
    key, secret = r.json()["data"]["id"], r.json()["data"]["secret"]
    stranger = Trader.logged_in(demo)
    first = await trading_socket(demo, auth_frame(key, secret))
    second = await trading_socket(demo, auth_frame(key, secret))

    r = owner.get("/auth/sessions")
    assert r.status_code == 200, r.text
    [session] = [s for s in r.json()["data"] if s["kind"] == "api_key"]
    assert session["id"] == f"key_{key}"
    assert session["current"] is False
    assert session["expiresAt"] is None
    endpoints = [c["endpoint"] for c in session["connections"]]
    assert endpoints == ["/ws/trading", "/ws/trading"]

    # another user neither sees it nor may end it
    theirs = stranger.get("/auth/sessions").json()["data"]
    assert all(s["id"] != session["id"] and s["kind"] != "api_key" for s in theirs)
    assert stranger.request("DELETE", f"/auth/sessions/{session['id']}").status_code == 404
    assert owner.request("DELETE", "/auth/sessions/key_nope").status_code == 404

    ended = owner.request("DELETE", f"/auth/sessions/{session['id']}")
    assert ended.status_code == 200, ended.text
    assert ended.json()["data"] == {
        "id": session["id"], "closedConnections": 2, "revokedTokens": 0,
    }  # fmt: skip
    assert await first.closed_with() == 4001
    assert await second.closed_with() == 4001
    left = owner.get("/auth/sessions").json()["data"]
    assert all(s["kind"] != "api_key" for s in left)
    # nothing else was revoked: the owner's token still works and the key logs in again
    assert owner.get("/auth/api-keys").status_code == 200
    async with await trading_socket(demo, auth_frame(key, secret)):
        pass


async def test_malformed_trading_frames_are_answered_and_the_socket_stays(demo: Daemon) -> None:
    c = await Client.connect(demo.ws_url("/ws/trading"))
    await c.send({"type": "place_order", "id": "early", "order": {}})
    err = await c.type("error")
    assert (err["code"], err["id"]) == ("AUTHENTICATION_ERROR", "early")
    await c.send(auth_frame())
    await c.type("auth")
    bad: list[tuple[Any, str]] = [
        ("nonsense", "frame"),
        ({"type": "place_order", "id": "a"}, "order"),
        (
            {
                "type": "place_order",
                "id": "b",
                "order": {"symbol": "BTC/USD", "side": "buy", "type": "market"},
            },
            "quantity",
        ),
        (
            {
                "type": "place_order",
                "id": "c",
                "order": {"symbol": "BTC/USD", "side": "up", "type": "market", "quantity": 1},
            },
            "side",
        ),
        (
            {
                "type": "place_order",
                "id": "d",
                "order": {
                    "symbol": "BTC/USD",
                    "side": "buy",
                    "type": "limit",
                    "quantity": 1,
                    "price": 43000.001,
                },
            },
            "price",
        ),
        (
            {
                "type": "place_order",
                "id": "e",
                "order": {"symbol": "BTC/USD", "side": "buy", "type": "market", "quantity": 0.013},
            },
            "quantity",
        ),
        ({"type": "cancel_order", "id": "f", "orderId": "ord_ffffff"}, ""),
        ({"type": "fly"}, "type"),
    ]
    for frame, field in bad:
        await c.send(frame)
        err = await c.type("error")
        if field:
            assert err["details"]["field"] == field, err
        if isinstance(frame, dict) and "id" in frame:
            assert err["id"] == frame["id"]
    assert not await c.barrier()
    await c.close()


async def test_shutdown_notice_then_1001_on_both_sockets(make_daemon: Daemons) -> None:
    d = make_daemon.new(FXGATE_WS_ANONYMOUS_MARKET_DATA="true")
    d.args = ("--demo",)
    d.start()
    md = await market_socket(d)
    tr = await trading_socket(d)
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    for c in (md, tr):
        notice = await c.type("shutdown", timeout=10)
        assert notice["reconnect"] is True
        assert await c.closed_with() == 1001


# -- fxgate serve --demo -----------------------------------------------------------------


def test_demo_says_so_in_one_line(demo: Daemon) -> None:
    lines = [line for line in demo.log().splitlines() if "demo mode" in line]
    assert len(lines) == 1
    assert "demo_api_key" in lines[0]


def test_demo_is_refused_off_loopback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FXGATE_")}
    env["FXGATE_STATE_DIR"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "fxgate", "serve", "--demo", "--host", "0.0.0.0",
         "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode != 0
    assert "loopback" in out.stderr
    assert not (tmp_path / "fxgate.db").exists()


async def test_anonymous_clients_have_their_own_connection_rate(make_daemon: Daemons) -> None:
    d = make_daemon(
        quiet=True,
        FXGATE_WS_ANONYMOUS_MARKET_DATA="true",
        FXGATE_WS_ANONYMOUS_CONNECTIONS_PER_MINUTE="2",
    )
    for _ in range(2):
        async with await market_socket(d):
            pass
    with pytest.raises(InvalidStatus) as info:
        await Client.connect(d.ws_url("/ws/market-data"))
    assert info.value.response.status_code == 429
    # A token client is counted per user, not with the anonymous ones.
    async with await market_socket(d, f"?token={d.token('md-user', 'viewer')}") as c:
        assert (await c.barrier()) == []
