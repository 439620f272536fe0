"""The issue's story end to end, with a real daemon and real clients.

A trader logs in over REST, watches ``orders trades positions account analytics`` on
``/api/ws``, buys EURUSD with a take profit, sees the fill, the deal and the position at
the prices the admin set, then sees the take profit close it: the closing deal with its
profit, the balance grown by exactly that profit, and the analytics update. A second
trader watching the same channels sees none of it.

Prices (USD account, 1:100, EURUSD contract 100,000):
  quote 1.08490 / 1.08500; buy 0.1 lot at the ask 1.08500
  floating at the bid: (1.08490 - 1.08500) * 10,000 = -1.00
  margin: 10,000 EUR / 100 * 1.08500 (ask) = 108.50 USD
  quote 1.08600 / 1.08610: floating (1.08600 - 1.08500) * 10,000 = +10.00
  quote 1.08810 / 1.08820: the bid 1.08810 passes the take profit 1.08800
  closed at the bid: (1.08810 - 1.08500) * 10,000 = +31.00; balance 10,031.00
"""

from __future__ import annotations

from tests.conftest import Daemon
from tests.trading_helpers import Admin, Trader, all_of, has, live, one, read_until

CHANNELS = ("orders", "trades", "positions", "account", "analytics")


async def test_order_fill_take_profit_and_analytics_reach_only_their_owner(
    market: Daemon,
) -> None:
    admin = Admin(market)
    alice = Trader.logged_in(market)
    bob = Trader.logged_in(market)
    assert alice.user_id != bob.user_id

    a = await alice.socket(*CHANNELS)
    b = await bob.socket(*CHANNELS)
    try:
        # No positions or orders yet; the account as it opens.
        snap = await a.type("account")
        assert (snap["data"]["balance"], snap["data"]["equity"]) == (10000.0, 10000.0)
        assert snap["data"]["currency"] == "USD"

        admin.quote("EURUSD", "1.08490", "1.08500")
        placed = alice.buy(0.1, takeProfit=1.08800)
        assert placed["status"] == "filled"
        assert placed["averagePrice"] == 1.085  # the ask
        ticket, order_id = placed["ticket"], placed["id"]

        opened = await read_until(
            a,
            all_of(
                has("order", orderId=order_id, status="FILLED"),
                has("trade", ticket=ticket, entry="IN"),
                has("position", ticket=ticket, status="OPEN"),
                has("account", margin=108.5),
            ),
        )
        order = one(opened, "order", orderId=order_id)["data"]
        assert order["ticket"] == ticket
        assert order["symbol"] == "EURUSD"
        assert order["orderType"] == "BUY"
        assert order["status"] == "FILLED"
        assert order["fillPrice"] == 1.085
        assert (order["volume"], order["filledVolume"], order["remainingVolume"]) == (
            0.1,
            0.1,
            0.0,
        )
        assert order["takeProfit"] == 1.088

        trade_msg = one(opened, "trade", ticket=ticket)
        assert trade_msg["channel"] == "trades"
        trade = trade_msg["data"]
        assert trade["action"] == "BUY"
        assert trade["entry"] == "IN"
        assert trade["openPrice"] == 1.085
        assert trade["volume"] == 0.1
        assert trade["takeProfit"] == 1.088
        assert trade["profit"] == 0.0
        assert trade["status"] == "FILLED"
        assert trade["executionId"] != str(ticket)  # the deal's own ticket

        position = one(opened, "position", ticket=ticket)["data"]
        assert position["type"] == "BUY"
        assert position["openPrice"] == 1.085
        assert position["currentPrice"] == 1.0849  # valued at the bid
        assert position["profit"] == -1.0  # (1.08490 - 1.08500) * 10,000
        assert position["unrealizedPnL"] == -1.0
        assert position["margin"] == 108.5  # 10,000 EUR / 100 * 1.08500
        assert position["takeProfit"] == 1.088

        account = one(opened, "account", margin=108.5)["data"]
        assert (account["balance"], account["equity"], account["free_margin"]) == (
            10000.0,
            9999.0,
            9890.5,
        )
        # 9999 / 108.5 * 100 = 9215.668... -> 9215.67 %
        assert account["margin_level"] == 9215.67

        # Every message of the story is alice's, in the canonical envelope.
        for m in opened:
            assert set(m) == {"type", "channel", "data", "timestamp", "id", "offset", "epoch"}

        # The price moves, short of the take profit: the P&L follows, live.
        admin.quote("EURUSD", "1.08600", "1.08610")
        moved = await read_until(
            a, all_of(has("position", ticket=ticket, profit=10.0), has("account", equity=10010.0))
        )
        floating = one(moved, "position", ticket=ticket, profit=10.0)["data"]
        # (1.08600 - 1.08500) * 10,000 = 10.00
        assert (floating["currentPrice"], floating["unrealizedPnL"]) == (1.086, 10.0)
        assert floating["status"] == "OPEN"
        assert [m for m in moved if m["type"] in {"trade", "order"}] == []

        # The price runs through the take profit (on the bid).
        admin.quote("EURUSD", "1.08810", "1.08820")
        closed = await read_until(
            a,
            all_of(
                has("trade", ticket=ticket, entry="OUT"),
                has("position", ticket=ticket, status="CLOSED"),
                has("account", balance=10031.0),
                has("analytics", type="PERFORMANCE_UPDATE", period="DAY"),
                has("analytics", type="PERFORMANCE_UPDATE", period="ALL"),
                has("analytics", type="PERFORMANCE_SUMMARY"),
            ),
        )
        out = one(closed, "trade", ticket=ticket, entry="OUT")["data"]
        assert out["action"] == "SELL"
        assert out["openPrice"] == 1.0881  # the deal's price: the bid
        assert out["profit"] == 31.0  # (1.08810 - 1.08500) * 10,000
        assert out["volume"] == 0.1

        closing = [m["data"] for m in live(closed, "order") if m["data"]["orderId"] != order_id]
        assert len(closing) == 1, closing
        assert closing[0]["reason"] == "TP"
        assert closing[0]["status"] == "FILLED"
        assert closing[0]["orderType"] == "SELL"
        assert closing[0]["fillPrice"] == 1.0881

        gone = one(closed, "position", ticket=ticket, status="CLOSED")["data"]
        assert gone["realizedPnL"] == 31.0
        assert gone["unrealizedPnL"] == 0.0
        assert gone["currentPrice"] == 1.0881

        account = one(closed, "account", balance=10031.0)["data"]
        assert account["equity"] == 10031.0  # 10,000 + 31.00, to the cent
        assert account["margin"] == 0.0
        assert account["profit"] == 0.0

        day = one(closed, "analytics", type="PERFORMANCE_UPDATE", period="DAY")["data"]
        assert day["metrics"]["totalTrades"] == 1
        assert day["metrics"]["winRate"] == 100.0
        assert day["metrics"]["netProfit"] == 31.0
        assert day["metrics"]["currentDrawdown"] == 0.0
        whole = one(closed, "analytics", type="PERFORMANCE_UPDATE", period="ALL")["data"]
        assert whole["metrics"]["netProfit"] == 31.0
        summary = one(closed, "analytics", type="PERFORMANCE_SUMMARY")["data"]
        assert summary["performance_summary"]["total_trades"] == 1
        assert summary["performance_summary"]["profitable_trades"] == 1
        assert summary["performance_summary"]["win_rate"] == 1.0
        assert summary["performance_summary"]["average_profit"] == 31.0

        # REST agrees: no position, the balance and the two deals.
        assert alice.positions() == []
        folio = alice.portfolio()
        assert (folio["balance"], folio["equity"], folio["realizedPnL"]) == (
            10031.0,
            10031.0,
            31.0,
        )
        # 31.00 of the initial 10,000.00, in percent, in every period
        assert folio["performance"] == {
            "daily": 0.31,
            "weekly": 0.31,
            "monthly": 0.31,
            "yearly": 0.31,
        }
        deals = alice.deals()
        assert [(d["entry"], d["side"], d["price"], d["profit"]) for d in deals] == [
            ("out", "sell", 1.0881, 31.0),
            ("in", "buy", 1.085, 0.0),
        ]

        # Bob saw his own, untouched account (its snapshot, and its opening on first
        # contact) and nothing of alice's: no order, trade, position or analytics.
        seen = await b.barrier()  # every REST call above has answered: all is sent
        assert {m["type"] for m in seen} <= {"account"}, seen
        for m in seen:
            assert (m["data"]["balance"], m["data"]["equity"], m["data"]["margin"]) == (
                10000.0,
                10000.0,
                0.0,
            )
            text = repr(m)
            assert str(ticket) not in text, m
            assert order_id not in text, m
        assert bob.positions() == []
        assert bob.orders() == []
    finally:
        await a.close()
        await b.close()


async def test_a_new_subscriber_gets_the_open_position_and_pending_order_first(
    market: Daemon,
) -> None:
    admin = Admin(market)
    carol = Trader.logged_in(market)
    admin.quote("EURUSD", "1.08490", "1.08500")
    filled = carol.buy(0.2, stopLoss=1.08000)
    pending = carol.buy(0.3, type="limit", price=1.08000)
    c = await carol.socket("positions", "orders")
    try:
        msgs = await c.barrier()  # the snapshots come before the pong
        positions = [m["data"] for m in msgs if m["type"] == "position"]
        orders = [m["data"] for m in msgs if m["type"] == "order"]
        assert [(p["ticket"], p["snapshot"], p["openPrice"], p["stopLoss"]) for p in positions] == [
            (filled["ticket"], True, 1.085, 1.08)
        ]
        assert [(o["orderId"], o["snapshot"], o["status"], o["price"]) for o in orders] == [
            (pending["id"], True, "PENDING", 1.08)
        ]
    finally:
        await c.close()


async def test_channel_filters_narrow_what_arrives(market: Daemon) -> None:
    admin = Admin(market)
    dave = Trader.logged_in(market)
    c = await dave.socket(
        {"name": "trades", "filters": {"strategyId": "s-1"}},
        {"name": "orders", "filters": {"symbol": "XAUUSD"}},
    )
    try:
        admin.quote("EURUSD", "1.08490", "1.08500")
        admin.quote("XAUUSD", "2029.75", "2030.00")
        dave.buy(0.1)  # no strategy, EURUSD: neither filter matches
        mine = dave.buy(0.1, strategyId="s-1")  # EURUSD with the strategy: a trade
        gold = dave.buy(0.01, "XAUUSD")  # gold without the strategy: an order
        msgs = await read_until(
            c, all_of(has("trade", strategyId="s-1"), has("order", symbol="XAUUSD"))
        )
        msgs += await c.barrier()
        assert [(m["type"], m["data"]["ticket"]) for m in msgs] == [
            ("trade", mine["ticket"]),
            ("order", gold["ticket"]),
        ]
    finally:
        await c.close()


async def test_the_account_arrives_once_on_subscribe(market: Daemon) -> None:
    """A new user's first look opens the account: one message, not a snapshot and its echo."""
    erin = Trader.logged_in(market)
    c = await erin.socket("account")
    try:
        seen = [m for m in await c.barrier() if m["type"] == "account"]
        assert [(m["data"]["balance"], m["data"]["currency"]) for m in seen] == [(10000.0, "USD")]
    finally:
        await c.close()
    # Once the account exists, a new subscriber gets exactly its snapshot.
    c = await erin.socket("account")
    try:
        seen = [m for m in await c.barrier() if m["type"] == "account"]
        assert [(m["data"]["balance"], m["data"].get("snapshot")) for m in seen] == [
            (10000.0, True)
        ]
    finally:
        await c.close()
