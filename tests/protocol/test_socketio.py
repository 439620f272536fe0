"""Seed 002's dialect in memory: packets to commands, events to packets, the session's
stories in Socket.IO's words, the coalesced full lists and the resume book."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import Disconnects, ValidationError
from fxgate.domain.events import Event
from fxgate.domain.trading import Order, OrderType, Position, Side
from fxgate.hub.hub import Hub
from fxgate.hub.resume import ResumeBook
from fxgate.plugins.channel import Channel, Filter
from fxgate.protocol import socketio as sio
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.protocol.socketio_lists import ListFeeds
from fxgate.protocol.socketio_session import SocketIOSession
from tests.protocol.fakes import FakeClock, FakeConnection, Harness, make_harness


class MarketData(Channel):
    name = "market-data"
    message_type = "market_data"
    scope = "public"
    filters = {"symbol": Filter("symbol")}
    key_filter = "symbol"
    conflate = True
    history_size = 0


class Account(Channel):
    name = "account"
    message_type = "account"


class Positions(Channel):
    name = "positions"
    message_type = "position"


class Orders(Channel):
    name = "orders"
    message_type = "order"


def position(ticket: int, price: str = "1.085") -> Position:
    return Position(
        ticket=ticket,
        user_id="alice",
        symbol="EURUSD",
        side=Side.BUY,
        volume=Decimal("0.1"),
        open_price=Decimal("1.085"),
        current_price=Decimal(price),
        opened_at=1_700_000_000.0,
        updated_at=1_700_000_000.0,
        commission=Decimal("-0.7"),
        comment="RSI_Strategy",
    )


class FakeTrading:
    def __init__(self) -> None:
        self.open: list[Position] = []
        self.pending: list[Order] = []
        self.reads = 0

    async def positions(self, user_id: str, symbol: str | None = None) -> list[Position]:
        self.reads += 1
        return list(self.open)

    async def pending_orders(self, user_id: str) -> list[Order]:
        self.reads += 1
        return list(self.pending)


def decode(payload: bytes) -> dict[str, Any]:
    assert payload[:2] == b"42", payload
    name, data = json.loads(payload[2:])
    return {"type": name, "data": data}


def quote_event(symbol: str, bid: float) -> Event:
    data = {"symbol": symbol, "bid": bid, "ask": bid + 0.0001, "spread": 10}
    return Event("market-data", {**data, "timestamp": "t", "last": 1, "dayHigh": 2}, key=symbol)


def account_event(user: str, margin: float) -> Event:
    fields = dict.fromkeys(
        ("balance", "equity", "margin", "free_margin", "margin_level", "profit"), 0.0
    )
    return Event(
        "account", {**fields, "margin": margin, "currency": "USD", "leverage": 100}, user_id=user
    )


class World:
    """One hub, clock and resume book shared by every session a test opens."""

    def __init__(self) -> None:
        self.trading = FakeTrading()
        self.resume: ResumeBook | None = None
        self.lists: ListFeeds | None = None
        self.tasks: list[asyncio.Future[Any]] = []

    def factory(self, **kw: Any) -> SocketIOSession:
        hub: Hub = kw["hub"]
        clock: FakeClock = kw["clock"]
        if self.lists is None:
            self.lists = ListFeeds(
                hub,
                self.trading,
                clock,
                interval=1.0,
                spawn=self._spawn,  # type: ignore[arg-type]
            )
            self.resume = ResumeBook(hub, 120.0)
        settings: WsSettings = kw["settings"]
        return SocketIOSession(
            hub=hub,
            tokens=kw["tokens"],
            limits=settings,
            conn=kw["conn"],
            connection_rate=SlidingWindowCounter(100, clock=clock.time),
            timers=clock,
            clock=clock,
            lists=self.lists,
            resume=self.resume,
        )

    def _spawn(self, coro: Any) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def settle(self) -> None:
        while any(not t.done() for t in self.tasks):
            await asyncio.sleep(0)
        await asyncio.sleep(0)


def harness(world: World, **limits: Any) -> Harness:
    return make_harness(
        channels=[MarketData(), Account(), Positions(), Orders()],
        decode=decode,
        dialect=sio.SOCKETIO,
        session_factory=world.factory,
        **limits,
    )


def again(h: Harness, world: World) -> Harness:
    """A second connection of the same user on the same hub."""
    conn = FakeConnection(sio.SOCKETIO)
    session = world.factory(
        hub=h.hub, tokens=h.tokens, settings=h.settings, conn=conn, clock=h.clock
    )
    conn.on_kick = session.close
    session.start(h.tokens.claims(h.tokens.issue("alice")))
    return Harness(h.hub, h.clock, h.tokens, h.settings, conn, session, decode)


async def emit(h: Harness, name: str, data: Any = None) -> None:
    assert isinstance(h.session, SocketIOSession)
    await h.session.on_packet("2" + json.dumps([name, data]))


# -- codec ---------------------------------------------------------------------------


def test_events_carry_the_seed_fields_and_nothing_else() -> None:
    hub = Hub([MarketData(), Account(), Positions()], epoch="e")
    frames: list[bytes] = []

    class Sink:
        principal = make_harness().session.principal
        dialect = sio.SOCKETIO

        def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
            frames.append(frame)

        def kick(self, disconnect: object) -> None:
            pass

    sink = Sink()
    sub = hub.make_subscription(sink, "market-data", None)  # type: ignore[arg-type]
    hub.add(sub)
    hub.publish(quote_event("EURUSD", 1.085))
    (frame,) = frames
    assert frame.startswith(b'42["quotes",')
    assert decode(frame)["data"] == {
        "symbol": "EURUSD",
        "bid": 1.085,
        "ask": 1.0851,
        "spread": 10,
        "timestamp": "t",
    }
    ch = hub.channels["account"]
    env = {"data": account_event("u", 5.0).data}
    body = decode(sio.SOCKETIO.encode_event(ch, env) or b"")
    assert body["type"] == "account_update"
    assert list(body["data"]) == [
        "balance",
        "equity",
        "margin",
        "free_margin",
        "margin_level",
        "profit",
        "currency",
    ]
    # Lists are never sent per event.
    assert sio.SOCKETIO.encode_event(hub.channels["positions"], {"data": {}}) is None


def test_logs_and_signals_map_to_their_seed_events() -> None:
    class Logs(Channel):
        name = "logs"
        message_type = "log"

    class Signals(Channel):
        name = "signals"
        message_type = "signal"

    log = {"timestamp": "t", "level": "INFO", "message": "m", "module": "x", "extra": {}, "id": 1}
    out = decode(sio.SOCKETIO.encode_event(Logs(), {"data": log}) or b"")
    assert out == {"type": "logs_update", "data": {k: v for k, v in log.items() if k != "id"}}
    fields = sio.EVENTS["signals"][1]
    signal = {k: k for k in fields} | {"validators": [{"name": "AI"}], "internal": 1}
    out = decode(sio.SOCKETIO.encode_event(Signals(), {"data": signal}) or b"")
    assert out["type"] == "signals_update"
    assert list(out["data"]) == list(fields)


def test_lists_use_mt5_names() -> None:
    (item,) = decode(sio.positions_list([position(7, "1.0855")]))["data"]
    assert item == {
        "ticket": 7,
        "symbol": "EURUSD",
        "type": "buy",
        "volume": 0.1,
        "price_open": 1.085,
        "price_current": 1.0855,
        "sl": None,
        "tp": None,
        "profit": 0.0,
        "swap": 0.0,
        "commission": -0.7,
        "time": "2023-11-14T22:13:20.000Z",
        "comment": "RSI_Strategy",
    }
    stop = Order(
        id="o1",
        ticket=9,
        user_id="alice",
        symbol="GBPUSD",
        type=OrderType.STOP,
        side=Side.SELL,
        volume=Decimal("0.05"),
        created_at=1_700_000_000.0,
        updated_at=1_700_000_000.0,
        stop_price=Decimal("1.26"),
        take_profit=Decimal("1.25"),
    )
    (item,) = decode(sio.orders_list([stop]))["data"]
    assert item["type"] == "sell_stop"
    assert (item["price_open"], item["tp"], item["state"]) == (1.26, 1.25, "pending")
    assert list(item) == list(sio.order_item(stop))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"2[]", "Binary packets are not supported; send JSON"),
        ('2["subscribe"', "Invalid Socket.IO packet"),
        ("2{}", "An event needs a name"),
        ('2["subscribe",{"channels":[]}]', "Invalid subscription"),
        ('2["subscribe",{"channels":[1]}]', "Invalid subscription"),
        ('2["unsubscribe"]', "Invalid unsubscription"),
        ('2["order",{}]', "Unknown event"),
        ('2/admin,["subscribe",{}]', "Unknown namespace"),
        ('51-["subscribe",{"_placeholder":true,"num":0}]', "Binary events are not supported"),
        ('3["x"]', "Unexpected packet"),
    ],
)
def test_malformed_packets_are_validation_errors(raw: str | bytes, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        sio.parse(raw)
    assert info.value.message.startswith(message)


def test_client_packets_become_commands() -> None:
    assert sio.parse('0{"token":"t"}') == sio.Connect("/", {"token": "t"})
    assert sio.token_of(sio.parse('0{"token":"t"}').auth) == "t"  # type: ignore[union-attr]
    assert sio.parse("0") == sio.Connect("/", None)
    assert sio.parse("1") == sio.Leave()
    assert sio.parse('2["subscribe",{"channels":["quotes"]}]') == sio.Subscribe(("quotes",))
    assert sio.parse('2["heartbeat",{"timestamp":5}]') == sio.Heartbeat(5)
    assert sio.parse('2["heartbeat"]') == sio.Heartbeat(None)
    assert sio.connect_error(ValidationError("x", field="f")).startswith(b'44{"message":"x"')


# -- the session -----------------------------------------------------------------------


async def test_subscribe_answers_with_seed_names_then_lists() -> None:
    world = World()
    world.trading.open = [position(1)]
    h = harness(world)
    assert decode(h.conn.received[0])["type"] == "connected"
    await emit(h, "subscribe", {"channels": ["quotes", "positions", "orders", "nope"]})
    msgs = h.new()
    assert [m["type"] for m in msgs] == ["error", "subscribed", "positions_update", "orders_update"]
    assert msgs[0]["data"]["code"] == "VALIDATION_ERROR"
    assert msgs[0]["data"]["context"]["channel"] == "nope"
    assert msgs[1]["data"] == {"channels": ["quotes", "positions", "orders"]}
    assert [p["ticket"] for p in msgs[2]["data"]] == [1]
    h.publish(quote_event("EURUSD", 1.1))
    assert h.types() == ["quotes"]
    await emit(h, "unsubscribe", {"channels": ["quotes", "positions"]})
    assert h.new() == [{"type": "unsubscribed", "data": {"channels": ["quotes", "positions"]}}]
    h.publish(quote_event("EURUSD", 1.2))
    assert h.types() == []


async def test_heartbeat_echoes_the_timestamp() -> None:
    h = harness(World())
    h.new()
    await emit(h, "heartbeat", {"timestamp": 1704067200000})
    (ack,) = h.new()
    assert ack["type"] == "heartbeat_ack"
    assert ack["data"]["timestamp"] == 1704067200000


async def test_limits_are_the_canonical_sessions() -> None:
    h = harness(World(), max_subscriptions=2, max_messages_per_second=5)
    h.new()
    await emit(h, "subscribe", {"channels": ["quotes", "positions", "orders"]})
    errors = [m["data"] for m in h.new() if m["type"] == "error"]
    assert [e["code"] for e in errors] == ["RATE_LIMIT_ERROR"]
    assert errors[0]["error"] == "Too many subscriptions"
    h.clock.advance(1)
    for i in range(8):
        await emit(h, "heartbeat", {"timestamp": i})
    msgs = h.new()
    assert [m["type"] for m in msgs].count("heartbeat_ack") == 5
    assert [m["data"]["code"] for m in msgs if m["type"] == "error"] == ["RATE_LIMIT_ERROR"]
    assert h.conn.disconnect is None


async def test_token_expiry_kicks_with_the_tables_disconnect() -> None:
    h = harness(World())
    h.clock.advance(901)
    assert h.conn.disconnect is Disconnects.TOKEN_EXPIRED
    assert h.session.closed


async def test_lists_are_built_once_per_user_and_window() -> None:
    world = World()
    world.trading.open = [position(1)]
    a = harness(world)
    await emit(a, "subscribe", {"channels": ["positions"]})
    b = again(a, world)
    assert isinstance(b.session, SocketIOSession)
    await b.session.subscribe_seed(("positions",))
    reads = world.trading.reads
    a.new()
    b.new()
    for i in range(20):  # prices move: a revaluation per tick
        world.trading.open = [position(1, f"1.08{50 + i}")]
        a.publish(Event("positions", {"ticket": 1}, user_id="alice"))
        a.clock.advance(0.01)
        await world.settle()
    # The first change went out at once, to both connections, from one read.
    assert world.trading.reads == reads + 1
    assert [m["type"] for m in a.new()] == ["positions_update"]
    assert [m["type"] for m in b.new()] == ["positions_update"]
    a.clock.advance(1.0)
    await world.settle()
    (last,) = a.new()
    assert last["data"][0]["price_current"] == 1.0869
    assert [m["data"] for m in b.new()] == [last["data"]]
    assert world.trading.reads == reads + 2


async def test_a_reconnect_gets_the_missed_events_replayed() -> None:
    world = World()
    h = harness(world)
    await emit(h, "subscribe", {"channels": ["account"]})
    h.publish(account_event("alice", 1.0))
    assert [m["data"]["margin"] for m in h.new() if m["type"] == "account_update"] == [1.0]
    acks = h.session.acks
    assert acks is not None
    acks.pong(acks.ping())  # an Engine.IO ping written after it, answered: it was read
    h.session.close()
    h.publish(account_event("alice", 2.0))
    h.publish(account_event("alice", 3.0))
    h.clock.advance(60)
    h2 = again(h, world)
    await emit(h2, "subscribe", {"channels": ["account"]})
    msgs = h2.new()
    assert msgs[1] == {
        "type": "subscribed",
        "data": {"channels": ["account"], "recovered": ["account"]},
    }
    assert [m["data"]["margin"] for m in msgs[2:]] == [2.0, 3.0]


async def test_a_dropped_connection_replays_from_its_last_pong() -> None:
    """What was written after the last answered ping may never have arrived (a dead
    network): it is replayed too; before any pong, from right after the snapshot."""
    world = World()
    h = harness(world)
    await emit(h, "subscribe", {"channels": ["account"]})
    h.publish(account_event("alice", 1.0))
    h.session.close()
    h.publish(account_event("alice", 2.0))
    h2 = again(h, world)
    await emit(h2, "subscribe", {"channels": ["account"]})
    margins = [m["data"]["margin"] for m in h2.new() if m["type"] == "account_update"]
    assert margins == [1.0, 2.0]


async def test_no_replay_after_the_window_or_with_nothing_missed() -> None:
    world = World()
    h = harness(world)
    await emit(h, "subscribe", {"channels": ["account"]})
    h.session.close()
    h.publish(account_event("alice", 2.0))
    h.clock.advance(121)
    h2 = again(h, world)
    await emit(h2, "subscribe", {"channels": ["account"]})
    assert h2.new()[1] == {"type": "subscribed", "data": {"channels": ["account"]}}


def test_the_resume_book_marks_when_the_last_connection_closes() -> None:
    hub = Hub([Account(), Positions(), MarketData()], epoch="e1")
    book = ResumeBook(hub, window=120)
    assert sorted(book.resumable()) == ["account", "positions"]
    hub.publish(account_event("u", 1.0))
    book.opened("u")
    book.opened("u")
    book.closed("u", 10.0)
    assert book.since("u", "account", 11.0) is None  # another connection is still open
    book.closed("u", 20.0)
    hub.publish(account_event("u", 2.0))
    assert book.since("u", "account", 30.0) == (1, "e1")
    assert book.since("u", "account", 30.0) is None  # used once
    assert book.since("u", "positions", 30.0) == (0, "e1")
    book.opened("u")
    book.closed("u", 40.0)
    assert book.since("u", "account", 161.0) is None  # past the window
    assert len(book) == 0


async def test_an_acknowledgement_callback_gets_the_answer_too() -> None:
    assert sio.parse('21["heartbeat",{"timestamp":5}]') == sio.Heartbeat(5, 1)
    h = harness(World())
    assert isinstance(h.session, SocketIOSession)
    await h.session.on_packet('27["subscribe",{"channels":["quotes","nope"]}]')
    await h.session.on_packet('28["unsubscribe",{"channels":["quotes"]}]')
    await h.session.on_packet('29["heartbeat",{"timestamp":5}]')
    acks = [p for p in h.conn.received if p.startswith(b"43")]
    assert [p[:3] for p in acks] == [b"437", b"438", b"439"]
    assert json.loads(acks[0][3:]) == [{"channels": ["quotes"]}]
    assert json.loads(acks[1][3:]) == [{"channels": ["quotes"]}]
    assert json.loads(acks[2][3:])[0]["timestamp"] == 5
