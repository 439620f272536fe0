"""Seed 002's dashboard over ``/socket.io/`` (issue 8), with python-socketio's client.

Real daemons, real clients over both transports: the events and payloads the seed
lists, the full lists of positions and orders, auth refusals and expiry, bad input
answered with ``error`` while other clients keep streaming, ``disconnected`` before a
shutdown, and the replay of what a reconnecting user missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from typing import Any

import httpx
import pytest

from fxgate.domain.errors import Disconnects
from tests.conftest import Daemon, until
from tests.sioclient import SioClient
from tests.trading_helpers import Admin, Trader

QUOTE = ["symbol", "bid", "ask", "spread", "timestamp"]
POSITION = [
    "ticket",
    "symbol",
    "type",
    "volume",
    "price_open",
    "price_current",
    "sl",
    "tp",
    "profit",
    "swap",
    "commission",
    "time",
    "comment",
]
ORDER = [
    "ticket",
    "symbol",
    "type",
    "volume",
    "price_open",
    "sl",
    "tp",
    "time_setup",
    "state",
    "comment",
]
ACCOUNT = ["balance", "equity", "margin", "free_margin", "margin_level", "profit", "currency"]
TRANSPORTS = {
    "websocket": ["websocket"],
    "upgrade": ["polling", "websocket"],
    "polling": ["polling"],
}


async def client(d: Daemon, token: str | None, transports: list[str] | None = None) -> SioClient:
    return await SioClient(d.url("")).connect(token, transports or ["websocket"])


@pytest.mark.parametrize("how", list(TRANSPORTS))
async def test_seed_events_over_each_transport(daemon: Daemon, how: str) -> None:
    c = await client(daemon, daemon.token("sio-" + how), TRANSPORTS[how])
    try:
        hello = await c.wait("connected")
        assert set(hello) == {"message", "server_time"}
        assert hello["server_time"].endswith("Z")
        await c.emit("subscribe", {"channels": ["quotes", "positions", "orders", "account"]})
        ack = await c.wait("subscribed")
        assert ack["channels"] == ["quotes", "positions", "orders", "account"]
        assert await c.wait("positions_update") == []
        assert await c.wait("orders_update") == []
        account = await c.wait("account_update")
        assert list(account) == ACCOUNT
        assert account["currency"] == "USD"
        # Live ticks (the shared daemon ticks 5 times a second per symbol).
        first = await c.wait("quotes")
        assert list(first) == QUOTE
        assert isinstance(first["spread"], int)
        assert first["ask"] > first["bid"]
        assert first["timestamp"].endswith("Z")
        for _ in range(5):
            await c.wait("quotes")
        await c.heartbeat(1704067200000)
        if how == "upgrade":
            await until(lambda: c.transport == "websocket", what="the upgrade")
            n = len(c.seen("quotes"))
            await until(lambda: len(c.seen("quotes")) > n + 3, what="ticks after the upgrade")
        else:
            assert c.transport == TRANSPORTS[how][0]
        await c.emit("unsubscribe", {"channels": ["quotes"]})
        assert (await c.wait("unsubscribed"))["channels"] == ["quotes"]
        await c.heartbeat(2)
        n = len(c.seen("quotes"))
        await c.heartbeat(3)
        await c.heartbeat(4)
        assert len(c.seen("quotes")) == n
    finally:
        await c.close()


async def test_acknowledgement_callbacks_are_called(daemon: Daemon) -> None:
    c = await client(daemon, daemon.token("sio-ack"))
    try:
        await c.wait("connected")
        got = await c.sio.call("subscribe", {"channels": ["quotes", "account"]}, timeout=5)
        assert got == {"channels": ["quotes", "account"]}
        beat = await c.sio.call("heartbeat", {"timestamp": 77}, timeout=5)
        assert beat["timestamp"] == 77
        assert (await c.wait("subscribed"))["channels"] == ["quotes", "account"]
    finally:
        await c.close()


async def test_query_token_is_accepted(daemon: Daemon) -> None:
    c = SioClient(daemon.url(""))
    await c.connect(daemon.token("sio-query"), ["websocket"], query_token=True)
    try:
        assert (await c.wait("connected"))["message"]
    finally:
        await c.close()


# -- trading: full lists -------------------------------------------------------------


async def test_a_market_order_shows_as_full_lists_to_its_owner_only(market: Daemon) -> None:
    admin = Admin(market)
    alice, bob = Trader.issued(market), Trader.issued(market)
    admin.quote("EURUSD", "1.08490", "1.08500")
    a = await client(market, alice.token)
    b = await client(market, bob.token, ["polling"])
    try:
        for c in (a, b):
            await c.emit("subscribe", {"channels": ["positions", "orders", "account"]})
            assert await c.wait("positions_update") == []
            assert await c.wait("orders_update") == []
            await c.wait("account_update")

        placed = alice.buy(0.1, takeProfit=1.088, comment="RSI_Strategy")
        ticket = placed["ticket"]
        positions = await a.wait("positions_update", lambda d: len(d) == 1)
        p = positions[0]
        assert list(p) == POSITION
        assert (p["ticket"], p["symbol"], p["type"], p["volume"]) == (ticket, "EURUSD", "buy", 0.1)
        assert p["price_open"] == 1.085
        assert (p["tp"], p["sl"]) == (1.088, None)
        assert p["comment"] == "RSI_Strategy"
        assert p["time"].endswith("Z")
        account = await a.wait("account_update", lambda d: d["margin"] > 0)
        assert account["margin"] == 108.5

        limit = alice.buy(0.05, symbol="EURUSD", type="limit", price=1.08, stopLoss=1.07)
        orders = await a.wait("orders_update", lambda d: len(d) == 1)
        o = orders[0]
        assert list(o) == ORDER
        assert (o["ticket"], o["type"], o["volume"], o["price_open"]) == (
            limit["ticket"],
            "buy_limit",
            0.05,
            1.08,
        )
        assert (o["sl"], o["state"]) == (1.07, "pending")
        assert o["time_setup"].endswith("Z")

        alice.close(ticket)
        assert await a.wait("positions_update", lambda d: d == []) == []
        r = alice.delete(f"/trading/orders/{limit['id']}")
        assert r.status_code == 200, r.text
        assert await a.wait("orders_update", lambda d: d == []) == []

        # Bob saw none of it: only his own first (empty) lists.
        await b.heartbeat(7)
        assert b.seen("positions_update") == [[]]
        assert b.seen("orders_update") == [[]]
        assert all(acc["margin"] == 0 for acc in b.seen("account_update"))
    finally:
        await a.close()
        await b.close()


async def test_lists_are_coalesced_while_prices_move(market: Daemon) -> None:
    admin = Admin(market)
    carol = Trader.issued(market)
    admin.quote("GBPUSD", "1.27000", "1.27010")
    carol.buy(0.1, symbol="GBPUSD")
    c = await client(market, carol.token)
    try:
        await c.emit("subscribe", {"channels": ["positions"]})
        await c.wait("positions_update", lambda d: len(d) == 1)
        start = time.monotonic()
        for i in range(30):
            bid = 1.27000 + (i + 1) * 0.0001
            admin.quote("GBPUSD", f"{bid:.5f}", f"{bid + 0.0001:.5f}")
        last = f"{1.27000 + 30 * 0.0001:.5f}"
        await c.wait("positions_update", lambda d: f"{d[0]['price_current']:.5f}" == last)
        elapsed = time.monotonic() - start
        updates = len(c.seen("positions_update")) - 1
        # At most one per list_interval (1 s) after the first, plus the trailing one.
        assert updates <= elapsed / 1.0 + 2, (updates, elapsed)
    finally:
        await c.close()


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["missing", "garbage", "expired"])
async def test_a_refused_token_is_a_connect_error(daemon: Daemon, kind: str) -> None:
    token = {"missing": None, "garbage": "not-a-jwt", "expired": daemon.token("sio-exp", ttl=-5)}[
        kind
    ]
    c = SioClient(daemon.url(""))
    await c.connect(token, ["websocket"], wait=False)
    err = await c.wait("connect_error")
    assert isinstance(err, dict), err
    assert err["data"]["code"] == "AUTHENTICATION_ERROR"
    text = err["message"].lower()
    if kind == "missing":
        assert "authentication required" in text
    else:
        assert text.startswith("authentication failed"), text
    if kind == "expired":
        assert "expired" in text, text
    assert not c.seen("connected")
    await c.close()


async def test_bad_events_get_errors_and_the_connection_stays(daemon: Daemon) -> None:
    mark = len(daemon.log())
    watcher = await client(daemon, daemon.token("sio-watch"))
    c = await client(daemon, daemon.token("sio-bad"), ["polling"])
    try:
        await watcher.emit("subscribe", {"channels": ["quotes"]})
        await watcher.wait("quotes")

        cases: list[tuple[str, Any, str]] = [
            ("subscribe", {"channels": ["nope"]}, "Invalid channel"),
            ("subscribe", {"channels": "quotes"}, "Invalid subscription"),
            ("subscribe", "quotes", "Invalid subscription"),
            ("subscribe", None, "Invalid subscription"),
            ("unsubscribe", {"channels": [1, 2]}, "Invalid unsubscription"),
            ("buy", {"symbol": "EURUSD"}, "Unknown event"),
        ]
        for event, data, message in cases:
            await c.emit(event, data)
            err = await c.wait("error")
            assert set(err) >= {"error", "details", "code"}, err
            assert err["error"] == message, (event, data, err)
            assert err["code"] == "VALIDATION_ERROR"
            assert isinstance(err["details"], str)
        await c.emit("subscribe", {"channels": ["nope", "quotes"]})
        err = await c.wait("error")
        assert err["context"]["channel"] == "nope"
        assert (await c.wait("subscribed"))["channels"] == ["quotes"]
        await c.emit("heartbeat", "x" * 70_000)
        assert (await c.wait("error"))["error"] == "Message too large"

        # A flood: the messages over 100/s are dropped and told once; the client stays.
        f = await client(daemon, daemon.token("sio-flood"))
        try:
            await f.wait("connected")
            await asyncio.gather(*(f.emit("heartbeat", {"timestamp": i}) for i in range(250)))
            err = await f.wait("error", lambda e: e["code"] == "RATE_LIMIT_ERROR", timeout=10)
            assert err["error"] == "Rate limit exceeded"
            await until(lambda: f.seen("heartbeat_ack"), what="the acks of the first 100")
            await asyncio.sleep(1.1)  # a second free of drops ends the run
            await f.heartbeat(10_000)
            assert f.sio.connected
        finally:
            await f.close()
        # A polling batch of more packets than allowed is refused, without a traceback.
        async with httpx.AsyncClient() as http:
            r = await http.get(daemon.url("/socket.io/?EIO=4&transport=polling"))
            sid = json.loads(r.text[1:])["sid"]
            batch = "\x1e".join(['42["heartbeat",{}]'] * 500)
            r = await http.post(
                daemon.url(f"/socket.io/?EIO=4&transport=polling&sid={sid}"), content=batch
            )
            assert r.status_code == 400
        await c.heartbeat(10_001)
        # The other client kept streaming through all of it.
        n = len(watcher.seen("quotes"))
        await until(lambda: len(watcher.seen("quotes")) > n, what="the watcher's quotes")
    finally:
        await c.close()
        await watcher.close()
    assert "Traceback" not in daemon.log()[mark:]


async def test_token_expiry_disconnects_and_a_new_auth_reconnects(daemon: Daemon) -> None:
    c = await client(daemon, daemon.token("sio-ttl", ttl=2))
    try:
        await c.wait("connected")
        gone = await c.wait("disconnected", timeout=10)
        assert gone == {"reason": "Token expired", "reconnect": True}
        await c.wait("disconnect")
    finally:
        await c.close()
    again = await client(daemon, daemon.token("sio-ttl"))
    try:
        await again.wait("connected")
        await again.heartbeat(5)
    finally:
        await again.close()


# -- shutdown --------------------------------------------------------------------------


async def test_sigterm_tells_every_client_disconnected_first(fresh_daemon: Daemon) -> None:
    d = fresh_daemon.start()
    clients = [
        await client(d, d.token("sio-a")),
        await client(d, d.token("sio-b"), ["polling", "websocket"]),
        await client(d, d.token("sio-c"), ["polling"]),
    ]
    for c in clients:
        await c.emit("subscribe", {"channels": ["quotes"]})
        await c.wait("quotes")
    await until(lambda: clients[1].transport == "websocket", what="the upgrade")
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    for c in clients:
        notice = await c.wait("disconnected", timeout=10)
        assert notice == {"reason": "Server restarting", "reconnect": True}
        # (python-socketio runs event handlers in tasks, so the order in which its
        # two callbacks ran says nothing; the node test checks the order.)
        await c.wait("disconnect", timeout=10)
    await asyncio.to_thread(d.proc.wait, 10)
    assert d.proc.returncode == 0
    for c in clients:
        await c.close()


# -- missed messages ---------------------------------------------------------------------


async def test_a_reconnect_gets_what_it_missed_during_a_fill(market: Daemon) -> None:
    admin = Admin(market)
    dave = Trader.issued(market)
    admin.quote("USDJPY", "150.000", "150.010")
    channels = {"channels": ["positions", "orders", "account"]}
    c = await client(market, dave.token)
    await c.emit("subscribe", channels)
    await c.wait("account_update")
    # A canonical connection of the same user sees, with offsets, what Socket.IO missed.
    observer = await dave.socket("account")
    await observer.barrier()
    limit = dave.buy(0.1, symbol="USDJPY", type="limit", price=149.5)
    await c.wait("orders_update", lambda d: len(d) == 1)
    await c.heartbeat(1)
    before = c.seen("account_update")[-1]
    await observer.barrier()
    # The connection drops between the order and its fill; the fill happens meanwhile.
    await c.sio.eio.disconnect(abort=True)
    await until(lambda: not c.sio.connected, what="the drop")
    admin.quote("USDJPY", "149.400", "149.410")
    filled = await until(
        lambda: [o for o in dave.orders() if o["id"] == limit["id"] and o["status"] == "filled"],
        what="the fill",
    )
    assert filled
    gap = [(await observer.type("account"))["data"]]
    dave.buy(0.05, symbol="USDJPY")  # and one more order while away
    gap += [m["data"] for m in await observer.barrier() if m["type"] == "account"]
    assert len(gap) >= 2, gap  # so a snapshot (one account) would not pass for a replay
    await observer.close()

    again = await client(market, dave.token)
    try:
        await again.emit("subscribe", channels)
        ack = await again.wait("subscribed")
        assert "account" in ack.get("recovered", []), ack
        assert await again.wait("orders_update") == []
        positions = await again.wait("positions_update")
        assert [p["ticket"] for p in positions][:1] == [limit["ticket"]]
        assert len(positions) == 2
        # The account events published while away, replayed in order: each of them,
        # not one fresh snapshot.
        await again.heartbeat(2)
        replayed = again.seen("account_update")
        assert replayed == [{k: m[k] for k in ACCOUNT} for m in gap]
        assert replayed[-1]["margin"] > before["margin"]
    finally:
        await again.close()
        await c.close()


async def test_after_the_recovery_window_a_reconnect_gets_fresh_state(
    make_daemon: Any,
) -> None:
    d = make_daemon(quiet=True, FXGATE_WS_RECOVERY_WINDOW="0")
    erin = Trader.issued(d)
    Admin(d).quote("EURUSD", "1.08490", "1.08500")
    c = await client(d, erin.token)
    await c.emit("subscribe", {"channels": ["account", "positions"]})
    await c.wait("account_update")
    await c.close()
    erin.buy(0.1)
    again = await client(d, erin.token)
    try:
        await again.emit("subscribe", {"channels": ["account", "positions"]})
        ack = await again.wait("subscribed")
        assert "recovered" not in ack
        assert len(await again.wait("positions_update")) == 1
        assert (await again.wait("account_update"))["margin"] == 108.5
    finally:
        await again.close()


async def test_polling_cors_follows_server_cors_origins(make_daemon: Any) -> None:
    d = make_daemon(FXGATE_SERVER_CORS_ORIGINS='["https://dash.example"]')
    async with httpx.AsyncClient() as http:
        ok = await http.get(
            d.url("/socket.io/?EIO=4&transport=polling"),
            headers={"Origin": "https://dash.example"},
        )
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == "https://dash.example"
        assert ok.text.startswith("0{")
        handshake = json.loads(ok.text[1:])
        assert handshake["maxPayload"] == 4 * 1024 * 1024
        assert (handshake["pingInterval"], handshake["pingTimeout"]) == (30000, 10000)
        assert handshake["upgrades"] == ["websocket"]
        bad = await http.get(
            d.url("/socket.io/?EIO=4&transport=polling"),
            headers={"Origin": "https://evil.example"},
        )
        assert bad.status_code == 400


async def test_broken_engineio_packets_never_log_a_traceback(daemon: Daemon) -> None:
    mark = len(daemon.log())  # the shared daemon: only this test's lines count
    import websockets

    url = daemon.ws_url("/socket.io/?EIO=4&transport=websocket")
    for junk in ["", "x", "9", "4", "40{", '42["subscribe"', "b!!!"]:
        async with websockets.connect(url) as ws:
            assert str(await ws.recv()).startswith("0{")
            await ws.send(junk)
            with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
    async with httpx.AsyncClient() as http:
        for junk in ["", "x", "9\x1e4", "\x1e\x1e", "b!!!"]:
            r = await http.get(daemon.url("/socket.io/?EIO=4&transport=polling"))
            sid = json.loads(r.text[1:])["sid"]
            r = await http.post(
                daemon.url(f"/socket.io/?EIO=4&transport=polling&sid={sid}"), content=junk
            )
            assert r.status_code in (200, 400), (junk, r.status_code)
    # A client that still works afterwards.
    c = await client(daemon, daemon.token("sio-after-junk"))
    try:
        await c.heartbeat(1)
    finally:
        await c.close()
    logged = daemon.log()[mark:]
    assert "Traceback" not in logged
    assert "exception" not in logged.lower()


# -- logs and signals ------------------------------------------------------------------


async def test_logs_and_signals_arrive_as_seed_002_shows_them(market: Daemon) -> None:
    from tests.test_signals_channel import as_stored, seed_signal

    admin = Admin(market)
    frank = Trader.issued(market)
    admin.quote("EURUSD", "1.08490", "1.08500")
    c = await client(market, frank.token, ["polling", "websocket"])
    try:
        await c.emit("subscribe", {"channels": ["logs", "signals"]})
        assert (await c.wait("subscribed"))["channels"] == ["logs", "signals"]
        placed = frank.buy(0.1)
        line = await c.wait(
            "logs_update", lambda d: d["extra"].get("ticket") == placed["ticket"], timeout=10
        )
        assert list(line) == ["timestamp", "level", "message", "module", "extra"]
        assert line["level"] == "INFO"
        assert line["timestamp"].endswith("Z")

        sig = seed_signal("signal_" + frank.user_id)
        # Frank's own signal: a public one would show on other tests' dashboards.
        r = admin.publish({"channel": "signals", "data": sig, "userId": frank.user_id})
        assert r.status_code == 200, r.text
        got = await c.wait("signals_update", lambda d: d["uuid"] == sig["uuid"])
        assert got == as_stored(sig)
        assert list(got) == list(sig)
    finally:
        await c.close()


async def test_connection_rate_auth_timeout_and_namespaces(make_daemon: Any) -> None:
    import websockets

    d = make_daemon(FXGATE_WS_CONNECTIONS_PER_MINUTE="2", FXGATE_WS_AUTH_TIMEOUT="0.5")
    token = d.token("sio-rate")
    url = d.ws_url("/socket.io/?EIO=4&transport=websocket")
    async with websockets.connect(url) as ws:
        await ws.recv()
        # Another namespace: refused on that namespace, the connection stays.
        await ws.send("40/admin," + json.dumps({"token": token}))
        refused = str(await ws.recv())
        assert refused.startswith('44/admin,{"message":"Invalid namespace"'), refused
        for _ in range(2):
            await ws.send("40" + json.dumps({"token": token}))
            assert str(await ws.recv()).startswith('40{"sid"')
            assert str(await ws.recv()).startswith('42["connected"')
            await ws.send("41")  # leave, to connect again on the same connection
        await ws.send("40" + json.dumps({"token": token}))
        third = json.loads(str(await ws.recv())[2:])
        assert third["message"] == "Too many connections"
        assert third["data"]["code"] == "RATE_LIMIT_ERROR"
    # An Engine.IO connection that never connects a namespace is closed.
    async with websockets.connect(url) as ws:
        await ws.recv()
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)


async def test_a_polling_client_that_stops_polling_is_cut_off(make_daemon: Any) -> None:
    d = make_daemon(FXGATE_WS_QUEUE_MAX_BYTES="16384", FXGATE_PAPER_TICK_RATE="20")
    async with httpx.AsyncClient() as http:
        r = await http.get(d.url("/socket.io/?EIO=4&transport=polling"))
        sid = json.loads(r.text[1:])["sid"]
        poll = d.url(f"/socket.io/?EIO=4&transport=polling&sid={sid}")
        hello = "40" + json.dumps({"token": d.token("sio-slow")})
        body = hello + '\x1e42["subscribe",{"channels":["quotes"]}]'
        assert (await http.post(poll, content=body)).status_code == 200
        # ... and never GETs: 64 packets later it is a slow consumer.
        await until(lambda: "slow consumer disconnected" in d.log(), timeout=10)
        # What was queued up to the bound can still be read once; then the session is
        # gone (the library answers 400, and a client's Engine.IO reconnects).
        packets: list[str] = []
        for _ in range(5):
            r = await http.get(poll)
            if r.status_code != 200:
                break
            packets.extend(r.text.split("\x1e"))
        assert r.status_code == 400
        assert 0 < len(packets) <= 64 + 3
    assert "Traceback" not in d.log()


async def test_guessing_tokens_on_one_connection_ends_it(daemon: Daemon) -> None:
    import websockets

    async with websockets.connect(daemon.ws_url("/socket.io/?EIO=4&transport=websocket")) as ws:
        await ws.recv()
        for i in range(5):
            await ws.send("40" + json.dumps({"token": f"guess-{i}"}))
            assert str(await ws.recv()).startswith('44{"message":"Authentication failed')
        with pytest.raises(websockets.ConnectionClosed) as info:
            await asyncio.wait_for(ws.recv(), 5)
        assert info.value.rcvd is not None
        assert info.value.rcvd.code == 4001


async def test_a_client_that_stops_answering_pings_is_closed(make_daemon: Any) -> None:
    import websockets

    d = make_daemon(FXGATE_WS_PING_INTERVAL="1", FXGATE_WS_PING_TIMEOUT="0.5")
    async with websockets.connect(d.ws_url("/socket.io/?EIO=4&transport=websocket")) as ws:
        hello = json.loads(str(await ws.recv())[1:])
        assert (hello["pingInterval"], hello["pingTimeout"]) == (1000, 500)
        await ws.send("40" + json.dumps({"token": d.token("sio-ping")}))
        frames: list[str] = []
        closed = False
        while not closed:  # never answers "2" with "3"
            try:
                frames.append(str(await asyncio.wait_for(ws.recv(), 5)))
            except websockets.ConnectionClosed:
                closed = True
        assert "2" in frames


async def test_a_socket_io_connection_is_listed_and_ended_by_its_session(daemon: Daemon) -> None:
    from tests.trading_helpers import HTTP, bearer

    token = daemon.token("sio-listed")
    c = await client(daemon, token, ["polling", "websocket"])
    try:
        await c.wait("connected")
        r = HTTP.get(daemon.url("/auth/sessions"), headers=bearer(token))
        assert r.status_code == 200, r.text
        [mine] = [s for s in r.json()["data"] if s["connections"]]
        assert [conn["endpoint"] for conn in mine["connections"]] == ["/socket.io/"]
        ended = HTTP.delete(daemon.url(f"/auth/sessions/{mine['id']}"), headers=bearer(token))
        assert ended.status_code == 200, ended.text
        assert ended.json()["data"]["closedConnections"] == 1
        notice = await c.wait("disconnected")
        ended_row = Disconnects.SESSION_ENDED
        assert notice == {"reason": ended_row.reason, "reconnect": ended_row.reconnect}
        await c.wait("disconnect")
    finally:
        await c.close()


def test_a_websocket_client_that_stops_reading_gets_4008(make_daemon: Any) -> None:
    """A per-user stream (logs) to a Socket.IO client that sleeps: cut with 4008 once
    its backlog passes ws.queue_max_bytes; the daemon and its feed carry on."""
    import base64
    import os
    import socket

    from tests.test_ws_transport import parse_frames
    from tests.trading_helpers import HTTP

    d = make_daemon(FXGATE_WS_QUEUE_MAX_BYTES="65536")
    user = "sio-sleepy"
    token = d.token(user)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", d.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )

    def send(text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        head = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else None
        if head is None:
            head = bytes([0x81, 0x80 | 126]) + len(payload).to_bytes(2, "big")
        sock.sendall(head + mask + masked)

    send("40" + json.dumps({"token": token}))
    send('42["subscribe",{"channels":["logs"]}]')
    sock.settimeout(5)
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    data, texts = b"", []
    while not any(t.startswith(b'42["subscribed"') for t in texts):
        data += sock.recv(1)  # a byte at a time: nothing after the ack is consumed
        parsed, data = parse_frames(data)
        texts += [payload for opcode, payload in parsed if opcode == 0x1]
    # ~16 MB of the user's log lines to a reader that no longer reads.
    extra = {f"k{i}": "x" * 190 for i in range(20)}
    line = {"level": "INFO", "message": "m" * 150, "module": "test", "extra": extra}
    admin = Admin(d)
    for _ in range(20):  # 200 lines of ~4.5 KB a request: under the 1 MiB body limit
        batch = {"events": [{"channel": "logs", "data": line, "userId": user}] * 200}
        r = HTTP.post(d.url("/api/v1/publish"), json=batch, headers=admin.headers)
        assert r.status_code == 200, r.text
        if "slow consumer disconnected" in d.log():
            break  # and read now: a silent peer gets a few seconds for the close frame
    # Read it all, fast (a silent peer gets a few seconds to take its close frame): the
    # last frame is the close, 4008.
    got = bytearray()
    sock.settimeout(10)
    while chunk := sock.recv(1 << 20):
        got += chunk
    reason = Disconnects.SLOW_CONSUMER.reason.encode()
    close = bytes(got[-(4 + len(reason)) :])
    assert close[:2] == bytes([0x88, 2 + len(reason)]), close
    assert int.from_bytes(close[2:4], "big") == 4008
    assert HTTP.get(d.url("/health")).status_code == 200
    assert "Traceback" not in d.log()
