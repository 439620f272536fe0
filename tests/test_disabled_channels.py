"""Services do not depend on which channels exist.

With the built-in ``alerts`` and ``trades`` channels disabled, nobody can subscribe to
them, but everything their events used to ride along with still happens: orders fill,
the trade history and analytics keep up, deals are audited, risk alerts are stored and
audited, and ``/metrics`` counts the events the hub dropped for the missing channels.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import Daemon, Daemons, run_sync, until_sync
from tests.trading_helpers import Admin, Trader

DISABLED = '["alerts", "trades"]'


def stored(daemon: Daemon) -> tuple[list[Any], list[Any]]:
    """The audit log and every stored alert, read from the daemon's SQLite file."""

    async def read() -> tuple[list[Any], list[Any]]:
        from fxgate.store.factory import build_store

        store = build_store(
            "sqlite", state_dir=daemon.state_dir, mongodb_uri=None, mongodb_database="x"
        )
        await store.open()
        try:
            entries, _ = await store.audit.page(limit=500)
            return entries, await store.trading.list_all_alerts()
        finally:
            await store.close()

    result: tuple[list[Any], list[Any]] = run_sync(read())
    return result


def metrics(daemon: Daemon) -> dict[str, float]:
    text = httpx.get(daemon.url("/metrics")).text
    return {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


async def test_disabling_alerts_and_trades_leaves_trading_whole(make_daemon: Daemons) -> None:
    d = make_daemon(
        quiet=True,
        FXGATE_DISABLE_PLUGINS=DISABLED,
        FXGATE_PAPER_INITIAL_BALANCE="1000",
        FXGATE_RISK_MAX_DAILY_LOSS="100",
    )
    admin, trader = Admin(d), Trader.issued(d)
    c = await trader.socket("positions")
    try:
        await c.send({"type": "subscribe", "channels": ["trades"]})
        refused = await c.type("error")
        assert refused["message"] == "Invalid channel"

        admin.quote("EURUSD", "1.08490", "1.08500")
        order = trader.buy(0.5)
        assert order["status"] == "filled"
        # The positions channel still gets the new position, live.
        opened = await c.wait_for(
            lambda m: m.get("type") == "position" and not m["data"].get("snapshot")
        )
        ticket = opened["data"]["ticket"]
        # (1.08320 - 1.08500) * 50,000 = -90.00: 90 % of the daily limit, an alert.
        admin.quote("EURUSD", "1.08320", "1.08330")
        trader.close(ticket)
    finally:
        await c.close()

    deals = trader.deals()
    assert [deal["entry"] for deal in deals] == ["out", "in"], deals
    assert {o["id"] for o in trader.orders()} >= {order["id"]}
    portfolio = trader.portfolio()
    assert portfolio["positions"] == 0
    assert portfolio["performance"]["daily"] < 0  # the closed trade is in the history

    def audited(actions: list[tuple[str, str]]) -> bool:
        return (
            ("alert.raise", trader.user_id) in actions
            and ("order.place", order["id"]) in actions
            and ("position.close", str(ticket)) in actions
            and [a for a, _ in actions].count("deal.fill") == 2
        )

    # Alerts and deal fills are stored and audited by tasks of their own: wait for
    # them (the store is the barrier), up to a deadline.
    def stored_and_audited() -> tuple[list[Any], list[Any]] | None:
        audit, alerts = stored(d)
        return (audit, alerts) if audited([(e.action, e.target) for e in audit]) else None

    _, alerts = until_sync(stored_and_audited, timeout=10, what="the audit entries")
    mine = [a.doc for a in alerts if a.user_id == trader.user_id]
    assert [(a["type"], a["severity"]) for a in mine] == [("RISK_LIMIT", "WARNING")]

    m = metrics(d)
    assert m['fxgate_events_dropped_total{channel="trades"}'] >= 2
    assert m['fxgate_events_dropped_total{channel="alerts"}'] >= 1
    assert 'fxgate_events_dropped_total{channel="positions"}' not in m
    assert "Traceback" not in d.log()


def test_the_hub_counts_and_drops_events_for_channels_it_does_not_have() -> None:
    from fxgate.domain.events import Event
    from fxgate.hub.hub import Hub
    from fxgate.plugins.api import Channel

    class Kept(Channel):
        name = "kept"
        message_type = "kept"
        scope = "public"

    hub = Hub([Kept()])
    hub.publish(Event("gone", {"x": 1}, user_id="u1"))
    hub.publish(Event("gone", {"x": 2}, user_id="u1"))
    hub.publish(Event("kept", {"x": 3}))
    assert hub.dropped == {"gone": 2}
    assert hub.published == 1
