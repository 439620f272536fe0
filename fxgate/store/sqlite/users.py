"""The users area on SQLite: the ``users`` table, ``email_key`` unique."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fxgate.services.ports.store.records import User, email_key
from fxgate.store.rules import check_paging, new_user, now
from fxgate.store.sqlite.tx import dumps, loads, parse_ts, read_tx, ts, write_tx
from fxgate.store.sqlite.worker import Worker

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


class SQLiteUsers:
    """``UserStore`` on SQLite."""

    def __init__(self, worker: Worker) -> None:
        self._w = worker

    async def create(
        self,
        *,
        email: str,
        name: str,
        role: str,
        password_hash: str | None = None,
        tier: str = "free",
        preferences: Mapping[str, Any] | None = None,
        user_id: str | None = None,
    ) -> User:
        return await self._w.run(
            create_user,
            email=email,
            name=name,
            role=role,
            password_hash=password_hash,
            tier=tier,
            preferences=preferences,
            user_id=user_id,
        )

    async def get(self, user_id: str) -> User | None:
        return await self._w.run(get_user, user_id)

    async def get_by_email(self, email: str) -> User | None:
        return await self._w.run(get_user_by_email, email)

    async def page(self, *, offset: int = 0, limit: int = 50) -> tuple[list[User], int]:
        return await self._w.run(list_users, offset=offset, limit=limit)

    async def changed_since(self, since: datetime) -> list[User]:
        return await self._w.run(users_changed_since, since)

    async def update(
        self,
        user_id: str,
        *,
        name: str | None = None,
        role: str | None = None,
        password_hash: str | None = None,
        tier: str | None = None,
        disabled: bool | None = None,
        preferences: Mapping[str, Any] | None = None,
    ) -> User | None:
        changes = {
            "name": name,
            "role": role,
            "password_hash": password_hash,
            "tier": tier,
            "disabled": disabled,
            "preferences": preferences,
        }
        return await self._w.run(update_user, user_id, changes)
