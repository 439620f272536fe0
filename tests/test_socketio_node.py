"""Seed 002's own client: ``socket.io-client`` v4 in Node.js against ``/socket.io/``.

``tests/node/seed002.mjs`` runs the seed's connection code unchanged (websocket first,
then the default polling-then-upgrade), subscribes like the seed's App, and checks each
event's fields; this test gives it a user with an open position and a pending order and
asserts on its report. The client comes from npm (``tests/node/package-lock.json``;
``.ci/run`` runs ``npm ci`` there); when only node_modules is missing, the test
installs it the same way.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Daemon
from tests.trading_helpers import Trader

NODE_DIR = Path(__file__).resolve().parent / "node"


@pytest.fixture(scope="module")
def node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("FXGATE_TEST_NO_SKIP"):
            pytest.fail("node is not installed")
        pytest.skip("node is not installed")
    if not (NODE_DIR / "node_modules" / "socket.io-client").is_dir():
        npm = shutil.which("npm")
        assert npm, "npm is needed to install socket.io-client (tests/node)"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=300
        )
    return node


def test_the_seed_client_works_unchanged(daemon: Daemon, node: str) -> None:
    trader = Trader.issued(daemon)
    trader.buy(0.1, symbol="EURUSD", comment="RSI_Strategy")
    trader.buy(0.05, symbol="EURUSD", type="limit", price=0.5, comment="Manual order")
    env = {
        **os.environ,
        "FXGATE_URL": daemon.url(""),
        "FXGATE_TOKEN": trader.token,
        "FXGATE_SHORT_TOKEN": daemon.token(trader.user_id, ttl=3),
    }
    run = subprocess.run(
        [node, "seed002.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=90
    )
    reports = {}
    for line in run.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            reports[r["phase"]] = r
    assert set(reports) == {"websocket", "default", "bad-token", "expiry"}, (run.stdout, run.stderr)
    for phase, r in reports.items():
        assert r["ok"], (phase, {k: v for k, v in r.items() if k != "events"}, run.stderr)

    ws = reports["websocket"]
    assert (ws["transportAtOpen"], ws["transportAtEnd"]) == ("websocket", "websocket")
    default = reports["default"]
    assert (default["transportAtOpen"], default["transportAtEnd"]) == ("polling", "websocket")
    assert default["upgraded"] == "websocket"
    assert default["quotesAfterUpgrade"] >= 2
    for r in (ws, default):
        assert r["events"]["connected"] == 1
        (position,) = r["positions_update"]
        assert (position["symbol"], position["type"], position["volume"]) == ("EURUSD", "buy", 0.1)
        assert position["comment"] == "RSI_Strategy"
        (order,) = r["orders_update"]
        assert (order["type"], order["state"], order["price_open"]) == ("buy_limit", "pending", 0.5)

    bad = reports["bad-token"]
    assert bad["message"].startswith("Authentication failed"), bad
    assert bad["data"]["code"] == "AUTHENTICATION_ERROR"
    expiry = reports["expiry"]
    assert expiry["notice"] == {"reason": "Token expired", "reconnect": True}
    assert expiry["reason"] == "io server disconnect"
    assert expiry["events"] == [
        "connected",
        "disconnected",
        "disconnect",
        "connected",
        "heartbeat_ack",
    ]
    assert run.returncode == 0, run.stderr


def test_the_seed_client_hears_disconnected_before_a_shutdown(
    fresh_daemon: Daemon, node: str
) -> None:
    d = fresh_daemon.start()
    env = {**os.environ, "FXGATE_URL": d.url(""), "FXGATE_TOKEN": d.token("sio-node-stop")}
    proc = subprocess.Popen(
        [node, "shutdown.mjs"], cwd=NODE_DIR, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        d.stop()
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    reports = json.loads(out.strip().splitlines()[-1])
    assert len(reports) == 3
    for r in reports:
        assert r["events"][0] == "disconnected", r
        assert r["notice"] == {"reason": "Server restarting", "reconnect": True}
        assert r["events"][1] == "disconnect:io server disconnect", r
    assert [r["transport"] for r in reports] == ["websocket", "websocket", "polling"]
    assert d.proc is not None
    assert d.proc.returncode == 0
