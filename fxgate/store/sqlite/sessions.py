"""The sessions area on SQLite: ``refresh_tokens`` and ``revoked_jtis``."""

from __future__ import annotations

import sqlite3
from datetime import datetime

from fxgate.services.ports.store.records import RefreshToken
from fxgate.store.rules import now, utc
from fxgate.store.sqlite.tx import parse_ts, parse_ts_or_none, ts, write_tx
from fxgate.store.sqlite.worker import Worker


def _refresh_token(row: sqlite3.Row) -> RefreshToken:
    return RefreshToken(
        jti=row["jti"],
        family_id=row["family_id"],
        user_id=row["user_id"],
        expires_at=parse_ts(row["expires_at"]),
        created_at=parse_ts(row["created_at"]),
        used_at=parse_ts_or_none(row["used_at"]),
        revoked_at=parse_ts_or_none(row["revoked_at"]),
    )


def save_refresh_token(
    conn: sqlite3.Connection, *, jti: str, family_id: str, user_id: str, expires_at: datetime
) -> RefreshToken:
    token = RefreshToken(
        jti=jti,
        family_id=family_id,
        user_id=user_id,
        expires_at=utc(expires_at),
        created_at=now(),
    )
    with write_tx(conn):
        conn.execute(
            "INSERT INTO refresh_tokens (jti, family_id, user_id, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (jti, family_id, user_id, ts(token.expires_at), ts(token.created_at)),
        )
    return token


def get_refresh_token(conn: sqlite3.Connection, jti: str) -> RefreshToken | None:
    row = conn.execute("SELECT * FROM refresh_tokens WHERE jti = ?", (jti,)).fetchone()
    return None if row is None else _refresh_token(row)


def live_refresh_tokens(conn: sqlite3.Connection, user_id: str) -> list[RefreshToken]:
    rows = conn.execute(
        "SELECT * FROM refresh_tokens WHERE user_id = ? AND used_at IS NULL"
        " AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC",
        (user_id, ts(now())),
    ).fetchall()
    return [_refresh_token(r) for r in rows]


def mark_refresh_token_used(conn: sqlite3.Connection, jti: str) -> bool:
    # The WHERE clause is the compare-and-set: one UPDATE, so exactly one caller wins.
    with write_tx(conn):
        cur = conn.execute(
            "UPDATE refresh_tokens SET used_at = ?"
            " WHERE jti = ? AND used_at IS NULL AND revoked_at IS NULL",
            (ts(now()), jti),
        )
    return cur.rowcount == 1


def revoke_refresh_tokens(conn: sqlite3.Connection, column: str, value: str) -> int:
    if column not in ("family_id", "user_id"):
        raise ValueError(column)
    with write_tx(conn):
        cur = conn.execute(
            f"UPDATE refresh_tokens SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL",
            (ts(now()), value),
        )
    return cur.rowcount


def revoke_jti(conn: sqlite3.Connection, jti: str, expires_at: datetime) -> None:
    with write_tx(conn):
        conn.execute(
            "INSERT INTO revoked_jtis (jti, expires_at) VALUES (?, ?)"
            " ON CONFLICT (jti) DO UPDATE SET expires_at = MAX(expires_at, excluded.expires_at)",
            (jti, ts(expires_at)),
        )


def is_jti_revoked(conn: sqlite3.Connection, jti: str) -> bool:
    row = conn.execute("SELECT 1 FROM revoked_jtis WHERE jti = ?", (jti,)).fetchone()
    return row is not None


class SQLiteSessions:
    """``SessionStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def save_refresh_token(
        self, *, jti: str, family_id: str, user_id: str, expires_at: datetime
    ) -> RefreshToken:
        return await self._w.run_expiring(
            save_refresh_token, jti=jti, family_id=family_id, user_id=user_id, expires_at=expires_at
        )

    async def get_refresh_token(self, jti: str) -> RefreshToken | None:
        return await self._w.run(get_refresh_token, jti)

    async def live_refresh_tokens(self, user_id: str) -> list[RefreshToken]:
        return await self._w.run(live_refresh_tokens, user_id)

    async def mark_refresh_token_used(self, jti: str) -> bool:
        return await self._w.run(mark_refresh_token_used, jti)

    async def revoke_refresh_family(self, family_id: str) -> int:
        return await self._w.run(revoke_refresh_tokens, "family_id", family_id)

    async def revoke_user_refresh_tokens(self, user_id: str) -> int:
        return await self._w.run(revoke_refresh_tokens, "user_id", user_id)

    async def revoke_jti(self, jti: str, expires_at: datetime) -> None:
        await self._w.run_expiring(revoke_jti, jti=jti, expires_at=expires_at)

    async def is_jti_revoked(self, jti: str) -> bool:
        return await self._w.run(is_jti_revoked, jti)
