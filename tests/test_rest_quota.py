"""The daily REST quota (``[tiers.*] api_calls_per_day``) against real daemons: refused
beyond it with seed 003's 429, kept across a restart, shared by two daemons on one
SQLite file, and the same count in the dashboard's ``api_calls_remaining``."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from fxgate.services.quota import EXACT_MARGIN
from tests.conftest import Daemon, Daemons, until
from tests.dashboard_client import dashboard
from tests.redis_fixtures import RedisServer
from tests.test_cluster_nodes import children
from tests.trading_helpers import Trader, bearer, unique


def tiers(quota: int) -> dict[str, str]:
    return {"FXGATE_TIERS": json.dumps({"free": {"api_calls_per_day": quota}})}


def trader(d: Daemon, user: str) -> Trader:
    return Trader(d, user, d.token(user, tier="free"))


async def remaining(d: Daemon, user: str) -> Any:
    c = await dashboard(d, d.token(user, tier="free"))
    async with c:
        m = await c.type("system_metrics")
        return m["data"]["usage"]["api_calls_remaining"]


def check_refused(r: Any, quota: int) -> None:
    assert r.status_code == 429, r.text
    error = r.json()["error"]
    assert error["code"] == "RATE_LIMIT_ERROR"
    details = error["details"]
    assert details["limit"] == quota
    assert details["tier"] == "free"
    assert details["window"] == 86_400
    assert 0 < details["retryAfter"] <= 86_400
    assert r.headers["Retry-After"] == str(details["retryAfter"])


async def test_beyond_the_quota_429_and_a_restart_keeps_the_count(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    d = make_daemon.new(state, quiet=True, **tiers(3)).start()
    user, other = unique("q"), unique("q")
    t = trader(d, user)
    assert [t.get("/trading/positions").status_code for _ in range(3)] == [200, 200, 200]
    check_refused(t.get("/trading/positions"), 3)
    assert await remaining(d, user) == 0
    d.stop()

    again = make_daemon.new(state, quiet=True, **tiers(3)).start()
    check_refused(trader(again, user).get("/trading/positions"), 3)
    assert await remaining(again, user) == 0
    # another user's quota is their own
    assert trader(again, other).get("/trading/positions").status_code == 200
    assert await remaining(again, other) == 2


async def test_batched_calls_are_written_on_stop_and_read_after_a_restart(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    """Far from the limit the calls are counted locally and flushed every second, and
    on stop: a restart right after them finds each of them in the store, once."""
    quota = EXACT_MARGIN + 50
    state = tmp_path / "state"
    d = make_daemon.new(state, quiet=True, **tiers(quota)).start()
    user = unique("q")
    t = trader(d, user)
    assert all(t.get("/trading/positions").status_code == 200 for _ in range(5))
    assert await remaining(d, user) == quota - 5
    d.stop()
    with sqlite3.connect(state / "fxgate.sqlite3") as db:
        rows = db.execute("SELECT calls FROM api_calls WHERE user_id = ?", (user,)).fetchall()
    assert rows == [(5,)]

    again = make_daemon.new(state, quiet=True, **tiers(quota)).start()
    assert await remaining(again, user) == quota - 5
    assert trader(again, user).get("/trading/positions").status_code == 200
    assert await remaining(again, user) == quota - 6


async def test_two_daemons_on_one_sqlite_file_share_one_quota(
    make_daemon: Daemons, tmp_path: Path
) -> None:
    state = tmp_path / "shared"
    a = make_daemon.new(state, quiet=True, **tiers(3)).start()
    b = make_daemon.new(state, quiet=True, **tiers(3)).start()
    user = unique("q")
    on_a, on_b = trader(a, user), trader(b, user)
    assert on_a.get("/trading/positions").status_code == 200
    assert on_b.get("/trading/positions").status_code == 200
    assert on_a.get("/trading/positions").status_code == 200
    check_refused(on_b.get("/trading/positions"), 3)
    check_refused(on_a.get("/trading/positions"), 3)
    assert await remaining(b, user) == 0


async def test_the_workers_of_one_daemon_share_one_quota(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    """``serve --workers 2``: each request on a new connection, whichever worker takes
    it, counts against the one quota."""
    d = Daemon(
        tmp_path / "workers",
        {
            "FXGATE_SERVER_WORKERS": "2",
            "FXGATE_BUS_BACKEND": "redis",
            "FXGATE_BUS_REDIS_URL": redis_server.url,
            "FXGATE_BUS_REDIS_PREFIX": f"quota{os.getpid()}",
            "FXGATE_PAPER_TICK_RATE": "0.0001",
            **tiers(4),
        },
    ).start()
    try:
        assert d.proc is not None
        pid = d.proc.pid
        await until(lambda: len(children(pid)) == 2, timeout=20, what="two workers")
        user = unique("q")
        headers = bearer(d.token(user, tier="free"))
        # New connections do reach both workers: one dashboard open on one of them,
        # /health (each worker's own count of sockets) answers 1 and 0.
        watcher = await dashboard(d, d.token(unique("w")))
        async with watcher:
            seen: set[int] = set()
            for _ in range(50):
                with httpx.Client(timeout=5) as fresh:
                    seen.add(fresh.get(d.url("/health")).json()["connections"])
                if seen == {0, 1}:
                    break
            assert seen == {0, 1}
        codes = []
        for _ in range(10):
            with httpx.Client(timeout=5) as fresh:  # a new connection: any worker
                r = fresh.get(d.url("/api/v1/trading/positions"), headers=headers)
            if r.status_code == 429:
                check_refused(r, 4)
            codes.append(r.status_code)
        assert codes == [200] * 4 + [429] * 6
    finally:
        d.stop()
