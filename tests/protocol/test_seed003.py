"""Seed 003's ``/ws`` dialect in memory: the real hub and channel plugins, no sockets.

The stories of tests/protocol/test_session.py that differ for ``/ws`` (its auth reply,
its own streams without a subscribe, subscriptions by channel and symbols, its errors
and its shutdown notice), told with seed 003's frames.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import pytest
from fxgate_plugins.account import AccountChannel
from fxgate_plugins.market_data import MarketDataChannel
from fxgate_plugins.news import NewsChannel
from fxgate_plugins.orders import OrdersChannel
from fxgate_plugins.positions import PositionsChannel
from fxgate_plugins.signals import SignalsChannel

from fxgate.domain.errors import CloseCode, Disconnects
from fxgate.domain.events import Event
from fxgate.domain.market import Quote
from fxgate.domain.signals import parse_signal
from fxgate.domain.trading import (
    Account,
    AccountMode,
    Deal,
    Order,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Side,
    order_id_for,
)
from fxgate.plugins.channel import Channel
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.protocol.seed003.events import Seed003Dialect, signal_reasoning, signal_side
from fxgate.protocol.seed003.session import Seed003Session
from tests.protocol.fakes import FakeClock, FakeConnection, Harness, make_harness

NOW = 1_800_000_000.0

PRICE_FIELDS = {"symbol", "bid", "ask", "last", "change", "changePercent", "volume", "timestamp"}
ORDER_FIELDS = {"id", "symbol", "status", "filledQuantity", "averagePrice", "updatedAt"}
POSITION_FIELDS = {"id", "symbol", "quantity", "currentPrice", "unrealizedPnL", "updatedAt"}
PORTFOLIO_FIELDS = {"totalValue", "availableBalance", "unrealizedPnL", "dayPnL", "updatedAt"}
NEWS_FIELDS = {"id", "title", "content", "source", "impact", "symbols", "publishedAt"}
SIGNAL_FIELDS = {"symbol", "signal", "confidence", "reasoning", "price", "generatedAt"}


def quote(symbol: str, bid: float, spread: float = 0.0002) -> Quote:
    return Quote(
        symbol, bid, round(bid + spread, 5), bid, 1200, 20, NOW, bid, bid, bid, bid - 0.01,
        0.01, 0.9,
    )  # fmt: skip


def order(user: str, ticket: int, status: OrderStatus = OrderStatus.PENDING) -> Order:
    filled = status is OrderStatus.FILLED
    return Order(
        id=order_id_for(ticket),
        ticket=ticket,
        user_id=user,
        symbol="EURUSD",
        type=OrderType.LIMIT,
        side=Side.BUY,
        volume=Decimal("0.10"),
        created_at=NOW - 60,
        updated_at=NOW - 5,
        price=Decimal("1.08"),
        status=status,
        filled_volume=Decimal("0.10") if filled else Decimal(0),
        average_price=Decimal("1.0801") if filled else None,
    )


def position(user: str, ticket: int, status: PositionStatus = PositionStatus.OPEN) -> Position:
    return Position(
        ticket=ticket,
        user_id=user,
        symbol="EURUSD",
        side=Side.BUY,
        volume=Decimal("0.10"),
        open_price=Decimal("1.08"),
        current_price=Decimal("1.0812"),
        opened_at=NOW - 60,
        updated_at=NOW - 1,
        profit=Decimal("12.00"),
        status=status,
    )


def account(user: str) -> Account:
    return Account(
        user_id=user,
        currency="USD",
        leverage=100,
        mode=AccountMode.HEDGING,
        balance=Decimal("10000"),
        equity=Decimal("10012"),
        created_at=NOW - 3600,
        updated_at=NOW - 1,
        day_start="2027-01-15",
        day_start_equity=Decimal("9990"),
        margin=Decimal("108"),
        free_margin=Decimal("9904"),
        profit=Decimal("12"),
    )


class FakeMarket:
    def __init__(self) -> None:
        self.quotes = {q.symbol: q for q in (quote("EURUSD", 1.08), quote("GBPUSD", 1.26))}

    @property
    def symbols(self) -> list[str]:
        return sorted(self.quotes)

    def latest(self, symbols: Iterable[str] | None = None) -> list[Quote]:
        names = self.symbols if symbols is None else symbols
        return [self.quotes[s] for s in names if s in self.quotes]


class FakeTrading:
    """One trader's state: a pending order, an open position, the account."""

    def __init__(self) -> None:
        self.orders: dict[str, list[Order]] = {}
        self.positions_: dict[str, list[Position]] = {}
        self.accounts: dict[str, Account] = {}

    def seed(self, user: str) -> None:
        self.orders[user] = [order(user, 0x101)]
        self.positions_[user] = [position(user, 0x100)]
        self.accounts[user] = account(user)

    async def account(self, user_id: str) -> Account:
        return self.accounts.setdefault(user_id, account(user_id))

    async def positions(self, user_id: str, symbol: str | None = None) -> list[Position]:
        return list(self.positions_.get(user_id, []))

    async def pending_orders(self, user_id: str) -> list[Order]:
        return list(self.orders.get(user_id, []))

    async def deals(self, user_id: str) -> list[Deal]:
        return []

    def latest_account(self, user_id: str) -> Account | None:
        return self.accounts.get(user_id)

    def open_position(self, user_id: str, ticket: int) -> Position | None:
        return None


def signal(symbol: str = "EURUSD", **extra: Any) -> dict[str, Any]:
    """A seed 002 signal, as the ``signals`` channel checks and publishes it."""
    return parse_signal(
        {
            "uuid": "sig-1",
            "symbol": symbol,
            "side": "buy",
            "volume": 0.1,
            "tp": 1.09,
            "sl": 1.07,
            "source": "rsi-strategy",
            "confidence": 0.82,
            "timestamp": "2027-01-15T08:00:00Z",
            "validators": [
                {"name": "trend", "type": "strategy", "approved": True, "confidence": 0.9,
                 "reason": "EMA 50 above EMA 200"},
                {"name": "rsi", "type": "ai", "approved": True, "confidence": 0.8,
                 "reason": "RSI 28, oversold"},
            ],
            "status": "approved",
            **extra,
        }
    )  # fmt: skip


def seed003_session(**kw: Any) -> Seed003Session:
    settings = kw.pop("settings")
    clock: FakeClock = kw.pop("clock")
    rate = kw.pop("connection_rate", None) or SlidingWindowCounter(
        settings.connections_per_minute, clock=clock.time
    )
    return Seed003Session(
        limits=settings,
        connection_rate=rate,
        timers=clock,
        clock=clock,
        **kw,
    )


def decode(payload: bytes) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(payload)
    return msg


def channels(trading: FakeTrading, market: FakeMarket) -> list[Channel]:
    return [
        MarketDataChannel(market),
        OrdersChannel(trading),
        PositionsChannel(trading),
        AccountChannel(trading),
        NewsChannel(),
        SignalsChannel(None),  # no store: an empty snapshot
    ]


def harness(
    trading: FakeTrading | None = None, **limits: Any
) -> tuple[Harness, FakeTrading, FakeMarket]:
    trading = trading or FakeTrading()
    market = FakeMarket()
    h = make_harness(
        user=None,
        channels=channels(trading, market),
        dialect=Seed003Dialect(market),
        decode=decode,
        session_factory=seed003_session,
        **limits,
    )
    return h, trading, market


async def authed(user: str = "alice", **limits: Any) -> tuple[Harness, FakeTrading, FakeMarket]:
    h, trading, market = harness(**limits)
    await h.send({"type": "auth", "token": h.tokens.issue(user)})
    # Then the user's state: here only the account (its first read opens it).
    assert h.types() == ["auth_success", "portfolio_update"]
    return h, trading, market


def live_quote(symbol: str, bid: float) -> Event:
    return Event("market-data", quote(symbol, bid), key=symbol)


def errors(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m["data"] for m in msgs if m["type"] == "error"]


# -- authentication --------------------------------------------------------------------


async def test_nothing_before_auth_then_auth_success_and_the_users_state() -> None:
    trading = FakeTrading()
    trading.seed("alice")
    h, _, _ = harness(trading)
    assert h.conn.received == []  # nothing is sent before auth
    await h.send({"type": "auth", "token": h.tokens.issue("alice", ttl=900)})
    msgs = h.new()
    assert [m["type"] for m in msgs] == [
        "auth_success",
        "order_update",
        "position_update",
        "portfolio_update",
    ]
    ok = msgs[0]
    assert set(ok) == {"type", "data", "timestamp"}
    assert ok["data"]["userId"] == "alice"
    assert ok["data"]["sessionId"] == h.session.session_id
    assert ok["data"]["expiresAt"].endswith("Z")
    # The user's streams carry no channel; each has exactly seed 003's fields.
    assert all(set(m) == {"type", "data", "timestamp"} for m in msgs[1:])
    o, p, a = (m["data"] for m in msgs[1:])
    assert o == {
        "id": "ord_101",
        "symbol": "EURUSD",
        "status": "pending",
        "filledQuantity": 0.0,
        "averagePrice": None,
        "updatedAt": "2027-01-15T07:59:55.000Z",
    }
    assert set(p) == POSITION_FIELDS
    assert (p["id"], p["quantity"], p["currentPrice"], p["unrealizedPnL"]) == (
        "pos_100",
        0.1,
        1.0812,
        12.0,
    )
    assert a == {
        "totalValue": 10012.0,
        "availableBalance": 9904.0,
        "unrealizedPnL": 12.0,
        "dayPnL": 22.0,
        "updatedAt": "2027-01-15T07:59:59.000Z",
    }


async def test_own_streams_arrive_without_subscribing_and_never_another_users() -> None:
    h, _, _ = await authed("alice")
    h.new()
    h.publish(Event("orders", order("bob", 0x201, OrderStatus.FILLED), user_id="bob"))
    h.publish(Event("positions", position("bob", 0x200), user_id="bob"))
    h.publish(Event("account", account("bob"), user_id="bob"))
    assert h.new() == []
    h.publish(Event("orders", order("alice", 0x301, OrderStatus.FILLED), user_id="alice"))
    h.publish(Event("positions", position("alice", 0x300), user_id="alice"))
    h.publish(Event("account", account("alice"), user_id="alice"))
    o, p, a = h.new()
    assert (o["type"], p["type"], a["type"]) == (
        "order_update",
        "position_update",
        "portfolio_update",
    )
    assert o["data"] == {**o["data"], "id": "ord_301", "status": "filled", "averagePrice": 1.0801}
    assert o["data"]["filledQuantity"] == 0.1
    assert set(p["data"]) == POSITION_FIELDS
    assert set(a["data"]) == PORTFOLIO_FIELDS


async def test_a_closed_position_is_announced_with_quantity_zero() -> None:
    h, _, _ = await authed()
    h.new()
    h.publish(Event("positions", position("alice", 0x100, PositionStatus.CLOSED), user_id="alice"))
    (msg,) = h.new()
    assert (msg["data"]["id"], msg["data"]["quantity"], msg["data"]["unrealizedPnL"]) == (
        "pos_100",
        0.0,
        0.0,
    )


@pytest.mark.parametrize(
    "frame",
    [{"type": "auth", "token": "forged"}, {"type": "auth"}, {"type": "auth", "token": 42}],
    ids=["bad", "missing", "not-a-string"],
)
async def test_bad_or_missing_credentials_get_the_error_then_4001(frame: dict[str, Any]) -> None:
    h, _, _ = harness()
    await h.send(frame)
    msgs = h.received()
    assert [m["type"] for m in msgs] == ["error"]
    assert msgs[0]["data"]["code"] == "AUTHENTICATION_ERROR"
    assert set(msgs[0]) == {"type", "data", "timestamp"}
    assert h.conn.disconnect is Disconnects.AUTH_FAILED
    assert h.conn.disconnect.code == CloseCode.AUTHENTICATION
    assert h.session.closed


async def test_the_auth_window_closes_4001_and_other_frames_wait_for_auth() -> None:
    h, _, _ = harness(auth_timeout=10)
    await h.send({"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
    (err,) = errors(h.new())
    assert err["code"] == "AUTHENTICATION_ERROR"
    h.publish(live_quote("EURUSD", 1.081))
    assert h.new() == []  # the refused subscribe holds nothing
    h.clock.advance(10.1)
    assert h.conn.disconnect is Disconnects.AUTH_TIMEOUT


async def test_a_refreshed_token_keeps_the_connection_past_the_first_expiry() -> None:
    h, _, _ = harness()
    await h.send({"type": "auth", "token": h.tokens.issue("alice", ttl=60)})
    h.new()
    await h.send({"type": "auth", "token": h.tokens.issue("alice", ttl=600)})
    (ok,) = h.new()
    assert ok["type"] == "auth_success"
    assert ok["data"]["expiresAt"].endswith("Z")
    h.clock.advance(120)
    assert h.conn.disconnect is None
    await h.send({"type": "auth"})  # a refresh without a token: an error, nothing closed
    assert errors(h.new())[0]["code"] == "AUTHENTICATION_ERROR"
    assert h.conn.disconnect is None


# -- price_updates -----------------------------------------------------------------------


async def test_subscribe_by_symbols_snapshot_live_and_unsubscribe_one() -> None:
    h, _, _ = await authed()
    h.new()
    await h.send({"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD", "gbpusd"]})
    ack, *snap = h.new()
    assert ack == {
        "type": "subscribed",
        "channel": "price_updates",
        "data": {"channel": "price_updates", "symbols": ["EURUSD", "GBPUSD"], "all": False},
        "timestamp": ack["timestamp"],
    }
    assert [m["data"]["symbol"] for m in snap] == ["EURUSD", "GBPUSD"]
    for m in snap:
        assert set(m) == {"type", "data", "timestamp", "channel"}
        assert (m["type"], m["channel"]) == ("price_update", "price_updates")
        assert set(m["data"]) == PRICE_FIELDS
    h.publish(live_quote("EURUSD", 1.0815))
    h.publish(live_quote("GBPUSD", 1.2611))
    assert [(m["data"]["symbol"], m["data"]["bid"]) for m in h.new()] == [
        ("EURUSD", 1.0815),
        ("GBPUSD", 1.2611),
    ]
    await h.send({"type": "unsubscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
    (ack,) = h.new()
    assert ack["type"] == "unsubscribed"
    assert ack["data"] == {"channel": "price_updates", "symbols": ["GBPUSD"], "all": False}
    h.publish(live_quote("EURUSD", 1.0816))
    h.publish(live_quote("GBPUSD", 1.2612))
    assert [m["data"]["symbol"] for m in h.new()] == ["GBPUSD"]


async def test_subscribe_without_symbols_is_every_symbol_until_unsubscribed() -> None:
    h, _, _ = await authed()
    h.new()
    await h.send({"type": "subscribe", "channel": "price_updates"})
    ack, *snap = h.new()
    assert ack["data"] == {"channel": "price_updates", "symbols": [], "all": True}
    assert {m["data"]["symbol"] for m in snap} == {"EURUSD", "GBPUSD"}
    # One symbol's unsubscribe leaves "every symbol" as it is.
    await h.send({"type": "unsubscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
    assert h.new()[0]["data"]["all"] is True
    await h.send({"type": "unsubscribe", "channel": "price_updates"})
    assert h.new()[0]["data"] == {"channel": "price_updates", "symbols": [], "all": False}
    h.publish(live_quote("EURUSD", 1.0817))
    assert h.new() == []


async def test_the_same_symbol_twice_is_one_subscription() -> None:
    h, _, _ = await authed()
    h.new()
    for _ in range(2):
        await h.send({"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
    h.new()
    h.publish(live_quote("EURUSD", 1.0818))
    assert len(h.new()) == 1
    await h.send({"type": "unsubscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
    h.publish(live_quote("EURUSD", 1.0819))
    assert [m["type"] for m in h.new()] == ["unsubscribed"]


async def test_the_subscription_limit_counts_symbols() -> None:
    h, _, _ = await authed(max_subscriptions=4)  # three are the user's own streams
    h.new()
    await h.send({"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD", "GBPUSD"]})
    msgs = h.new()
    (err,) = errors(msgs)
    assert err["code"] == "RATE_LIMIT_ERROR"
    assert err["details"]["channel"] == "price_updates"
    ack = next(m for m in msgs if m["type"] == "subscribed")
    assert ack["data"]["symbols"] == ["EURUSD"]


# -- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ("{not json", "frame"),
        (b"\x00\x01", "frame"),
        ("[1, 2]", "frame"),
        ({"type": "hello"}, "type"),
        ({"type": "subscribe"}, "channel"),
        ({"type": "subscribe", "channel": "orders"}, "channel"),
        ({"type": "subscribe", "channel": "price_updates", "symbols": "EURUSD"}, "symbols"),
        ({"type": "subscribe", "channel": "price_updates", "symbols": []}, "symbols"),
        ({"type": "subscribe", "channel": "price_updates", "symbols": ["NOPE"]}, "symbols"),
        ({"type": "unsubscribe", "channel": "prices"}, "channel"),
    ],
    ids=[
        "json", "binary", "not-object", "type", "no-channel", "unknown-channel",
        "symbols-not-list", "symbols-empty", "unknown-symbol", "unsubscribe-unknown",
    ],
)  # fmt: skip
async def test_bad_frames_get_an_error_naming_the_field_and_the_connection_stays(
    frame: Any, field: str
) -> None:
    h, _, _ = await authed()
    await h.send({"type": "subscribe", "channel": "price_updates", "symbols": ["EURUSD"]})
    h.new()
    await h.send(frame)
    msgs = h.new()
    assert [m["type"] for m in msgs] == ["error"]
    assert set(msgs[0]) == {"type", "data", "timestamp"}
    assert msgs[0]["data"]["code"] == "VALIDATION_ERROR"
    assert msgs[0]["data"]["details"]["field"] == field
    assert h.conn.disconnect is None
    h.publish(live_quote("EURUSD", 1.082))
    assert [m["type"] for m in h.new()] == ["price_update"]  # still streaming


async def test_ping_gets_pong() -> None:
    h, _, _ = await authed()
    h.new()
    await h.send({"type": "ping"})
    (pong,) = h.new()
    assert (pong["type"], pong["data"]) == ("pong", {})


async def test_a_flood_is_told_once_then_closed_4029() -> None:
    h, _, _ = await authed(max_messages_per_second=5, flood_grace=2)
    h.new()
    for _ in range(20):
        await h.send({"type": "ping"})
    msgs = h.new()
    assert [m["type"] for m in msgs].count("pong") == 4  # the auth message took one
    (err,) = errors(msgs)
    assert err["code"] == "RATE_LIMIT_ERROR"
    for _ in range(30):
        h.clock.advance(0.1)
        for _ in range(5):
            await h.send({"type": "ping"})
    assert h.conn.disconnect is Disconnects.RATE_LIMITED


async def test_a_message_over_the_size_limit_is_an_error() -> None:
    h, _, _ = await authed(max_message_size=256)
    h.new()
    await h.send({"type": "ping", "pad": "x" * 300})
    (err,) = errors(h.new())
    assert (err["code"], err["details"]["field"]) == ("VALIDATION_ERROR", "frame")
    assert h.conn.disconnect is None


def test_the_shutdown_notice_is_in_seed_003s_format() -> None:
    h, _, _ = harness()
    notice = json.loads(h.session.shutdown_notice(b"canonical"))
    assert set(notice) == {"type", "data", "timestamp"}
    assert notice["type"] == "system"
    assert notice["data"]["status"] == "RESTARTING"


# -- market_news ---------------------------------------------------------------------------


def news(**data: Any) -> Event:
    item = NewsChannel().check_published(
        {"title": "ECB holds", "content": "Rates unchanged.", "source": "Reuters",
         "impact": "HIGH", **data}
    )  # fmt: skip
    return Event("news", dict(item))


async def join(
    h: Harness, user: str, dialect: Seed003Dialect | None = None, resume: Any = None
) -> FakeConnection:
    """Another client of the same hub, authenticated as ``user``."""
    conn = FakeConnection(dialect or h.conn.dialect)
    session = seed003_session(
        hub=h.hub, tokens=h.tokens, settings=h.settings, conn=conn, clock=h.clock,
        dialect=conn.dialect, connection_rate=h.session._connection_rate, resume=resume,
    )  # fmt: skip
    conn.on_kick = session.close
    session.start(None)
    await session.on_message(json.dumps({"type": "auth", "token": h.tokens.issue(user)}))
    conn.session = session  # type: ignore[attr-defined]
    return conn


async def test_market_news_by_symbols_or_all() -> None:
    euro, _, _ = await authed("alice")
    every = await join(euro, "bob")
    await euro.send({"type": "subscribe", "channel": "market_news", "symbols": ["EURUSD"]})
    await every.session.on_message(  # type: ignore[attr-defined]
        json.dumps({"type": "subscribe", "channel": "market_news"})
    )
    assert euro.new()[-1]["data"] == {"channel": "market_news", "symbols": ["EURUSD"], "all": False}
    every.received.clear()
    euro.publish(news(symbols=["eurusd", "EURGBP"], id="n1", publishedAt="2027-01-15T08:00:00Z"))
    euro.publish(news(symbols=["USDJPY"], id="n2"))
    euro.publish(news(id="n3"))  # about no symbol
    (msg,) = euro.new()
    assert (msg["type"], msg["channel"]) == ("market_news", "market_news")
    assert msg["data"] == {
        "id": "n1",
        "title": "ECB holds",
        "content": "Rates unchanged.",
        "source": "Reuters",
        "impact": "high",
        "symbols": ["EURGBP", "EURUSD"],
        "publishedAt": "2027-01-15T08:00:00.000Z",
    }
    assert [json.loads(m)["data"]["id"] for m in every.received] == ["n1", "n2", "n3"]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"impact": "huge"}, "data.impact"),
        ({"title": ""}, "data.title"),
        ({"source": None}, "data.source"),
        ({"symbols": "EURUSD"}, "data.symbols"),
        ({"publishedAt": "yesterday"}, "data.publishedAt"),
        ({"url": "https://x"}, "data.url"),
    ],
)
def test_a_news_item_is_checked_field_by_field(data: dict[str, Any], field: str) -> None:
    from fxgate.domain.errors import ValidationError

    item = {"title": "t", "content": "c", "source": "s", "impact": "low", **data}
    item = {k: v for k, v in item.items() if v is not None}
    with pytest.raises(ValidationError) as info:
        NewsChannel().check_published(item)
    assert info.value.details["field"] == field
    assert field.split(".")[1] in info.value.message


# -- ai_signals ------------------------------------------------------------------------------


async def test_ai_signals_map_seed_002_signals() -> None:
    h, _, _ = await authed()
    h.new()
    await h.send({"type": "subscribe", "channel": "ai_signals", "symbols": ["EURUSD"]})
    assert h.new()[0]["data"] == {"channel": "ai_signals", "symbols": ["EURUSD"], "all": False}
    h.publish(Event("signals", signal()))  # public: no user
    h.publish(Event("signals", signal("GBPUSD")))
    h.publish(Event("signals", signal(uuid="bobs"), user_id="bob"))  # bob's own
    (msg,) = h.new()
    assert (msg["type"], msg["channel"]) == ("ai_signal", "ai_signals")
    assert msg["data"] == {
        "symbol": "EURUSD",
        "signal": "buy",
        "confidence": 0.82,
        "reasoning": "trend: EMA 50 above EMA 200; rsi: RSI 28, oversold",
        "price": 1.0802,  # no price in the signal: the ask it would buy at
        "generatedAt": "2027-01-15T08:00:00.000Z",
    }
    h.publish(Event("signals", signal(side="sell", validators=[]), user_id="alice"))
    (msg,) = h.new()
    assert (msg["data"]["signal"], msg["data"]["price"]) == ("sell", 1.08)  # the bid
    assert msg["data"]["reasoning"] == "Signal from rsi-strategy"
    assert set(msg["data"]) == SIGNAL_FIELDS
    rejected = signal(status="rejected")
    rejected["validators"][1]["approved"] = False
    h.publish(Event("signals", rejected))
    (msg,) = h.new()
    assert msg["data"]["signal"] == "hold"
    assert msg["data"]["reasoning"] == (
        "trend: EMA 50 above EMA 200; rsi: RSI 28, oversold (rejected)"
    )


def test_a_signal_with_its_own_price_keeps_it() -> None:
    data = {"symbol": "EURUSD", "side": "buy", "price": 1.0799}
    assert Seed003Dialect(FakeMarket()).ai_signal(data, "t")["price"] == 1.0799


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        ("BUY", "buy"),
        ("sell", "sell"),
        (0, "buy"),
        (1, "sell"),
        ("NEUTRAL", "hold"),
        (None, "hold"),
    ],
)
def test_signal_side(side: Any, expected: str) -> None:
    assert signal_side({"side": side}) == expected


def test_signal_reasoning_from_validators_of_any_shape() -> None:
    assert signal_reasoning({"validators": {"trend": {"passed": True, "reason": "up"}}}) == (
        "trend: up"
    )
    assert signal_reasoning({"validators": ["news calm"]}) == "news calm"
    assert signal_reasoning({"reason": "breakout"}) == "breakout"
    assert signal_reasoning({}) == ""


def test_a_hold_signal_is_priced_at_the_mid_and_without_a_quote_null() -> None:
    dialect = Seed003Dialect(FakeMarket())
    assert dialect.ai_signal({"symbol": "EURUSD", "side": "HOLD"}, "t")["price"] == 1.0801
    assert dialect.ai_signal({"symbol": "XAUUSD", "side": "BUY"}, "t")["price"] is None
    assert dialect.ai_signal({"symbol": "EURUSD", "timestamp": 1.8e12}, "t")["generatedAt"] == (
        "2027-01-15T08:00:00.000Z"
    )


# -- one encoding per event ------------------------------------------------------------------


class CountingDialect(Seed003Dialect):
    def __init__(self) -> None:
        super().__init__(FakeMarket())
        self.calls = 0

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        self.calls += 1
        return super().encode_event(channel, envelope)


async def test_an_event_is_encoded_once_for_every_ws_client() -> None:
    h, _, _ = await authed("u0")
    dialect = CountingDialect()
    conns = [await join(h, f"u{i}", dialect) for i in range(1, 6)]
    for conn in conns:
        await conn.session.on_message(  # type: ignore[attr-defined]
            json.dumps({"type": "subscribe", "channel": "price_updates"})
        )
    before = dialect.calls
    h.publish(live_quote("EURUSD", 1.09))
    assert dialect.calls == before + 1
    assert len({c.received[-1] for c in conns}) == 1
    assert all(json.loads(c.received[-1])["data"]["bid"] == 1.09 for c in conns)


async def test_the_connection_rate_per_user_closes_the_one_over_4029() -> None:
    h, _, _ = await authed("alice", connections_per_minute=3)
    second, third = await join(h, "alice"), await join(h, "alice")
    fourth = await join(h, "alice")
    assert fourth.disconnect is Disconnects.TOO_MANY_CONNECTIONS
    assert fourth.disconnect.code == CloseCode.RATE_LIMITED
    assert (second.disconnect, third.disconnect) == (None, None)
    assert (await join(h, "bob")).disconnect is None  # per user


async def test_the_token_expiry_closes_4001() -> None:
    h, _, _ = harness()
    await h.send({"type": "auth", "token": h.tokens.issue("alice", ttl=60)})
    h.clock.advance(59)
    assert h.conn.disconnect is None
    h.clock.advance(2)
    assert h.conn.disconnect is Disconnects.TOKEN_EXPIRED


async def test_a_channel_whose_plugin_is_off_is_refused_clearly() -> None:
    trading, market = FakeTrading(), FakeMarket()
    h = make_harness(
        user=None,
        channels=[c for c in channels(trading, market) if c.name != "signals"],
        dialect=Seed003Dialect(market),
        decode=decode,
        session_factory=seed003_session,
    )
    await h.send({"type": "auth", "token": h.tokens.issue("alice")})
    h.new()
    await h.send({"type": "subscribe", "channel": "ai_signals"})
    (err,) = errors(h.new())
    assert err["details"] == {"field": "channel", "reason": "disabled", "channel": "ai_signals"}
    assert h.conn.disconnect is None


class Marks:
    """The resume hook's shape (``ResumeMarks``): where each of a user's streams stood
    when their last connection closed, used once."""

    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.open: dict[str, int] = {}
        self.marks: dict[str, dict[str, int]] = {}

    def opened(self, user_id: str) -> None:
        self.open[user_id] = self.open.get(user_id, 0) + 1

    def closed(
        self, user_id: str, now: float, acked: dict[str, tuple[int, str]] | None = None
    ) -> None:
        self.open[user_id] -= 1
        if not self.open[user_id]:
            heads = acked if acked is not None else self.positions(user_id)
            self.marks[user_id] = {c: offset for c, (offset, _) in heads.items()}

    def positions(self, user_id: str) -> dict[str, tuple[int, str]]:
        streams = self.hub.streams
        return {
            c: (s.offset, s.epoch) if (s := streams.find(c, user_id)) else (0, "")
            for c in ("orders", "positions", "account")
        }

    async def load(self, user_id: str, now: float) -> None:
        return None  # one process: nothing shared to bring in

    def since(self, user_id: str, channel: str, now: float) -> tuple[int, str] | None:
        offset = self.marks.get(user_id, {}).pop(channel, None)
        return None if offset is None else (offset, self.hub.epoch)


async def test_a_reconnect_gets_what_it_missed_through_the_resume_hook() -> None:
    trading = FakeTrading()
    trading.seed("carol")
    h, _, _ = harness(trading)
    marks = Marks(h.hub)
    first = await join(h, "carol", resume=marks)
    assert [json.loads(m)["type"] for m in first.received][1:] == [
        "order_update",
        "position_update",
        "portfolio_update",
    ]
    first.session.close()  # type: ignore[attr-defined]
    # While carol is away: two order changes, nothing else.
    h.publish(Event("orders", order("carol", 0x401, OrderStatus.FILLED), user_id="carol"))
    h.publish(Event("orders", order("carol", 0x402), user_id="carol"))
    again = await join(h, "carol", resume=marks)
    got = [json.loads(m) for m in again.received]
    assert [(m["type"], m["data"].get("id")) for m in got] == [
        ("auth_success", None),
        ("order_update", "ord_401"),  # the missed ones, replayed, not the snapshot
        ("order_update", "ord_402"),
        ("position_update", "pos_100"),  # nothing missed: the current state
        ("portfolio_update", None),
    ]
