"""Money to the cent: margin and profit of EURUSD, USDJPY and XAUUSD positions as REST
shows them, the stop-out that closes the largest loser first, and the daily-loss alert.

The arithmetic is MT5's, worked by hand in the comments (USD account at 1:100, hedging;
amounts rounded half away from zero to the cent):

- forex margin = lots * 100,000 / leverage, in the base currency, converted to USD at
  the ask for a buy and the bid for a sell (USDJPY: the base is USD already);
- XAUUSD margin = lots * 100 oz * price / leverage, at the ask for a buy;
- profit = (close - open) * lots * contract, in the quote currency; a long is valued at
  the bid, a short at the ask; JPY profit is converted at USDJPY: the bid when it is a
  profit, the ask when it is a loss.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Daemon, Daemons
from tests.trading_helpers import (
    Admin,
    Trader,
    all_of,
    error,
    has,
    live,
    one,
    read_until,
)

# ``market`` (tests/conftest.py): the default account, 10,000 USD at 1:100.


@pytest.fixture(scope="module")
def small(module_daemons: Daemons) -> Daemon:
    """1,000 USD accounts and a daily loss limit of 100 USD."""
    return module_daemons(
        quiet=True, FXGATE_PAPER_INITIAL_BALANCE="1000", FXGATE_RISK_MAX_DAILY_LOSS="100"
    )


@pytest.fixture(scope="module")
def terms(module_daemons: Daemons) -> Daemon:
    """Other account terms: 1:50 and a commission of 7 USD per lot and side."""
    return module_daemons(
        quiet=True, FXGATE_PAPER_LEVERAGE="50", FXGATE_PAPER_COMMISSION_PER_LOT="7"
    )


def by_ticket(trader: Trader) -> dict[int, dict[str, Any]]:
    return {p["ticket"]: p for p in trader.positions()}


def money(p: dict[str, Any]) -> tuple[Any, ...]:
    return (p["averagePrice"], p["currentPrice"], p["marginUsed"], p["unrealizedPnL"])


# -- margin and profit ----------------------------------------------------------------------


def test_eurusd_margin_and_profit(market: Daemon) -> None:
    admin, trader = Admin(market), Trader.issued(market)
    admin.quote("EURUSD", "1.08507", "1.08517")
    long = trader.buy(0.37)["ticket"]
    short = trader.sell(0.25)["ticket"]
    pos = by_ticket(trader)
    # long: 37,000 EUR / 100 * ask 1.08517 = 401.5129 -> 401.51;
    #       valued at the bid: (1.08507 - 1.08517) * 37,000 = -3.70
    assert money(pos[long]) == (1.08517, 1.08507, 401.51, -3.7)
    # short: 25,000 EUR / 100 * bid 1.08507 = 271.2675 -> 271.27;
    #        valued at the ask: (1.08507 - 1.08517) * 25,000 = -2.50
    assert money(pos[short]) == (1.08507, 1.08517, 271.27, -2.5)

    admin.quote("EURUSD", "1.08733", "1.08745")
    pos = by_ticket(trader)
    # Margins follow the rate, as MT5 recomputes them:
    # long: (1.08733 - 1.08517) * 37,000 = 79.92; 370 EUR * ask 1.08745 = 402.36
    assert money(pos[long]) == (1.08517, 1.08733, 402.36, 79.92)
    # short: (1.08507 - 1.08745) * 25,000 = -59.50; 250 EUR * bid 1.08733 = 271.83
    assert money(pos[short]) == (1.08507, 1.08745, 271.83, -59.5)

    folio = trader.portfolio()
    # equity 10,000 + 79.92 - 59.50 = 10,020.42; the two legs hedge each other, so the
    # symbol costs its larger leg (MT5 hedged margin): max(402.36, 271.83) = 402.36;
    # free 9,618.06; level 10,020.42 / 402.36 * 100 = 2,490.41 %
    assert (folio["balance"], folio["equity"], folio["totalValue"]) == (
        10000.0,
        10020.42,
        10020.42,
    )
    assert (folio["marginUsed"], folio["availableBalance"], folio["marginLevel"]) == (
        402.36,
        9618.06,
        2490.41,
    )
    assert (folio["unrealizedPnL"], folio["realizedPnL"], folio["totalPnL"]) == (20.42, 0.0, 20.42)

    trader.close(long)
    trader.close(short)
    folio = trader.portfolio()
    assert (folio["balance"], folio["equity"], folio["marginUsed"]) == (10020.42, 10020.42, 0.0)
    assert folio["realizedPnL"] == 20.42


def test_usdjpy_profit_converts_at_the_bid_and_loss_at_the_ask(market: Daemon) -> None:
    admin, trader = Admin(market), Trader.issued(market)
    admin.quote("USDJPY", "149.000", "149.020")
    long = trader.buy(1, "USDJPY")["ticket"]
    short = trader.sell(0.5, "USDJPY")["ticket"]
    pos = by_ticket(trader)
    # The base is USD: 100,000 USD / 100 = 1,000.00 whatever the rate; 0.5 lot: 500.00.
    assert (pos[long]["marginUsed"], pos[short]["marginUsed"]) == (1000.0, 500.0)
    # long at 149.020, valued at the bid: -0.020 * 100,000 = -2,000 JPY / ask 149.020
    #   = -13.4210... -> -13.42
    assert pos[long]["unrealizedPnL"] == -13.42

    admin.quote("USDJPY", "149.520", "149.540")
    pos = by_ticket(trader)
    # long: (149.520 - 149.020) * 100,000 = 50,000 JPY / bid 149.520 = 334.4034 -> 334.40
    assert money(pos[long]) == (149.02, 149.52, 1000.0, 334.4)
    # short at 149.000, valued at the ask: (149.000 - 149.540) * 50,000 = -27,000 JPY
    #   / ask 149.540 = -180.5537 -> -180.55
    assert money(pos[short]) == (149.0, 149.54, 500.0, -180.55)

    folio = trader.portfolio()
    # equity 10,000 + 334.40 - 180.55 = 10,153.85; hedged: the larger leg, 1,000.00;
    # free 9,153.85; level 10,153.85 / 1,000 * 100 = 1,015.385 -> 1,015.39 %
    assert (folio["equity"], folio["marginUsed"], folio["availableBalance"]) == (
        10153.85,
        1000.0,
        9153.85,
    )
    assert folio["marginLevel"] == 1015.39

    # Closing books the converted amounts: 10,000 + 334.40 - 180.55 = 10,153.85.
    trader.close(long)
    trader.close(short)
    deals = trader.deals()
    assert sorted(d["profit"] for d in deals if d["entry"] == "out") == [-180.55, 334.4]
    assert trader.portfolio()["balance"] == 10153.85


def test_xauusd_margin_and_profit(market: Daemon) -> None:
    admin, trader = Admin(market), Trader.issued(market)
    admin.quote("XAUUSD", "2030.12", "2030.37")
    ticket = trader.buy(0.13, "XAUUSD")["ticket"]
    pos = by_ticket(trader)[ticket]
    # 0.13 * 100 oz * ask 2,030.37 / 100 = 263.9481 -> 263.95;
    # valued at the bid: (2,030.12 - 2,030.37) * 13 oz = -3.25
    assert money(pos) == (2030.37, 2030.12, 263.95, -3.25)

    admin.quote("XAUUSD", "2027.12", "2027.40")
    pos = by_ticket(trader)[ticket]
    # (2,027.12 - 2,030.37) * 13 = -42.25; margin at the current ask:
    # 0.13 * 100 * 2,027.40 / 100 = 263.562 -> 263.56
    assert money(pos) == (2030.37, 2027.12, 263.56, -42.25)
    folio = trader.portfolio()
    # equity 9,957.75; free 9,957.75 - 263.56 = 9,694.19; level 3,778.17 %
    assert (folio["equity"], folio["availableBalance"], folio["marginLevel"]) == (
        9957.75,
        9694.19,
        3778.17,
    )


def test_portfolio_of_all_three_symbols(market: Daemon) -> None:
    admin, trader = Admin(market), Trader.issued(market)
    admin.quote("EURUSD", "1.08507", "1.08517")
    admin.quote("USDJPY", "149.000", "149.020")
    admin.quote("XAUUSD", "2030.12", "2030.37")
    trader.buy(0.37)  # margin 401.51
    trader.buy(1, "USDJPY")  # margin 1,000.00
    trader.sell(0.5, "USDJPY")  # margin 500.00
    trader.buy(0.13, "XAUUSD")  # margin 263.95
    admin.quote("EURUSD", "1.08733", "1.08745")  # +79.92
    admin.quote("USDJPY", "149.520", "149.540")  # +334.40 and -180.55
    admin.quote("XAUUSD", "2027.12", "2027.40")  # -42.25
    assert sorted(p["unrealizedPnL"] for p in trader.positions()) == [
        -180.55,
        -42.25,
        79.92,
        334.4,
    ]
    folio = trader.portfolio()
    # floating 79.92 + 334.40 - 180.55 - 42.25 = 191.52; equity 10,191.52
    # margin at current rates, USDJPY hedged (its larger leg):
    # 402.36 + max(1,000, 500) + 263.56 = 1,665.92; free 8,525.60
    # level 10,191.52 / 1,665.92 * 100 = 611.77 %
    assert folio == {
        **folio,
        "balance": 10000.0,
        "equity": 10191.52,
        "totalValue": 10191.52,
        "unrealizedPnL": 191.52,
        "marginUsed": 1665.92,
        "availableBalance": 8525.6,
        "marginLevel": 611.77,
        "positions": 4,
        "openOrders": 0,
        "currency": "USD",
        "leverage": 100,
    }


async def test_leverage_and_commission_from_the_config(terms: Daemon) -> None:
    admin, trader = Admin(terms), Trader.issued(terms)
    admin.quote("EURUSD", "1.08490", "1.08500")
    admin.quote("XAUUSD", "2029.75", "2030.00")
    c = await trader.socket("trades")
    try:
        eur = trader.buy(1)["ticket"]
        gold = trader.buy(0.1, "XAUUSD")["ticket"]
        pos = by_ticket(trader)
        # 1:50: 100,000 EUR / 50 * 1.08500 = 2,170.00; gold 0.1 * 100 * 2,030.00 / 50 = 406.00
        assert (pos[eur]["marginUsed"], pos[gold]["marginUsed"]) == (2170.0, 406.0)
        # commission 7 per lot on entry: 7.00 + 0.70, charged to the balance at once
        assert (pos[eur]["commission"], pos[gold]["commission"]) == (-7.0, -0.7)
        folio = trader.portfolio()
        assert (folio["balance"], folio["leverage"]) == (9992.3, 50)
        entry = await c.wait_for(lambda m: m["type"] == "trade" and m["data"]["ticket"] == eur)
        assert entry["data"]["commission"] == 7.0  # seed 001 shows the cost as positive

        admin.quote("EURUSD", "1.08700", "1.08710")
        closed = trader.close(eur)
        # (1.08700 - 1.08500) * 100,000 = 200.00, less 7.00 in and 7.00 out: 186.00
        assert (closed["realizedPnL"], closed["commission"]) == (186.0, -14.0)
        out = await c.wait_for(lambda m: m["type"] == "trade" and m["data"]["entry"] == "OUT")
        assert (out["data"]["profit"], out["data"]["commission"]) == (200.0, 7.0)
        # 10,000 - 7.70 + 200.00 - 7.00 = 10,185.30
        assert trader.portfolio()["balance"] == 10185.3
    finally:
        await c.close()


async def test_a_hedge_is_charged_its_larger_leg_and_needs_no_free_margin(small: Daemon) -> None:
    admin, trader = Admin(small), Trader.issued(small)
    admin.quote("EURUSD", "1.08490", "1.08500")
    long = trader.buy(0.5)["ticket"]  # 500 EUR * 1.08500 = 542.50; free 995 - 542.50 = 452.50
    # The sell alone would need 500 EUR * 1.08490 = 542.45, more than is free; hedged, the
    # symbol costs its larger leg (MT5), which it already pays: nothing more is needed.
    short = trader.sell(0.5)["ticket"]
    assert set(by_ticket(trader)) == {long, short}
    folio = trader.portfolio()
    # equity 1,000 - 5.00 - 5.00 = 990.00; margin max(542.50, 542.45) = 542.50
    assert (folio["equity"], folio["marginUsed"], folio["availableBalance"]) == (
        990.0,
        542.5,
        447.5,
    )


# -- stop-out --------------------------------------------------------------------------------


async def test_stop_out_closes_the_largest_loser_first(small: Daemon) -> None:
    admin, trader = Admin(small), Trader.issued(small)
    admin.quote("XAUUSD", "2029.75", "2030.00")
    admin.quote("EURUSD", "1.08490", "1.08500")
    # Gold first, so that "oldest first" or "first listed" would pick the wrong one.
    gold = trader.buy(0.1, "XAUUSD")["ticket"]  # margin 0.1 * 100 * 2,030.00 / 100 = 203.00
    eur = trader.buy(0.5)["ticket"]  # margin 50,000 EUR / 100 * 1.08500 = 542.50
    c = await trader.socket("trades", "orders")
    try:
        admin.quote("XAUUSD", "2027.00", "2027.25")  # gold: (2,027.00 - 2,030.00) * 10 = -30.00
        # Just short: EURUSD bid 1.07330: (1.07330 - 1.08500) * 50,000 = -585.00;
        # margins at current prices: gold 0.1 * 100 * 2,027.25 / 100 = 202.73, EURUSD
        # 500 EUR * 1.07340 = 536.70; equity 1,000 - 585 - 30 = 385.00; margin 739.43;
        # level 52.07 %: no stop-out.
        admin.quote("EURUSD", "1.07330", "1.07340")
        assert set(by_ticket(trader)) == {gold, eur}
        folio = trader.portfolio()
        assert (folio["equity"], folio["marginLevel"]) == (385.0, 52.07)

        # EURUSD 1.07200: -650.00; equity 1,000 - 650 - 30 = 320.00; margin 202.73 +
        # 536.05 = 738.78; level 43.31 % < 50 %
        admin.quote("EURUSD", "1.07200", "1.07210")
        left = by_ticket(trader)
        assert set(left) == {gold}  # the largest loser went, and that was enough
        folio = trader.portfolio()
        # balance 1,000 - 650 = 350.00; equity 350 - 30 = 320.00; margin 202.73;
        # level 320 / 202.73 * 100 = 157.85 %
        assert (folio["balance"], folio["equity"], folio["marginUsed"]) == (350.0, 320.0, 202.73)
        assert folio["marginLevel"] == 157.85

        msgs = await read_until(c, all_of(has("trade", entry="OUT"), has("order", reason="SO")))
        out = one(msgs, "trade", entry="OUT")["data"]
        assert (out["ticket"], out["profit"], out["openPrice"]) == (eur, -650.0, 1.072)
        so = one(msgs, "order", reason="SO")["data"]
        assert (so["comment"], so["status"], so["orderType"]) == ("[so 43.31%]", "FILLED", "SELL")
        # Nothing else was closed.
        rest = await c.barrier()
        assert [m for m in live(rest, "trade") if m["data"]["entry"] == "OUT"] == []
    finally:
        await c.close()
    closed = trader.position(eur)
    assert (closed["status"], closed["realizedPnL"], closed["closePrice"]) == (
        "closed",
        -650.0,
        1.072,
    )
    assert [(d["positionTicket"], d["profit"]) for d in trader.deals() if d["entry"] == "out"] == [
        (eur, -650.0)
    ]


# -- the daily loss alert ----------------------------------------------------------------------


async def test_daily_loss_past_80_percent_raises_a_risk_limit_alert(small: Daemon) -> None:
    admin, trader = Admin(small), Trader.issued(small)
    watcher = Trader.issued(small)
    admin.quote("EURUSD", "1.08490", "1.08500")
    trader.buy(0.5)  # floating -5.00: 5 % of the 100 USD limit
    c = await trader.socket("alerts")
    w = await watcher.socket("alerts")
    try:
        assert live(await c.barrier(), "alert") == []

        # (1.08350 - 1.08500) * 50,000 = -75.00: 75 %, still under 80 %
        admin.quote("EURUSD", "1.08350", "1.08360")
        assert live(await c.barrier(), "alert") == []  # the quote has answered

        # (1.08320 - 1.08500) * 50,000 = -90.00: 90 % of the limit
        admin.quote("EURUSD", "1.08320", "1.08330")
        msg = await c.type("alert")
        assert msg["channel"] == "alerts"
        alert = msg["data"]
        assert (alert["type"], alert["severity"]) == ("RISK_LIMIT", "WARNING")
        assert alert["title"] == "Daily Loss Limit Approaching"
        assert (alert["threshold"], alert["current"]) == (80, 90.0)
        assert alert["message"] == "Daily loss has reached 90% of the maximum limit"
        assert alert["entity"] == {"type": "USER", "id": trader.user_id}
        assert alert["alertId"]
        assert alert["createdAt"].endswith("Z")

        # Once per level and day: a further loss under the limit says nothing new.
        admin.quote("EURUSD", "1.08310", "1.08320")  # -95.00
        assert live(await c.barrier(), "alert") == []

        # (1.08290 - 1.08500) * 50,000 = -105.00: the limit itself; new exposure blocked
        admin.quote("EURUSD", "1.08290", "1.08300")
        critical = (await c.type("alert"))["data"]
        assert (critical["severity"], critical["threshold"], critical["current"]) == (
            "CRITICAL",
            100,
            105.0,
        )
        error(trader.post("/trading/orders", {"symbol": "EURUSD", "type": "market",
                                               "side": "buy", "quantity": 0.01}),
              400, "TRADING_ERROR")  # fmt: skip
        assert len(trader.positions()) == 1

        # Nobody else hears of it.
        assert await w.barrier() == []
    finally:
        await c.close()
        await w.close()
