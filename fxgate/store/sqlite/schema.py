"""The SQLite schema as ordered migrations, and the connection settings that go with it.

Migrations are append-only: a released step is never edited, a change is a new step.
Each step runs in its own ``BEGIN IMMEDIATE`` transaction that re-reads the version
first, so a CLI command and the daemon opening the same file at once cannot both
apply it. Statements are executed one by one because ``executescript`` commits
implicitly and would break that atomicity.

Timestamps are TEXT in one fixed-width format (``2024-01-02T03:04:05.678Z``) so that
they sort and compare as strings; money is TEXT holding Decimal strings; documents are
JSON TEXT with the indexed fields lifted into columns.

Version 1's ``signals`` and ``history`` tables have had no reader or writer since the
store was split by area (issue 6: nothing called their methods). They stay, empty, so
that no released step changes; an area that needs them again reuses them, or a new step
drops them. Version 2 does that for ``signals`` (issue 8's signals area), which needs
its filter fields as columns, and version 3 for ``history`` (issue 10's history area).
Version 4 adds ``api_calls``, the usage area (the daily REST quota).
"""

from __future__ import annotations

import sqlite3

#: (version, statements); versions are consecutive from 1.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE users (
                id TEXT PRIMARY KEY,
                email TEXT NOT NULL,
                email_key TEXT NOT NULL UNIQUE,
                name TEXT NOT NULL,
                role TEXT NOT NULL,
                password_hash TEXT,
                tier TEXT NOT NULL,
                disabled INTEGER NOT NULL DEFAULT 0,
                preferences TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL
            )""",
            "CREATE INDEX users_created ON users (created_at, id)",
            """CREATE TABLE api_keys (
                key_id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                name TEXT NOT NULL DEFAULT '',
                secret TEXT NOT NULL,
                created_at TEXT NOT NULL,
                revoked_at TEXT
            )""",
            "CREATE INDEX api_keys_user ON api_keys (user_id)",
            """CREATE TABLE signing_keys (
                kid TEXT PRIMARY KEY,
                secret TEXT NOT NULL,
                algorithm TEXT NOT NULL,
                created_at TEXT NOT NULL,
                active INTEGER NOT NULL,
                retired_at TEXT
            )""",
            # The database itself guarantees "exactly one active" across processes.
            "CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active = 1",
            """CREATE TABLE refresh_tokens (
                jti TEXT PRIMARY KEY,
                family_id TEXT NOT NULL,
                user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                expires_at TEXT NOT NULL,
                created_at TEXT NOT NULL,
                used_at TEXT,
                revoked_at TEXT
            )""",
            "CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id)",
            "CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id)",
            "CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at)",
            """CREATE TABLE revoked_jtis (
                jti TEXT PRIMARY KEY,
                expires_at TEXT NOT NULL
            ) WITHOUT ROWID""",
            "CREATE INDEX revoked_jtis_expiry ON revoked_jtis (expires_at)",
            """CREATE TABLE nonces (
                key TEXT PRIMARY KEY,
                expires_at TEXT NOT NULL
            ) WITHOUT ROWID""",
            "CREATE INDEX nonces_expiry ON nonces (expires_at)",
            """CREATE TABLE audit (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                ts TEXT NOT NULL,
                actor TEXT NOT NULL,
                action TEXT NOT NULL,
                target TEXT NOT NULL,
                details TEXT NOT NULL DEFAULT '{}'
            )""",
            "CREATE INDEX audit_ts ON audit (ts)",
            "CREATE INDEX audit_actor ON audit (actor, ts)",
            "CREATE INDEX audit_target ON audit (target, ts)",
            """CREATE TABLE orders (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                ticket INTEGER,
                symbol TEXT,
                status TEXT,
                client_order_id TEXT,
                created_at TEXT,
                doc TEXT NOT NULL
            )""",
            "CREATE UNIQUE INDEX orders_client_id ON orders (user_id, client_order_id) "
            "WHERE client_order_id IS NOT NULL",
            "CREATE INDEX orders_user_status ON orders (user_id, status)",
            "CREATE INDEX orders_user_created ON orders (user_id, created_at)",
            "CREATE INDEX orders_status ON orders (status)",
            """CREATE TABLE positions (
                ticket INTEGER PRIMARY KEY,
                user_id TEXT NOT NULL,
                symbol TEXT,
                status TEXT,
                doc TEXT NOT NULL
            )""",
            "CREATE INDEX positions_user_status ON positions (user_id, status)",
            "CREATE INDEX positions_status ON positions (status)",
            """CREATE TABLE deals (
                ticket INTEGER PRIMARY KEY,
                user_id TEXT NOT NULL,
                symbol TEXT,
                time TEXT,
                doc TEXT NOT NULL
            )""",
            "CREATE INDEX deals_user_time ON deals (user_id, time)",
            """CREATE TABLE accounts (
                user_id TEXT PRIMARY KEY,
                doc TEXT NOT NULL
            )""",
            """CREATE TABLE sequences (
                name TEXT PRIMARY KEY,
                value INTEGER NOT NULL
            ) WITHOUT ROWID""",
            """CREATE TABLE alerts (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                doc TEXT NOT NULL
            )""",
            "CREATE INDEX alerts_user ON alerts (user_id, created_at)",
            """CREATE TABLE strategies (
                id TEXT PRIMARY KEY,
                user_id TEXT NOT NULL,
                created_at TEXT NOT NULL,
                doc TEXT NOT NULL
            )""",
            "CREATE INDEX strategies_user ON strategies (user_id, created_at)",
            """CREATE TABLE signals (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL UNIQUE,
                user_id TEXT,
                doc TEXT NOT NULL
            )""",
            "CREATE INDEX signals_user ON signals (user_id, seq)",
            """CREATE TABLE candles (
                symbol TEXT NOT NULL,
                interval TEXT NOT NULL,
                open_time TEXT NOT NULL,
                open TEXT NOT NULL,
                high TEXT NOT NULL,
                low TEXT NOT NULL,
                close TEXT NOT NULL,
                volume TEXT NOT NULL,
                PRIMARY KEY (symbol, interval, open_time)
            ) WITHOUT ROWID""",
            """CREATE TABLE history (
                stream TEXT NOT NULL,
                stream_offset INTEGER NOT NULL,
                epoch TEXT NOT NULL,
                payload TEXT NOT NULL,
                PRIMARY KEY (stream, stream_offset)
            ) WITHOUT ROWID""",
        ),
    ),
    (
        2,
        (
            # Version 1's table was never written (see the module docstring).
            "DROP TABLE signals",
            """CREATE TABLE signals (
                uuid TEXT PRIMARY KEY,
                user_id TEXT,
                symbol TEXT NOT NULL,
                side TEXT NOT NULL,
                status TEXT NOT NULL,
                source TEXT NOT NULL,
                ts TEXT NOT NULL,
                doc TEXT NOT NULL
            )""",
            "CREATE INDEX signals_ts ON signals (ts)",
            "CREATE INDEX signals_user_ts ON signals (user_id, ts)",
            "CREATE INDEX signals_symbol_ts ON signals (symbol, ts)",
        ),
    ),
    (
        3,
        (
            # Version 1's table was never written (see the module docstring).
            "DROP TABLE history",
            """CREATE TABLE history (
                channel TEXT NOT NULL,
                key TEXT NOT NULL,
                epoch TEXT NOT NULL,
                stream_offset INTEGER NOT NULL,
                expires_at TEXT NOT NULL,
                doc TEXT NOT NULL,
                PRIMARY KEY (channel, key, epoch, stream_offset)
            ) WITHOUT ROWID""",
            "CREATE INDEX history_expires ON history (expires_at)",
            """CREATE TABLE history_heads (
                channel TEXT NOT NULL,
                key TEXT NOT NULL,
                epoch TEXT NOT NULL,
                stream_offset INTEGER NOT NULL,
                PRIMARY KEY (channel, key, epoch)
            ) WITHOUT ROWID""",
            """CREATE TABLE history_run (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                epoch TEXT NOT NULL,
                clean INTEGER NOT NULL
            )""",
        ),
    ),
    (
        4,
        (
            # The usage area: REST calls per user per UTC day (the daily quota).
            """CREATE TABLE api_calls (
                day TEXT NOT NULL,
                user_id TEXT NOT NULL,
                calls INTEGER NOT NULL,
                PRIMARY KEY (day, user_id)
            ) WITHOUT ROWID""",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1][0]


def configure(conn: sqlite3.Connection) -> None:
    """Per-connection settings that let the CLI and the daemon share the file.

    WAL lets readers run beside the one writer; ``busy_timeout`` makes a writer wait
    for the other process's transaction instead of failing; NORMAL synchronous is
    durable against application crashes in WAL mode and much faster than FULL.
    """
    conn.execute("PRAGMA busy_timeout = 5000")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"could not switch the database to WAL (got {mode})")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")


def current_version(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to ``LATEST_VERSION``; returns the version found before.

    Refuses a file written by a newer fxgate rather than guessing at its schema.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime("
        "'%Y-%m-%dT%H:%M:%fZ', 'now')))"
    )
    found = current_version(conn)
    if found > LATEST_VERSION:
        raise RuntimeError(
            f"database schema version {found} is newer than this fxgate ({LATEST_VERSION})"
        )
    for version, statements in MIGRATIONS:
        if version <= found:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) >= version:  # another process got there first
                conn.execute("ROLLBACK")
                continue
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return found
