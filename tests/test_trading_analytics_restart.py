"""A trader's performance figures do not depend on what the daemon kept in memory.

Two traders open, add to, partly close and close positions, one of them through a take
profit on a price move, with a commission on every fill, and keep one position open.
The portfolio's returns and the analytics channel's figures are worked out again here,
from scratch, from the deal history the REST API lists, and must agree; after a restart
(with room for only one user's trades in memory, so they are read again and again) the
portfolio says what it said before, and the next closed trade counts every earlier one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from fxgate.domain.timefmt import parse_iso
from fxgate.domain.trading import Deal, DealEntry, Side
from fxgate.services.analytics import Performance, closed_trades, performances, seed001_payload
from tests.conftest import Daemon, Daemons
from tests.trading_helpers import Admin, Trader, live, read_until

ENV = {"FXGATE_PAPER_COMMISSION_PER_LOT": "7"}
INITIAL = D("10000")


@contextmanager
def stopped_after(d: Daemon) -> Iterator[Daemon]:
    """The daemon, stopped at the end of the block: the next one uses its state."""
    try:
        yield d
    finally:
        d.stop()


def history(t: Trader) -> list[Deal]:
    """The trader's deals as ``GET /trading/deals`` lists them."""
    return [
        Deal(
            ticket=d["ticket"],
            order_ticket=d["orderTicket"],
            position_ticket=d["positionTicket"],
            user_id=t.user_id,
            symbol=d["symbol"],
            side=Side(d["side"]),
            entry=DealEntry(d["entry"]),
            volume=D(str(d["quantity"])),
            price=D(str(d["price"])),
            time=parse_iso(d["time"]).timestamp(),
            profit=D(str(d["profit"])),
            commission=D(str(d["commission"])),
            swap=D(str(d["swap"])),
        )
        for d in t.deals()
    ]


def from_scratch(t: Trader) -> dict[str, Performance]:
    return performances(closed_trades(history(t)), initial_balance=INITIAL, now=time.time())


def returns(t: Trader) -> dict[str, float]:
    """The portfolio's ``performance``, worked out from the whole deal history."""
    perfs = from_scratch(t)

    def ret(period: str) -> float:
        return round(float(perfs[period].net_profit / INITIAL * 100), 4)

    return {"daily": ret("DAY"), "weekly": ret("WEEK"), "monthly": ret("MONTH"),
            "yearly": ret("ALL")}  # fmt: skip


def figures(t: Trader) -> dict[str, Any]:
    folio = t.portfolio()
    return {k: folio[k] for k in ("performance", "balance", "realizedPnL", "positions")}


async def test_performance_survives_a_restart_and_matches_the_deal_history(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with stopped_after(make_daemon(state, quiet=True, **ENV)) as d1:
        admin = Admin(d1)
        alice, bob = Trader.issued(d1), Trader.issued(d1)
        admin.quote("EURUSD", "1.08490", "1.08500")
        assert alice.portfolio()["performance"]["yearly"] == 0.0  # in memory from here on
        first = alice.buy(0.5)
        alice.buy(0.3, takeProfit=1.09)
        short = bob.sell(0.2)
        bob.portfolio()
        admin.quote("EURUSD", "1.08700", "1.08710")
        alice.close(first["ticket"], 0.2)  # a partial close
        bob.close(short["ticket"])  # a loss
        c = await alice.socket("analytics")
        try:
            admin.quote("EURUSD", "1.09000", "1.09010")  # the take profit fills
            alice.close(first["ticket"])  # the rest
            alice.buy(0.1)  # still open: its commission is no trade's yet
            seen = await read_until(c, lambda msgs: trades_counted(msgs) == 3)
        finally:
            await c.close()
        for t in (alice, bob):
            assert figures(t)["performance"] == returns(t)
        # The refresh after alice's third trade says what her whole history says.
        whole = from_scratch(alice)["ALL"]
        assert all_time(seen)[-1]["metrics"] == seed001_payload(whole, "ALL", 0)["metrics"]
        before = {t.user_id: figures(t) for t in (alice, bob)}
        assert before[alice.user_id]["performance"]["yearly"] > 0
        assert before[bob.user_id]["performance"]["yearly"] < 0

    with stopped_after(
        make_daemon(state, quiet=True, **ENV, FXGATE_ANALYTICS_CACHE_USERS="1")
    ) as d2:
        alice, bob = (Trader(d2, t.user_id, t.token) for t in (alice, bob))
        admin = Admin(d2)
        admin.quote("EURUSD", "1.09000", "1.09010")
        for _ in range(2):  # each read evicts the other
            assert {t.user_id: figures(t) for t in (alice, bob)} == before
        c = await alice.socket("analytics")
        try:
            (still_open,) = alice.positions()
            alice.close(still_open["ticket"])
            closed = await read_until(c, lambda msgs: trades_counted(msgs) == 4)
        finally:
            await c.close()
        # Counted: the three trades from before the restart, and this one.
        whole = from_scratch(alice)["ALL"]
        assert all_time(closed)[-1]["metrics"] == seed001_payload(whole, "ALL", 0)["metrics"]
        assert figures(alice)["performance"] == returns(alice)


def all_time(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The analytics channel's all-time updates."""
    return [
        m["data"]
        for m in live(msgs, "analytics")
        if m["data"]["type"] == "PERFORMANCE_UPDATE" and m["data"]["period"] == "ALL"
    ]


def trades_counted(msgs: list[dict[str, Any]]) -> int:
    """The trades the last all-time update counts (0 before the first)."""
    updates = all_time(msgs)
    return int(updates[-1]["metrics"]["totalTrades"]) if updates else 0
