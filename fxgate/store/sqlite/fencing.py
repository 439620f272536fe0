"""The trading writes' fence on SQLite: the highest fencing token seen, one row.

The token lives in ``sequences`` (a monotonic counter row is what it is), under a name
no ticket counter uses, so the fence needs no schema step. :func:`check_fence` runs
inside the write's own ``BEGIN IMMEDIATE`` transaction: the compare, the raise of the
mark and the write commit together or not at all, and a second leader's transaction
waits for the lock and then sees the first's token.
"""

from __future__ import annotations

import sqlite3

from fxgate.services.ports.store.errors import StaleFenceError

#: The ``sequences`` row holding the highest fencing token a trading write carried.
FENCE_ROW = "fence:trading"


def check_fence(conn: sqlite3.Connection, fence: int | None) -> None:
    """Raise the mark to ``fence``, or refuse it when a higher one was seen (the caller's
    transaction then rolls back whatever it wrote). ``None``: not fenced (one node)."""
    if fence is None:
        return
    row = conn.execute(
        "INSERT INTO sequences (name, value) VALUES (?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value) RETURNING value",
        (FENCE_ROW, fence),
    ).fetchone()
    if int(row[0]) > fence:
        raise StaleFenceError(
            f"a newer trading leader has written (fencing token {row[0]} > {fence}):"
            " this node's write is refused"
        )
