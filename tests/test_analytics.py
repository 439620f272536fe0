"""A trader's performance, as the analytics channel reports it: every number worked out by
hand from a short account history."""

from __future__ import annotations

import calendar
import json
import random
from decimal import Decimal as D

import pytest

from fxgate.domain.trading import Deal, DealEntry, Side
from fxgate.services.analytics import (
    PERIODS,
    ClosedTrade,
    Performance,
    closed_trades,
    performance,
    performances,
    period_start,
    seed000_summary,
    seed001_payload,
)


def utc(*fields: int) -> int:
    padded = (*fields, 0, 0, 0)[:6]
    return calendar.timegm((*padded, 0, 0, 0))


NOW = utc(2024, 1, 17, 12)  # a Wednesday, 12:00 UTC; the week began Monday 15th
_tickets = iter(range(1, 1_000_000))


def deal(
    position: int,
    entry: str,
    at: int,
    profit: str = "0",
    commission: str = "0",
    swap: str = "0",
    volume: str = "1",
) -> Deal:
    ticket = next(_tickets)
    return Deal(
        ticket=ticket,
        order_ticket=ticket,
        position_ticket=position,
        user_id="user_456",
        symbol="EURUSD",
        side=Side.BUY if entry == "in" else Side.SELL,
        entry=DealEntry(entry),
        volume=D(volume),
        price=D("1.1"),
        time=float(at),
        profit=D(profit),
        commission=D(commission),
        swap=D(swap),
    )


def closes(at: int, *nets: str) -> list[Deal]:
    """One ``out`` deal per net result, a minute apart: trades without entry deals."""
    return [deal(1000 + i, "out", at + 60 * i, profit=n) for i, n in enumerate(nets)]


# Balance 1000. Net results (profit + commission + swap, entry commission included):
#   Dec 20   pos 1  +50 - 3 - 3 (entry)          = +44     1044  peak 1044
#   Jan 10   pos 2  -30 - 2 - 1 swap - 2 (entry)  = -35     1009
#   Jan 16   pos 3  +20 - 1 - 1 (entry on Jan 14) = +18     1027       (yesterday, 23:59:59)
#   Jan 17   pos 4  +100 - 2.5 - 5 - 2.5 (entry)  = +90     1117  peak 1117
#   Jan 17   pos 5  +4 - 2 - 2 (entry)            =   0     1117       (breakeven)
#   Jan 17   pos 6  -40 - 1.5, entry not in list  = -41.5   1075.5     drawdown 41.5 / 1117
#   Jan 17   pos 7  opened, still open: its commission is no trade's yet
HISTORY = [
    deal(1, "in", utc(2023, 12, 20, 9), commission="-3"),
    deal(1, "out", utc(2023, 12, 20, 10), profit="50", commission="-3"),
    deal(2, "in", utc(2024, 1, 10, 9), commission="-2"),
    deal(2, "out", utc(2024, 1, 10, 10), profit="-30", commission="-2", swap="-1"),
    deal(3, "in", utc(2024, 1, 14, 9), commission="-1"),
    deal(3, "out", utc(2024, 1, 16, 23, 59, 59), profit="20", commission="-1"),
    deal(4, "in", utc(2024, 1, 17), commission="-2.5"),
    deal(4, "out", utc(2024, 1, 17, 10), profit="100", commission="-2.5", swap="-5"),
    deal(5, "in", utc(2024, 1, 17, 10, 10), commission="-2"),
    deal(5, "out", utc(2024, 1, 17, 10, 30), profit="4", commission="-2"),
    deal(6, "out", utc(2024, 1, 17, 11), profit="-40", commission="-1.5"),
    deal(7, "in", utc(2024, 1, 17, 11, 30), commission="-1"),
]


def perf(deals: list[Deal], period: str = "ALL", balance: str = "1000") -> Performance:
    return performance(closed_trades(deals), initial_balance=D(balance), now=NOW, period=period)


def test_all_time_counts_every_closed_trade_with_its_entry_commission() -> None:
    # Given in reverse: the order the store hands deals over in must not matter.
    p = perf(HISTORY[::-1])
    assert p == Performance(
        total_trades=6,
        profitable_trades=3,
        losing_trades=2,
        win_rate=D("0.5"),  # the breakeven trade counts as a trade, not as a win
        gross_profit=D("152"),  # 44 + 18 + 90
        gross_loss=D("-76.5"),  # -35 - 41.5
        profit_factor=D("152") / D("76.5"),
        net_profit=D("75.5"),
        average_profit=D("75.5") / 6,
        largest_win=D("90"),
        largest_loss=D("-41.5"),
        max_drawdown=D("41.5") / D("1117"),  # deeper than 35 / 1044
        current_drawdown=D("41.5"),
    )
    assert p.breakeven_trades == 1


def test_the_day_leaves_out_yesterdays_trade() -> None:
    p = perf(HISTORY, "DAY")
    assert (p.total_trades, p.profitable_trades, p.losing_trades) == (3, 1, 1)
    assert p.net_profit == D("48.5")  # 90 + 0 - 41.5; not yesterday's +18
    assert p.win_rate == D(1) / 3
    assert p.gross_profit == D("90")
    assert p.gross_loss == D("-41.5")
    assert p.current_drawdown == D("41.5")


@pytest.mark.parametrize(
    ("period", "trades", "net"),
    [
        ("DAY", 3, "48.5"),
        ("WEEK", 4, "66.5"),  # + yesterday's 18, whose entry (Sunday) was before the week
        ("MONTH", 5, "31.5"),  # + the -35 of Jan 10
        ("ALL", 6, "75.5"),  # + December's 44
    ],
)
def test_each_period_counts_the_trades_closed_since_it_began(
    period: str, trades: int, net: str
) -> None:
    p = perf(HISTORY, period)
    assert p.total_trades == trades
    assert p.net_profit == D(net)


def test_performances_gives_each_period_what_performance_gives_it() -> None:
    # One pass over the deals for several periods (the portfolio endpoint's four).
    both = performances(closed_trades(HISTORY[::-1]), initial_balance=D("1000"), now=NOW)
    assert list(both) == ["DAY", "WEEK", "MONTH", "ALL"]
    for period, p in both.items():
        assert p == perf(HISTORY, period)
    some = performances(
        closed_trades(HISTORY), initial_balance=D("1000"), now=NOW, periods=("DAY", "ALL")
    )
    assert some == {"DAY": perf(HISTORY, "DAY"), "ALL": perf(HISTORY, "ALL")}


def test_a_trade_closed_at_midnight_belongs_to_the_new_day() -> None:
    deals = [
        deal(1, "out", utc(2024, 1, 16, 23, 59, 59), profit="7"),
        deal(2, "out", utc(2024, 1, 17), profit="5"),
    ]
    assert perf(deals, "DAY").net_profit == D("5")
    assert perf(deals, "ALL").net_profit == D("12")


def test_periods_are_utc_calendar_periods() -> None:
    assert period_start("DAY", NOW) == utc(2024, 1, 17)
    assert period_start("WEEK", NOW) == utc(2024, 1, 15)
    assert period_start("MONTH", NOW) == utc(2024, 1, 1)
    assert period_start("ALL", NOW) is None
    sunday_night = utc(2024, 1, 21, 23, 59, 59)
    assert period_start("WEEK", sunday_night) == utc(2024, 1, 15)
    monday = utc(2024, 1, 22)
    assert period_start("WEEK", monday) == monday
    assert period_start("MONTH", utc(2024, 3, 1)) == utc(2024, 3, 1)


@pytest.mark.parametrize("period", ["day", "YEAR", ""])
def test_an_unknown_period_is_refused_by_name(period: str) -> None:
    with pytest.raises(ValueError, match="DAY, WEEK, MONTH, ALL"):
        perf(HISTORY, period)
    with pytest.raises(ValueError, match="DAY, WEEK, MONTH, ALL"):
        seed001_payload(perf(HISTORY), period, NOW)


def test_a_position_closed_in_parts_pays_its_entry_commission_once() -> None:
    deals = [
        deal(1, "in", utc(2024, 1, 17, 9), commission="-4", volume="1"),
        deal(1, "out", utc(2024, 1, 17, 10), profit="10", commission="-2", volume="0.5"),
        deal(1, "out", utc(2024, 1, 17, 11), profit="10", commission="-2", volume="0.5"),
    ]
    assert [t.net for t in closed_trades(deals)] == [D("4"), D("8")]
    assert perf(deals).net_profit == D("12")  # 20 profit - 8 commission: the balance change


def test_a_netting_position_built_in_two_fills_pays_both_entries_on_close() -> None:
    deals = [
        deal(1, "in", utc(2024, 1, 17, 9), commission="-1"),
        deal(1, "in", utc(2024, 1, 17, 9, 30), commission="-1.5"),
        deal(1, "out", utc(2024, 1, 17, 10), profit="30", commission="-2.5"),
    ]
    assert [t.net for t in closed_trades(deals)] == [D("25")]


# Balance 10000:  +1000 -> 11000 (peak)   -2200 -> 8800 (20% down)   +1100 -> 9900
#                 +2100 -> 12000 (peak)    -600 -> 11400 (5% down, 600 below the peak)
def test_a_day_that_starts_in_a_drawdown_reports_it() -> None:
    deals = closes(utc(2024, 1, 16, 9), "1000", "-2200") + closes(
        utc(2024, 1, 17, 1), "1100", "2100", "-600"
    )
    day = perf(deals, "DAY", balance="10000")
    assert day.max_drawdown == D("0.2")  # 2200 / 11000, the depth the day opened at
    assert day.current_drawdown == D("600")
    assert perf(deals, "ALL", balance="10000").max_drawdown == D("0.2")


def test_a_day_that_starts_at_a_new_peak_sees_only_its_own_drawdown() -> None:
    deals = closes(utc(2024, 1, 16, 9), "1000", "-2200", "3200") + closes(
        utc(2024, 1, 17, 1), "-600"
    )
    assert perf(deals, "DAY", balance="10000").max_drawdown == D("0.05")  # 600 / 12000
    assert perf(deals, "ALL", balance="10000").max_drawdown == D("0.2")


def test_a_quiet_day_still_shows_the_drawdown_the_account_is_in() -> None:
    day = perf(closes(utc(2024, 1, 16, 9), "1000", "-2200"), "DAY", balance="10000")
    assert day.total_trades == 0
    assert day.max_drawdown == D("0.2")
    assert day.current_drawdown == D("2200")


def test_no_trades_at_all_gives_zeros_not_errors() -> None:
    only_an_open_position = [deal(1, "in", utc(2024, 1, 17, 9), commission="-3")]
    for deals in ([], only_an_open_position):
        p = perf(deals)
        assert p == Performance(
            total_trades=0,
            profitable_trades=0,
            losing_trades=0,
            win_rate=D(0),
            gross_profit=D(0),
            gross_loss=D(0),
            profit_factor=None,
            net_profit=D(0),
            average_profit=D(0),
            largest_win=D(0),
            largest_loss=D(0),
            max_drawdown=D(0),
            current_drawdown=D(0),
        )
    metrics = seed001_payload(perf([]), "DAY", NOW)["metrics"]
    assert metrics == {
        "totalTrades": 0,
        "winRate": 0.0,
        "netProfit": 0.0,
        "currentDrawdown": 0.0,
        "profitFactor": None,
        "averageProfit": 0.0,
        "grossProfit": 0.0,
        "grossLoss": 0.0,
        "maxDrawdown": 0.0,
    }
    assert seed000_summary(perf([])) == {
        "win_rate": 0.0,
        "profit_factor": None,
        "total_trades": 0,
        "profitable_trades": 0,
        "average_profit": 0.0,
        "max_drawdown": 0.0,
    }


def test_without_losses_the_profit_factor_is_null() -> None:
    p = perf(closes(utc(2024, 1, 17, 9), "10", "0", "25"))
    assert p.profit_factor is None
    assert p.win_rate == D(2) / 3
    assert '"profitFactor": null' in json.dumps(seed001_payload(p, "ALL", NOW))
    assert seed000_summary(p)["profit_factor"] is None


def test_seed_001s_example_numbers_come_out_of_a_matching_history() -> None:
    # 4 small losses (-25 in all), 10 wins of 20, then a loss of 25 from the new peak:
    # 15 trades, 10 won (66.7%), net 150, 25 below the peak; 1000 fell to 975 first (2.5%).
    nets = ["-5", "-5", "-5", "-10", *["20"] * 10, "-25"]
    p = perf(closes(utc(2024, 1, 17, 9), *nets), "DAY")
    assert seed001_payload(p, "DAY", NOW) == {
        "type": "PERFORMANCE_UPDATE",
        "period": "DAY",
        "metrics": {
            "totalTrades": 15,
            "winRate": 66.7,
            "netProfit": 150.0,
            "currentDrawdown": 25.0,
            "profitFactor": 4.0,  # 200 / 50
            "averageProfit": 10.0,
            "grossProfit": 200.0,
            "grossLoss": -50.0,
            "maxDrawdown": 2.5,  # percent, like winRate
        },
        "timestamp": "2024-01-17T12:00:00.000Z",
    }


def test_the_days_update_rounds_money_to_cents_and_ratios_for_display() -> None:
    metrics = seed001_payload(perf(HISTORY, "DAY"), "DAY", NOW)["metrics"]
    assert metrics == {
        "totalTrades": 3,
        "winRate": 33.3,
        "netProfit": 48.5,
        "currentDrawdown": 41.5,
        "profitFactor": 2.17,  # 90 / 41.5 = 2.1687
        "averageProfit": 16.17,  # 48.5 / 3 = 16.1667
        "grossProfit": 90.0,
        "grossLoss": -41.5,
        "maxDrawdown": 3.72,  # 41.5 / 1117 = 3.7153%
    }


def test_seed_000s_summary_keeps_its_field_names_and_fractions() -> None:
    assert seed000_summary(perf(HISTORY)) == {
        "win_rate": 0.5,
        "profit_factor": 1.99,  # 152 / 76.5 = 1.9869
        "total_trades": 6,
        "profitable_trades": 3,
        "average_profit": 12.58,  # 75.5 / 6 = 12.5833
        "max_drawdown": 0.0372,  # 41.5 / 1117 = 0.037153
    }


def test_amounts_round_half_away_from_zero_in_the_accounts_currency() -> None:
    p = perf(closes(utc(2024, 1, 17, 9), "0.125", "-1234.505"))
    usd = seed001_payload(p, "ALL", NOW)["metrics"]
    assert (usd["grossProfit"], usd["grossLoss"]) == (0.13, -1234.51)  # not banker's 0.12
    jpy = seed001_payload(p, "ALL", NOW, currency="JPY")["metrics"]
    assert (jpy["grossProfit"], jpy["grossLoss"]) == (0.0, -1235.0)
    assert "-0.0" not in json.dumps(seed001_payload(perf(closes(NOW, "-0.001")), "ALL", NOW))


def test_ratios_round_half_away_from_zero_too() -> None:
    p = perf(closes(utc(2024, 1, 17, 9), "10", *["-1"] * 7))  # 1 win in 8: 12.5%
    assert seed000_summary(p)["win_rate"] == 0.13  # 0.125, not banker's 0.12
    assert seed001_payload(p, "ALL", NOW)["metrics"]["profitFactor"] == 1.43  # 10 / 7


def plain_performance(trades: list[ClosedTrade], balance: D, since: float | None) -> Performance:
    """The module's definition written out the plain way, with lists and sums: the
    oracle for the running figures (``Tally``) the module works them out with."""
    before = [t for t in trades if since is not None and t.time < since]
    nets = [t.net for t in trades if since is None or t.time >= since]
    equity = peak = balance
    for t in before:
        equity += t.net
        peak = max(peak, equity)
    max_dd = (peak - equity) / peak if peak > 0 else D(0)
    for net in nets:
        equity += net
        peak = max(peak, equity)
        max_dd = max(max_dd, (peak - equity) / peak if peak > 0 else D(0))
    wins = [n for n in nets if n > 0]
    losses = [n for n in nets if n < 0]
    total, gross_profit, gross_loss = len(nets), sum(wins, D(0)), sum(losses, D(0))
    return Performance(
        total_trades=total,
        profitable_trades=len(wins),
        losing_trades=len(losses),
        win_rate=D(len(wins)) / total if total else D(0),
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        profit_factor=gross_profit / -gross_loss if losses else None,
        net_profit=gross_profit + gross_loss,
        average_profit=(gross_profit + gross_loss) / total if total else D(0),
        largest_win=max(wins, default=D(0)),
        largest_loss=min(losses, default=D(0)),
        max_drawdown=max_dd,
        current_drawdown=peak - equity,
    )


def test_the_running_figures_agree_with_the_plain_definition() -> None:
    rng = random.Random(3)
    for _ in range(300):
        balance = D(rng.choice(["0", "100", "1000", "10000"]))
        at, trades = utc(2023, 11, 20), []
        for ticket in range(rng.randint(0, 40)):
            at += rng.choice([0, 60, 3600, 86400, 10 * 86400])
            net = D(rng.choice([0, rng.randint(-40000, 40000)])) / 100
            trades.append(ClosedTrade(float(at), ticket, net))
        for period in PERIODS:
            got = performance(trades, initial_balance=balance, now=NOW, period=period)
            assert got == plain_performance(trades, balance, period_start(period, NOW))
