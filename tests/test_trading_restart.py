"""A restart in the middle of trading loses nothing.

Before the restart a trader has an open position (with stop loss and take profit), a
pending limit order (with a clientOrderId), and a closed position in the history. The
daemon is stopped (SIGTERM, and in the second test SIGKILL: every trading record is
stored before the REST call answers, so even a crash must not lose one) and started
again on the same state directory. Afterwards the position, the pending order (which
still fills when the price crosses it), the balance, the deal history and the closed
position are all there, the old token still works, and new tickets do not collide
with old ones.

Levels are far from where the simulated market starts (EURUSD ~1.085) so that the
first prices after the restart, before the test sets its own, trigger nothing.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

from tests.conftest import Daemon, Daemons
from tests.trading_helpers import Admin, Trader


def snapshot(t: Trader) -> dict[str, Any]:
    def strip(p: dict[str, Any]) -> dict[str, Any]:
        # floating figures follow the price; the rest must be identical
        return {
            k: v for k, v in p.items() if k not in {"currentPrice", "unrealizedPnL", "updatedAt"}
        }

    folio = t.portfolio()
    return {
        "positions": [strip(p) for p in t.positions()],
        "orders": t.orders(),
        "pending": t.orders(status="pending"),
        "deals": t.deals(),
        "balance": (folio["balance"], folio["realizedPnL"], folio["marginUsed"]),
        "counts": (folio["positions"], folio["openOrders"]),
    }


def trade_before_restart(d: Daemon) -> tuple[Trader, dict[str, Any]]:
    admin = Admin(d)
    t = Trader.logged_in(d)
    admin.quote("EURUSD", "1.08490", "1.08500")
    admin.quote("USDJPY", "149.000", "149.020")
    opened = t.buy(0.5, stopLoss=1.04000, takeProfit=1.12000, comment="keep me")
    pending = t.buy(0.3, type="limit", price=1.05000, clientOrderId="dip-buy", strategyId="s1")
    closed = t.buy(0.2, "USDJPY")
    admin.quote("USDJPY", "149.520", "149.540")
    t.close(closed["ticket"])
    # USDJPY: (149.520 - 149.020) * 20,000 = 10,000 JPY / 149.520 = 66.8807 -> 66.88
    assert t.portfolio()["balance"] == 10066.88
    return t, {"opened": opened, "pending": pending, "closed": closed}


def check_after_restart(d: Daemon, t: Trader, ids: dict[str, Any], before: dict[str, Any]) -> None:
    admin = Admin(d)
    admin.quote("EURUSD", "1.08490", "1.08500")
    assert snapshot(t) == before
    opened, pending, closed = ids["opened"], ids["pending"], ids["closed"]

    (pos,) = t.positions()
    assert (pos["ticket"], pos["quantity"], pos["averagePrice"]) == (opened["ticket"], 0.5, 1.085)
    assert (pos["stopLoss"], pos["takeProfit"], pos["marginUsed"]) == (1.04, 1.12, 542.5)
    assert pos["unrealizedPnL"] == -5.0  # (1.08490 - 1.08500) * 50,000, revalued
    folio = t.portfolio()
    # equity 10,066.88 - 5.00 = 10,061.88
    assert (folio["balance"], folio["equity"], folio["realizedPnL"]) == (10066.88, 10061.88, 66.88)
    old = t.position(closed["ticket"])
    assert (old["status"], old["realizedPnL"], old["closePrice"]) == ("closed", 66.88, 149.52)

    # The clientOrderId still names the pending order.
    again = {"symbol": "EURUSD", "type": "limit", "side": "buy", "quantity": 0.3,
             "price": 1.05, "clientOrderId": "dip-buy", "strategyId": "s1"}  # fmt: skip
    r = t.post("/trading/orders", again)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["id"] == pending["id"]

    old_tickets = {o["ticket"] for o in before["orders"]} | {d["ticket"] for d in before["deals"]}
    # The pending order is still working: just short, then across.
    admin.quote("EURUSD", "1.05000", "1.05010")
    assert t.get_order(pending["id"])["status"] == "pending"
    admin.quote("EURUSD", "1.04990", "1.05000")
    filled = t.get_order(pending["id"])
    assert (filled["status"], filled["averagePrice"], filled["strategyId"]) == (
        "filled",
        1.05,
        "s1",
    )
    tickets = {p["ticket"] for p in t.positions()}
    assert tickets == {opened["ticket"], pending["ticket"]}

    # New tickets are new.
    admin.quote("EURUSD", "1.08490", "1.08500")  # back up, away from the daily loss limit
    fresh = t.buy(0.01)
    assert fresh["ticket"] not in old_tickets
    assert fresh["id"] not in {o["id"] for o in before["orders"]}
    new_deals = [x for x in t.deals() if x["ticket"] not in {y["ticket"] for y in before["deals"]}]
    assert len(new_deals) == 2  # the limit's fill and the fresh order's
    assert not {x["ticket"] for x in new_deals} & old_tickets
    assert len({p["ticket"] for p in t.positions()}) == 3


def test_sigterm_restart_keeps_orders_positions_balance_and_history(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    d1 = make_daemon(state, quiet=True)
    t, ids = trade_before_restart(d1)
    before = snapshot(t)
    assert d1.stop(signal.SIGTERM) == 0

    d2 = make_daemon(state, quiet=True)
    check_after_restart(d2, Trader(d2, t.user_id, t.token), ids, before)


def test_a_crash_loses_no_stored_trade(make_daemon: Daemons, tmp_path: Path) -> None:
    state = tmp_path / "state"
    d1 = make_daemon(state, quiet=True)
    t, ids = trade_before_restart(d1)
    before = snapshot(t)
    d1.stop(signal.SIGKILL)

    d2 = make_daemon(state, quiet=True)
    check_after_restart(d2, Trader(d2, t.user_id, t.token), ids, before)


async def test_a_restart_does_not_repeat_todays_daily_loss_alert(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    """The daily-loss monitor warns once per level and UTC day (``services/risk.py``:
    "``mark`` restores what was already announced today after a restart, so that a
    restart does not repeat an alert"); the alerts it raised are in the store."""
    state = tmp_path / "state"
    env = {"FXGATE_PAPER_INITIAL_BALANCE": "1000", "FXGATE_RISK_MAX_DAILY_LOSS": "100"}
    d1 = make_daemon(state, quiet=True, **env)
    t = Trader.issued(d1)
    admin = Admin(d1)
    admin.quote("EURUSD", "1.08490", "1.08500")
    t.buy(0.5)
    c = await t.socket("alerts")
    try:
        admin.quote("EURUSD", "1.08320", "1.08330")  # -90.00: 90 % of the limit
        first = (await c.type("alert"))["data"]
        assert (first["type"], first["severity"], first["current"]) == (
            "RISK_LIMIT",
            "WARNING",
            90.0,
        )
    finally:
        await c.close()
    d1.stop()

    d2 = make_daemon(state, quiet=True, **env)
    t2 = Trader(d2, t.user_id, t.token)
    admin = Admin(d2)
    c = await t2.socket("alerts")
    try:
        admin.quote("EURUSD", "1.08320", "1.08330")  # the same -90.00 as before
        admin.quote("EURUSD", "1.08310", "1.08320")  # -95.00: still under the limit
        repeated = [m["data"] for m in await c.barrier() if m["type"] == "alert"]
        assert repeated == [], "the WARNING of today was raised again after the restart"
        admin.quote("EURUSD", "1.08290", "1.08300")  # -105.00: a new level, CRITICAL
        critical = (await c.type("alert"))["data"]
        assert (critical["severity"], critical["threshold"]) == ("CRITICAL", 100)
    finally:
        await c.close()
