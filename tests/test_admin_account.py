"""Admins acting on another user's account with ``?account=<userId>`` (issue 7, item 4).

On the paper broker an admin manages any trader's account; on MetaTrader 5 it is how an
admin trades the terminal's one account, owned by ``mt5.owner``. Identity still comes
from the token: the audit log names the admin as the actor and the account in
``details.account``, and nobody else may name an account but their own.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Daemon, Daemons, run_sync
from tests.test_mt5_e2e import OWNER, mt5_daemon
from tests.trading_helpers import Admin, Trader, error, has, read_until

MARKET_BUY = {"symbol": "EURUSD", "side": "buy", "type": "market", "quantity": 0.1}


def audit(daemon: Daemon, actor: str) -> list[Any]:
    """The audit entries written under ``actor``, read from the daemon's SQLite file."""

    async def read() -> list[Any]:
        from fxgate.store.factory import build_store

        store = build_store(
            "sqlite", state_dir=daemon.state_dir, mongodb_uri=None, mongodb_database="x"
        )
        await store.open()
        try:
            entries, _ = await store.audit.page(actor=actor, limit=200)
            return entries
        finally:
            await store.close()

    result: list[Any] = run_sync(read())
    return result


def data(r: Any, status: int = 200) -> Any:
    assert r.status_code == status, r.text
    return r.json()["data"]


@pytest.fixture
def quoted(market: Daemon) -> Daemon:
    Admin(market).quote("EURUSD", "1.08490", "1.08500")
    return market


async def test_an_admin_trades_a_traders_paper_account_and_is_audited(quoted: Daemon) -> None:
    boss = Trader.issued(quoted, role="admin")
    trader = Trader.issued(quoted)
    on = {"account": trader.user_id}
    ws = await trader.socket("positions")
    try:
        placed = data(boss.request("POST", "/trading/orders", params=on, json=MARKET_BUY), 201)
        assert placed["status"] == "filled"
        ticket = placed["ticket"]
        # The trader sees the position the admin opened; the admin's own account is empty.
        await read_until(ws, has("position", ticket=ticket, status="OPEN"))
        assert [p["ticket"] for p in trader.positions()] == [ticket]
        assert boss.positions() == []
        listed = data(boss.get("/trading/positions", params=on))
        assert [p["ticket"] for p in listed] == [ticket]
        assert data(boss.get(f"/trading/positions/{ticket}", params=on))["status"] == "open"
        orders = data(boss.get("/trading/orders", params=on))
        assert [o["id"] for o in orders] == [placed["id"]]
        assert data(boss.get(f"/trading/orders/{placed['id']}", params=on))["status"] == "filled"
        assert data(boss.get("/trading/portfolio", params=on))["positions"] == 1

        closed = data(boss.delete(f"/trading/positions/{ticket}", params=on))
        assert closed["status"] == "closed"
        await read_until(ws, has("position", ticket=ticket, status="CLOSED"))
    finally:
        await ws.close()
    assert trader.positions() == []
    assert len(trader.deals()) == 2
    assert len(data(boss.get("/trading/deals", params=on))) == 2
    assert boss.deals() == []

    # The admin is the actor, the trader's account is named; the trader did nothing.
    done = {e.action: e for e in audit(quoted, boss.user_id)}
    assert set(done) == {"order.place", "position.close"}
    assert done["order.place"].target == placed["id"]
    assert done["order.place"].details["account"] == trader.user_id
    assert done["position.close"].target == str(ticket)
    assert done["position.close"].details["account"] == trader.user_id
    own = {e.action for e in audit(quoted, trader.user_id)}
    assert not own & {"order.place", "position.close"}


async def test_an_admin_modifies_and_cancels_a_traders_pending_order(quoted: Daemon) -> None:
    boss = Trader.issued(quoted, role="admin")
    trader = Trader.issued(quoted)
    on = {"account": trader.user_id}
    order = trader.buy(0.1, type="limit", price=1.08)
    path = f"/trading/orders/{order['id']}"
    changed = data(boss.request("PUT", path, params=on, json={"price": 1.079}))
    assert changed["price"] == 1.079
    assert trader.get_order(order["id"])["price"] == 1.079
    data(boss.delete(path, params=on))
    assert trader.get_order(order["id"])["status"] == "cancelled"
    done = {e.action: e.details.get("account") for e in audit(quoted, boss.user_id)}
    assert done == {"order.modify": trader.user_id, "order.cancel": trader.user_id}
    # The trader's own placement stays theirs, with no account named.
    placed = [e for e in audit(quoted, trader.user_id) if e.action == "order.place"]
    assert [("account" in e.details) for e in placed] == [False]


async def test_a_trader_may_name_only_their_own_account(quoted: Daemon) -> None:
    victim = Trader.issued(quoted)
    pos = victim.buy(0.1)
    pending = victim.buy(0.1, type="limit", price=1.08)
    mallory = Trader.issued(quoted)
    on = {"account": victim.user_id}
    ticket = pos["ticket"]
    calls: list[tuple[str, str, Any]] = [
        ("GET", "/trading/orders", None),
        ("POST", "/trading/orders", MARKET_BUY),
        ("GET", f"/trading/orders/{pending['id']}", None),
        ("PUT", f"/trading/orders/{pending['id']}", {"price": 1.07}),
        ("DELETE", f"/trading/orders/{pending['id']}", None),
        ("GET", "/trading/positions", None),
        ("GET", f"/trading/positions/{ticket}", None),
        ("PUT", f"/trading/positions/{ticket}", {"stopLoss": 1.07}),
        ("DELETE", f"/trading/positions/{ticket}", None),
        ("GET", "/trading/portfolio", None),
        ("GET", "/trading/deals", None),
    ]
    for method, path, body in calls:
        r = mallory.request(method, path, params=on, json=body)
        err = error(r, 403, "AUTHORIZATION_ERROR")
        assert err["details"] == {"required": "admin"}, (method, path, err)
    # Nothing happened, on either account.
    assert [p["ticket"] for p in victim.positions()] == [ticket]
    assert victim.position(ticket)["stopLoss"] is None
    assert victim.get_order(pending["id"])["status"] == "pending"
    assert victim.get_order(pending["id"])["price"] == 1.08
    assert mallory.positions() == []
    assert mallory.orders() == []
    assert not [e for e in audit(quoted, mallory.user_id) if e.action.startswith("order.")]

    # Their own id is their own account, exactly as without it.
    mine = {"account": mallory.user_id}
    placed = data(mallory.request("POST", "/trading/orders", params=mine, json=MARKET_BUY), 201)
    assert [p["ticket"] for p in mallory.positions()] == [placed["ticket"]]
    assert data(mallory.get("/trading/positions", params=mine)) == mallory.positions()
    entry = next(e for e in audit(quoted, mallory.user_id) if e.action == "order.place")
    assert "account" not in entry.details


async def test_an_admin_naming_an_unknown_account_gets_404_and_creates_nothing(
    quoted: Daemon,
) -> None:
    """A mistyped id must not open a new empty paper account under it."""
    boss = Trader.issued(quoted, role="admin")
    ghost = {"account": "no-such-user"}
    err = error(
        boss.request("POST", "/trading/orders", params=ghost, json=MARKET_BUY),
        404,
        "NOT_FOUND_ERROR",
    )
    assert err["details"] == {"field": "account"}
    error(boss.get("/trading/portfolio", params=ghost), 404, "NOT_FOUND_ERROR")
    assert not [e for e in audit(quoted, boss.user_id) if e.action.startswith("order.")]


async def test_an_admin_trades_the_mt5_account_by_naming_its_owner(make_daemon: Daemons) -> None:
    d, control = mt5_daemon(make_daemon)
    control("set_price", symbol="EURUSD", bid=1.0849, ask=1.085)
    boss = Trader.issued(d, role="admin")
    owner = Trader.issued(d, user_id=OWNER)

    # Without ?account= an admin's own id is not the terminal's owner: the adapter refuses.
    err = error(boss.post("/trading/orders", MARKET_BUY), 403, "AUTHORIZATION_ERROR")
    assert err["details"] == {"reason": "not_account_owner"}
    assert boss.positions() == []

    on = {"account": OWNER}
    placed = data(boss.request("POST", "/trading/orders", params=on, json=MARKET_BUY), 201)
    assert (placed["status"], placed["averagePrice"]) == ("filled", 1.085)
    ticket = placed["ticket"]
    assert [p["ticket"] for p in owner.positions()] == [ticket]
    assert [p["ticket"] for p in data(boss.get("/trading/positions", params=on))] == [ticket]
    entry = next(e for e in audit(d, boss.user_id) if e.action == "order.place")
    assert (entry.target, entry.details["account"]) == (placed["id"], OWNER)

    closed = data(boss.delete(f"/trading/positions/{ticket}", params=on))
    assert closed["status"] == "closed"
    assert owner.positions() == []
