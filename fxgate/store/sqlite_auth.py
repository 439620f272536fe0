"""SQLite statements for identity and security: users, keys, tokens, nonces, audit.

Plain synchronous functions of a connection, run on the store's worker thread; the
async facade in ``sqlite.py`` documents the contract (see ``port.Store``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fxgate.store.port import StoreConflictError
from fxgate.store.records import (
    ApiKey,
    AuditEntry,
    RefreshToken,
    SigningKey,
    User,
    check_paging,
    email_key,
    new_user,
    now,
    utc,
)
from fxgate.store.sqlite_tx import (
    dumps,
    loads,
    parse_ts,
    parse_ts_or_none,
    range_clause,
    read_tx,
    ts,
    write_tx,
)

_USER_COLUMNS = (
    "id, email, name, role, password_hash, tier, disabled, preferences, created_at, updated_at"
)


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        role=row["role"],
        password_hash=row["password_hash"],
        tier=row["tier"],
        disabled=bool(row["disabled"]),
        preferences=loads(row["preferences"]),
        created_at=parse_ts(row["created_at"]),
        updated_at=parse_ts(row["updated_at"]),
    )


def create_user(
    conn: sqlite3.Connection,
    *,
    email: str,
    name: str,
    role: str,
    password_hash: str | None,
    tier: str,
    preferences: Mapping[str, Any] | None,
    user_id: str | None,
) -> User:
    user = new_user(
        email=email,
        name=name,
        role=role,
        password_hash=password_hash,
        tier=tier,
        preferences=preferences,
        user_id=user_id,
    )
    with write_tx(conn):
        conn.execute(
            "INSERT INTO users (id, email, email_key, name, role, password_hash, tier,"
            " disabled, preferences, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?)",
            (
                user.id,
                user.email,
                email_key(email),
                name,
                role,
                password_hash,
                tier,
                dumps(user.preferences),
                ts(user.created_at),
                ts(user.updated_at),
            ),
        )
    return user


def get_user(conn: sqlite3.Connection, user_id: str) -> User | None:
    row = conn.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else _user(row)


def get_user_by_email(conn: sqlite3.Connection, email: str) -> User | None:
    row = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE email_key = ?", (email_key(email),)
    ).fetchone()
    return None if row is None else _user(row)


def list_users(conn: sqlite3.Connection, *, offset: int, limit: int) -> tuple[list[User], int]:
    check_paging(offset, limit)
    with read_tx(conn):
        total = conn.execute("SELECT COUNT(*) FROM users").fetchone()[0]
        rows = conn.execute(
            f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id LIMIT ? OFFSET ?",
            (limit, offset),
        ).fetchall()
    return [_user(r) for r in rows], int(total)


def users_changed_since(conn: sqlite3.Connection, since: datetime) -> list[User]:
    rows = conn.execute(
        f"SELECT {_USER_COLUMNS} FROM users WHERE updated_at >= ? ORDER BY updated_at, id",
        (ts(since),),
    ).fetchall()
    return [_user(r) for r in rows]


def update_user(conn: sqlite3.Connection, user_id: str, changes: Mapping[str, Any]) -> User | None:
    sets = ["updated_at = ?"]
    args: list[Any] = [ts(now())]
    for column, value in changes.items():
        if value is None:
            continue
        if column == "preferences":
            value = dumps(value)
        elif column == "disabled":
            value = int(bool(value))
        sets.append(f"{column} = ?")
        args.append(value)
    with write_tx(conn):
        cur = conn.execute(f"UPDATE users SET {', '.join(sets)} WHERE id = ?", (*args, user_id))
        if cur.rowcount == 0:
            return None
        return get_user(conn, user_id)


# -- API keys -----------------------------------------------------------------------


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


# -- signing keys ---------------------------------------------------------------------


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


# -- refresh tokens, revoked jtis, nonces -----------------------------------------------


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


def purge_expired(conn: sqlite3.Connection) -> int:
    cutoff = ts(now())
    removed = 0
    with write_tx(conn):
        for table in ("refresh_tokens", "revoked_jtis", "nonces"):
            cur = conn.execute(f"DELETE FROM {table} WHERE expires_at <= ?", (cutoff,))
            removed += cur.rowcount
    return removed


# -- audit ------------------------------------------------------------------------------


def _audit(row: sqlite3.Row) -> AuditEntry:
    return AuditEntry(
        id=str(row["id"]),
        ts=parse_ts(row["ts"]),
        actor=row["actor"],
        action=row["action"],
        target=row["target"],
        details=loads(row["details"]),
    )


def append_audit(
    conn: sqlite3.Connection,
    actor: str,
    action: str,
    target: str,
    details: Mapping[str, Any] | None,
    when: datetime | None,
) -> AuditEntry:
    stamp = now() if when is None else utc(when)
    body = dict(details or {})
    with write_tx(conn):
        cur = conn.execute(
            "INSERT INTO audit (ts, actor, action, target, details) VALUES (?, ?, ?, ?, ?)",
            (ts(stamp), actor, action, target, dumps(body)),
        )
    return AuditEntry(
        id=str(cur.lastrowid), ts=stamp, actor=actor, action=action, target=target, details=body
    )


def list_audit(
    conn: sqlite3.Connection,
    *,
    actor: str | None,
    action: str | None,
    target: str | None,
    start: datetime | None,
    end: datetime | None,
    offset: int,
    limit: int,
) -> tuple[list[AuditEntry], int]:
    check_paging(offset, limit)
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("actor", actor), ("action", action), ("target", target)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    range_clause("ts", start, end, where, args)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    with read_tx(conn):
        total = conn.execute(f"SELECT COUNT(*) FROM audit {clause}", args).fetchone()[0]
        rows = conn.execute(
            f"SELECT * FROM audit {clause} ORDER BY ts DESC, id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
    return [_audit(r) for r in rows], int(total)
