"""Key rotation while clients are connected, and a graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import jwt
import pytest
import websockets

from tests.conftest import Daemon
from tests.wsclient import Client


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


async def test_rotation_keeps_old_tokens_and_retirement_ends_them(fresh_daemon: Daemon) -> None:
    d = fresh_daemon.start()
    old = d.token("alice")
    client = await Client.connect(d.ws_url() + f"?token={old}")
    await client.recv()
    await client.subscribe("system")

    rotated = d.cli("keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    new_kid = rotated.stdout.strip()
    listing = json.loads(d.cli("keys", "list", "--json").stdout)
    assert {k["kid"]: k["status"] for k in listing} == {kid_of(old): "standby", new_kid: "active"}

    # New tokens are signed by the new key; the running daemon accepts them without a
    # restart, and the old token still connects.
    new = d.token("alice")
    assert kid_of(new) == new_kid
    async with await Client.connect(d.ws_url() + f"?token={new}") as c:
        assert (await c.recv())["type"] == "connection"
    async with await Client.connect(d.ws_url() + f"?token={old}") as c:
        assert (await c.recv())["type"] == "connection"
    await client.send({"type": "ping"})
    await client.type("pong")

    retired = d.cli("keys", "retire", kid_of(old))
    assert retired.returncode == 0, retired.stderr
    # The connected client on the retired key is closed, and the key is refused.
    assert await client.closed_with(timeout=5) == 4001
    with pytest.raises(websockets.InvalidStatus) as info:
        await Client.connect(d.ws_url() + f"?token={old}")
    assert info.value.response.status_code == 401
    async with await Client.connect(d.ws_url() + f"?token={new}") as c:
        assert (await c.recv())["type"] == "connection"

    refused = d.cli("keys", "retire", new_kid)
    assert refused.returncode != 0
    assert "rotate first" in refused.stderr.lower() or "active" in refused.stderr.lower()


async def test_sigterm_tells_clients_and_exits_zero(fresh_daemon: Daemon) -> None:
    d = fresh_daemon.start()
    clients = []
    for i in range(3):
        c = await Client.connect(d.ws_url() + f"?token={d.token(f'user{i}')}")
        await c.recv()
        await c.subscribe({"name": "market-data", "filters": {"symbol": "EURUSD"}})
        clients.append(c)
    started = time.monotonic()
    assert d.proc is not None
    d.proc.send_signal(signal.SIGTERM)
    for c in clients:
        restarting = await c.wait_for(lambda m: m["type"] == "system", timeout=5)
        assert restarting["data"]["status"] == "RESTARTING"
        assert await c.closed_with(timeout=5) == 1001
    code = await asyncio.to_thread(d.proc.wait, 5)
    assert code == 0
    assert time.monotonic() - started < 5
    assert '"stopped"' in d.log()
