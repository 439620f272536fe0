"""The activity feed behind the ``logs`` channel, in memory: what it drops, what the
health monitor tells it, and a daemon whose ``logs`` channel is turned off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fxgate.app.assembly import build_node
from fxgate.config.settings import Settings
from fxgate.services.activity import ActivityFeed, safe_extra
from fxgate.services.health import DOWN, HEALTHY, HealthMonitor


def test_the_feed_drops_what_looks_like_a_secret() -> None:
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    extra = safe_extra(
        {
            "orderId": "o1",
            "token": "t",
            "accessToken": "t",
            "password": "p",
            "apiSecret": "s",
            "hmac": "h",
            "signature": "s",
            "Authorization": "Bearer x",
            "note": f"Bearer {jwt_like}",
            "nested": {"token": "t"},
            "volume": 0.1,
            "ok": True,
        }
    )
    assert extra == {"orderId": "o1", "volume": 0.1, "ok": True}

    published: list[Any] = []
    feed = ActivityFeed(published.append, clock=lambda: 0.0)
    feed.user("u1", "DEBUG", "not shown", "trading")
    feed.user("u1", "INFO", "shown", "trading", password="p", symbol="EURUSD")
    feed.user("u1", "WARNING", f"refused: {jwt_like}", "trading")
    feed.system("WARNING", "system", "daemon")
    assert [(e.channel, e.user_id, e.data["message"]) for e in published] == [
        ("logs", "u1", "shown"),
        ("logs", "u1", "refused: [redacted]"),
        ("logs", None, "system"),
    ]
    assert published[0].data == {
        "timestamp": "1970-01-01T00:00:00.000Z",
        "level": "INFO",
        "message": "shown",
        "module": "trading",
        "extra": {"symbol": "EURUSD"},
    }


async def test_the_health_monitor_says_when_the_broker_goes_down_and_comes_back() -> None:
    published: list[Any] = []
    monitor = HealthMonitor(activity=ActivityFeed(published.append))
    state = {"broker": HEALTHY}
    monitor.add_check("broker", lambda: state["broker"])
    await monitor.check()  # the first report is no change
    state["broker"] = DOWN
    await monitor.check()
    await monitor.check()  # still down: said once
    state["broker"] = HEALTHY
    await monitor.check()
    said = [(e.user_id, e.data["level"], e.data["message"]) for e in published]
    assert said == [
        (None, "ERROR", "Broker down (was healthy)"),
        (None, "INFO", "Broker up (was down)"),
    ]
    assert published[0].data["extra"] == {
        "component": "broker",
        "status": "DOWN",
        "previous": "HEALTHY",
    }


async def test_with_the_logs_channel_off_the_lines_are_counted_and_dropped(tmp_path: Path) -> None:
    """Turning the channel off never breaks the services that feed it."""
    node = build_node(Settings(state_dir=tmp_path, disable_plugins=["logs", "signals"]))
    await node.start()
    try:
        assert "logs" not in node.hub.channels
        assert node.hub.dropped.get("logs", 0) >= 1  # the "started" line
        node.activity.user("u1", "INFO", "an order", "trading")
        assert node.hub.dropped["logs"] >= 2
    finally:
        await node.stop()
