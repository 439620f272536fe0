"""Transactions, value encodings and error translation shared by the SQLite modules.

Everything here runs on the store's worker thread, never on the event loop.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from fxgate.services.ports.store.errors import StoreConflictError, StoreUnavailableError
from fxgate.services.ports.store.records import Doc
from fxgate.store.rules import utc

#: UNIQUE/FOREIGN KEY failures, by a fragment of SQLite's message, to a safe message.
_CONFLICTS: tuple[tuple[str, str], ...] = (
    ("users.email_key", "a user with this email already exists"),
    ("users.id", "a user with this id already exists"),
    ("api_keys.key_id", "an API key with this id already exists"),
    ("signing_keys.kid", "a signing key with this kid already exists"),
    ("signing_keys.active", "another signing key became active concurrently"),
    ("refresh_tokens.jti", "a refresh token with this jti already exists"),
    ("orders.user_id, orders.client_order_id", "clientOrderId is already used by another order"),
    ("alerts.id", "an alert with this id belongs to another user"),
    ("strategies.id", "a strategy with this id belongs to another user"),
    ("FOREIGN KEY", "the referenced user does not exist"),
)


def conflict_from(exc: sqlite3.IntegrityError) -> StoreConflictError:
    text = str(exc)
    for fragment, message in _CONFLICTS:
        if fragment in text:
            return StoreConflictError(message)
    return StoreConflictError("the write conflicts with an existing record")


@contextmanager
def write_tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taking the write lock up front.

    ``BEGIN IMMEDIATE`` rather than a deferred BEGIN: a deferred transaction that reads
    and then writes fails at once with SQLITE_BUSY when another process wrote in
    between, whereas IMMEDIATE waits for the lock under ``busy_timeout``.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except sqlite3.IntegrityError as exc:
        rollback(conn)
        raise conflict_from(exc) from exc
    except BaseException:
        rollback(conn)
        raise
    conn.execute("COMMIT")


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back if a transaction is still open (some errors end it by themselves)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


@contextmanager
def read_tx(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One snapshot for reads that must agree with each other (a page and its total)."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def unavailable_from(exc: sqlite3.OperationalError) -> StoreUnavailableError | None:
    """Lock timeouts and I/O trouble are worth a 503 and a retry, not a 500."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text or "disk i/o" in text or "unable to open" in text:
        return StoreUnavailableError("the database is busy or unavailable, try again")
    return None


def ts(value: datetime) -> str:
    """The one fixed-width TEXT form of a timestamp, so that strings sort as instants."""
    value = utc(value)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def ts_or_none(value: datetime | None) -> str | None:
    return None if value is None else ts(value)


def parse_ts(value: str) -> datetime:
    """Read what :func:`ts` wrote. ``fromisoformat`` (C, and it takes the ``Z`` since
    Python 3.11) is eight times faster than ``strptime``, which was 8 % of the daemon's
    CPU in ``bench/rest.py``: a chart of 100 bars parses 100 timestamps."""
    return utc(datetime.fromisoformat(value))


def parse_ts_or_none(value: str | None) -> datetime | None:
    return None if value is None else parse_ts(value)


def dumps(doc: Mapping[str, Any]) -> str:
    """Strict JSON: NaN or a stray Decimal is a bug upstream, and is refused here."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def loads(text: str) -> Doc:
    value: Doc = json.loads(text)
    return value


def range_clause(
    column: str, start: datetime | None, end: datetime | None, where: list[str], args: list[Any]
) -> None:
    """Append ``start <= column < end`` to a WHERE clause under construction."""
    if start is not None:
        where.append(f"{column} >= ?")
        args.append(ts(start))
    if end is not None:
        where.append(f"{column} < ?")
        args.append(ts(end))
