"""Limits and refusals that close a socket (or, for a burst, do not), on the real daemon."""

from __future__ import annotations

import asyncio

import httpx
import websockets

from tests.conftest import Daemon
from tests.wsclient import Client

PING = '{"type":"ping"}'


async def _flood(c: Client, rate: int, seconds: float) -> float | None:
    """Send ``rate`` pings a second; the seconds until the server closed, or None."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        while (elapsed := loop.time() - start) < seconds:
            for _ in range(rate // 10):
                await c.ws.send(PING)
            await asyncio.sleep(0.1)
    except websockets.ConnectionClosed:
        return elapsed
    return None


async def _flooded(daemon: Daemon, user: str) -> tuple[float | None, int | None]:
    async with await Client.connect(daemon.ws_url() + f"?token={daemon.token(user)}") as c:
        await c.type("connection")
        # Read while flooding: the client library stops reading the socket when its
        # queue of unread messages is full, and would never see the close frame.
        closed = asyncio.create_task(c.closed_with(timeout=30))
        elapsed = await _flood(c, 300, 12)
        return elapsed, await closed


async def _burst_then_calm(daemon: Daemon, user: str) -> int:
    """200 pings at once, then one every half second for longer than the grace."""
    async with await Client.connect(daemon.ws_url() + f"?token={daemon.token(user)}") as c:
        await c.type("connection")
        for _ in range(200):
            await c.ws.send(PING)
        err = await c.type("error")
        assert err["code"] == "RATE_LIMIT_ERROR"
        answered = 0
        for _ in range(14):  # 7 s, past the 5 s grace
            await asyncio.sleep(0.5)
            await c.send({"type": "subscribe", "channels": ["system"]})
            await c.type("subscription")
            answered += 1
        return answered


async def test_a_flood_is_closed_4029_after_the_grace_and_a_burst_is_not(
    daemon: Daemon, user: str
) -> None:
    (elapsed, code), answered = await asyncio.gather(
        _flooded(daemon, user + "_flood"), _burst_then_calm(daemon, user + "_burst")
    )
    assert code == 4029
    assert elapsed is not None
    assert 5.0 <= elapsed < 11  # ws.flood_grace defaults to 5 s
    assert answered == 14


async def test_a_bad_first_message_token_gets_the_error_then_4001(daemon: Daemon) -> None:
    async with await Client.connect(daemon.ws_url()) as c:
        await c.send({"type": "auth", "token": "not-a-token"})
        err = await c.recv()
        assert (err["type"], err["code"]) == ("error", "AUTHENTICATION_ERROR")
        assert await c.closed_with() == 4001


async def test_a_refresh_to_a_lower_role_drops_the_subscriptions_it_may_not_hold(
    daemon: Daemon, user: str
) -> None:
    token = daemon.token(user, role="trader")
    async with await Client.connect(daemon.ws_url() + f"?token={token}") as c:
        await c.type("connection")
        ack = await c.subscribe("test-vip", "test-ticker")
        assert [ch["name"] for ch in ack["channels"]] == ["test-vip", "test-ticker"]
        await c.send({"type": "auth", "token": daemon.token(user, role="viewer")})
        assert (await c.type("auth"))["status"] == "success"
        err = await c.type("error")
        assert err["code"] == "AUTHORIZATION_ERROR"
        assert err["details"]["channels"] == ["test-vip"]
        async with httpx.AsyncClient() as http:
            r = await http.post(daemon.url("/test/vip"), params={"user": user, "text": "x"})
            assert r.status_code == 200
        # The ticker goes on; the vip message never comes (a ping answered is the barrier
        # after the publish was answered).
        await c.send({"type": "ping"})
        seen = []
        while (m := await c.recv())["type"] != "pong":
            seen.append(m["type"])
        assert "vip" not in seen
        assert (await c.type("tick"))["channel"] == "test-ticker"
