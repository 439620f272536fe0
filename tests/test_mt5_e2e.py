"""End to end on MetaTrader 5: the daemon with ``broker.backend = "mt5"`` over the fake
terminal, seed 001's client on ``/api/ws``, orders over REST.

How the fake is put in place, as an operator would for a dry run: ``tests/fake_mt5``
first on ``PYTHONPATH`` (``import MetaTrader5`` gets the fake), ``FAKE_MT5_SCENARIO``
for its account and market, and ``FAKE_MT5_CONTROL`` for the HTTP control the test
moves prices and trades "by hand" with.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

from tests.conftest import ROOT, Daemon, Daemons, free_port, until
from tests.trading_helpers import Trader, all_of, error, has, one, read_until

FAKE = ROOT / "tests" / "fake_mt5"
OWNER = "u_mt5_owner"


class Control:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def __call__(self, name: str, **kwargs: Any) -> Any:
        r = httpx.post(f"{self.url}/{name}", json=kwargs, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()["result"]


def mt5_daemon(make_daemon: Daemons) -> tuple[Daemon, Control]:
    port = free_port()
    d = make_daemon(
        FXGATE_BROKER_BACKEND="mt5",
        FXGATE_MT5_OWNER=OWNER,
        FXGATE_MT5_SYMBOLS='["EURUSD", "GBPUSD"]',
        FXGATE_MT5_POLL_INTERVAL="0.05",
        FXGATE_MT5_TRADE_POLL_INTERVAL="0.05",
        PYTHONPATH=os.pathsep.join([str(FAKE), str(ROOT)]),
        FAKE_MT5_SCENARIO=json.dumps({"random_ticks": False}),
        FAKE_MT5_CONTROL=f"127.0.0.1:{port}",
    )
    return d, Control(port)


def broker_health(d: Daemon) -> str:
    r = httpx.get(d.url("/health"), timeout=5)
    status: str = r.json()["components"]["broker"].lower()
    return status


async def test_a_rest_market_order_reaches_the_seed_client_as_on_paper(
    make_daemon: Daemons,
) -> None:
    d, control = mt5_daemon(make_daemon)
    control("set_price", symbol="EURUSD", bid=1.0849, ask=1.085)
    owner = Trader.issued(d, user_id=OWNER)
    other = Trader.issued(d)
    ws = await owner.socket("orders", "trades", "positions")
    try:
        placed = owner.buy(0.1)
        assert placed["status"] == "filled"
        assert placed["averagePrice"] == 1.085
        ticket, order_id = placed["ticket"], placed["id"]
        got = await read_until(
            ws,
            all_of(
                has("order", orderId=order_id, status="FILLED"),
                has("trade", ticket=ticket, entry="IN"),
                has("position", ticket=ticket, status="OPEN"),
            ),
        )
        order = one(got, "order", orderId=order_id)["data"]
        assert (order["symbol"], order["orderType"], order["ticket"]) == ("EURUSD", "BUY", ticket)
        trade = one(got, "trade", ticket=ticket)["data"]
        assert trade["openPrice"] == 1.085
        assert trade["executionId"] != str(ticket)
        assert [p["ticket"] for p in owner.positions()] == [ticket]

        # The terminal's ticks are the market-data channel's quotes.
        md = await owner.socket({"name": "market-data", "filters": {"symbol": "EURUSD"}})
        try:
            control("set_price", symbol="EURUSD", bid=1.0851, ask=1.0852)
            await read_until(md, has("market_data", symbol="EURUSD", bid=1.0851, ask=1.0852))
        finally:
            await md.close()

        # Candles are the terminal's own history, for every interval.
        for interval in ("1m", "1h", "1d"):
            r = owner.get("/market/data", params={"symbol": "EURUSD", "interval": interval,
                                                  "limit": 5})  # fmt: skip
            assert r.status_code == 200, r.text
            assert len(r.json()["data"]["data"]) == 5

        # A position opened by hand in the terminal appears as the owner's.
        by_hand = control("open_position", symbol="EURUSD", side="sell", volume="0.2")
        await read_until(ws, has("position", ticket=by_hand, status="OPEN"))

        # Another fxgate user may not trade this account.
        error(other.post("/trading/orders", {"symbol": "EURUSD", "side": "buy",
                                             "type": "market", "quantity": 0.1}),
              403, "AUTHORIZATION_ERROR")  # fmt: skip
    finally:
        await ws.close()

    # The terminal goes away: the broker component is no longer healthy; orders are
    # refused with a clear TRADING_ERROR; it comes back by itself.
    md = await owner.socket({"name": "market-data", "filters": {"symbol": "EURUSD"}})
    control("terminal_down", down=True)
    # The last price is sent once more, marked stale with its age, not repeated as new.
    got = await read_until(md, has("market_data", symbol="EURUSD", stale=True))
    stale = one(got, "market_data", stale=True)["data"]
    assert stale["bid"] == 1.0851
    assert stale["age"] >= 0
    await md.close()
    await until(lambda: broker_health(d) == "down", timeout=15, what="the broker DOWN")
    err = error(owner.post("/trading/orders", {"symbol": "EURUSD", "side": "buy",
                                               "type": "market", "quantity": 0.1}),
                400, "TRADING_ERROR")  # fmt: skip
    assert "not connected" in err["message"]
    control("terminal_down", down=False)
    await until(lambda: broker_health(d) == "healthy", timeout=15, what="the broker back")
