"""GTD orders over REST (issue 7, item 4): ``timeInForce: "GTD"`` with ``expiresAt``.

The order answers, lists and streams with its ``expiresAt`` (``null`` on every other
order); a request whose expiry cannot mean anything is a 422 naming ``expiresAt``. That
the order then expires at its time is the broker's job, proven for every adapter in
``tests/broker/test_conformance.py`` with the clock driven rather than slept through.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.conftest import Daemon
from tests.trading_helpers import Admin, Trader, error


def iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


async def test_a_gtd_order_carries_expires_at_everywhere(daemon: Daemon) -> None:
    Admin(daemon).quote("EURUSD", "1.08490", "1.08500")
    trader = Trader.issued(daemon)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    c = await trader.socket("orders")
    try:
        order = trader.buy(0.1, type="limit", price=1.05, timeInForce="GTD", expiresAt=iso(expires))
        assert (order["status"], order["timeInForce"]) == ("pending", "GTD")
        assert datetime.fromisoformat(order["expiresAt"]) == expires
        assert trader.get_order(order["id"])["expiresAt"] == order["expiresAt"]
        msg = await c.wait_for(
            lambda m: m["type"] == "order" and m["data"]["orderId"] == order["id"]
        )
        assert datetime.fromisoformat(msg["data"]["expiresAt"]) == expires
        assert msg["data"]["timeInForce"] == "GTD"
    finally:
        await c.close()
    later = expires + timedelta(hours=1)
    r = trader.put(f"/trading/orders/{order['id']}", {"expiresAt": iso(later)})
    assert r.status_code == 200, r.text
    order = r.json()["data"]
    assert datetime.fromisoformat(order["expiresAt"]) == later
    gtc = trader.buy(0.1, type="limit", price=1.05)
    assert gtc["expiresAt"] is None
    r = trader.put(f"/trading/orders/{gtc['id']}", {"expiresAt": iso(later)})
    assert error(r, 422, "VALIDATION_ERROR")["details"]["field"] == "expiresAt"
    assert {o["id"]: o["expiresAt"] for o in trader.orders(status="pending")} == {
        order["id"]: order["expiresAt"],
        gtc["id"]: None,
    }


def test_an_expiry_that_cannot_apply_is_a_422_naming_expires_at(daemon: Daemon) -> None:
    Admin(daemon).quote("EURUSD", "1.08490", "1.08500")
    trader = Trader.issued(daemon)
    soon = iso(datetime.now(UTC) + timedelta(hours=1))
    past = iso(datetime.now(UTC) - timedelta(hours=1))
    limit = {"symbol": "EURUSD", "type": "limit", "side": "buy", "quantity": 0.1, "price": 1.05}
    cases = {
        "market": {**limit, "type": "market", "price": None, "timeInForce": "GTD",
                   "expiresAt": soon},
        "past": {**limit, "timeInForce": "GTD", "expiresAt": past},
        "no time": {**limit, "timeInForce": "GTD"},
        "GTC with a time": {**limit, "expiresAt": soon},
        "FOK with a time": {**limit, "timeInForce": "FOK", "expiresAt": soon},
    }  # fmt: skip
    for name, body in cases.items():
        body = {k: v for k, v in body.items() if v is not None}
        r = trader.post("/trading/orders", body)
        err = error(r, 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == "expiresAt", (name, err)
    r = trader.post("/trading/orders", {**limit, "timeInForce": "GTD", "expiresAt": "soon"})
    assert error(r, 422, "VALIDATION_ERROR")["details"]["field"] == "expiresAt"
    assert trader.orders() == []
