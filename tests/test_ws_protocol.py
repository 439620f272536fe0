"""The canonical protocol: subscriptions, filters, snapshots, errors and limits."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx

from tests.conftest import Daemon
from tests.wsclient import Client

MARKET_FIELDS = {
    "symbol", "bid", "ask", "last", "volume", "spread", "timestamp", "change",
    "changePercent", "dayHigh", "dayLow", "open", "close",
}  # fmt: skip


ASKED = {"EURUSD", "XAUUSD"}


def live_ticks(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in msgs if m["type"] == "tick" and not m["data"].get("snapshot")]


async def connect(daemon: Daemon, user: str, role: str = "trader") -> Client:
    c = await Client.connect(daemon.ws_url() + f"?token={daemon.token(user, role)}")
    assert (await c.recv())["type"] == "connection"
    return c


async def test_market_data_snapshot_then_live(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        ack = await c.subscribe(
            {"name": "market-data", "filters": {"symbol": ["EURUSD", "xauusd"]}}
        )
        assert ack["status"] == "success"
        assert ack["channels"] == [
            {"name": "market-data", "subscribed": True, "filters": {"symbol": ["EURUSD", "XAUUSD"]}}
        ]
        snap = [await c.recv(), await c.recv()]
        assert {m["data"]["symbol"] for m in snap} == {"EURUSD", "XAUUSD"}
        assert all(m["data"]["snapshot"] is True for m in snap)
        live = await c.wait_for(
            lambda m: m["type"] == "market_data" and "snapshot" not in m["data"]
        )
        assert live["channel"] == "market-data"
        assert set(live["data"]) == MARKET_FIELDS
        assert live["data"]["symbol"] in {"EURUSD", "XAUUSD"}
        assert live["data"]["bid"] < live["data"]["ask"]
        assert set(live) == {"type", "channel", "data", "timestamp", "id", "offset", "epoch"}
        # Only the symbols asked for arrive: none other until both have ticked live.
        msgs = await c.read_until(lambda got: {m["data"]["symbol"] for m in got} >= ASKED)
        assert {m["data"]["symbol"] for m in msgs} == ASKED


async def test_offsets_grow_by_one_per_stream(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        await c.subscribe({"name": "market-data", "filters": {"symbol": "EURUSD"}})
        snap = await c.recv()
        msgs = await c.read_until(lambda got: len(got) >= 3)
        assert [m["type"] for m in msgs] == ["market_data"] * 3
        offsets = [m["offset"] for m in msgs]
        assert offsets == list(range(snap["offset"] + 1, snap["offset"] + 1 + len(offsets)))
        assert len({m["id"] for m in msgs}) == len(msgs)


async def test_unsubscribe_stops_messages(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c, await connect(daemon, user + "_w") as witness:
        await c.subscribe("test-ticker")
        await witness.subscribe("test-ticker")
        await c.type("tick")
        await c.send({"type": "unsubscribe", "channels": ["test-ticker"]})
        before = await c.read_until(lambda got: got[-1:] != [] and got[-1]["type"] != "tick")
        reply = before.pop()
        assert reply == {**reply, "type": "unsubscription", "status": "success"}
        assert reply["channels"] == ["test-ticker"]
        # Every tick published before the unsubscribe came before its reply; the witness
        # sees three published after it, and they did not reach ``c``.
        last = max([m["data"]["n"] for m in before] + [0])
        await witness.wait_for(lambda m: m["type"] == "tick" and m["data"]["n"] >= last + 3)
        assert [m for m in await c.barrier() if m["type"] == "tick"] == []


async def test_filters_on_a_third_party_channel(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        await c.subscribe({"name": "test-ticker", "filters": {"parity": "odd"}})
        ticks = await c.read_until(lambda got: len(live_ticks(got)) >= 4)
        assert [m["type"] for m in ticks] == ["tick"] * len(ticks)
        assert [m["data"]["n"] % 2 for m in live_ticks(ticks)] == [1] * len(live_ticks(ticks))


async def test_ping_pong(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        await c.send({"type": "ping"})
        pong = await c.recv()
        assert pong["type"] == "pong"
        assert pong["timestamp"].endswith("Z")


async def test_bad_inputs_get_errors_and_the_connection_survives(daemon: Daemon, user: str) -> None:
    bystander = await connect(daemon, user + "_b")
    await bystander.subscribe("test-ticker")
    cases: list[tuple[object, str, str]] = [
        ("{not json", "VALIDATION_ERROR", "Invalid JSON"),
        ("[1, 2, 3]", "VALIDATION_ERROR", "A message must be a JSON object"),
        ("42", "VALIDATION_ERROR", "A message must be a JSON object"),
        (b"\x00\x01binary", "VALIDATION_ERROR", "Binary frames are not supported; send JSON text"),
        ({"type": "launch-rockets"}, "VALIDATION_ERROR", "Unknown message type"),
        ({"type": "subscribe", "channels": ["nope"]}, "VALIDATION_ERROR", "Invalid channel"),
        ({"type": "subscribe", "channels": "trades"}, "VALIDATION_ERROR", "Invalid subscription"),
        (
            {"type": "subscribe", "channels": [{"name": 5}]},
            "VALIDATION_ERROR",
            "Invalid subscription",
        ),
        (
            {"type": "subscribe", "channels": [{"name": "trades", "filters": {"colour": "red"}}]},
            "VALIDATION_ERROR",
            "Invalid filter",
        ),
        (
            {
                "type": "subscribe",
                "channels": [{"name": "trades", "filters": {"symbol": {"a": 1}}}],
            },
            "VALIDATION_ERROR",
            "Invalid filter",
        ),
        ("x" * (1024 * 1024), "VALIDATION_ERROR", "Message too large"),
    ]
    async with await connect(daemon, user) as c:
        for frame, code, message in cases:
            await c.send(frame)
            err = await c.type("error")
            assert (err["code"], err["message"]) == (code, message), (
                frame if len(str(frame)) < 200 else "big"
            )
            assert err["timestamp"].endswith("Z")
            await c.send({"type": "ping"})
            await c.type("pong")
        # The bystander kept receiving throughout.
        assert (await bystander.type("tick"))["channel"] == "test-ticker"
    await bystander.close()


async def test_51st_subscription_is_refused(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        channels = [{"name": "trades", "filters": {"symbol": f"S{i:02d}"}} for i in range(50)]
        ack = await c.subscribe(*channels)
        assert len(ack["channels"]) == 50
        await c.send(
            {"type": "subscribe", "channels": [{"name": "trades", "filters": {"symbol": "X"}}]}
        )
        err = await c.type("error")
        assert err["code"] == "RATE_LIMIT_ERROR"
        assert err["message"] == "Too many subscriptions"
        # The same (channel, filters) again is a no-op, not a 51st: acknowledged, and no
        # error before the next pong.
        ack = await c.subscribe({"name": "trades", "filters": {"symbol": "S00"}})
        assert ack["channels"] == [
            {"name": "trades", "subscribed": True, "filters": {"symbol": "S00"}}
        ]
        await c.send({"type": "ping"})
        assert (await c.recv())["type"] == "pong"
        # Unsubscribing frees the room.
        await c.send({"type": "unsubscribe", "channels": ["trades"]})
        await c.type("unsubscription")
        ack = await c.subscribe({"name": "trades", "filters": {"symbol": "X"}})
        assert ack["status"] == "success"


async def test_burst_of_200_is_rate_limited_but_the_connection_stays(
    daemon: Daemon, user: str
) -> None:
    token = daemon.token(user)
    async with await Client.connect(daemon.ws_url() + f"?token={token}") as c:
        assert (await c.recv())["type"] == "connection"
        for _ in range(200):
            await c.send({"type": "ping"})
        # The whole answer to the burst came before the answer to a message sent after
        # it: an in-band auth (whose reply is not a pong), sent until one gets through.
        msgs = await answered(c, {"type": "auth", "token": token}, "auth")
        pongs = [m for m in msgs if m["type"] == "pong"]
        errors = [m for m in msgs if m["type"] == "error"]
        assert 100 <= len(pongs) < 200
        assert errors
        assert errors[0]["code"] == "RATE_LIMIT_ERROR"
        # Once the bucket refills, pings are answered again on the same connection.
        await answered(c, {"type": "ping"}, "pong")


async def answered(c: Client, msg: dict[str, Any], reply: str) -> list[dict[str, Any]]:
    """Everything read until ``msg`` is answered with a ``reply``; ``msg`` is sent again
    every 0.2 s while the rate limit drops it (a poll with a deadline)."""
    got: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    resend = loop.time()
    while not any(m["type"] == reply for m in got):
        now = loop.time()
        assert now < deadline, f"{msg['type']} never answered; got {got}"
        if now >= resend:
            await c.send(msg)
            resend = now + 0.2
        with contextlib.suppress(TimeoutError):
            got.append(await c.recv(resend - now))
    return got


async def test_user_b_never_sees_user_a(daemon: Daemon, user: str) -> None:
    a = await connect(daemon, user + "_a")
    b = await connect(daemon, user + "_b")
    for c in (a, b):
        await c.subscribe("test-vip", "trades", "positions", "orders", "alerts", "account")
    async with httpx.AsyncClient() as http:
        r = await http.post(daemon.url("/test/vip"), params={"user": user + "_a", "text": "for-a"})
        assert r.status_code == 200
    got = await a.type("vip")
    assert got["data"] == {"secret": "for-a"}
    assert all(m.get("data", {}).get("secret") != "for-a" for m in await b.barrier())
    await a.close()
    await b.close()


async def test_subscribe_with_since_recovers_missed_messages(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        await c.subscribe("test-vip")
        async with httpx.AsyncClient() as http:
            await http.post(daemon.url("/test/vip"), params={"user": user, "text": "one"})
            first = await c.type("vip")
            await c.close()
            for text in ("two", "three"):
                await http.post(daemon.url("/test/vip"), params={"user": user, "text": text})
    async with await connect(daemon, user) as c:
        since = {"offset": first["offset"], "epoch": first["epoch"]}
        ack = await c.subscribe({"name": "test-vip", "since": since})
        assert ack["channels"][0]["recovered"] is True
        replay = [await c.type("vip"), await c.type("vip")]
        assert [m["data"]["secret"] for m in replay] == ["two", "three"]
        assert [m["offset"] for m in replay] == [first["offset"] + 1, first["offset"] + 2]
        ack = await c.subscribe(
            {"name": "test-vip", "filters": None, "since": {"offset": 1, "epoch": "old"}}
        )
        # ``filters: None`` is the pair already held: acknowledged as it is, with no
        # recovery attempted and nothing sent again before the next pong.
        assert ack["channels"] == [{"name": "test-vip", "subscribed": True, "filters": {}}]
        await c.send({"type": "ping"})
        assert (await c.recv())["type"] == "pong"


async def test_system_channel_reports_components(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        await c.subscribe("system")
        msg = await c.type("system")
        assert msg["channel"] == "system"
        assert msg["data"]["status"] == "HEALTHY"
        assert msg["data"]["components"] == {
            "database": "HEALTHY",
            "broker": "HEALTHY",
            "bus": "HEALTHY",
        }


async def test_control_replies_are_json_objects_with_timestamps(daemon: Daemon, user: str) -> None:
    async with await connect(daemon, user) as c:
        await c.send(json.dumps({"type": "subscribe", "channels": ["alerts"]}))
        ack = await c.type("subscription")
        assert set(ack) == {"type", "status", "channels", "timestamp"}
