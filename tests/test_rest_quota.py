"""The daily REST quota (``[tiers.*] api_calls_per_day``) against real daemons: refused
beyond it with seed 003's 429, kept across a restart, shared by two daemons on one
SQLite file, and the same count in the dashboard's ``api_calls_remaining``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from fxgate.services.quota import EXACT_MARGIN
from tests.conftest import Daemon, Daemons
from tests.dashboard_client import dashboard
from tests.trading_helpers import Trader, unique


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
