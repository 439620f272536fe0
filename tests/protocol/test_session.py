"""The canonical session in memory: every story a dialect must pass, no sockets."""

from __future__ import annotations

import asyncio

import pytest

from fxgate.domain.errors import CloseCode, Disconnects
from tests.protocol.fakes import Harness, Orders, Quotes, make_harness, order, quote


def last_error(h: Harness) -> dict[str, object]:
    errors = [m for m in h.received() if m["type"] == "error"]
    assert errors, h.received()
    return errors[-1]


# -- authentication ---------------------------------------------------------------


async def test_the_auth_window_closes_4001_when_no_token_comes() -> None:
    h = make_harness(user=None, auth_timeout=10)
    h.clock.advance(9.9)
    assert h.conn.disconnect is None
    h.clock.advance(0.2)
    assert h.conn.disconnect is Disconnects.AUTH_TIMEOUT
    assert h.conn.disconnect.code == CloseCode.AUTHENTICATION
    assert h.session.closed


async def test_a_first_message_token_ends_the_auth_window() -> None:
    h = make_harness(user=None, auth_timeout=10)
    await h.send({"type": "subscribe", "channels": ["quotes"]})
    assert last_error(h)["code"] == "AUTHENTICATION_ERROR"
    await h.send({"type": "auth", "token": h.tokens.issue("alice")})
    assert h.received()[-1]["type"] == "connection"
    assert h.received()[-1]["userId"] == "alice"
    h.clock.advance(60)
    assert h.conn.disconnect is None


async def test_a_bad_first_message_token_gets_the_error_then_4001() -> None:
    h = make_harness(user=None)
    await h.send({"type": "auth", "token": "forged"})
    msgs = h.received()
    assert [m["type"] for m in msgs] == ["error"]
    assert msgs[0]["code"] == "AUTHENTICATION_ERROR"
    assert h.conn.disconnect is Disconnects.AUTH_FAILED
    assert h.conn.disconnect.code == 4001
    assert h.clock.pending() == 0  # the auth window's timer went with the session


async def test_the_token_expiry_closes_4001_unless_refreshed() -> None:
    h = make_harness(ttl=60)
    h.clock.advance(59)
    assert h.conn.disconnect is None
    h.clock.advance(2)
    assert h.conn.disconnect is Disconnects.TOKEN_EXPIRED

    h = make_harness(ttl=60)
    h.clock.advance(30)
    await h.send({"type": "auth", "token": h.tokens.issue("alice", ttl=600)})
    assert h.received()[-1]["type"] == "auth"
    assert h.received()[-1]["status"] == "success"
    h.clock.advance(100)  # well past the first token's expiry
    assert h.conn.disconnect is None
    h.clock.advance(600)
    assert h.conn.disconnect is Disconnects.TOKEN_EXPIRED


async def test_a_bad_refresh_is_an_error_and_the_connection_stays() -> None:
    h = make_harness()
    await h.send({"type": "auth", "token": "forged"})
    assert last_error(h)["code"] == "AUTHENTICATION_ERROR"
    await h.send({"type": "auth", "token": h.tokens.issue("mallory")})
    assert last_error(h)["code"] == "AUTHORIZATION_ERROR"
    assert h.conn.disconnect is None
    assert h.session.principal is not None
    assert h.session.principal.user_id == "alice"


async def test_a_refresh_that_lowers_the_role_drops_what_it_may_not_hold() -> None:
    h = make_harness(role="trader")
    await h.send({"type": "subscribe", "channels": ["orders", "quotes"]})
    h.new()
    await h.send({"type": "auth", "token": h.tokens.issue("alice", role="viewer")})
    ok, err = h.new()
    assert (ok["type"], ok["status"]) == ("auth", "success")
    assert err["type"] == "error"
    assert err["code"] == "AUTHORIZATION_ERROR"
    assert err["details"] == {"channels": ["orders"], "role": "viewer"}
    h.publish(order("alice", 1))
    h.publish(quote("EURUSD", 1.1))
    assert [m["type"] for m in h.new()] == ["quote"]
    assert h.hub.subscriber_count("orders") == 0
    # Nor can it come back with the viewer's token; the count of subscriptions freed up.
    await h.send({"type": "subscribe", "channels": ["orders"]})
    assert last_error(h)["code"] == "AUTHORIZATION_ERROR"
    assert h.conn.disconnect is None


# -- limits ------------------------------------------------------------------------


async def test_a_message_over_the_size_limit_is_an_error() -> None:
    h = make_harness(max_message_size=1024)
    await h.send("x" * 1025)
    err = last_error(h)
    assert (err["code"], err["message"]) == ("VALIDATION_ERROR", "Message too large")
    await h.send({"type": "ping"})
    assert h.received()[-1]["type"] == "pong"


async def test_the_subscription_limit_counts_pairs_not_repeats() -> None:
    h = make_harness(max_subscriptions=3)
    for sym in ("A", "B", "C"):
        await h.send(
            {"type": "subscribe", "channels": [{"name": "quotes", "filters": {"symbol": sym}}]}
        )
    h.new()
    await h.send(
        {"type": "subscribe", "channels": [{"name": "quotes", "filters": {"symbol": "D"}}]}
    )
    (err,) = h.new()
    assert (err["code"], err["message"]) == ("RATE_LIMIT_ERROR", "Too many subscriptions")
    # The same pair again is acknowledged and does not count.
    await h.send(
        {"type": "subscribe", "channels": [{"name": "quotes", "filters": {"symbol": "A"}}]}
    )
    assert h.types() == ["subscription"]
    await h.send({"type": "unsubscribe", "channels": ["quotes"]})
    assert h.types() == ["unsubscription"]
    await h.send(
        {"type": "subscribe", "channels": [{"name": "quotes", "filters": {"symbol": "D"}}]}
    )
    assert h.types() == ["subscription"]


async def test_a_burst_over_the_rate_loses_the_excess_and_keeps_the_connection() -> None:
    h = make_harness(max_messages_per_second=10, flood_grace=3)
    for _ in range(15):
        await h.send({"type": "ping"})
    types = h.types()
    assert types.count("pong") == 10
    assert types.count("error") == 1
    assert last_error(h)["code"] == "RATE_LIMIT_ERROR"
    # Bursts a few seconds apart, for longer than the grace: never closed.
    for _ in range(5):
        h.clock.advance(2)
        for _ in range(15):
            await h.send({"type": "ping"})
    assert h.conn.disconnect is None
    h.clock.advance(1.1)
    await h.send({"type": "ping"})
    assert h.received()[-1]["type"] == "pong"


async def test_a_flood_past_the_grace_closes_4029() -> None:
    h = make_harness(max_messages_per_second=10, flood_grace=3)
    elapsed = 0.0
    while h.conn.disconnect is None and elapsed < 10:
        for _ in range(3):  # 30 messages/s against a limit of 10
            await h.send({"type": "ping"})
        h.clock.advance(0.1)
        elapsed += 0.1
    assert h.conn.disconnect is Disconnects.RATE_LIMITED
    assert h.conn.disconnect.code == 4029
    # The first drops come once the burst allowance (10) is spent, at ~0.5 s.
    assert 3.0 <= elapsed <= 4.0


# -- subscriptions, snapshots, ordering -------------------------------------------


async def test_subscribe_then_unsubscribe() -> None:
    h = make_harness()
    await h.send(
        {"type": "subscribe", "channels": [{"name": "quotes", "filters": {"symbol": "eurusd"}}]}
    )
    (ack,) = h.new()
    assert ack["channels"] == [
        {"name": "quotes", "subscribed": True, "filters": {"symbol": "EURUSD"}}
    ]
    h.publish(quote("EURUSD", 1.1))
    h.publish(quote("GBPUSD", 1.3))
    (live,) = h.new()
    assert live["data"] == {"symbol": "EURUSD", "bid": 1.1}
    assert (live["offset"], live["epoch"]) == (1, "e1")
    await h.send({"type": "unsubscribe", "channels": ["quotes"]})
    assert h.types() == ["unsubscription"]
    h.publish(quote("EURUSD", 1.2))
    assert h.new() == []
    assert h.hub.subscriber_count() == 0


async def test_a_user_never_gets_another_users_events() -> None:
    h = make_harness()
    await h.send({"type": "subscribe", "channels": ["orders"]})
    h.new()
    h.publish(order("bob", 1))
    h.publish(order("alice", 2))
    assert [m["data"]["n"] for m in h.new()] == [2]


async def test_live_events_published_during_a_snapshot_arrive_after_it() -> None:
    quotes = Quotes()
    quotes.snapshot_items = [{"symbol": "EURUSD", "bid": 1.0}]
    quotes.gate = asyncio.Event()
    h = make_harness(channels=[quotes, Orders()])
    task = asyncio.create_task(h.send({"type": "subscribe", "channels": ["quotes"]}))
    await quotes.snapshot_started.wait()
    h.publish(quote("EURUSD", 1.1))  # live, while the snapshot is still being read
    assert h.types() == ["subscription"]
    quotes.gate.set()
    await task
    snap, live = h.new()
    assert snap["data"] == {"symbol": "EURUSD", "bid": 1.0, "snapshot": True}
    assert live["data"] == {"symbol": "EURUSD", "bid": 1.1}
    assert live["offset"] == snap["offset"] + 1


async def test_market_data_held_during_a_snapshot_is_conflated_trading_is_not() -> None:
    quotes = Quotes()
    quotes.gate = asyncio.Event()
    h = make_harness(channels=[quotes, Orders()])
    await h.send({"type": "subscribe", "channels": ["orders"]})
    task = asyncio.create_task(h.send({"type": "subscribe", "channels": ["quotes"]}))
    await quotes.snapshot_started.wait()
    for i in range(100):
        h.publish(quote("EURUSD", 1 + i / 1000))
        if i % 40 == 0:
            h.publish(order("alice", i))
    quotes.gate.set()
    await task
    live = [m for m in h.received() if m["type"] in {"quote", "order"}]
    assert [m["data"]["n"] for m in live if m["type"] == "order"] == [0, 40, 80]
    assert [m["data"]["bid"] for m in live if m["type"] == "quote"] == [1.099]


async def test_since_replays_what_was_missed_in_the_sessions_dialect() -> None:
    h = make_harness()
    for n in range(1, 4):
        h.publish(order("alice", n))
    await h.send(
        {
            "type": "subscribe",
            "channels": [{"name": "orders", "since": {"offset": 1, "epoch": "e1"}}],
        }
    )
    ack, *replayed = h.new()
    assert ack["channels"][0]["recovered"] is True
    assert [(m["offset"], m["data"]["n"]) for m in replayed] == [(2, 2), (3, 3)]


async def test_closing_drops_subscriptions_and_timers() -> None:
    h = make_harness()
    await h.send({"type": "subscribe", "channels": ["orders", "quotes"]})
    assert h.hub.subscriber_count() == 2
    assert h.clock.pending() == 1  # the token's expiry
    h.session.close()
    assert h.hub.subscriber_count() == 0
    assert h.clock.pending() == 0


async def test_nothing_is_answered_once_the_session_has_kicked() -> None:
    h = make_harness(max_messages_per_second=10, flood_grace=3)
    h.conn.on_kick = None  # the transport has not run on_close yet
    h.session.disconnect(Disconnects.RATE_LIMITED)
    await h.send({"type": "ping"})
    assert h.new() == []
    h.session.disconnect(Disconnects.SLOW_CONSUMER)
    assert h.conn.kicks == [Disconnects.RATE_LIMITED]  # kicked once


# -- every VALIDATION_ERROR names its field (issue 6, item 10) --------------------


def sub(entry: object) -> dict[str, object]:
    return {"type": "subscribe", "channels": [entry]}


BAD_FRAMES = [
    ("not json", "{", "frame"),
    ("not an object", "[1, 2]", "frame"),
    ("binary", b"\x00\x01", "frame"),
    ("too large", '{"type":"ping","pad":"' + "x" * 70_000 + '"}', "frame"),
    ("unknown type", {"type": "jump"}, "type"),
    ("auth without token", {"type": "auth"}, "token"),
    ("no channels", {"type": "subscribe"}, "channels"),
    ("channel not a name", {"type": "subscribe", "channels": [3]}, "channels"),
    ("name not a string", {"type": "subscribe", "channels": [{"name": 3}]}, "name"),
    ("unknown key", {"type": "subscribe", "channels": [{"name": "quotes", "x": 1}]}, "x"),
    ("bad since", {"type": "subscribe", "channels": [{"name": "quotes", "since": 1}]}, "since"),
    ("unknown channel", {"type": "subscribe", "channels": ["nope"]}, "channels"),
    (
        "filters not an object",
        sub({"name": "quotes", "filters": 1}),
        "filters",
    ),
    (
        "unknown filter",
        sub({"name": "quotes", "filters": {"side": "buy"}}),
        "filters.side",
    ),
    (
        "bad filter value",
        sub({"name": "quotes", "filters": {"symbol": True}}),
        "filters.symbol",
    ),
    ("unsubscribe nothing", {"type": "unsubscribe", "channels": []}, "channels"),
    ("unsubscribe a number", {"type": "unsubscribe", "channels": [3]}, "channels"),
    ("unsubscribe unknown", {"type": "unsubscribe", "channels": ["nope"]}, "channels"),
]


@pytest.mark.parametrize(
    ("frame", "field"), [(f, n) for _, f, n in BAD_FRAMES], ids=[c for c, _, _ in BAD_FRAMES]
)
async def test_every_validation_error_names_its_field(frame: object, field: str) -> None:
    h = make_harness(max_message_size=65_536)
    await h.send(frame)
    err = last_error(h)
    assert err["code"] == "VALIDATION_ERROR", err
    details = err["details"]
    assert isinstance(details, dict), err
    assert details["field"] == field, err
    assert h.conn.disconnect is None  # a bad message never costs the connection
