"""The broker contract (``fxgate.services.ports.broker``), run against every adapter.

Each test is a trader's request or a price move, stated in the common world of
``conftest.py`` (USD, 1:100, 10,000.00, EURUSD at 100,000 a lot), with the amounts worked
by hand. What an adapter must guarantee: the errors it raises and their ``details``, the
ticket rules, events in order and exactly once, announced only after they are stored,
and that one user never sees or touches another's records.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest

from fxgate.domain.errors import (
    FxgateError,
    InsufficientBalanceError,
    MarketClosedError,
    NotFoundError,
    TradingError,
    ValidationError,
)
from fxgate.domain.market import MarketTrade
from fxgate.domain.trading import (
    Account,
    AccountMode,
    Deal,
    DealEntry,
    Order,
    OrderChanges,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    PositionStatus,
    Side,
    TimeInForce,
    order_id_for,
    ticket_of_order_id,
)
from fxgate.services.ports.broker import Broker, BrokerEventKind, BrokerTape
from tests.broker.conftest import Harness

ALICE, BOB = "alice", "bob"
FILL = [
    BrokerEventKind.ORDER,
    BrokerEventKind.DEAL,
    BrokerEventKind.POSITION,
    BrokerEventKind.ACCOUNT,
]


def market(side: Side, volume: str, symbol: str = "EURUSD", **kw: Any) -> OrderRequest:
    return OrderRequest(symbol, OrderType.MARKET, side, D(volume), **kw)


def pending(kind: OrderType, side: Side, volume: str, **kw: Any) -> OrderRequest:
    return OrderRequest("EURUSD", kind, side, D(volume), **kw)


@pytest.fixture
async def h(harness: Harness) -> Harness:
    """EURUSD at 1.08490/1.08500, Alice's and Bob's accounts open, no events yet."""
    await harness.quote("EURUSD", "1.08490", "1.08500")
    await harness.broker.account(ALICE)
    await harness.broker.account(BOB)
    harness.clear()
    return harness


def kinds(h: Harness, user_id: str = ALICE) -> list[BrokerEventKind]:
    return [e.kind for e in h.trading_events(user_id)]


async def nothing_changed(h: Harness, before: Account) -> None:
    """A refused request changes nothing and announces nothing."""
    b = h.broker
    assert h.trading_events() == []
    assert await b.positions(ALICE) == []
    assert await b.orders(ALICE) == []
    assert (await b.account(ALICE)).balance == before.balance


# -- placing and filling ------------------------------------------------------------------


async def test_a_market_order_fills_with_mt5_tickets_and_four_events(h: Harness) -> None:
    b = h.broker
    order = await b.place_order(ALICE, market(Side.BUY, "1"))
    assert (order.status, order.filled_volume, order.average_price) == (
        OrderStatus.FILLED,
        D("1"),
        D("1.08500"),  # a buy fills at the ask
    )
    (pos,) = await b.positions(ALICE)
    (deal,) = await b.deals(ALICE)
    # The position's ticket is the order's; the deal has a ticket of its own.
    assert pos.ticket == order.ticket == deal.order_ticket == deal.position_ticket
    assert deal.ticket not in (order.ticket, pos.ticket)
    assert (deal.entry, deal.side, deal.volume, deal.price) == (
        DealEntry.IN,
        Side.BUY,
        D("1"),
        D("1.08500"),
    )
    # The REST order id maps to the ticket and back.
    assert order.id == order_id_for(order.ticket)
    assert ticket_of_order_id(order.id) == order.ticket
    # Order, deal, position, account: each once, in that order, each stored first.
    assert kinds(h) == FILL
    assert all(h.stored_first)
    assert len(h.stored_first) == 4
    o, d, p, a = (e.data for e in h.trading_events(ALICE))
    assert (o, d, p) == (order, deal, pos)
    assert isinstance(a, Account)
    assert a.margin == D("1085.00")


async def test_the_deal_is_announced_with_its_position_already_open(h: Harness) -> None:
    seen: list[Position | None] = []

    def on_event(event: Any) -> None:
        if event.kind is BrokerEventKind.DEAL:
            seen.append(h.broker.open_position(ALICE, event.data.position_ticket))

    h.broker.subscribe(on_event)
    order = await h.broker.place_order(ALICE, market(Side.BUY, "0.1"))
    (pos,) = seen
    assert pos is not None
    assert pos.ticket == order.ticket


async def test_a_sell_fills_at_the_bid(h: Harness) -> None:
    order = await h.broker.place_order(ALICE, market(Side.SELL, "0.5"))
    assert order.average_price == D("1.08490")
    (pos,) = await h.broker.positions(ALICE)
    assert (pos.side, pos.volume, pos.ticket) == (Side.SELL, D("0.5"), order.ticket)


async def test_a_limit_order_waits_and_fills_when_the_price_reaches_it(h: Harness) -> None:
    b = h.broker
    order = await b.place_order(ALICE, pending(OrderType.LIMIT, Side.BUY, "1", price=D("1.08300")))
    assert order.status is OrderStatus.PENDING
    assert [o.id for o in await b.orders(ALICE)] == [order.id]
    assert kinds(h) == [BrokerEventKind.ORDER]
    assert await b.positions(ALICE) == []
    h.clear()

    await h.quote("EURUSD", "1.08290", "1.08300")  # the ask reaches the limit
    assert await b.orders(ALICE) == []
    (pos,) = await b.positions(ALICE)
    assert (pos.ticket, pos.open_price) == (order.ticket, D("1.08300"))
    assert kinds(h) == FILL
    assert all(h.stored_first)


async def test_a_stop_order_triggers_when_the_market_passes_it(h: Harness) -> None:
    b = h.broker
    order = await b.place_order(
        ALICE, pending(OrderType.STOP, Side.BUY, "1", stop_price=D("1.08600"))
    )
    assert order.status is OrderStatus.PENDING
    await h.quote("EURUSD", "1.08550", "1.08560")
    assert await b.positions(ALICE) == []
    h.clear()
    await h.quote("EURUSD", "1.08600", "1.08610")
    (pos,) = await b.positions(ALICE)
    assert (pos.ticket, pos.open_price) == (order.ticket, D("1.08610"))  # at the ask
    assert kinds(h) == FILL


async def test_each_change_is_announced_exactly_once(h: Harness) -> None:
    b = h.broker
    await b.place_order(ALICE, market(Side.BUY, "1"))
    await b.place_order(ALICE, pending(OrderType.LIMIT, Side.BUY, "1", price=D("1.08000")))
    for bid, ask in [("1.08500", "1.08510"), ("1.08600", "1.08610"), ("1.08500", "1.08510")]:
        await h.quote("EURUSD", bid, ask)
    await b.flush()
    deals = [e.data for e in h.trading_events() if e.kind is BrokerEventKind.DEAL]
    orders = [e.data for e in h.trading_events() if e.kind is BrokerEventKind.ORDER]
    assert len(deals) == 1
    assert len(orders) == 2  # the market order (filled) and the limit (placed): once each


# -- positions ------------------------------------------------------------------------------


async def test_a_partial_close_keeps_the_ticket_and_books_an_out_deal(h: Harness) -> None:
    b = h.broker
    order = await b.place_order(ALICE, market(Side.BUY, "1"))
    await h.quote("EURUSD", "1.08600", "1.08610")
    h.clear()
    left = await b.close_position(ALICE, order.ticket, D("0.4"))
    assert (left.ticket, left.volume, left.status) == (order.ticket, D("0.6"), PositionStatus.OPEN)
    assert await b.position(ALICE, order.ticket) == left
    o, d, p, _ = (e.data for e in h.trading_events(ALICE))
    assert kinds(h) == FILL
    assert isinstance(o, Order)
    assert isinstance(d, Deal)
    assert isinstance(p, Position)
    # The closing order and its deal get new tickets; the deal names the position.
    assert (o.side, o.status, o.position_ticket) == (Side.SELL, OrderStatus.FILLED, order.ticket)
    assert len({o.ticket, d.ticket, order.ticket}) == 3
    # (1.08600 - 1.08500) * 40,000 = 40.00, closed at the bid
    assert (d.entry, d.volume, d.price, d.profit) == (DealEntry.OUT, D("0.4"), D("1.08600"), D(40))
    closed = await b.close_position(ALICE, order.ticket)
    assert closed.status is PositionStatus.CLOSED
    assert await b.positions(ALICE) == []
    assert b.open_position(ALICE, order.ticket) is None
    with pytest.raises(NotFoundError):
        await b.position(ALICE, order.ticket)


async def test_stop_loss_and_take_profit_are_set_kept_and_removed(h: Harness) -> None:
    b = h.broker
    ticket = (await b.place_order(ALICE, market(Side.BUY, "1"))).ticket
    pos = await b.modify_position(ALICE, ticket, D("1.08000"), D("1.09000"))
    assert (pos.stop_loss, pos.take_profit) == (D("1.08000"), D("1.09000"))
    pos = await b.modify_position(ALICE, ticket, stop_loss=D(0))  # 0 removes, None keeps
    assert (pos.stop_loss, pos.take_profit) == (None, D("1.09000"))
    assert (await b.position(ALICE, ticket)).take_profit == D("1.09000")


async def test_a_take_profit_closes_the_position_when_reached(h: Harness) -> None:
    b = h.broker
    ticket = (await b.place_order(ALICE, market(Side.BUY, "1", take_profit=D("1.08700")))).ticket
    await h.quote("EURUSD", "1.08700", "1.08710")
    assert await b.positions(ALICE) == []
    (out,) = [d for d in await b.deals(ALICE) if d.entry is DealEntry.OUT]
    assert (out.position_ticket, out.profit) == (ticket, D("200.00"))


# -- pending orders -----------------------------------------------------------------------


async def test_a_pending_order_is_modified_and_cancelled(h: Harness) -> None:
    b = h.broker
    order = await b.place_order(ALICE, pending(OrderType.LIMIT, Side.BUY, "1", price=D("1.08000")))
    moved = await b.modify_order(ALICE, order.id, OrderChanges(price=D("1.07900")))
    assert (moved.id, moved.price, moved.status) == (order.id, D("1.07900"), OrderStatus.PENDING)
    h.clear()
    cancelled = await b.cancel_order(ALICE, order.id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert kinds(h) == [BrokerEventKind.ORDER]
    assert await b.orders(ALICE) == []
    with pytest.raises(NotFoundError):
        await b.cancel_order(ALICE, order.id)  # no longer pending


# -- expiry (GTD) ----------------------------------------------------------------------------


def at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def gtd_limit(expires: datetime | None, **kw: Any) -> OrderRequest:
    kw.setdefault("time_in_force", TimeInForce.GTD)
    return pending(OrderType.LIMIT, Side.BUY, "1", price=D("1.08000"), expires_at=expires, **kw)


async def test_a_gtd_order_expires_at_its_time_exactly_once_and_never_fills(h: Harness) -> None:
    b = h.broker
    expires = int(h.now()) + 60  # whole seconds: MT5's expiration is epoch seconds
    order = await b.place_order(ALICE, gtd_limit(at(expires)))
    assert (order.status, order.time_in_force, order.expires_at) == (
        OrderStatus.PENDING,
        TimeInForce.GTD,
        float(expires),
    )
    await h.quote("EURUSD", "1.08390", "1.08400")  # before its time: still working
    assert [o.id for o in await b.orders(ALICE)] == [order.id]
    h.clear()

    h.advance(120)
    await h.quote("EURUSD", "1.07990", "1.08000")  # would fill it, but it has expired
    assert await b.orders(ALICE) == []
    assert await b.positions(ALICE) == []
    assert kinds(h) == [BrokerEventKind.ORDER]
    (event,) = h.trading_events(ALICE)
    assert isinstance(event.data, Order)
    assert (event.data.id, event.data.status, event.data.filled_volume) == (
        order.id,
        OrderStatus.EXPIRED,
        D(0),
    )
    assert all(h.stored_first)
    await h.quote("EURUSD", "1.07890", "1.07900")
    assert kinds(h) == [BrokerEventKind.ORDER]  # announced once, never filled later
    assert await b.positions(ALICE) == []
    with pytest.raises(NotFoundError):
        await b.cancel_order(ALICE, order.id)


async def test_a_gtd_orders_expiry_survives_a_modify_and_can_be_moved(h: Harness) -> None:
    b = h.broker
    first = int(h.now()) + 60
    order = await b.place_order(ALICE, gtd_limit(at(first)))
    moved = await b.modify_order(ALICE, order.id, OrderChanges(price=D("1.07900")))
    assert (moved.price, moved.time_in_force, moved.expires_at) == (
        D("1.07900"),
        TimeInForce.GTD,
        float(first),
    )
    later = first + 600
    moved = await b.modify_order(ALICE, order.id, OrderChanges(expires_at=at(later)))
    assert (moved.expires_at, moved.status) == (float(later), OrderStatus.PENDING)
    h.advance(120)  # past the first expiry, not the new one
    await h.quote("EURUSD", "1.08390", "1.08400")
    assert [o.id for o in await b.orders(ALICE)] == [order.id]
    h.advance(600)
    h.clear()
    await h.quote("EURUSD", "1.08380", "1.08390")
    assert await b.orders(ALICE) == []
    assert [e.data.status for e in h.trading_events(ALICE)] == [OrderStatus.EXPIRED]  # type: ignore[union-attr]

    gtc = await b.place_order(ALICE, gtd_limit(None, time_in_force=TimeInForce.GTC))
    with pytest.raises(ValidationError) as info:
        await b.modify_order(ALICE, gtc.id, OrderChanges(expires_at=at(h.now() + 60)))
    details = info.value.details
    assert isinstance(details, dict)
    assert (details["field"], details["reason"]) == ("expiresAt", "not_gtd")
    assert (await b.orders(ALICE))[0].expires_at is None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        pytest.param(
            lambda now: market(
                Side.BUY, "1", time_in_force=TimeInForce.GTD, expires_at=at(now + 60)
            ),
            "market_order",
            id="market",
        ),
        pytest.param(lambda now: gtd_limit(at(now - 60)), "in_the_past", id="past"),
        pytest.param(lambda now: gtd_limit(None), "missing", id="gtd-without-time"),
        pytest.param(
            lambda now: gtd_limit(at(now + 60), time_in_force=TimeInForce.GTC),
            "not_gtd",
            id="time-with-gtc",
        ),
        pytest.param(
            lambda now: gtd_limit(at(now + 60), time_in_force=TimeInForce.IOC),
            "not_gtd",
            id="time-with-ioc",
        ),
        pytest.param(
            lambda now: gtd_limit(datetime.fromtimestamp(now + 60)),
            "no_time_zone",
            id="naive-time",
        ),
    ],
)
async def test_a_bad_expiry_is_refused_naming_expires_at(
    h: Harness, make: Callable[[float], OrderRequest], reason: str
) -> None:
    before = await h.broker.account(ALICE)
    with pytest.raises(ValidationError) as info:
        await h.broker.place_order(ALICE, make(h.now()))
    details = info.value.details
    assert isinstance(details, dict)
    assert (details["field"], details["reason"]) == ("expiresAt", reason)
    await nothing_changed(h, before)


# -- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "error", "field"),
    [
        pytest.param(market(Side.BUY, "0.015"), ValidationError, "volume", id="off-step"),
        pytest.param(market(Side.BUY, "0.001"), ValidationError, "volume", id="below-min"),
        pytest.param(market(Side.BUY, "0"), ValidationError, "volume", id="zero"),
        pytest.param(market(Side.BUY, "1", "NOPE"), ValidationError, "symbol", id="symbol"),
        pytest.param(
            pending(OrderType.LIMIT, Side.BUY, "1"), ValidationError, "price", id="no-limit-price"
        ),
        pytest.param(
            pending(OrderType.LIMIT, Side.BUY, "1", price=D("-1")),
            ValidationError,
            "price",
            id="negative-price",
        ),
        pytest.param(
            pending(OrderType.STOP, Side.BUY, "1"), ValidationError, "stopPrice", id="no-trigger"
        ),
        pytest.param(
            pending(OrderType.STOP, Side.BUY, "1", stop_price=D("1.08400")),
            TradingError,
            "stopPrice",
            id="buy-stop-below-ask",
        ),
        pytest.param(
            market(Side.BUY, "1", stop_loss=D("1.08600")),
            TradingError,
            "stopLoss",
            id="buy-sl-above-bid",
        ),
        pytest.param(
            market(Side.SELL, "1", take_profit=D("1.08600")),
            TradingError,
            "takeProfit",
            id="sell-tp-above-ask",
        ),
    ],
)
async def test_a_bad_order_is_refused_with_the_field_and_changes_nothing(
    h: Harness, request_: OrderRequest, error: type[FxgateError], field: str
) -> None:
    before = await h.broker.account(ALICE)
    with pytest.raises(error) as info:
        await h.broker.place_order(ALICE, request_)
    assert type(info.value) is error
    details = info.value.details
    assert isinstance(details, dict)
    assert details["field"] == field
    assert isinstance(details["reason"], str)
    assert details["reason"]
    await nothing_changed(h, before)


async def test_not_enough_free_margin_is_insufficient_balance(h: Harness) -> None:
    before = await h.broker.account(ALICE)
    with pytest.raises(InsufficientBalanceError) as info:
        await h.broker.place_order(ALICE, market(Side.BUY, "10"))  # 10,850.00 > 10,000.00
    assert info.value.details["reason"] == "insufficient_margin"
    await nothing_changed(h, before)


async def test_a_closed_market_refuses_orders_but_not_cancels(h: Harness) -> None:
    b = h.broker
    order = await b.place_order(ALICE, pending(OrderType.LIMIT, Side.BUY, "1", price=D("1.08000")))
    h.clear()
    h.set_open(False)
    before = await b.account(ALICE)
    with pytest.raises(MarketClosedError):
        await b.place_order(ALICE, market(Side.BUY, "1"))
    assert h.trading_events() == []
    assert (await b.account(ALICE)).balance == before.balance
    assert (await b.cancel_order(ALICE, order.id)).status is OrderStatus.CANCELLED


async def test_no_price_yet_is_a_trading_error(h: Harness) -> None:
    before = await h.broker.account(ALICE)
    with pytest.raises(TradingError) as info:
        await h.broker.place_order(ALICE, market(Side.BUY, "1", "GBPUSD"))  # never quoted
    assert type(info.value) is TradingError
    await nothing_changed(h, before)


async def test_another_users_or_unknown_records_are_not_found(h: Harness) -> None:
    b = h.broker
    order = await b.place_order(ALICE, pending(OrderType.LIMIT, Side.BUY, "1", price=D("1.08000")))
    ticket = (await b.place_order(ALICE, market(Side.BUY, "1"))).ticket
    h.clear()
    for user, oid, t in [(BOB, order.id, ticket), (ALICE, "ord_ffffff", 999_999_999)]:
        with pytest.raises(NotFoundError):
            await b.cancel_order(user, oid)
        with pytest.raises(NotFoundError):
            await b.modify_order(user, oid, OrderChanges(price=D("1.07000")))
        with pytest.raises(NotFoundError):
            await b.close_position(user, t)
        with pytest.raises(NotFoundError):
            await b.modify_position(user, t, stop_loss=D("1.07000"))
        with pytest.raises(NotFoundError):
            await b.position(user, t)
        assert b.open_position(user, t) is None
    assert h.trading_events() == []
    assert len(await b.orders(ALICE)) == len(await b.positions(ALICE)) == 1


async def test_users_see_only_their_own_records(h: Harness) -> None:
    b = h.broker
    await b.place_order(ALICE, market(Side.BUY, "1"))
    await b.place_order(ALICE, pending(OrderType.LIMIT, Side.BUY, "1", price=D("1.08000")))
    assert await b.positions(BOB) == []
    assert await b.orders(BOB) == []
    assert await b.deals(BOB) == []
    bob = await b.account(BOB)
    assert (bob.balance, bob.margin) == (D("10000.00"), D("0.00"))
    assert {e.user_id for e in h.trading_events()} == {ALICE}


# -- what services read: terms, symbols, previews ------------------------------------------


async def test_account_terms(h: Harness) -> None:
    terms = await h.broker.account_terms(ALICE)
    assert (terms.currency, terms.leverage, terms.mode) == ("USD", 100, AccountMode.HEDGING)
    assert terms.stop_out_level < terms.margin_call_level
    assert terms.initial_balance in (None, D("10000.00"))


async def test_symbol_specifications(h: Harness) -> None:
    b = h.broker
    specs = {s.symbol: s for s in await b.symbols()}
    eurusd = await b.symbol("EURUSD")
    assert specs["EURUSD"] == eurusd
    assert (eurusd.digits, eurusd.contract_size, eurusd.volume_step) == (5, D(100_000), D("0.01"))
    with pytest.raises(ValidationError) as info:
        await b.symbol("NOPE")
    assert info.value.details["field"] == "symbol"


async def test_the_latest_quote(h: Harness) -> None:
    quote = await h.broker.quote("EURUSD")
    assert (quote.bid, quote.ask) == (1.0849, 1.085)
    with pytest.raises(ValidationError):
        await h.broker.quote("NOPE")
    with pytest.raises(TradingError):
        await h.broker.quote("GBPUSD")  # no price yet


async def test_the_order_book_is_depth_around_the_quote(h: Harness) -> None:
    """Seed 004's ``orderbook``: best prices first, the top of the book at the quote
    (paper: its synthetic book; MT5: ``market_book_add`` + ``market_book_get``)."""
    b = h.broker
    book = await b.order_book("EURUSD", 3)
    assert book.symbol == "EURUSD"
    assert 1 <= len(book.bids) <= 3
    assert 1 <= len(book.asks) <= 3
    assert (book.bids[0].price, book.asks[0].price) == (D("1.08490"), D("1.08500"))
    bids = [lv.price for lv in book.bids]
    asks = [lv.price for lv in book.asks]
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert all(lv.volume > 0 for lv in (*book.bids, *book.asks))
    await h.quote("EURUSD", "1.08600", "1.08610")
    moved = await b.order_book("EURUSD", 3)
    assert (moved.bids[0].price, moved.asks[0].price) == (D("1.08600"), D("1.08610"))
    with pytest.raises(ValidationError) as info:
        await b.order_book("NOPE")
    assert info.value.details["field"] == "symbol"


async def test_margin_preview_ignores_open_positions(h: Harness) -> None:
    b = h.broker
    # 1000 EUR at the ask 1.08500 = 1085.00; a sell at the bid 1.08490 = 1084.90
    assert await b.order_calc_margin(ALICE, Side.BUY, "EURUSD", D("1")) == D("1085.00")
    assert await b.order_calc_margin(ALICE, Side.SELL, "EURUSD", D("1")) == D("1084.90")
    # a price in the formula (gold, CFD-leverage): 1 * 100 oz * 2,000.00 / 100 = 2,000.00
    await h.quote("XAUUSD", "2029.75", "2030.00")
    assert await b.order_calc_margin(ALICE, Side.BUY, "XAUUSD", D("1"), D("2000.00")) == D(
        "2000.00"
    )
    await b.place_order(ALICE, market(Side.SELL, "1"))  # a sell the buy would hedge
    assert await b.order_calc_margin(ALICE, Side.BUY, "EURUSD", D("1")) == D("1085.00")
    with pytest.raises(ValidationError):
        await b.order_calc_margin(ALICE, Side.BUY, "NOPE", D("1"))


async def test_profit_preview(h: Harness) -> None:
    b = h.broker
    # (1.08700 - 1.08500) * 100,000 = 200.00 USD; a sell loses as much
    args = ("EURUSD", D("1"), D("1.08500"), D("1.08700"))
    assert await b.order_calc_profit(ALICE, Side.BUY, *args) == D("200.00")
    assert await b.order_calc_profit(ALICE, Side.SELL, *args) == D("-200.00")


async def test_the_port_is_what_the_adapter_is(h: Harness) -> None:
    assert isinstance(h.broker, Broker)
    assert h.broker.healthy


# -- the market's tape (BrokerTape) ------------------------------------------------------


async def test_the_tape_prints_each_market_execution_once(h: Harness) -> None:
    """Seed 004's ``trades``: the market's executions (not the accounts' deals), with
    the aggressor's side, each once, ids unique."""
    assert isinstance(h.broker, BrokerTape)
    assert h.execute is not None
    prints: list[MarketTrade] = []
    h.broker.subscribe_tape(prints.append)
    await h.quote("EURUSD", "1.08490", "1.08500")
    prints.clear()
    await h.execute("EURUSD", "1.08510", "1.08520", "buy", "0.05")
    await h.execute("EURUSD", "1.08480", "1.08490", "sell", "0.02")
    await h.broker.flush()  # a poll more prints nothing again
    assert [(t.symbol, t.price, t.volume, t.side) for t in prints] == [
        ("EURUSD", 1.0852, 0.05, "buy"),
        ("EURUSD", 1.0848, 0.02, "sell"),
    ]
    assert len({t.id for t in prints}) == 2
    assert prints[0].ts <= prints[1].ts
