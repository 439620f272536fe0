"""What the operator's tools see: /health, /ready, /metrics."""

from __future__ import annotations

import httpx

from tests.conftest import Daemon
from tests.wsclient import Client


def test_health_reports_components(daemon: Daemon) -> None:
    r = httpx.get(daemon.url("/health"))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "HEALTHY"
    assert body["ready"] is True
    assert body["components"] == {"database": "HEALTHY", "broker": "HEALTHY", "bus": "HEALTHY"}
    assert httpx.get(daemon.url("/ready")).json() == {"ready": True}


async def test_metrics_count_connections_and_deliveries(daemon: Daemon, user: str) -> None:
    async with await Client.connect(daemon.ws_url() + f"?token={daemon.token(user)}") as c:
        await c.recv()
        await c.subscribe("market-data")
        # A live tick, not the snapshot sent on subscribe: only fan-out counts as delivered.
        await c.wait_for(lambda m: m.get("type") == "market_data" and not m["data"].get("snapshot"))
        text = httpx.get(daemon.url("/metrics")).text
    metrics = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert metrics["fxgate_connections"] >= 1
    assert metrics["fxgate_messages_delivered_total"] > 0
    assert metrics['fxgate_subscribers{channel="market-data"}'] >= 1
    assert metrics['fxgate_component_up{component="database"}'] == 1.0
