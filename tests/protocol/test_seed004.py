"""Seed 004's dialects in memory: client frame -> command, event -> message, the sessions
over the real hub and the real channel plugins, with a fake connection and clock."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import pytest
from fxgate_plugins.market_data import MarketDataChannel
from fxgate_plugins.market_trades import MarketTradesChannel
from fxgate_plugins.orderbook import OrderBookChannel
from fxgate_plugins.orders import OrdersChannel

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import AuthenticationError, Disconnects, ValidationError
from fxgate.domain.events import Event
from fxgate.domain.market import DEFAULT_SYMBOLS, MarketTrade, Quote
from fxgate.domain.roles import Role
from fxgate.domain.symbols import SymbolNames
from fxgate.domain.trading import (
    BookLevel,
    Order,
    OrderBook,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    order_id_for,
)
from fxgate.hub.hub import Hub
from fxgate.plugins.channel import Channel, Principal
from fxgate.protocol.canonical import load_object
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.protocol.seed004 import common
from fxgate.protocol.seed004 import market_wire as mwire
from fxgate.protocol.seed004 import trading_wire as twire
from fxgate.protocol.seed004.market_session import MarketDataSession
from fxgate.protocol.seed004.trading_session import TradingSession
from fxgate.services.auth.tokens import Claims
from tests.protocol.fakes import FakeClock, FakeConnection

NAMES = SymbolNames(DEFAULT_SYMBOLS)
T0 = 1_800_000_000.0


def btc(bid: float, volume: int = 3) -> Quote:
    return Quote("BTCUSD", bid, bid + 35, bid, volume, 3500, T0, 94000.0, 96000.0, 93000.0,
                 94500.0, bid - 94500.0, 0.5)  # fmt: skip


class FakeMarket:
    symbols = [s.symbol for s in DEFAULT_SYMBOLS]

    def __init__(self) -> None:
        self.quotes = {"BTCUSD": btc(95000.0)}

    def latest(self, symbols: Iterable[str] | None = None) -> list[Quote]:
        names = self.symbols if symbols is None else symbols
        return [self.quotes[s] for s in names if s in self.quotes]

    async def order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        q = self.quotes[symbol]
        return book(Decimal(str(q.bid)), Decimal(str(q.ask)))


def book(bid: Decimal, ask: Decimal) -> OrderBook:
    return OrderBook(
        "BTCUSD",
        (BookLevel(bid, Decimal(10)), BookLevel(bid - 35, Decimal(10))),
        (BookLevel(ask, Decimal(10)), BookLevel(ask + 35, Decimal(10))),
        T0,
    )


class FakeTrading:
    async def pending_orders(self, user_id: str) -> list[Order]:
        return []


class Counting:
    """Wraps an encoder and counts its calls: one per event per form, not per client."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def encode_event(self, channel: Channel, envelope: Any) -> bytes | None:
        self.calls += 1
        result: bytes | None = self.inner.encode_event(channel, envelope)
        return result


class Sink:
    """A second face of a fake connection (the transport's FormSink)."""

    def __init__(self, conn: FakeConnection, dialect: Any) -> None:
        self.principal = conn.principal
        self.dialect = dialect
        self.deliver = conn.deliver
        self.kick = conn.kick


def decode(payloads: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(p) for p in payloads]


def hub() -> Hub:
    market = FakeMarket()
    return Hub(
        [
            MarketDataChannel(market),
            MarketTradesChannel(market),
            OrderBookChannel(market),
            OrdersChannel(FakeTrading()),  # type: ignore[arg-type]
        ],
        epoch="e1",
    )


def market_client(
    h: Hub, encoders: dict[bool, Any], clock: FakeClock | None = None, **limits: Any
) -> tuple[MarketDataSession, FakeConnection]:
    conn = FakeConnection(encoders[False])
    session = MarketDataSession(
        hub=h,
        limits=WsSettings(**limits),
        conn=conn,
        timers=clock or FakeClock(),
        names=NAMES,
        known=frozenset(FakeMarket.symbols),
        sinks={False: conn, True: Sink(conn, encoders[True])},  # type: ignore[dict-item]
        encoders={f: e.inner if isinstance(e, Counting) else e for f, e in encoders.items()},
    )
    conn.on_kick = session.close
    session.start(None, Principal("", Role.VIEWER, "anonymous"))
    return session, conn


def encoders() -> dict[bool, Any]:
    table = NAMES.table()
    return {f: Counting(mwire.MarketDataDialect(slashed=f, names=table)) for f in (False, True)}


# -- parsing ---------------------------------------------------------------------------


def parse_market(frame: str | bytes) -> mwire.Command:
    msg = load_object(frame)
    return mwire.parse(msg, common.request_id(msg))


def test_symbols_map_both_ways() -> None:
    assert NAMES.resolve("BTC/USD") == ("BTCUSD", True)
    assert NAMES.resolve("btc/usd") == ("BTCUSD", True)
    assert NAMES.resolve("ETHUSD") == ("ETHUSD", False)
    assert NAMES.resolve("DOGE/USD") == ("DOGEUSD", True)
    assert NAMES.slashed("EURUSD") == "EUR/USD"


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ('{"type": "subscribe"', "frame"),
        (b"\x01", "frame"),
        ("[1]", "frame"),
        ('{"type": "wave"}', "type"),
        ('{"type": "subscribe", "channel": "news", "symbol": "X"}', "channel"),
        ('{"type": "subscribe", "channel": {"a": 1}, "symbol": "X"}', "channel"),
        ('{"type": "subscribe", "channel": "quotes", "symbol": 7}', "symbol"),
        ('{"type": "subscribe", "channel": "quotes", "symbol": "X", "id": [1]}', "id"),
    ],
)
def test_bad_market_frames_name_the_field(frame: str | bytes, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_market(frame)
    assert info.value.details["field"] == field


def test_an_order_frame_becomes_a_command_with_exact_decimals() -> None:
    msg = load_object(
        '{"type":"place_order","id":7,"order":{"symbol":"BTC/USD","side":"BUY",'
        '"type":"limit","quantity":0.1,"price":43000.10}}'
    )
    cmd = twire.parse(msg, common.request_id(msg))
    assert isinstance(cmd, twire.PlaceOrder)
    assert (cmd.quantity, cmd.price, cmd.side, cmd.rid) == (
        Decimal("0.1"), Decimal("43000.1"), "buy", "7",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("order", "field"),
    [
        ({"side": "buy", "type": "market", "quantity": 1}, "symbol"),
        ({"symbol": "BTCUSD", "side": "buy", "type": "market"}, "quantity"),
        ({"symbol": "BTCUSD", "side": "buy", "type": "market", "quantity": -1}, "quantity"),
        ({"symbol": "BTCUSD", "side": "buy", "type": "market", "quantity": True}, "quantity"),
        ({"symbol": "BTCUSD", "side": "hold", "type": "market", "quantity": 1}, "side"),
        ({"symbol": "BTCUSD", "side": "buy", "type": "iceberg", "quantity": 1}, "type"),
        ({"symbol": "BTCUSD", "side": "buy", "type": "limit", "quantity": 1}, "price"),
        ({"symbol": "BTCUSD", "side": "buy", "type": "market", "quantity": 1, "price": 1}, "price"),
        ({"symbol": "BTCUSD", "side": "buy", "type": "market", "quantity": 1, "x": 1}, "x"),
    ],
)
def test_bad_orders_name_the_field(order: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        twire.parse({"type": "place_order", "order": order})
    assert info.value.details["field"] == field


# -- /ws/market-data -------------------------------------------------------------------


async def test_quotes_are_answered_in_the_form_asked_and_encoded_once_per_form() -> None:
    h, enc = hub(), encoders()
    clients = [market_client(h, enc) for _ in range(3)]
    for i, (session, conn) in enumerate(clients):
        symbol = "BTCUSD" if i == 0 else "BTC/USD"
        await session.on_message(json.dumps({"type": "subscribe", "channel": "quotes",
                                             "symbol": symbol, "id": i}))  # fmt: skip
        ack, snap = decode(conn.received)[1:]
        assert (ack["type"], ack["symbol"], ack["id"]) == ("subscribed", symbol, str(i))
        assert snap["type"] == "quote"
        assert snap["snapshot"] is True
        assert snap["data"]["symbol"] == symbol
        conn.received.clear()
    before = (enc[False].calls, enc[True].calls)
    h.publish(Event("market-data", btc(95100.0), key="BTCUSD", ts=T0))
    assert (enc[False].calls, enc[True].calls) == (before[0] + 1, before[1] + 1)
    got = [decode(conn.received) for _, conn in clients]
    assert [m[0]["symbol"] for m in got] == ["BTCUSD", "BTC/USD", "BTC/USD"]
    data = got[1][0]["data"]
    assert data["price"] == 95100.0
    assert (data["bid"], data["ask"], data["volume"]) == (95100.0, 95135.0, 3)
    assert {"change", "changePercent", "timestamp"} <= set(data)


async def test_order_book_snapshot_then_updates_and_unsubscribe_stops_them() -> None:
    h, enc = hub(), encoders()
    session, conn = market_client(h, enc)
    await session.on_message('{"type":"subscribe","channel":"orderbook","symbol":"BTC/USD"}')
    snap = decode(conn.received)[-1]
    assert (snap["type"], snap["action"], snap["symbol"]) == ("orderbook", "snapshot", "BTC/USD")
    assert snap["data"]["bids"][0] == [95000.0, 10.0]
    assert snap["data"]["asks"][0] == [95035.0, 10.0]
    conn.received.clear()
    h.publish(Event("orderbook", book(Decimal("95100"), Decimal("95135")), key="BTCUSD"))
    [update] = decode(conn.received)
    assert (update["action"], update["data"]["bids"][0]) == ("update", [95100.0, 10.0])
    conn.received.clear()
    await session.on_message('{"type":"unsubscribe","channel":"orderbook","symbol":"BTCUSD"}')
    assert decode(conn.received)[-1]["type"] == "unsubscribed"
    conn.received.clear()
    h.publish(Event("orderbook", book(Decimal("95200"), Decimal("95235")), key="BTCUSD"))
    assert conn.received == []
    assert not h.has_subscribers("orderbook", "BTCUSD")


async def test_the_tape_and_the_limits() -> None:
    h, enc = hub(), encoders()
    session, conn = market_client(h, enc, max_subscriptions=2)
    for channel in ("trades", "quotes", "orderbook"):
        await session.on_message(json.dumps({"type": "subscribe", "channel": channel,
                                             "symbol": "BTC/USD", "id": channel}))  # fmt: skip
    last = decode(conn.received)[-1]
    assert (last["type"], last["code"], last["id"]) == ("error", "RATE_LIMIT_ERROR", "orderbook")
    conn.received.clear()
    h.publish(Event("market-trades", MarketTrade("BTCUSD", 95035.0, 0.03, "buy", T0, "BTCUSD-1"),
                    key="BTCUSD"))  # fmt: skip
    [trade] = decode(conn.received)
    assert trade["type"] == "trade"
    assert trade["data"] == {"id": "BTCUSD-1", "symbol": "BTC/USD", "price": 95035.0,
                             "quantity": 0.03, "side": "buy",
                             "timestamp": trade["data"]["timestamp"]}  # fmt: skip
    session.disconnect(Disconnects.SHUTDOWN, notice=b'{"type":"system"}')
    notice = decode(conn.received)[-1]
    assert notice["type"] == "shutdown"  # seed 004's own notice, not the canonical one
    assert conn.disconnect is Disconnects.SHUTDOWN
    assert h.subscriber_count() == 0


async def test_a_flood_is_told_then_closed_with_4029() -> None:
    clock = FakeClock()
    session, conn = market_client(hub(), encoders(), clock, max_messages_per_second=5)
    for _ in range(6):
        await session.on_message('{"type":"ping"}')
    assert [m["type"] for m in decode(conn.received)[1:]] == ["pong"] * 5 + ["error"]
    for _ in range(60):
        await session.on_message('{"type":"ping"}')
    assert conn.disconnect is Disconnects.RATE_LIMITED


def test_refused_without_token_when_anonymous_is_off() -> None:
    conn = FakeConnection(encoders()[False])
    session = MarketDataSession(
        hub=hub(), limits=WsSettings(), conn=conn, timers=FakeClock(), names=NAMES,
        known=frozenset(), sinks={False: conn}, encoders={},
    )  # fmt: skip
    session.refuse()
    assert decode(conn.received)[0]["code"] == "AUTHENTICATION_ERROR"
    assert conn.disconnect is Disconnects.AUTH_FAILED


# -- /ws/trading -----------------------------------------------------------------------


class User:
    id, role, tier = "ann", "trader", "free"


class FakeAuth:
    def __init__(self) -> None:
        self.seen: set[str] = set()

    async def verify_api_key(self, api_key: str, signature: str, timestamp: int, *,
                             ip: str = "", via: str = "") -> User:  # fmt: skip
        if signature != "good" or signature + str(timestamp) in self.seen:
            raise AuthenticationError("Invalid API key or signature")
        self.seen.add(signature + str(timestamp))
        return User()


class FakeDesk:
    def __init__(self) -> None:
        self.requests: list[OrderRequest] = []

    async def place_order(self, user_id: str, request: OrderRequest, *,
                          actor: str | None = None) -> tuple[Order, bool]:  # fmt: skip
        self.requests.append(request)
        return order(request.symbol, OrderStatus.PENDING), True

    async def cancel_order(self, user_id: str, order_id: str, *, actor: str | None = None) -> Order:
        return order("BTCUSD", OrderStatus.CANCELLED)


def order(symbol: str, status: OrderStatus) -> Order:
    return Order(order_id_for(7), 7, "ann", symbol, OrderType.LIMIT, Side.BUY, Decimal(1), T0, T0,
                 price=Decimal(43000), status=status)  # fmt: skip


def trading_client(
    hub_: Hub | None = None, resume: Any = None
) -> tuple[TradingSession, FakeConnection, FakeClock, FakeDesk, list[bool]]:
    table = NAMES.table()
    enc = {f: twire.TradingDialect(slashed=f, names=table) for f in (False, True)}
    conn = FakeConnection(enc[True])
    clock, desk, forms = FakeClock(), FakeDesk(), []
    session = TradingSession(
        hub=hub_ or hub(), limits=WsSettings(auth_timeout=10), conn=conn, timers=clock, names=NAMES,
        specs={s.symbol: s for s in DEFAULT_SYMBOLS}, auth=FakeAuth(), desk=desk,
        connection_rate=SlidingWindowCounter(10, clock=clock.time), encoders=enc,
        use_form=forms.append, clock=clock, resume=resume,
    )  # fmt: skip
    conn.on_kick = session.close
    session.start()
    return session, conn, clock, desk, forms


async def test_login_order_cancel_and_updates_for_that_user_only() -> None:
    session, conn, _clock, desk, forms = trading_client()
    await session.on_message('{"type":"place_order","id":"x","order":{}}')
    assert decode(conn.received)[-1]["code"] == "AUTHENTICATION_ERROR"
    await session.on_message(
        '{"type":"auth","api_key":"k","signature":"good","timestamp":1,"id":"a"}'
    )
    assert decode(conn.received)[-1] == {**decode(conn.received)[-1], "type": "auth", "id": "a",
                                         "status": "success", "userId": "ann"}  # fmt: skip
    frame = {"type": "place_order", "id": "o", "order": {"symbol": "BTC/USD", "side": "buy",
             "type": "limit", "quantity": 1.0, "price": 43000.00}}  # fmt: skip
    await session.on_message(json.dumps(frame))
    placed = decode(conn.received)[-1]
    assert (placed["type"], placed["id"], placed["data"]["symbol"]) == (
        "order_placed",
        "o",
        "BTC/USD",
    )
    assert desk.requests[0].symbol == "BTCUSD"
    assert desk.requests[0].price == Decimal("43000.0")
    await session.on_message('{"type":"cancel_order","id":"c","orderId":"ord_7"}')
    assert decode(conn.received)[-1]["data"]["status"] == "cancelled"
    # The user's order events arrive as order_update; another user's never do.
    session.hub.publish(Event("orders", order("BTCUSD", OrderStatus.FILLED), user_id="ann"))
    session.hub.publish(Event("orders", order("BTCUSD", OrderStatus.FILLED), user_id="bob"))
    updates = [m for m in decode(conn.received) if m["type"] == "order_update"]
    assert len(updates) == 1
    assert updates[0]["data"]["status"] == "filled"
    # An order written BTCUSD switches the connection's form.
    frame["order"]["symbol"] = "BTCUSD"  # type: ignore[index]
    await session.on_message(json.dumps(frame))
    assert decode(conn.received)[-1]["data"]["symbol"] == "BTCUSD"
    assert forms == [False]


async def test_a_bad_or_late_login_closes_with_4001() -> None:
    session, conn, clock, _desk, _forms = trading_client()
    await session.on_message('{"type":"auth","api_key":"k","signature":"bad","timestamp":1}')
    assert decode(conn.received)[-1]["code"] == "AUTHENTICATION_ERROR"
    assert conn.disconnect is Disconnects.AUTH_FAILED
    _session, conn, clock, _desk, _forms = trading_client()
    clock.advance(11)
    assert conn.disconnect is Disconnects.AUTH_TIMEOUT


def test_a_token_clients_market_data_ends_with_its_token() -> None:
    clock = FakeClock()
    enc = encoders()
    conn = FakeConnection(enc[False])
    session = MarketDataSession(
        hub=hub(), limits=WsSettings(), conn=conn, timers=clock, names=NAMES,
        known=frozenset(), sinks={False: conn}, encoders={},
    )  # fmt: skip
    claims = Claims("ann", Role.VIEWER, "free", int(clock.now), int(clock.now) + 60, "j", "k")
    session.start(claims, Principal("ann", Role.VIEWER), clock=clock)
    assert decode(conn.received)[0]["authenticated"] is True
    clock.advance(59)
    assert conn.disconnect is None
    clock.advance(2)
    assert conn.disconnect is Disconnects.TOKEN_EXPIRED


class Marks:
    """A ResumeBook stand-in: the offsets of the user's streams at the last close."""

    def __init__(self, h: Hub) -> None:
        self.hub = h
        self.at: dict[tuple[str, str], int] = {}

    def opened(self, user_id: str, conn: Any = None) -> None:
        pass

    def began(self, conn: Any) -> None:
        pass

    def closed(
        self,
        user_id: str,
        now: float,
        acked: Mapping[str, tuple[int, str]] | None = None,
        conn: Any = None,
    ) -> None:
        # The heads, whatever was acknowledged (fxgate.hub.acks has tests of its own).
        stream = self.hub.streams.find("orders", user_id)
        self.at[("orders", user_id)] = stream.offset if stream else 0

    def positions(self, user_id: str) -> dict[str, tuple[int, str]]:
        return {"orders": self.hub.position("orders", user_id)}

    async def load(self, user_id: str, now: float) -> None:
        return None  # one process: nothing shared to bring in

    def since(self, user_id: str, channel: str, now: float) -> tuple[int, str] | None:
        offset = self.at.get((channel, user_id))
        return None if offset is None else (offset, self.hub.epoch)


async def test_a_reconnect_replays_what_the_user_missed_after_the_login_answer() -> None:
    login = '{"type":"auth","api_key":"k","signature":"good","timestamp":%d}'
    h = hub()
    marks = Marks(h)  # the resume book the transport gives every trading session
    first, *_ = trading_client(hub_=h, resume=marks)
    await first.on_message(login % 1)
    first.hub.publish(Event("orders", order("BTCUSD", OrderStatus.PENDING), user_id="ann"))
    first.close()
    first.hub.publish(Event("orders", order("BTCUSD", OrderStatus.FILLED), user_id="ann"))
    first.hub.publish(Event("orders", order("BTCUSD", OrderStatus.CANCELLED), user_id="bob"))
    second, conn2, *_ = trading_client(hub_=h, resume=marks)
    await second.on_message(login % 2)
    got = decode(conn2.received)
    assert [m["type"] for m in got] == ["auth", "order_update"]
    assert got[1]["data"]["status"] == "filled"  # missed while away; bob's never
