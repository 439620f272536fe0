"""What spans the areas: the lifecycle, purging expired records, restarts, a second
process on the same database, each backend's specifics and the factory."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError, StoreError
from fxgate.services.ports.store.records import Candle
from fxgate.store.factory import build_store, open_store
from fxgate.store.mongodb import MongoStore
from fxgate.store.sqlite import SQLiteStore
from fxgate.store.sqlite.schema import LATEST_VERSION
from tests.store.builders import T0, make_user, order, position
from tests.store.conftest import Backend


async def test_kind_and_ping_follow_the_lifecycle(backend: Backend) -> None:
    store = backend.make()
    assert store.kind == ("sqlite" if backend.is_sqlite else "mongodb")
    assert await store.ping() is False
    await store.open()
    await store.open()  # idempotent
    assert await store.ping() is True
    await store.close()
    await store.close()
    assert await store.ping() is False


async def test_a_closed_store_refuses_work(backend: Backend) -> None:
    store = backend.make()
    with pytest.raises(StoreError):
        await store.users.get("nobody")


async def test_purge_removes_only_what_expired(backend: Backend, store: Store) -> None:
    uid = await make_user(store)
    past, future = datetime.now(UTC) - timedelta(seconds=1), datetime.now(UTC) + timedelta(hours=1)
    for jti, expires in (("old", past), ("new", future)):
        await store.sessions.save_refresh_token(
            jti=jti, family_id="f", user_id=uid, expires_at=expires
        )
    await store.sessions.revoke_jti("j-old", past)
    await store.sessions.revoke_jti("j-new", future)
    await store.api_keys.remember_nonce("n-old", past)
    await store.api_keys.remember_nonce("n-new", future)
    removed = await store.purge_expired()
    # MongoDB's TTL monitor (and mongomock's emulation of it) may have come first.
    assert removed == 3 if backend.is_sqlite else 0 <= removed <= 3
    assert await store.sessions.get_refresh_token("old") is None
    assert await store.sessions.get_refresh_token("new") is not None
    assert await store.sessions.is_jti_revoked("j-old") is False
    assert await store.sessions.is_jti_revoked("j-new") is True
    assert await store.api_keys.remember_nonce("n-new", future) is False


# -- restarts and a second process ----------------------------------------------------------


async def test_everything_survives_close_and_reopen(backend: Backend) -> None:
    store = await backend.open()
    uid = await make_user(store)
    await store.signing_keys.add(kid="k1", secret="s")
    await store.trading.save(orders=[order("o1", uid)], positions=[position(1, uid)])
    await store.candles.upsert([Candle("EURUSD", "1m", T0, "1.1", "1.2", "1.0", "1.15", "42")])
    await store.strategies.save(uid, "s1", {"name": "Trend"})
    assert [await store.trading.next_sequence("ticket") for _ in range(3)] == [1, 2, 3]
    await store.close()

    reopened = await backend.open()
    assert await reopened.users.get_by_email("ANN@example.com") is not None
    assert [k.kid for k in await reopened.signing_keys.all() if k.active] == ["k1"]
    assert await reopened.trading.get_order(uid, "o1") == order("o1", uid)
    assert [p.ticket for p in await reopened.trading.list_open_positions()] == [1]
    assert len(await reopened.candles.latest("EURUSD", "1m")) == 1
    assert await reopened.strategies.get(uid, "s1") == {"name": "Trend"}
    assert await reopened.trading.next_sequence("ticket") == 4  # tickets survive restarts


async def test_two_store_instances_share_one_database(backend: Backend) -> None:
    daemon, cli = await backend.open(), await backend.open()
    user = await cli.users.create(email="new@example.com", name="New", role="trader")
    assert await daemon.users.get(user.id) == user
    with pytest.raises(StoreConflictError):
        await daemon.users.create(email="NEW@example.com", name="Dup", role="trader")
    await cli.signing_keys.add(kid="k1", secret="a")
    await daemon.signing_keys.add(kid="k2", secret="b")
    assert [k.kid for k in await cli.signing_keys.all() if k.active] == ["k2"]
    values = await asyncio.gather(*(s.trading.next_sequence("ticket") for s in [daemon, cli] * 10))
    assert sorted(values) == list(range(1, 21))


def _cli_writer(path: Path, count: int) -> subprocess.Popen[bytes]:
    """Another process writing to the file, as ``fxgate users add`` would."""
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from fxgate.store.sqlite import SQLiteStore\n"
        "async def main():\n"
        "    store = SQLiteStore(Path(sys.argv[1]))\n"
        "    await store.open()\n"
        f"    for i in range({count}):\n"
        "        await store.trading.next_sequence('ticket')\n"
        "        await store.users.create(email=f'cli{i}@example.com', name='c', role='viewer')\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=root)


async def test_sqlite_file_is_shared_with_another_process(tmp_path: Path) -> None:
    path = tmp_path / "fxgate.sqlite3"
    daemon = SQLiteStore(path)
    await daemon.open()
    try:
        cli = _cli_writer(path, 40)
        mine = []
        for i in range(40):
            mine.append(await daemon.trading.next_sequence("ticket"))
            await daemon.users.create(email=f"d{i}@example.com", name="d", role="viewer")
        assert await asyncio.to_thread(cli.wait, 60) == 0
        _, total = await daemon.users.page()
        assert total == 80
        assert await daemon.trading.next_sequence("ticket") == 81  # none handed out twice
        assert mine == sorted(mine)
    finally:
        await daemon.close()


# -- SQLite specifics -----------------------------------------------------------------------


async def test_sqlite_never_runs_statements_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[int] = set()
    real_connect: Callable[..., sqlite3.Connection] = sqlite3.connect

    def spying_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(lambda _sql: threads.add(threading.get_ident()))
        return conn

    monkeypatch.setattr(sqlite3, "connect", spying_connect)  # what the store calls
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    try:
        uid = await make_user(store)
        await store.trading.save(orders=[order("o1", uid)])
        await store.trading.list_orders(uid)
        await store.trading.next_sequence("ticket")
        await store.audit.append(uid, "x", "y")
        assert await store.ping()
    finally:
        await store.close()
    assert threads, "the spy saw no statements"
    assert threading.get_ident() not in threads
    assert len(threads) == 1  # one dedicated worker, one connection, for every area


async def test_sqlite_file_is_wal_with_the_latest_schema(tmp_path: Path) -> None:
    store = SQLiteStore.in_state_dir(tmp_path / "state")
    await store.open()
    await store.close()
    assert store.path == tmp_path / "state" / "fxgate.sqlite3"
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert (
            conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == LATEST_VERSION
        )
    finally:
        conn.close()


async def test_sqlite_refuses_a_file_from_a_newer_fxgate(tmp_path: Path) -> None:
    path = tmp_path / "fxgate.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        await SQLiteStore(path).open()


# -- the factory ----------------------------------------------------------------------------


async def test_factory_builds_an_unopened_sqlite_store_in_the_state_dir(tmp_path: Path) -> None:
    store = build_store("sqlite", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "fxgate.sqlite3"
    assert not store.path.exists()
    opened = await open_store("sqlite", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    try:
        assert await opened.ping()
    finally:
        await opened.close()


def test_factory_refuses_what_it_cannot_build(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="URI"):
        build_store("mongodb", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    with pytest.raises(ValueError, match="unknown"):
        build_store("postgres", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    mongo = build_store(
        "mongodb", state_dir=tmp_path, mongodb_uri="mongodb://h:1", mongodb_database="x"
    )
    assert mongo.kind == "mongodb"


# -- MongoDB specifics ----------------------------------------------------------------------


async def test_mongodb_falls_back_when_transactions_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mongomock_motor import AsyncMongoMockClient

    async def claims_transactions(_db: object) -> bool:
        return True  # a topology that says yes, then refuses (mongomock has no sessions)

    monkeypatch.setattr(MongoStore, "_detect_transactions", staticmethod(claims_transactions))
    store = MongoStore(client=AsyncMongoMockClient(), database="fallback")
    await store.open()
    try:
        assert store.supports_transactions is True
        await store.trading.save(orders=[order("o1")], positions=[position(1)])
        assert store.supports_transactions is False
        assert await store.trading.get_order("u1", "o1") == order("o1")
        await store.signing_keys.add(kid="k1", secret="s")
        assert [k.kid for k in await store.signing_keys.all() if k.active] == ["k1"]
    finally:
        await store.close()
