"""``/ws/dashboard`` (seed 000) driven the way seed 000's dashboard drives it.

Real daemons, real WebSocket clients: the token in the URL or a header, every type the
tier allows pushed without a subscribe, ``subscribe`` narrowing it, a REST market order
showing as ``trading_status``, ``notification`` and ``analytics``, tiers, the per-user
cap, compression, sessions, malformed frames and the restart notice.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import httpx
import pytest
import websockets

from fxgate.config.settings import Settings
from tests.conftest import Daemon, Daemons, until
from tests.dashboard_client import (
    RawSocket,
    check_seed_fields,
    dashboard,
    first_of_each,
)
from tests.test_signals_channel import seed_signal
from tests.trading_helpers import HTTP, PASSWORD, Admin, Trader, bearer, unique
from tests.wsclient import Client

#: Every symbol of the paper market (its default list), which pro and enterprise get.
PAPER_SYMBOLS = set(Settings().paper.symbols)
ALL = {"trading_status", "system_metrics", "market_data", "notification", "analytics"}
PUSHED_AT_ONCE = {"trading_status", "system_metrics", "market_data", "analytics"}


# -- connecting ---------------------------------------------------------------------------


@pytest.mark.parametrize("header", [False, True], ids=["query", "header"])
async def test_the_token_by_query_or_header_gets_every_type_with_every_seed_field(
    daemon: Daemon, user: str, header: bool
) -> None:
    c = await dashboard(daemon, daemon.token(user, tier="pro"), header=header)
    async with c:
        got = await first_of_each(c, PUSHED_AT_ONCE)
        for kind in PUSHED_AT_ONCE:
            check_seed_fields(got[kind])
        assert got["trading_status"]["user_id"] == user
        assert got["analytics"]["user_id"] == user
        status = got["trading_status"]["data"]
        assert status["account_balance"] == 10000.0
        assert status["margin_free"] == status["account_equity"]
        usage = got["system_metrics"]["data"]["usage"]
        assert usage["subscription_tier"] == "pro"
        assert got["system_metrics"]["data"]["connection_status"]["api_gateway"] == "healthy"
        # pro: every symbol of the paper market, spread in price units
        symbols = {s["symbol"]: s for s in got["market_data"]["data"]["symbols"]}
        assert set(symbols) == PAPER_SYMBOLS
        eur = symbols["EURUSD"]
        assert eur["spread"] == pytest.approx(eur["ask"] - eur["bid"], abs=1e-9)
        assert 0 < eur["spread"] < 0.01
        # live batches follow, each with the symbols that changed since the last one
        live = await c.wait_for(lambda m: m["type"] == "market_data")
        check_seed_fields(live)


async def test_a_bad_or_missing_token_is_refused_before_the_upgrade(daemon: Daemon) -> None:
    for url in (
        daemon.ws_url("/ws/dashboard"),
        daemon.ws_url("/ws/dashboard?token=nope"),
    ):
        with pytest.raises(websockets.InvalidStatus) as info:
            await Client.connect(url)
        assert info.value.response.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as info:
        await Client.connect(
            daemon.ws_url("/ws/dashboard"), additional_headers={"Authorization": "Bearer x.y.z"}
        )
    assert info.value.response.status_code == 401


async def test_subscribe_narrows_what_a_connection_gets(market: Daemon) -> None:
    trader = Trader.issued(market)
    Admin(market).quote("EURUSD", "1.10000", "1.10010")
    narrow = await dashboard(market, trader.token)
    wide = await dashboard(market, trader.token)
    async with narrow, wide:
        await first_of_each(narrow, {"trading_status"})
        await narrow.send({"type": "subscribe", "types": ["market_data"]})
        ack = await narrow.type("subscribed")
        assert ack["types"] == ["market_data"]
        await narrow.barrier()
        await first_of_each(wide, {"trading_status", "analytics"})

        trader.buy(0.1)
        await wide.wait_for(lambda m: m["type"] == "notification")
        Admin(market).quote("EURUSD", "1.10020", "1.10030")
        quote = await narrow.wait_for(lambda m: m["type"] == "market_data")
        assert [s["symbol"] for s in quote["data"]["symbols"]] == ["EURUSD"]
        assert {m["type"] for m in await narrow.barrier()} <= {"market_data"}

        await narrow.send({"type": "unsubscribe", "types": ["market_data"]})
        assert (await narrow.type("subscribed"))["types"] == []


# -- trading --------------------------------------------------------------------------


async def test_a_rest_market_order_shows_as_status_notification_and_analytics(
    market: Daemon,
) -> None:
    trader, other = Trader.issued(market), Trader.issued(market)
    Admin(market).quote("EURUSD", "1.10000", "1.10010")
    c = await dashboard(market, trader.token)
    o = await dashboard(market, other.token)
    async with c, o:
        await first_of_each(c, PUSHED_AT_ONCE)
        await first_of_each(o, PUSHED_AT_ONCE)
        await o.barrier()

        order = trader.buy(0.1)
        note = await c.wait_for(lambda m: m["type"] == "notification")
        check_seed_fields(note)
        assert note["user_id"] == trader.user_id
        assert note["data"]["type"] == "order_filled"
        assert "EURUSD" in note["data"]["message"]
        status = await c.wait_for(
            lambda m: m["type"] == "trading_status" and m["data"]["open_positions"]
        )
        check_seed_fields(status)
        [pos] = status["data"]["open_positions"]
        assert pos["symbol"] == "EURUSD"
        assert pos["type"] == "BUY"
        assert pos["volume"] == 0.1
        assert pos["open_price"] == 1.1001
        assert pos["status"] == "open"
        assert pos["ticket"] == str(order["ticket"])
        assert status["data"]["margin_used"] > 0

        Admin(market).quote("EURUSD", "1.10100", "1.10110")
        trader.close(order["ticket"])
        msgs = await c.read_until(
            lambda ms: (
                any(
                    m["type"] == "analytics"
                    and m["data"]["performance_summary"]["total_trades"] == 1
                    for m in ms
                )
                and any(
                    m["type"] == "trading_status" and not m["data"]["open_positions"] for m in ms
                )
            )
        )
        [closed] = [
            m
            for m in msgs
            if m["type"] == "notification" and m["data"]["type"] == "position_closed"
        ]
        assert "profit" in closed["data"]["message"]
        stats = next(
            m
            for m in msgs
            if m["type"] == "analytics" and m["data"]["performance_summary"]["total_trades"]
        )
        check_seed_fields(stats)
        summary = stats["data"]["performance_summary"]
        assert summary["total_trades"] == 1
        assert summary["profitable_trades"] == 1
        assert summary["win_rate"] == 1.0
        actions = [a["action"] for a in stats["data"]["recent_activity"]]
        assert actions[:2] == ["Position Closed", "Order Filled"]

        # the other user saw none of it (only public market data)
        assert {m["type"] for m in await o.barrier()} <= {"market_data"}


async def test_a_signal_shows_as_notification_active_signal_and_usage(market: Daemon) -> None:
    """A back end publishes a seed 002 signal for one user (the ``signals`` channel): that
    user's dashboard shows it; another user's dashboard does not."""
    trader, other = Trader.issued(market), Trader.issued(market)
    c = await dashboard(market, trader.token)
    o = await dashboard(market, other.token)
    async with c, o:
        first = await first_of_each(c, PUSHED_AT_ONCE)
        before = first["system_metrics"]["data"]["usage"]["signals_today"]
        await first_of_each(o, PUSHED_AT_ONCE)
        await o.barrier()
        uuid = unique("sig_")
        # A take profit no other test's signal has: public signals published by other
        # test files on this session's daemon are active for every user too.
        signal = seed_signal(uuid, tp=50.375)
        r = Admin(market).publish({"channel": "signals", "data": signal, "userId": trader.user_id})
        assert r.status_code == 200, r.text
        note = await c.wait_for(
            lambda m: m["type"] == "notification" and m["data"]["type"] == "trading_signal"
        )
        check_seed_fields(note)
        assert note["data"]["message"] == "BUY EURUSD signal generated with 85% confidence"
        assert note["data"]["action_url"] == f"/dashboard/signals/{uuid}"
        status = await c.wait_for(
            lambda m: m["type"] == "trading_status" and m["data"]["active_signals"]
        )
        [active] = [s for s in status["data"]["active_signals"] if s["take_profit"] == 50.375]
        assert active["signal"] == "BUY"
        assert active["status"] == "active"
        assert active["confidence"] == 0.85
        assert {m["type"] for m in await o.barrier()} <= {"market_data"}
    again = await dashboard(market, trader.token)
    async with again:
        metrics = await again.type("system_metrics")
        assert metrics["data"]["usage"]["signals_today"] == before + 1


# -- tiers -------------------------------------------------------------------------------


async def test_a_free_token_gets_what_free_allows_and_no_more(daemon: Daemon, user: str) -> None:
    free = await dashboard(daemon, daemon.token(user, tier="free"))
    async with free:
        hello_types = PUSHED_AT_ONCE - {"analytics"}
        got = await first_of_each(free, hello_types)
        assert got["system_metrics"]["data"]["usage"]["subscription_tier"] == "free"
        for _ in range(3):
            md = await free.wait_for(lambda m: m["type"] == "market_data")
            assert {s["symbol"] for s in md["data"]["symbols"]} <= {"EURUSD", "GBPUSD", "USDJPY"}
        await free.send({"type": "subscribe", "types": ["analytics", "market_data"]})
        msgs = await free.read_until(lambda ms: any(m["type"] == "error" for m in ms))
        err = next(m for m in msgs if m["type"] == "error")
        assert err["data"]["code"] == "AUTHORIZATION_ERROR"
        assert err["data"]["details"]["types"] == ["analytics"]
        assert err["data"]["details"]["subscription_tier"] == "free"
        assert not any(m["type"] == "analytics" for m in msgs + await free.barrier())

    # the same user with a pro token: analytics and every symbol
    pro = await dashboard(daemon, daemon.token(user, tier="pro"))
    async with pro:
        got = await first_of_each(pro, PUSHED_AT_ONCE)
        assert len(got["market_data"]["data"]["symbols"]) == len(PAPER_SYMBOLS)

    # a tier the config does not know is the default tier (free)
    odd = await dashboard(daemon, daemon.token(unique("odd"), tier="platinum"))
    async with odd:
        got = await first_of_each(odd, {"system_metrics"})
        assert got["system_metrics"]["data"]["usage"]["subscription_tier"] == "free"


async def test_usage_shows_the_rest_quota_left_today(make_daemon: Daemons) -> None:
    tiers = {"free": {"api_calls_per_day": 3, "types": ["system_metrics"]}}
    d = make_daemon(FXGATE_TIERS=json.dumps(tiers))
    t = Trader(d, "quota", d.token("quota", tier="free"))
    assert t.get("/trading/positions").status_code == 200
    c = await dashboard(d, t.token)
    async with c:
        m = await c.type("system_metrics")
        assert m["data"]["usage"]["api_calls_remaining"] == 2
    assert t.get("/trading/positions").status_code == 200
    assert t.get("/trading/positions").status_code == 200
    refused = t.get("/trading/positions")
    assert refused.status_code == 429
    assert refused.json()["error"]["details"]["tier"] == "free"
    assert int(refused.headers["Retry-After"]) > 0


# -- the per-user cap ----------------------------------------------------------------------


async def test_at_most_100_messages_a_second_per_user_and_no_trading_event_lost(
    make_daemon: Daemons,
) -> None:
    """A fast feed (500 ticks/s), a tier asking for 1,000 market batches a second, three
    dashboards of one user and 40 orders: the user's connections together get at most
    100 messages in any second, market data is batched to make room, and every fill
    reaches every dashboard."""
    tiers = {"free": {}, "enterprise": {"market_data_per_second": 1000}}
    d = make_daemon(
        FXGATE_PAPER_TICK_RATE="50",
        FXGATE_TIERS=json.dumps(tiers),
        FXGATE_SERVER_RATE_LIMIT_PER_MINUTE="100000",
        FXGATE_WS_CONNECTIONS_PER_MINUTE="100",
    )
    token = d.token("fast", tier="enterprise")
    trader = Trader(d, "fast", token)
    clients = [await dashboard(d, token) for _ in range(3)]
    arrivals: list[float] = []
    fills: list[set[str]] = [set() for _ in clients]
    n_orders = 40

    async def read(i: int, c: Client) -> None:
        while len(fills[i]) < n_orders:
            m = await c.recv(10)
            arrivals.append(time.monotonic())
            if m["type"] == "notification" and m["data"]["type"] == "order_filled":
                fills[i].add(m["data"]["id"])

    readers = [asyncio.create_task(read(i, c)) for i, c in enumerate(clients)]
    await until(lambda: len(arrivals) > 150, timeout=10, what="the fast feed flowing")
    start = time.monotonic()
    for _ in range(n_orders):
        await asyncio.to_thread(trader.buy, 0.01)
    await asyncio.wait_for(asyncio.gather(*readers), 30)
    for c in clients:
        await c.close()
    assert all(len(f) == n_orders for f in fills), [len(f) for f in fills]
    # Every two-second window after the connections' first messages: at most 200 (and
    # a few for the jitter between the server's send and the client's read), where the
    # feed alone would have sent 3,000 a second.
    steady = sorted(t for t in arrivals if t >= start - 1.0)
    worst = max(sum(1 for t in steady[i:] if t < s + 2.0) for i, s in enumerate(steady))
    assert 100 <= worst <= 206, worst


# -- compression -----------------------------------------------------------------------------


async def test_compression_is_negotiated_and_large_frames_shared(daemon: Daemon, user: str) -> None:
    token = daemon.token(user, tier="pro")
    a = await RawSocket.connect(daemon, token, "permessage-deflate; client_max_window_bits")
    b = await RawSocket.connect(daemon, daemon.token(unique("b"), tier="pro"), "permessage-deflate")
    plain = await RawSocket.connect(daemon, daemon.token(unique("p"), tier="pro"), None)
    try:
        assert a.header("Sec-WebSocket-Extensions") == (
            "permessage-deflate; server_no_context_takeover"
        )
        assert plain.header("Sec-WebSocket-Extensions") is None

        async def upto(raw: RawSocket, kind: str) -> tuple[bool, dict[str, Any], int]:
            while True:
                got = await raw.message()
                if got[1]["type"] == kind:
                    return got

        # the first market_data (every symbol) is over the threshold: compressed, and
        # inflated on its own; trading_status (a few hundred bytes) is not
        zipped, small, _ = await upto(a, "trading_status")
        assert not zipped
        check_seed_fields(small)
        zipped, first, size = await upto(a, "market_data")
        assert zipped
        assert len(first["data"]["symbols"]) == len(PAPER_SYMBOLS)
        assert size < len(json.dumps(first)) * 0.5
        zipped, first_plain, _ = await upto(plain, "market_data")
        assert not zipped
        assert len(first_plain["data"]["symbols"]) == len(PAPER_SYMBOLS)

        # a live batch reaches both compressed connections as the same compressed bytes
        seen: dict[str, tuple[bool, bytes]] = {}
        for _ in range(5):
            zipped, msg, _ = await upto(a, "market_data")
            seen[json.dumps(msg)] = (zipped, a.last_payload)
        shared = 0
        for _ in range(10):
            zipped, msg, _ = await upto(b, "market_data")
            if json.dumps(msg) in seen:
                assert seen[json.dumps(msg)] == (zipped, b.last_payload)
                shared += zipped
        assert shared
    finally:
        for raw in (a, b, plain):
            raw.close()


def metric(d: Daemon, name: str) -> float:
    text = httpx.get(d.url("/metrics")).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


async def test_a_market_batch_is_compressed_once_for_every_connection(
    make_daemon: Daemons,
) -> None:
    """Eight compressed dashboards of eight users: the daemon compresses each market
    batch once (``/metrics``), while each connection receives it compressed."""
    d = make_daemon(FXGATE_DASHBOARD_COMPRESSION_THRESHOLD="0")
    socks = [
        await RawSocket.connect(d, d.token(unique("z"), tier="pro"), "permessage-deflate")
        for _ in range(8)
    ]
    try:

        async def market(raw: RawSocket) -> bool:
            while True:
                zipped, msg, _ = await raw.message()
                if msg["type"] == "market_data":
                    return zipped

        for raw in socks:
            assert await market(raw)  # past the snapshot (each connection its own)
        batches0 = metric(d, "fxgate_dashboard_market_batches_total")
        compressed0 = metric(d, "fxgate_dashboard_frames_compressed_total")
        received = 0
        for raw in socks:
            for _ in range(20):
                received += await market(raw)
        batches = metric(d, "fxgate_dashboard_market_batches_total") - batches0
        compressed = metric(d, "fxgate_dashboard_frames_compressed_total") - compressed0
        assert received == 8 * 20
        # once per batch (plus a few per-user messages), not once per connection
        assert compressed <= batches + 3 * 8, (compressed, batches)
        assert compressed < received / 2
    finally:
        for raw in socks:
            raw.close()


async def test_a_websockets_client_with_and_without_deflate(daemon: Daemon, user: str) -> None:
    token = daemon.token(user, tier="pro")
    for compression in ("deflate", None):
        c = await dashboard(daemon, token, compression=compression)
        async with c:
            ext = c.ws.response.headers.get("Sec-WebSocket-Extensions")
            assert (ext is not None) == (compression is not None), ext
            got = await first_of_each(c, PUSHED_AT_ONCE)
            check_seed_fields(got["market_data"])


# -- sessions ----------------------------------------------------------------------------------


def login(d: Daemon) -> tuple[str, str]:
    email = f"{unique('sess')}@example.com"
    out = d.cli("users", "add", "--email", email, "--name", "S", "--role", "trader",
                "--password", PASSWORD)  # fmt: skip
    assert out.returncode == 0, out.stderr
    r = HTTP.post(d.url("/api/v1/auth/login"), json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r.json()["data"]["accessToken"], r.json()["data"]["refreshToken"]


async def test_sessions_list_every_socket_and_delete_ends_one_with_4001(daemon: Daemon) -> None:
    access, refresh = login(daemon)
    other_access, _ = login(daemon)
    dash = await dashboard(daemon, access)
    canon = await Client.connect(daemon.ws_url() + f"?token={access}")
    assert (await canon.recv())["type"] == "connection"
    seed003 = await Client.connect(daemon.ws_url("/ws"))  # seed 003: first-message auth
    await seed003.send({"type": "auth", "token": access})
    assert (await seed003.type("auth_success"))["type"] == "auth_success"
    seed004 = await Client.connect(daemon.ws_url("/ws/market-data") + f"?token={access}")
    elsewhere = await dashboard(daemon, other_access)

    def listed() -> list[dict[str, Any]]:
        r = HTTP.get(daemon.url("/auth/sessions"), headers=bearer(access))
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data if data and len(data[0]["connections"]) == 4 else []

    try:
        [session] = await until(listed, what="four sockets listed")
        assert session["kind"] == "login"
        assert session["current"] is True
        endpoints = sorted(c["endpoint"] for c in session["connections"])
        assert endpoints == ["/api/ws", "/ws", "/ws/dashboard", "/ws/market-data"]

        # someone else's session is not theirs to end
        other = HTTP.delete(
            daemon.url(f"/auth/sessions/{session['id']}"), headers=bearer(other_access)
        )
        assert other.status_code == 404

        ended = HTTP.delete(daemon.url(f"/auth/sessions/{session['id']}"), headers=bearer(access))
        assert ended.status_code == 200, ended.text
        assert ended.json()["data"]["closedConnections"] == 4
        assert await dash.closed_with() == 4001
        assert await canon.closed_with() == 4001
        assert await seed003.closed_with() == 4001
        assert await seed004.closed_with() == 4001
        # the refresh token is revoked, and so is the access token
        r = HTTP.post(daemon.url("/auth/refresh"), json={"refreshToken": refresh})
        assert r.status_code == 401
        assert HTTP.get(daemon.url("/auth/sessions"), headers=bearer(access)).status_code == 401
        # the other user's dashboard kept streaming
        await elsewhere.wait_for(lambda m: m["type"] == "market_data")
    finally:
        await elsewhere.close()


async def test_a_session_of_an_issued_token_is_listed_and_ended(daemon: Daemon, user: str) -> None:
    token = daemon.token(user)
    c = await dashboard(daemon, token)
    r = HTTP.get(daemon.url("/auth/sessions"), headers=bearer(daemon.token(user)))
    [mine] = [s for s in r.json()["data"] if s["connections"]]
    assert mine["kind"] == "token"
    assert mine["id"].startswith("tok_")
    assert (
        HTTP.delete(daemon.url("/auth/sessions/tok_nope"), headers=bearer(token)).status_code == 404
    )
    ended = HTTP.delete(daemon.url(f"/auth/sessions/{mine['id']}"), headers=bearer(token))
    assert ended.status_code == 200, ended.text
    assert await c.closed_with() == 4001
    with pytest.raises(websockets.InvalidStatus):
        await Client.connect(daemon.ws_url("/ws/dashboard") + f"?token={token}")


# -- bad input, shutdown -------------------------------------------------------------------------


async def test_malformed_frames_get_an_error_and_others_keep_streaming(
    daemon: Daemon, user: str
) -> None:
    bad = await dashboard(daemon, daemon.token(user))
    good = await dashboard(daemon, daemon.token(unique("good")))
    async with bad, good:
        for frame, field in (
            (b"\x00\x01", "frame"),
            ("{nope", "frame"),
            ("[1, 2]", "frame"),
            ('{"type": "dance"}', "type"),
            ('{"type": "subscribe", "types": "market_data"}', "types"),
            ('{"type": "subscribe", "types": ["weather"]}', "types"),
            ("x" * 70_000, "frame"),
        ):
            await bad.send(frame)
            err = await bad.type("error")
            assert err["data"]["code"] == "VALIDATION_ERROR", err
            assert err["data"]["details"]["field"] == field, err
        await bad.barrier()  # still open, still answering
        await good.wait_for(lambda m: m["type"] == "market_data")
    assert "Traceback" not in daemon.log()


async def test_sigterm_sends_the_dashboard_notice_then_1001(fresh_daemon: Daemon) -> None:
    d = fresh_daemon.start()
    c = await dashboard(d, d.token("bye"))
    await first_of_each(c, {"trading_status"})
    d.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    note = await c.wait_for(lambda m: m["type"] == "notification")
    check_seed_fields(note)
    assert note["data"]["type"] == "system"
    assert note["data"]["title"] == "Server restarting"
    assert await c.closed_with() == 1001
    assert d.proc is not None
    assert d.proc.wait(10) == 0


def test_the_dashboard_is_in_the_openapi_free_rest(daemon: Daemon) -> None:
    doc = httpx.get(daemon.url("/openapi.json")).json()
    assert "/auth/sessions" in doc["paths"]
    assert "delete" in doc["paths"]["/auth/sessions/{session_id}"]
