"""What a hostile client or a careless one sends over REST, and the clear 4xx it gets.

Each test stands for a finding of issue 6's adversarial run: a 500 from an overflowing
page number, a body read leniently (a duplicated key, a NUL, a price finer than the
symbol quotes, a price on a market order), a reused ``clientOrderId`` with another
order behind it, and client errors that reached the error log as tracebacks.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.conftest import Daemon
from tests.trading_helpers import HTTP, Admin, Trader, error, fields, messages

MARKET = {"symbol": "EURUSD", "type": "market", "side": "buy", "quantity": 0.1}
ALERT = {"type": "SYSTEM", "severity": "INFO", "title": "t", "message": "m"}


@pytest.fixture(scope="module", autouse=True)
def prices(market: Daemon) -> None:
    """The quote the orders here are placed at (the shared quiet ``market``)."""
    Admin(market).quote("EURUSD", "1.08490", "1.08500")


@pytest.fixture
def trader(market: Daemon) -> Trader:
    return Trader.issued(market)


def raw_json(t: Trader, method: str, path: str, content: bytes) -> Any:
    return t.request(method, path, content=content, headers={"Content-Type": "application/json"})


# -- numeric query parameters ------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/trading/orders", {"page": "9223372036854775807"}, "page"),
        ("/trading/deals", {"page": "12345678901234567890"}, "page"),
        ("/strategies", {"page": "9223372036854775808"}, "page"),
        ("/trading/orders", {"limit": "99999999999999999999"}, "limit"),
        ("/market/data", {"symbol": "EURUSD", "limit": "18446744073709551616"}, "limit"),
        ("/market/data", {"symbol": "EURUSD", "startTime": "99999999999999999999"}, "startTime"),
    ],
)
def test_an_out_of_range_number_in_a_query_is_422_naming_it(
    trader: Trader, path: str, params: dict[str, str], field: str
) -> None:
    err = error(trader.get(path, params=params), 422, "VALIDATION_ERROR")
    assert field in fields(err)


def test_an_out_of_range_close_volume_is_422_naming_it(trader: Trader) -> None:
    ticket = trader.buy(0.1)["positionTicket"]
    for volume in ("1e400", "NaN", "Infinity", "-0.1"):
        r = trader.delete(f"/trading/positions/{ticket}", params={"volume": volume})
        assert set(fields(error(r, 422, "VALIDATION_ERROR"))) == {"volume"}
    assert trader.position(ticket)["status"] == "open"


# -- lenient bodies ----------------------------------------------------------------------


def test_a_duplicated_key_is_refused_not_last_one_wins(trader: Trader) -> None:
    body = b'{"symbol":"EURUSD","symbol":"XAUUSD","type":"market","side":"buy","quantity":0.1}'
    err = error(raw_json(trader, "POST", "/trading/orders", body), 422, "VALIDATION_ERROR")
    assert fields(err) == {"symbol": "duplicate_key"}
    assert trader.positions() == []


def test_nul_in_a_string_is_refused(trader: Trader) -> None:
    r = trader.post("/trading/orders", {**MARKET, "comment": "hi\x00there"})
    assert fields(error(r, 422, "VALIDATION_ERROR")) == {"comment": "string_nul"}
    assert trader.positions() == []


def test_nan_is_named_as_not_a_number_not_as_bad_utf8(trader: Trader) -> None:
    body = b'{"symbol":"EURUSD","type":"limit","side":"buy","quantity":0.1,"price":NaN}'
    err = error(raw_json(trader, "POST", "/trading/orders", body), 422, "VALIDATION_ERROR")
    assert fields(err) == {"price": "json_invalid"}
    assert "NaN" in messages(err)[0]
    assert "UTF-8" not in messages(err)[0]


def test_deep_nesting_is_a_422_not_a_500(trader: Trader) -> None:
    r = raw_json(trader, "POST", "/strategies", b"[" * 200_000)
    assert fields(error(r, 422, "VALIDATION_ERROR")) == {"body": "json_invalid"}


def test_a_price_finer_than_the_symbol_quotes_is_refused(trader: Trader) -> None:
    body = {**MARKET, "type": "limit", "price": 1.070004, "stopLoss": 1.06}
    err = error(trader.post("/trading/orders", body), 422, "VALIDATION_ERROR")
    assert fields(err) == {"price": "decimal_places"}
    assert trader.orders() == []
    # The same at the symbol's five digits is fine, and so is a change to it.
    order = trader.order(**{**body, "price": 1.07})
    r = trader.put(f"/trading/orders/{order['id']}", {"takeProfit": 1.1000001})
    assert fields(error(r, 422, "VALIDATION_ERROR")) == {"takeProfit": "decimal_places"}
    assert trader.get_order(order["id"])["takeProfit"] is None


def test_a_price_on_a_market_order_is_refused(trader: Trader) -> None:
    err = error(trader.post("/trading/orders", {**MARKET, "price": 1.2}), 422, "VALIDATION_ERROR")
    assert fields(err) == {"price": "extra_forbidden"}
    assert trader.positions() == []


# -- idempotency -------------------------------------------------------------------------


def test_a_client_order_id_reused_for_another_order_is_409(trader: Trader) -> None:
    body = {**MARKET, "clientOrderId": "cid-1"}
    first = trader.order(**body)
    again = trader.post("/trading/orders", body)
    assert again.status_code == 200, again.text
    assert again.json()["data"]["id"] == first["id"]
    for change in ({"quantity": 0.2}, {"side": "sell"}, {"symbol": "GBPUSD"}):
        err = error(trader.post("/trading/orders", {**body, **change}), 409, "VALIDATION_ERROR")
        assert fields(err) == {"clientOrderId": "idempotency_conflict"}
        assert next(iter(change)) in err["details"]["differs"]
    assert [p["quantity"] for p in trader.positions()] == [0.1]


# -- client errors stay out of the error log ---------------------------------------------


def raw_request(d: Daemon, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", d.port), timeout=5) as s:
        s.sendall(request)
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks):
                head, _, rest = b"".join(chunks).partition(b"\r\n\r\n")
                length = [
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ]
                if length and len(rest) >= length[0]:
                    break
        return b"".join(chunks)


def test_client_errors_are_answered_and_never_logged_as_tracebacks(
    market: Daemon, trader: Trader
) -> None:
    before = len(market.log())
    for method in (b"FOO", b"PROPFIND", b"BREW", b"TRACE", b"CONNECT"):
        for path in (b"/trading/orders", b"/nowhere", b"/health"):
            reply = raw_request(
                market,
                method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Authorization: Bearer " + trader.token.encode() + b"\r\n\r\n",
            )
            status = reply.split(b" ", 2)[1]
            assert status in (b"405", b"400", b"404"), reply[:200]
            if status == b"405":
                assert b"\r\nallow: " in reply.lower(), reply[:400]
    # A known path with a method it does not have: 405 naming the ones it has.
    r = trader.request("PATCH", "/trading/orders")
    error(r, 405, "NOT_FOUND_ERROR")
    assert set(r.headers["Allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    broken = (
        b"--xx\r\nContent-Disposition: form-data\r\n\r\nno name\r\n--xx--\r\n",
        b"garbage without boundary",
        b"--xx\r\n\r\n",
    )
    for body in broken:
        for ctype in (b"multipart/form-data; boundary=xx", b"multipart/form-data"):
            reply = raw_request(
                market,
                b"POST /api/v1/trading/orders HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                b"Authorization: Bearer " + trader.token.encode() + b"\r\n"
                b"Content-Type: " + ctype + b"\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
            )
            assert reply.split(b" ", 2)[1] in (b"400", b"422"), reply[:200]
    # A request the server answered after all of the above: the log is up to date.
    assert HTTP.get(market.url("/health")).status_code == 200
    log = market.log()[before:]
    assert "Traceback" not in log
    assert "Uncaught exception" not in log
    assert "uncaught exception" not in log


# -- every VALIDATION_ERROR names its field ---------------------------------------------


def test_every_parse_level_validation_error_names_its_field(market: Daemon, trader: Trader) -> None:
    admin = Admin(market)
    cases = [
        (trader.get("/trading/orders", params={"startDate": "yesterday"}), {"startDate"}),
        (trader.get("/market/data", params={"symbol": "NOPE"}), {"symbol"}),
        (
            HTTP.post(
                market.url("/paper/quotes"),
                json={"symbol": "EURUSD", "bid": 1.2, "ask": 1.1},
                headers=admin.headers,
            ),
            {"ask"},
        ),
        (admin.publish({"channel": "no-such-channel", "data": {}}), {"channel"}),
        # The payload field itself (issue 8: a refused signal names data.side).
        (admin.publish({"channel": "alerts", "data": {"title": "x"}}), {"data.type"}),
        (admin.publish({"channel": "alerts", "data": [1], "userId": "u"}), {"data"}),
        (admin.publish({"channel": "alerts", "data": ALERT}), {"userId"}),
        (
            admin.publish(
                {
                    "events": [
                        {"channel": "system", "data": {"status": "OK"}},
                        {"channel": "x", "data": {}},
                    ]
                }
            ),
            {"events.1.channel"},
        ),
        (raw_json(trader, "POST", "/trading/orders", b'{"a": 1,'), {"body"}),
    ]
    for r, expected in cases:
        assert set(fields(error(r, 422, "VALIDATION_ERROR"))) == expected, r.text
