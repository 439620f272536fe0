"""Authentication on ``/api/ws``: the three ways in, and every way to be refused."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
import websockets

from tests.conftest import Daemon, Daemons
from tests.wsclient import Client


async def test_token_in_query(daemon: Daemon, user: str) -> None:
    async with await Client.connect(daemon.ws_url() + f"?token={daemon.token(user)}") as c:
        hello = await c.recv()
        assert hello["type"] == "connection"
        assert hello["status"] == "connected"
        assert hello["userId"] == user
        assert hello["sessionId"]
        assert hello["timestamp"].endswith("Z")


async def test_token_in_authorization_header(daemon: Daemon, user: str) -> None:
    headers = {"Authorization": f"Bearer {daemon.token(user)}"}
    async with await Client.connect(daemon.ws_url(), additional_headers=headers) as c:
        assert (await c.recv())["userId"] == user


async def test_token_in_first_message(daemon: Daemon, user: str) -> None:
    async with await Client.connect(daemon.ws_url()) as c:
        # Nothing but auth is accepted before authenticating, and the socket stays open.
        await c.send({"type": "subscribe", "channels": ["system"]})
        err = await c.recv()
        assert err["type"] == "error"
        assert err["code"] == "AUTHENTICATION_ERROR"
        await c.send({"type": "auth", "token": daemon.token(user)})
        hello = await c.recv()
        assert hello["type"] == "connection"
        assert hello["userId"] == user
        ack = await c.subscribe("system")
        assert ack["channels"][0]["name"] == "system"


async def test_first_message_auth_times_out_with_4001(make_daemon: Daemons) -> None:
    d = make_daemon(FXGATE_WS_AUTH_TIMEOUT="0.5")
    async with await Client.connect(d.ws_url()) as c:
        assert await c.closed_with() == 4001


@pytest.mark.parametrize("where", ["query", "first-message"])
async def test_forged_token_is_refused(daemon: Daemon, user: str, where: str) -> None:
    good = daemon.token(user)
    header = jwt.get_unverified_header(good)
    claims = jwt.decode(good, options={"verify_signature": False})
    claims["role"] = "admin"
    wrong_key = "a 32-byte key that is not the daemon's"
    forged = jwt.encode(claims, wrong_key, algorithm="HS256", headers={"kid": header["kid"]})
    await _refused(daemon, forged, where)


@pytest.mark.parametrize(
    ("claim", "value"),
    [("role", "superuser"), ("scope", "everything"), ("scope", ["publish"]), ("sub", None)],
)
async def test_a_well_signed_token_with_bad_claims_is_refused(
    daemon: Daemon, user: str, claim: str, value: Any
) -> None:
    claims = jwt.decode(daemon.token(user), options={"verify_signature": False})
    claims[claim] = value
    if value is None:
        del claims[claim]
    await _refused(daemon, daemon.sign(claims), "query")


@pytest.mark.parametrize("where", ["query", "first-message"])
async def test_expired_token_is_refused(daemon: Daemon, user: str, where: str) -> None:
    await _refused(daemon, daemon.token(user, ttl=-5), where)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
async def test_malformed_token_is_refused(daemon: Daemon, token: str) -> None:
    if token:
        await _refused(daemon, token, "query")
    else:
        # ?token= with nothing in it means "no token": first-message auth applies.
        async with await Client.connect(daemon.ws_url() + "?token=") as c:
            await c.send({"type": "ping"})
            assert (await c.recv())["code"] == "AUTHENTICATION_ERROR"


async def _refused(daemon: Daemon, token: str, where: str) -> None:
    if where == "query":
        with pytest.raises(websockets.InvalidStatus) as info:
            await Client.connect(daemon.ws_url() + f"?token={token}")
        assert info.value.response.status_code == 401
        assert b"AUTHENTICATION_ERROR" in info.value.response.body
        return
    async with await Client.connect(daemon.ws_url()) as c:
        await c.send({"type": "auth", "token": token})
        err = await c.recv()
        assert err["type"] == "error"
        assert err["code"] == "AUTHENTICATION_ERROR"
        assert token not in err["message"]


async def test_expiry_closes_with_4001_unless_refreshed(daemon: Daemon, user: str) -> None:
    refreshed = await Client.connect(daemon.ws_url() + f"?token={daemon.token(user, ttl=2)}")
    # Its token is issued later with the same lifetime: when it expires, so has the first.
    short = await Client.connect(daemon.ws_url() + f"?token={daemon.token(user, ttl=2)}")
    async with refreshed, short:
        await refreshed.recv()
        await short.recv()
        await refreshed.send({"type": "auth", "token": daemon.token(user, ttl=60)})
        ok = await refreshed.type("auth")
        assert ok["status"] == "success"
        assert ok["expiresAt"].endswith("Z")
        assert await short.closed_with(timeout=6) == 4001
        await refreshed.send({"type": "ping"})
        assert (await refreshed.type("pong"))["type"] == "pong"


async def test_refresh_must_keep_the_same_user(daemon: Daemon, user: str) -> None:
    async with await Client.connect(daemon.ws_url() + f"?token={daemon.token(user)}") as c:
        await c.recv()
        await c.send({"type": "auth", "token": daemon.token(user + "_other")})
        err = await c.type("error")
        assert err["code"] == "AUTHORIZATION_ERROR"
        await c.send({"type": "ping"})
        await c.type("pong")


async def test_connection_rate_limit_per_user(daemon: Daemon, user: str) -> None:
    token = daemon.token(user)
    clients = []
    for _ in range(10):
        clients.append(await Client.connect(daemon.ws_url() + f"?token={token}"))
    with pytest.raises(websockets.InvalidStatus) as info:
        await Client.connect(daemon.ws_url() + f"?token={token}")
    assert info.value.response.status_code == 429
    # Another user is not affected.
    async with await Client.connect(daemon.ws_url() + f"?token={daemon.token(user + 'b')}") as c:
        assert (await c.recv())["type"] == "connection"
    for c in clients:
        await c.close()


async def test_viewer_cannot_subscribe_to_a_trader_channel(daemon: Daemon, user: str) -> None:
    async with await Client.connect(
        daemon.ws_url() + f"?token={daemon.token(user, role='viewer')}"
    ) as c:
        await c.recv()
        await c.send({"type": "subscribe", "channels": ["test-vip"]})
        err = await c.type("error")
        assert err["code"] == "AUTHORIZATION_ERROR"
        assert err["details"]["channel"] == "test-vip"
    async with await Client.connect(
        daemon.ws_url() + f"?token={daemon.token(user + 't', role='trader')}"
    ) as c:
        await c.recv()
        ack = await c.subscribe("test-vip")
        assert ack["channels"][0]["subscribed"] is True
