"""The API-key area on SQLite: ``api_keys``, and the ``nonces`` of their signatures."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from fxgate.services.ports.store.records import ApiKey
from fxgate.store.rules import now
from fxgate.store.sqlite.tx import parse_ts, parse_ts_or_none, ts, write_tx
from fxgate.store.sqlite.worker import Worker


def _api_key(row: sqlite3.Row) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        user_id=row["user_id"],
        secret=row["secret"],
        name=row["name"],
        created_at=parse_ts(row["created_at"]),
        revoked_at=parse_ts_or_none(row["revoked_at"]),
    )


def create_api_key(
    conn: sqlite3.Connection, *, user_id: str, key_id: str, secret: str, name: str
) -> ApiKey:
    key = ApiKey(key_id=key_id, user_id=user_id, secret=secret, name=name, created_at=now())
    with write_tx(conn):
        conn.execute(
            "INSERT INTO api_keys (key_id, user_id, name, secret, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (key_id, user_id, name, secret, ts(key.created_at)),
        )
    return key


def get_api_key(conn: sqlite3.Connection, key_id: str) -> ApiKey | None:
    row = conn.execute("SELECT * FROM api_keys WHERE key_id = ?", (key_id,)).fetchone()
    return None if row is None else _api_key(row)


def list_api_keys(conn: sqlite3.Connection, user_id: str) -> list[ApiKey]:
    rows = conn.execute(
        "SELECT * FROM api_keys WHERE user_id = ? ORDER BY created_at, key_id", (user_id,)
    ).fetchall()
    return [_api_key(r) for r in rows]


def revoke_api_key(conn: sqlite3.Connection, key_id: str) -> bool:
    with write_tx(conn):
        cur = conn.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
            (ts(now()), key_id),
        )
    return cur.rowcount == 1


def remember_nonce(conn: sqlite3.Connection, key: str, expires_at: datetime) -> bool:
    # Inserts a new nonce, or takes over an expired one not purged yet; a live one
    # makes the upsert's WHERE false, so no row changes and the nonce is a replay.
    with write_tx(conn):
        cur = conn.execute(
            "INSERT INTO nonces (key, expires_at) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at"
            " WHERE nonces.expires_at <= ?",
            (key, ts(expires_at), ts(now())),
        )
    return cur.rowcount == 1


class SQLiteApiKeys:
    """``ApiKeyStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def create(self, *, user_id: str, key_id: str, secret: str, name: str = "") -> ApiKey:
        return await self._w.run(
            create_api_key, user_id=user_id, key_id=key_id, secret=secret, name=name
        )

    async def get(self, key_id: str) -> ApiKey | None:
        return await self._w.run(get_api_key, key_id)

    async def of_user(self, user_id: str) -> list[ApiKey]:
        return await self._w.run(list_api_keys, user_id)

    async def revoke(self, key_id: str) -> bool:
        return await self._w.run(revoke_api_key, key_id)

    async def remember_nonce(self, key: str, expires_at: datetime) -> bool:
        return await self._w.run_expiring(remember_nonce, key=key, expires_at=expires_at)
