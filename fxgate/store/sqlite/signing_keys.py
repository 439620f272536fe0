"""The signing-key area on SQLite: ``signing_keys``, one active by a partial unique index."""

from __future__ import annotations

import sqlite3

from fxgate.services.ports.store.errors import StoreConflictError
from fxgate.services.ports.store.records import SigningKey
from fxgate.store.rules import now
from fxgate.store.sqlite.tx import parse_ts, parse_ts_or_none, ts, write_tx
from fxgate.store.sqlite.worker import Worker


def _signing_key(row: sqlite3.Row) -> SigningKey:
    return SigningKey(
        kid=row["kid"],
        secret=row["secret"],
        algorithm=row["algorithm"],
        created_at=parse_ts(row["created_at"]),
        active=bool(row["active"]),
        retired_at=parse_ts_or_none(row["retired_at"]),
    )


def add_signing_key(
    conn: sqlite3.Connection, *, kid: str, secret: str, algorithm: str
) -> SigningKey:
    key = SigningKey(kid=kid, secret=secret, algorithm=algorithm, created_at=now(), active=True)
    with write_tx(conn):
        conn.execute("UPDATE signing_keys SET active = 0 WHERE active = 1")
        conn.execute(
            "INSERT INTO signing_keys (kid, secret, algorithm, created_at, active)"
            " VALUES (?, ?, ?, ?, 1)",
            (kid, secret, algorithm, ts(key.created_at)),
        )
    return key


def list_signing_keys(conn: sqlite3.Connection) -> list[SigningKey]:
    rows = conn.execute("SELECT * FROM signing_keys ORDER BY created_at, kid").fetchall()
    return [_signing_key(r) for r in rows]


def retire_signing_key(conn: sqlite3.Connection, kid: str) -> bool:
    with write_tx(conn):
        row = conn.execute(
            "SELECT active, retired_at FROM signing_keys WHERE kid = ?", (kid,)
        ).fetchone()
        if row is None or row["retired_at"] is not None:
            return False
        if row["active"]:
            raise StoreConflictError("the active signing key cannot be retired; rotate first")
        conn.execute("UPDATE signing_keys SET retired_at = ? WHERE kid = ?", (ts(now()), kid))
    return True


class SQLiteSigningKeys:
    """``SigningKeyStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def add(self, *, kid: str, secret: str, algorithm: str = "HS256") -> SigningKey:
        return await self._w.run(add_signing_key, kid=kid, secret=secret, algorithm=algorithm)

    async def all(self) -> list[SigningKey]:
        return await self._w.run(list_signing_keys)

    async def retire(self, kid: str) -> bool:
        return await self._w.run(retire_signing_key, kid)
