"""Orders over REST against the paper market: pending orders fill when, and only when, the
price crosses them; IOC and FOK; modify and cancel; clientOrderId; partial close.

Each test steps the price (through the admin endpoint) just short of the order first and
checks it is still pending, then across it. The crossing rules (MT5's): a buy is done at
the ask, a sell at the bid; buy limit fills when ask <= price, sell limit when
bid >= price, buy stop triggers when ask >= stop, sell stop when bid <= stop, and a
stop-limit becomes a limit at its price when its stop triggers.

The paper book offers 50 lots per quote (5 levels of 10), so a 60-lot order shows IOC
and FOK; the daemon's order-volume limit is raised for it and the account is big enough
for the margin (1,000,000 USD).
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.conftest import Daemon, Daemons
from tests.trading_helpers import Admin, Trader, error

BALANCE = 1_000_000.0


@pytest.fixture(scope="module")
def market(module_daemons: Daemons) -> Daemon:
    """Room for 60-lot orders: the volume limit raised, an account big enough."""
    return module_daemons(
        quiet=True,
        FXGATE_RISK_MAX_ORDER_VOLUME="1000",
        FXGATE_PAPER_INITIAL_BALANCE=str(int(BALANCE)),
    )


@pytest.fixture
def admin(market: Daemon) -> Admin:
    return Admin(market)


@pytest.fixture
def trader(market: Daemon) -> Trader:
    return Trader.issued(market)


def status(trader: Trader, order_id: str) -> str:
    return str(trader.get_order(order_id)["status"])


# -- limit, stop and stop-limit ------------------------------------------------------------


async def test_buy_limit_fills_only_when_the_ask_reaches_it(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(1, type="limit", price=1.08400)
    assert (order["status"], order["price"], order["filledQuantity"]) == ("pending", 1.084, 0.0)
    assert order["averagePrice"] is None
    c = await trader.socket("orders")
    try:
        admin.quote("EURUSD", "1.08400", "1.08410")  # the bid touches it, the ask does not
        assert status(trader, order["id"]) == "pending"
        assert trader.positions() == []

        admin.quote("EURUSD", "1.08390", "1.08400")  # the ask reaches it
        filled = trader.get_order(order["id"])
        assert (filled["status"], filled["averagePrice"], filled["filledQuantity"]) == (
            "filled",
            1.084,
            1.0,
        )
        (pos,) = trader.positions()
        assert (pos["ticket"], pos["side"], pos["averagePrice"], pos["quantity"]) == (
            order["ticket"],
            "long",
            1.084,
            1.0,
        )
        msg = await c.wait_for(lambda m: m["type"] == "order" and m["data"]["status"] == "FILLED")
        assert (msg["data"]["orderId"], msg["data"]["fillPrice"], msg["data"]["orderType"]) == (
            order["id"],
            1.084,
            "BUY_LIMIT",
        )
    finally:
        await c.close()
    assert trader.orders(status="pending") == []


def test_sell_limit_fills_only_when_the_bid_reaches_it(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.sell(1, type="limit", price=1.08600)
    admin.quote("EURUSD", "1.08590", "1.08600")  # only the ask touches it
    assert status(trader, order["id"]) == "pending"
    assert trader.positions() == []
    admin.quote("EURUSD", "1.08610", "1.08620")  # the bid passes it: filled at the bid
    assert status(trader, order["id"]) == "filled"
    (pos,) = trader.positions()
    assert (pos["ticket"], pos["side"], pos["averagePrice"]) == (order["ticket"], "short", 1.0861)


def test_buy_stop_triggers_on_the_ask_and_fills_at_the_market(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(1, type="stop", stopPrice=1.08600)
    assert (order["status"], order["stopPrice"]) == ("pending", 1.086)
    admin.quote("EURUSD", "1.08580", "1.08599")  # one point short on the ask
    assert status(trader, order["id"]) == "pending"
    assert trader.positions() == []
    admin.quote("EURUSD", "1.08600", "1.08615")  # the ask passes the stop: a market buy
    filled = trader.get_order(order["id"])
    assert (filled["status"], filled["averagePrice"]) == ("filled", 1.08615)
    (pos,) = trader.positions()
    assert (pos["ticket"], pos["side"], pos["averagePrice"]) == (order["ticket"], "long", 1.08615)


def test_sell_stop_triggers_on_the_bid(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.sell(1, type="stop", stopPrice=1.08300)
    admin.quote("EURUSD", "1.08301", "1.08311")  # one point above the stop on the bid
    assert status(trader, order["id"]) == "pending"
    admin.quote("EURUSD", "1.08290", "1.08300")  # the bid passes it
    assert status(trader, order["id"]) == "filled"
    (pos,) = trader.positions()
    assert (pos["side"], pos["averagePrice"]) == ("short", 1.0829)


def test_a_stop_already_passed_is_refused_and_nothing_is_written(
    admin: Admin, trader: Trader
) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    r = trader.post(
        "/trading/orders",
        {"symbol": "EURUSD", "type": "stop", "side": "buy", "quantity": 1, "stopPrice": 1.084},
    )
    err = error(r, 400, "TRADING_ERROR")
    assert err["details"] == {"field": "stopPrice", "reason": "trigger_reached", "ask": "1.08500"}
    assert trader.orders() == []


def test_stop_limit_becomes_a_limit_at_its_trigger(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(1, type="stop_limit", stopPrice=1.08600, price=1.08550)
    assert (order["status"], order["stopPrice"], order["price"]) == ("pending", 1.086, 1.0855)

    admin.quote("EURUSD", "1.08530", "1.08540")  # below the limit, but not triggered
    assert status(trader, order["id"]) == "pending"
    assert trader.positions() == []

    admin.quote("EURUSD", "1.08600", "1.08610")  # triggered: now a buy limit at 1.08550
    assert status(trader, order["id"]) == "pending"
    assert trader.positions() == []

    admin.quote("EURUSD", "1.08560", "1.08570")  # the ask is still above the limit
    assert status(trader, order["id"]) == "pending"
    assert trader.positions() == []

    admin.quote("EURUSD", "1.08540", "1.08550")  # the ask reaches the limit
    filled = trader.get_order(order["id"])
    assert (filled["status"], filled["averagePrice"]) == ("filled", 1.0855)
    (pos,) = trader.positions()
    assert (pos["ticket"], pos["averagePrice"]) == (order["ticket"], 1.0855)


# -- time in force -------------------------------------------------------------------------


def test_ioc_fills_what_the_book_has_and_cancels_the_rest(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(60, timeInForce="IOC")
    assert order["status"] == "cancelled"
    assert order["filledQuantity"] == 50.0  # 5 levels of 10 lots
    assert order["averagePrice"] == 1.085  # the top of the book, whatever the depth
    (pos,) = trader.positions()
    assert (pos["quantity"], pos["averagePrice"]) == (50.0, 1.085)
    # 50 lots: 5,000,000 EUR / 100 * 1.08500 = 54,250.00 USD
    assert pos["marginUsed"] == 54250.0
    admin.quote("EURUSD", "1.08490", "1.08500")
    assert trader.positions()[0]["quantity"] == 50.0  # nothing more fills later
    assert trader.orders(status="pending") == []


def test_fok_that_cannot_fill_entirely_fills_nothing(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(60, timeInForce="FOK")
    assert order["status"] == "cancelled"
    assert order["filledQuantity"] == 0.0
    assert trader.positions() == []
    assert trader.portfolio()["balance"] == BALANCE
    full = trader.buy(50, timeInForce="FOK")
    assert (full["status"], full["filledQuantity"]) == ("filled", 50.0)
    assert [p["quantity"] for p in trader.positions()] == [50.0]


def test_ioc_limit_that_is_not_marketable_is_cancelled(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(1, type="limit", price=1.08000, timeInForce="IOC")
    assert order["status"] == "cancelled"
    assert trader.orders(status="pending") == []
    admin.quote("EURUSD", "1.07990", "1.08000")
    assert trader.positions() == []


def test_gtc_market_order_larger_than_the_book_fills_the_rest_from_the_next_quote(
    admin: Admin, trader: Trader
) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(60)
    assert (order["status"], order["filledQuantity"]) == ("pending", 50.0)
    admin.quote("EURUSD", "1.08510", "1.08520")
    done = trader.get_order(order["id"])
    assert (done["status"], done["filledQuantity"]) == ("filled", 60.0)
    (pos,) = trader.positions()
    # (1.08500 * 50 + 1.08520 * 10) / 60 = 1.0850333..
    assert pos["quantity"] == 60.0
    assert pos["averagePrice"] == pytest.approx(1.0850333, abs=1e-7)


# -- modify and cancel --------------------------------------------------------------------


async def test_modify_then_cancel_a_pending_order(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(0.5, type="limit", price=1.08000, stopLoss=1.07500)
    c = await trader.socket("orders")
    try:
        snap = await c.type("order")
        assert (snap["data"]["orderId"], snap["data"]["snapshot"]) == (order["id"], True)

        r = trader.put(
            f"/trading/orders/{order['id']}",
            {"price": 1.08100, "quantity": 0.7, "takeProfit": 1.09000},
        )
        assert r.status_code == 200, r.text
        moved = r.json()["data"]
        assert (moved["id"], moved["status"], moved["price"], moved["quantity"]) == (
            order["id"],
            "pending",
            1.081,
            0.7,
        )
        assert (moved["stopLoss"], moved["takeProfit"]) == (1.075, 1.09)
        assert trader.get_order(order["id"])["price"] == 1.081
        msg = await c.wait_for(lambda m: m["type"] == "order" and not m["data"].get("snapshot"))
        assert (msg["data"]["price"], msg["data"]["volume"], msg["data"]["status"]) == (
            1.081,
            0.7,
            "PENDING",
        )

        admin.quote("EURUSD", "1.08100", "1.08110")  # one point above the new limit
        assert status(trader, order["id"]) == "pending"

        r = trader.delete(f"/trading/orders/{order['id']}")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["success"] is True
        assert body["message"] == "Order cancelled successfully"
        assert (body["data"]["id"], body["data"]["status"]) == (order["id"], "cancelled")
        assert body["data"]["cancelledAt"].endswith("Z")
        msg = await c.wait_for(lambda m: m["type"] == "order" and m["data"]["status"] != "PENDING")
        assert (msg["data"]["orderId"], msg["data"]["status"]) == (order["id"], "CANCELLED")
    finally:
        await c.close()

    shown = trader.get_order(order["id"])
    assert (shown["status"], shown["cancelledAt"]) == ("cancelled", body["data"]["cancelledAt"])
    assert trader.orders(status="pending") == []
    assert [o["id"] for o in trader.orders(status="cancelled")] == [order["id"]]

    admin.quote("EURUSD", "1.07990", "1.08000")  # through both the old and the new limit
    assert trader.positions() == []
    assert status(trader, order["id"]) == "cancelled"

    # A cancelled order is no longer pending: neither modifiable nor cancellable.
    error(trader.delete(f"/trading/orders/{order['id']}"), 404, "NOT_FOUND_ERROR")
    error(trader.put(f"/trading/orders/{order['id']}", {"price": 1.07}), 404, "NOT_FOUND_ERROR")


def test_modifying_a_limit_across_the_market_fills_it(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(1, type="limit", price=1.08000)
    r = trader.put(f"/trading/orders/{order['id']}", {"price": 1.08500})
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["status"], r.json()["data"]["averagePrice"]) == ("filled", 1.085)
    assert [p["averagePrice"] for p in trader.positions()] == [1.085]


def test_orders_list_filters_and_pages(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    admin.quote("XAUUSD", "2029.75", "2030.00")
    a = trader.buy(0.1, type="limit", price=1.08000)
    b = trader.buy(0.1)
    c = trader.sell(0.1, "XAUUSD", type="limit", price=2040.00)
    assert [o["id"] for o in trader.orders()] == [c["id"], b["id"], a["id"]]  # newest first
    assert {o["id"] for o in trader.orders(status="pending")} == {a["id"], c["id"]}
    assert [o["id"] for o in trader.orders(status="filled")] == [b["id"]]
    assert [o["id"] for o in trader.orders(symbol="xauusd")] == [c["id"]]
    r = trader.get("/trading/orders", params={"limit": 2, "page": 2})
    assert r.status_code == 200
    assert [o["id"] for o in r.json()["data"]] == [a["id"]]
    assert r.json()["pagination"] == {"page": 2, "limit": 2, "total": 3, "totalPages": 2}


# -- clientOrderId -------------------------------------------------------------------------


def test_a_repeated_client_order_id_returns_the_first_order_and_opens_nothing(
    market: Daemon, admin: Admin, trader: Trader
) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    body = {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.1,
            "clientOrderId": "my-order-1"}  # fmt: skip
    r1 = trader.post("/trading/orders", body)
    assert r1.status_code == 201, r1.text
    first = r1.json()["data"]
    assert first["clientOrderId"] == "my-order-1"
    assert len(trader.positions()) == 1

    r2 = trader.post("/trading/orders", body)
    assert r2.status_code == 200, r2.text
    assert r2.json()["data"]["id"] == first["id"]
    assert r2.json()["data"]["ticket"] == first["ticket"]
    # Other terms under the same id are a conflict (issue 6), and open nothing.
    r3 = trader.post("/trading/orders", {**body, "quantity": 0.5, "side": "sell"})
    assert r3.status_code == 409, r3.text
    assert r3.json()["error"]["details"]["field"] == "clientOrderId"

    assert len(trader.positions()) == 1
    assert [o["id"] for o in trader.orders()] == [first["id"]]
    assert len(trader.deals()) == 1

    # The id is the user's own: another trader may use the same one.
    other = Trader.issued(market)
    r4 = other.post("/trading/orders", body)
    assert r4.status_code == 201, r4.text
    assert r4.json()["data"]["id"] != first["id"]
    assert len(trader.positions()) == 1


async def test_concurrent_requests_with_one_client_order_id_place_one_order(
    admin: Admin, trader: Trader
) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    body = {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.1,
            "clientOrderId": "burst-1"}  # fmt: skip
    async with httpx.AsyncClient(headers=trader.headers, timeout=10) as client:
        url = trader.daemon.url("/api/v1/trading/orders")
        replies = await asyncio.gather(*(client.post(url, json=body) for _ in range(8)))
    assert sorted(r.status_code for r in replies) == [200] * 7 + [201]
    assert len({r.json()["data"]["id"] for r in replies}) == 1
    assert len(trader.positions()) == 1
    assert len(trader.orders()) == 1


# -- closing positions -------------------------------------------------------------------


async def test_partial_close_keeps_the_ticket_and_books_the_closed_part(
    admin: Admin, trader: Trader
) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    ticket = trader.buy(1)["ticket"]
    admin.quote("EURUSD", "1.08600", "1.08610")
    c = await trader.socket("trades")
    try:
        left = trader.close(ticket, 0.4)
        # the remaining 0.6 lot: (1.08600 - 1.08500) * 60,000 = 60.00 floating;
        # its margin at the current rate: 600 EUR * the ask 1.08610 = 651.66
        assert (left["ticket"], left["status"], left["quantity"]) == (ticket, "open", 0.6)
        assert (left["unrealizedPnL"], left["marginUsed"]) == (60.0, 651.66)
        assert left["realizedPnL"] == 40.0  # (1.08600 - 1.08500) * 40,000
        out = await c.wait_for(lambda m: m["type"] == "trade" and m["data"]["entry"] == "OUT")
        assert (out["data"]["ticket"], out["data"]["volume"], out["data"]["profit"]) == (
            ticket,
            0.4,
            40.0,
        )
        assert out["data"]["openPrice"] == 1.086
    finally:
        await c.close()
    assert trader.portfolio()["balance"] == BALANCE + 40

    # Off-step, too much, or leaving less than the minimum: refused, nothing changes.
    r = trader.delete(f"/trading/positions/{ticket}", params={"volume": 0.045})
    error(r, 422, "VALIDATION_ERROR")
    r = trader.delete(f"/trading/positions/{ticket}", params={"volume": 0.7})
    error(r, 422, "VALIDATION_ERROR")
    r = trader.delete(f"/trading/positions/{ticket}", params={"volume": -1})
    error(r, 422, "VALIDATION_ERROR")
    assert [p["quantity"] for p in trader.positions()] == [0.6]

    closed = trader.close(ticket)
    assert (closed["status"], closed["realizedPnL"], closed["unrealizedPnL"]) == (
        "closed",
        100.0,
        0.0,
    )
    assert trader.positions() == []
    assert trader.portfolio()["balance"] == BALANCE + 100
    # The closed position stays readable by its ticket and its REST id.
    shown = trader.position(ticket)
    assert (shown["status"], shown["closePrice"], shown["realizedPnL"]) == ("closed", 1.086, 100.0)
    assert trader.get(f"/trading/positions/{closed['id']}").json()["data"]["ticket"] == ticket
    assert [(d["entry"], d["quantity"], d["profit"]) for d in trader.deals()] == [
        ("out", 0.6, 60.0),
        ("out", 0.4, 40.0),
        ("in", 1.0, 0.0),
    ]


def test_closing_a_whole_position_books_its_profit(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    ticket = trader.sell(0.3)["ticket"]  # at the bid 1.08490
    admin.quote("EURUSD", "1.08380", "1.08390")
    closed = trader.close(ticket)
    # a short closes at the ask: (1.08490 - 1.08390) * 30,000 = 30.00
    assert (closed["ticket"], closed["status"], closed["closePrice"]) == (ticket, "closed", 1.0839)
    assert (closed["realizedPnL"], closed["unrealizedPnL"]) == (30.0, 0.0)
    assert trader.positions() == []
    assert trader.portfolio()["balance"] == BALANCE + 30
    error(trader.delete(f"/trading/positions/{ticket}"), 404, "NOT_FOUND_ERROR")


def test_stop_loss_set_on_an_open_position_closes_it_on_the_bid(
    admin: Admin, trader: Trader
) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    ticket = trader.buy(1)["ticket"]
    r = trader.put(f"/trading/positions/{ticket}", {"stopLoss": 1.08300, "takeProfit": 1.08800})
    assert r.status_code == 200, r.text
    assert (r.json()["data"]["stopLoss"], r.json()["data"]["takeProfit"]) == (1.083, 1.088)
    admin.quote("EURUSD", "1.08310", "1.08320")  # one point short on the bid
    assert [p["ticket"] for p in trader.positions()] == [ticket]
    r = trader.put(f"/trading/positions/{ticket}", {"takeProfit": 0})  # 0 removes it
    assert (r.json()["data"]["stopLoss"], r.json()["data"]["takeProfit"]) == (1.083, None)
    admin.quote("EURUSD", "1.08300", "1.08310")  # the bid reaches the stop loss
    assert trader.positions() == []
    closed = trader.position(ticket)
    # (1.08300 - 1.08500) * 100,000 = -200.00
    assert (closed["status"], closed["closePrice"], closed["realizedPnL"]) == (
        "closed",
        1.083,
        -200.0,
    )
    assert trader.portfolio()["balance"] == BALANCE - 200


def test_a_filled_limit_order_gives_its_position_the_orders_stops(
    admin: Admin, trader: Trader
) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(0.5, type="limit", price=1.08400, stopLoss=1.08000, takeProfit=1.09000)
    admin.quote("EURUSD", "1.08390", "1.08400")
    (pos,) = trader.positions()
    assert (pos["ticket"], pos["stopLoss"], pos["takeProfit"]) == (order["ticket"], 1.08, 1.09)


def test_orders_list_by_date(admin: Admin, trader: Trader) -> None:
    admin.quote("EURUSD", "1.08490", "1.08500")
    order = trader.buy(0.1, type="limit", price=1.08000)
    created = order["createdAt"]
    assert [o["id"] for o in trader.orders(startDate=created)] == [order["id"]]
    assert trader.orders(endDate=created) == []  # before, exclusive
    assert trader.orders(startDate="2999-01-01T00:00:00Z") == []
    assert [o["id"] for o in trader.orders(endDate="2999-01-01T00:00:00Z")] == [order["id"]]
    r = trader.get("/trading/orders", params={"startDate": "yesterday"})
    assert error(r, 422, "VALIDATION_ERROR")["details"]["field"] == "startDate"
    r = trader.get("/trading/orders", params={"status": "open"})
    error(r, 422, "VALIDATION_ERROR")
