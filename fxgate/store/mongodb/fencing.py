"""The trading writes' fence on MongoDB: the highest fencing token seen, one document.

``sequences`` holds it (``{_id: "fence:trading", value: <token>}``), beside the ticket
counters. :func:`check_fence` is one conditional update: it matches only while the kept
token is not higher than the writer's, and its upsert then tries to insert an ``_id``
that exists, which the ``_id`` index refuses: a stale token is a duplicate key, decided
by the server, never by a read followed by a write. Inside the write's transaction
(replica sets, mongos) the fence and the records commit together, and two leaders'
transactions conflict on the fence document; without transactions the check runs just
before the records are written.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from fxgate.services.ports.store.errors import StaleFenceError
from fxgate.store.mongodb.conn import Mongo, Session

#: The ``sequences`` document holding the highest fencing token a trading write carried.
FENCE_ID = "fence:trading"


async def check_fence(m: Mongo, fence: int | None, session: Session | None) -> None:
    """Raise the mark to ``fence``, or refuse it when a higher one was seen.
    ``None``: not fenced (one node)."""
    if fence is None:
        return
    try:
        await m.c("sequences").update_one(
            {"_id": FENCE_ID, "value": {"$lte": fence}},
            {"$set": {"value": fence}},
            upsert=True,
            session=session,
        )
    except DuplicateKeyError:
        raise StaleFenceError(
            f"a newer trading leader has written (fencing token above {fence}):"
            " this node's write is refused"
        ) from None
