"""Bad trading requests get seed 003's status and error code, and write nothing.

One trader holds an open position and a pending order; every bad request below is sent
as that trader (or about their records), and afterwards their orders, positions, deals
and balance are exactly what they were. Status codes (docs/rest.md): 422
VALIDATION_ERROR for a body or query that does not fit, 400 for trading refusals, 401
AUTHENTICATION_ERROR, 403 AUTHORIZATION_ERROR, 404 NOT_FOUND_ERROR for a record that is
not yours.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Daemon
from tests.trading_helpers import HTTP, Admin, Trader, bearer, error, fields

MARKET = {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.1}


@pytest.fixture(scope="module", autouse=True)
def prices(market: Daemon) -> None:
    """The quote every trader here buys at (the shared quiet ``market``)."""
    Admin(market).quote("EURUSD", "1.08490", "1.08500")


def holder(market: Daemon) -> Trader:
    """A trader with one open position and one pending order."""
    t = Trader.issued(market)
    t.buy(0.1, stopLoss=1.08000)
    t.buy(0.2, type="limit", price=1.07000)
    return t


@pytest.fixture(scope="module")
def owner(market: Daemon) -> Trader:
    return holder(market)


def state(t: Trader) -> tuple[Any, ...]:
    """Everything a refused request must leave alone."""
    orders = sorted(
        (o["id"], o["status"], o["quantity"], o["price"], o["stopLoss"], o["takeProfit"])
        for o in t.orders()
    )
    positions = sorted(
        (p["ticket"], p["quantity"], p["status"], p["stopLoss"], p["takeProfit"])
        for p in t.positions()
    )
    folio = t.portfolio()
    return orders, positions, len(t.deals()), folio["balance"], folio["marginUsed"]


@pytest.fixture
def unchanged(owner: Trader) -> Iterator[Trader]:
    """The owner; the test fails if their records changed by the end of it."""
    before = state(owner)
    assert len(before[0]) == 2
    assert len(before[1]) == 1
    yield owner
    assert state(owner) == before


@pytest.fixture
def isolated(market: Daemon) -> Iterator[Trader]:
    """Like ``unchanged``, with a trader of the test's own (for requests that a bug
    could turn into a write, so that it cannot spill into the other tests)."""
    t = holder(market)
    before = state(t)
    yield t
    assert state(t) == before


# -- bodies that do not fit --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {},
            {"symbol": "missing", "type": "missing", "side": "missing", "quantity": "missing"},
            id="empty",
        ),
        pytest.param(
            {"symbol": "EURUSD", "side": "buy"},
            {"type": "missing", "quantity": "missing"},
            id="missing-fields",
        ),
        pytest.param({**MARKET, "quantity": "abc"}, {"quantity": "value_error"}, id="qty-abc"),
        pytest.param({**MARKET, "quantity": "1"}, {"quantity": "value_error"}, id="qty-string"),
        pytest.param({**MARKET, "quantity": True}, {"quantity": "value_error"}, id="qty-bool"),
        pytest.param({**MARKET, "quantity": None}, {"quantity": "value_error"}, id="qty-null"),
        pytest.param({**MARKET, "quantity": -1}, {"quantity": "greater_than"}, id="qty-negative"),
        pytest.param({**MARKET, "quantity": 0}, {"quantity": "greater_than"}, id="qty-zero"),
        pytest.param({**MARKET, "type": "foo"}, {"type": "literal_error"}, id="bad-type"),
        pytest.param({**MARKET, "side": "long"}, {"side": "literal_error"}, id="bad-side"),
        pytest.param(
            {**MARKET, "timeInForce": "DAY"}, {"timeInForce": "literal_error"}, id="bad-tif"
        ),
        pytest.param({**MARKET, "symbol": 42}, {"symbol": "string_type"}, id="symbol-number"),
        pytest.param(
            {**MARKET, "stopLos": 1.08}, {"stopLos": "extra_forbidden"}, id="unknown-field"
        ),
        pytest.param(
            {**MARKET, "stop_loss": 1.08}, {"stop_loss": "extra_forbidden"}, id="snake-case"
        ),
        pytest.param(
            {**MARKET, "type": "limit", "price": "1.08"}, {"price": "value_error"}, id="price-str"
        ),
        pytest.param(
            {**MARKET, "clientOrderId": "has spaces"},
            {"clientOrderId": "string_pattern_mismatch"},
            id="client-id-pattern",
        ),
    ],
)
def test_bodies_that_do_not_fit_are_422_naming_each_field(
    unchanged: Trader, body: dict[str, Any], expected: dict[str, str]
) -> None:
    err = error(unchanged.post("/trading/orders", body), 422, "VALIDATION_ERROR")
    assert fields(err) == expected


@pytest.mark.parametrize("content", [b"[]", b'"buy"', b"{", b'{"symbol": "EURUSD",}', b"\xff\xfe"])
def test_malformed_or_non_object_bodies_are_422(unchanged: Trader, content: bytes) -> None:
    r = unchanged.request(
        "POST", "/trading/orders", content=content, headers={"Content-Type": "application/json"}
    )
    error(r, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        pytest.param({**MARKET, "quantity": 0.015}, "quantity", "off_step", id="off-step"),
        pytest.param({**MARKET, "quantity": 0.001}, "quantity", "out_of_range", id="below-min"),
        pytest.param({**MARKET, "quantity": 60}, "quantity", "above_user_maximum", id="above-max"),
        pytest.param({**MARKET, "symbol": "NOPE"}, "symbol", "unknown_symbol", id="unknown-symbol"),
        pytest.param({**MARKET, "type": "limit"}, "price", "missing", id="limit-without-price"),
        pytest.param(
            {**MARKET, "type": "stop"}, "stopPrice", "missing", id="stop-without-stop-price"
        ),
        pytest.param(
            {**MARKET, "type": "stop_limit", "stopPrice": 1.09},
            "price",
            "missing",
            id="stop-limit-no-price",
        ),
    ],
)
def test_malformed_orders_are_422_naming_the_rest_field(
    unchanged: Trader, body: dict[str, Any], field: str, reason: str
) -> None:
    """One documented shape: ``details`` is ``{field, reason, ...context}`` and ``field``
    is the body's own name (``quantity``, never the broker's ``volume``)."""
    err = error(unchanged.post("/trading/orders", body), 422, "VALIDATION_ERROR")
    assert isinstance(err["details"], dict), err
    assert (err["details"]["field"], err["details"]["reason"]) == (field, reason), err


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({**MARKET, "stopLoss": 1.09}, "stopLoss", id="sl-wrong-side"),
        pytest.param({**MARKET, "takeProfit": 1.08}, "takeProfit", id="tp-wrong-side"),
        pytest.param(
            {**MARKET, "type": "stop", "stopPrice": 1.084}, "stopPrice", id="buy-stop-below-ask"
        ),
        pytest.param(
            {**MARKET, "side": "sell", "type": "stop", "stopPrice": 1.086},
            "stopPrice",
            id="sell-stop-above-bid",
        ),
    ],
)
def test_orders_the_market_refuses_are_trading_errors(
    unchanged: Trader, body: dict[str, Any], field: str
) -> None:
    """Well-formed orders that the current price refuses (MT5 invalid price/stops)."""
    err = error(unchanged.post("/trading/orders", body), 400, "TRADING_ERROR")
    assert err["details"]["field"] == field, err
    assert err["details"]["reason"] in {"invalid_stops", "trigger_reached"}, err


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({**MARKET, "quantity": 1e300}, id="qty-1e300"),
        pytest.param({**MARKET, "type": "stop", "stopPrice": 1e300}, id="stop-1e300"),
        pytest.param({**MARKET, "takeProfit": 1e300}, id="tp-1e300"),
        pytest.param({**MARKET, "side": "sell", "type": "limit", "price": 1e300}, id="limit-1e300"),
        # Positive, but nothing at the symbol's 5 digits: a limit at 0.00000 would never
        # fill (buy) or fill at once at the market (sell); a stop loss at 0.00000 reads
        # as "no stop loss".
        pytest.param({**MARKET, "type": "limit", "price": 1e-9}, id="buy-limit-rounds-to-0"),
        pytest.param(
            {**MARKET, "side": "sell", "type": "limit", "price": 1e-9},
            id="sell-limit-rounds-to-0",
        ),
        pytest.param({**MARKET, "stopLoss": 1e-9}, id="sl-rounds-to-0"),
    ],
)
def test_absurd_prices_and_volumes_are_422_not_500(isolated: Trader, body: dict[str, Any]) -> None:
    error(isolated.post("/trading/orders", body), 422, "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("what", "body"),
    [
        pytest.param("order", {"price": 1e300}, id="order-price-1e300"),
        pytest.param("order", {"stopLoss": 1e300}, id="order-sl-1e300"),
        pytest.param("position", {"takeProfit": 1e300}, id="position-tp-1e300"),
    ],
)
def test_absurd_modifications_are_422_not_500(
    isolated: Trader, what: str, body: dict[str, Any]
) -> None:
    if what == "order":
        (pending,) = isolated.orders(status="pending")
        path = f"/trading/orders/{pending['id']}"
    else:
        (pos,) = isolated.positions()
        path = f"/trading/positions/{pos['ticket']}"
    error(isolated.put(path, body), 422, "VALIDATION_ERROR")


def test_not_enough_margin_is_400_insufficient_balance(unchanged: Trader) -> None:
    # 20 lots: 2,000,000 EUR / 100 * 1.08500 = 21,700.00 USD of margin > 10,000
    r = unchanged.post("/trading/orders", {**MARKET, "quantity": 20})
    err = error(r, 400, "INSUFFICIENT_BALANCE_ERROR")
    assert err["details"]["required"] == "21700.00"


def test_a_refused_client_order_id_can_be_used_again(market: Daemon) -> None:
    trader = Trader.issued(market)
    body = {**MARKET, "quantity": 0.015, "clientOrderId": "retry-me"}
    error(trader.post("/trading/orders", body), 422, "VALIDATION_ERROR")
    error(trader.post("/trading/orders", {**body, "quantity": 20}), 400,
          "INSUFFICIENT_BALANCE_ERROR")  # fmt: skip
    assert trader.orders() == []
    order = trader.order(**{**body, "quantity": 0.01})  # 201: the id was not taken
    assert order["clientOrderId"] == "retry-me"
    assert len(trader.positions()) == 1


# -- modify and close with bad input ------------------------------------------------------


def test_bad_modifications_are_422(unchanged: Trader) -> None:
    (pending,) = unchanged.orders(status="pending")
    (pos,) = unchanged.positions()
    path = f"/trading/orders/{pending['id']}"
    assert fields(error(unchanged.put(path, {"price": "x"}), 422, "VALIDATION_ERROR")) == {
        "price": "value_error"
    }
    assert fields(error(unchanged.put(path, {"prise": 1.07}), 422, "VALIDATION_ERROR")) == {
        "prise": "extra_forbidden"
    }
    off_step = error(unchanged.put(path, {"quantity": 0.015}), 422, "VALIDATION_ERROR")
    assert off_step["details"]["field"] == "quantity"
    error(unchanged.put(path, {"quantity": -0.1}), 422, "VALIDATION_ERROR")
    below = error(unchanged.put(path, {"takeProfit": 1.06}), 400, "TRADING_ERROR")  # below a buy
    assert below["details"]["field"] == "takeProfit"
    ppath = f"/trading/positions/{pos['ticket']}"
    above = error(unchanged.put(ppath, {"stopLoss": 1.09}), 400, "TRADING_ERROR")  # above the bid
    assert above["details"]["field"] == "stopLoss"
    error(unchanged.put(ppath, {"stopLos": 1.07}), 422, "VALIDATION_ERROR")
    error(unchanged.delete(ppath, params={"volume": "abc"}), 422, "VALIDATION_ERROR")
    error(unchanged.delete(ppath, params={"volume": "-0.1"}), 422, "VALIDATION_ERROR")
    off_step = error(unchanged.delete(ppath, params={"volume": "0.015"}), 422, "VALIDATION_ERROR")
    assert off_step["details"]["field"] == "volume"  # the query parameter's own name


# -- other people's records, and records that do not exist ------------------------------


def test_someone_elses_records_are_not_found(market: Daemon, unchanged: Trader) -> None:
    (pending,) = unchanged.orders(status="pending")
    (filled,) = unchanged.orders(status="filled")
    (pos,) = unchanged.positions()
    other = Trader.issued(market)
    for oid in (pending["id"], filled["id"]):
        error(other.get(f"/trading/orders/{oid}"), 404, "NOT_FOUND_ERROR")
        error(other.put(f"/trading/orders/{oid}", {"price": 1.075}), 404, "NOT_FOUND_ERROR")
        error(other.delete(f"/trading/orders/{oid}"), 404, "NOT_FOUND_ERROR")
    for pid in (pos["ticket"], pos["id"]):
        error(other.get(f"/trading/positions/{pid}"), 404, "NOT_FOUND_ERROR")
        error(other.put(f"/trading/positions/{pid}", {"stopLoss": 1.07}), 404, "NOT_FOUND_ERROR")
        error(other.delete(f"/trading/positions/{pid}"), 404, "NOT_FOUND_ERROR")
    assert other.orders() == []
    assert other.positions() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/trading/orders/ord_ffffff"),
        ("PUT", "/trading/orders/ord_ffffff"),
        ("DELETE", "/trading/orders/ord_ffffff"),
        ("DELETE", "/trading/orders/nonsense"),
        ("GET", "/trading/positions/99999999"),
        ("GET", "/trading/positions/pos_zz"),
        ("GET", "/trading/positions/nonsense"),
        ("DELETE", "/trading/positions/99999999"),
        ("PUT", "/trading/positions/99999999"),
    ],
)
def test_unknown_ids_are_404(unchanged: Trader, method: str, path: str) -> None:
    kw: dict[str, Any] = {"json": {"stopLoss": 1.07}} if method == "PUT" else {}
    error(unchanged.request(method, path, **kw), 404, "NOT_FOUND_ERROR")


# -- who may trade -------------------------------------------------------------------------


def test_missing_bad_and_expired_tokens_are_401(market: Daemon, unchanged: Trader) -> None:
    url = market.url("/api/v1/trading/orders")
    for headers in (
        {},
        bearer("not-a-jwt"),
        bearer(market.token(unchanged.user_id, ttl=-5)),  # the owner's own, but expired
        {"Authorization": unchanged.token},  # no scheme
    ):
        r = HTTP.post(url, json=MARKET, headers=headers)
        error(r, 401, "AUTHENTICATION_ERROR")
        assert r.headers["WWW-Authenticate"] == "Bearer"
    expired = bearer(market.token(unchanged.user_id, ttl=-5))
    (pos,) = unchanged.positions()
    r = HTTP.delete(market.url(f"/api/v1/trading/positions/{pos['ticket']}"), headers=expired)
    error(r, 401, "AUTHENTICATION_ERROR")
    error(HTTP.get(market.url("/trading/portfolio"), headers=expired), 401, "AUTHENTICATION_ERROR")


def test_a_viewer_may_look_but_not_trade(market: Daemon) -> None:
    viewer = Trader.issued(market, role="viewer")
    assert viewer.orders() == []
    assert viewer.positions() == []
    err = error(viewer.post("/trading/orders", MARKET), 403, "AUTHORIZATION_ERROR")
    assert err["details"] == {"required": "trader"}
    error(viewer.put("/trading/orders/ord_ffffff", {"price": 1.0}), 403, "AUTHORIZATION_ERROR")
    error(viewer.delete("/trading/orders/ord_ffffff"), 403, "AUTHORIZATION_ERROR")
    error(viewer.delete("/trading/positions/1"), 403, "AUTHORIZATION_ERROR")
    assert viewer.orders() == []
    assert viewer.positions() == []
    assert viewer.deals() == []


def test_a_trader_cannot_set_paper_prices(market: Daemon, unchanged: Trader) -> None:
    r = unchanged.post("/paper/quotes", {"symbol": "EURUSD", "bid": 1.0, "ask": 1.1})
    error(r, 403, "AUTHORIZATION_ERROR")
    assert unchanged.positions()[0]["currentPrice"] == 1.0849
