"""MongoDB document shapes: the indexes, and records to and from documents.

Pure Python, kept apart from the area modules (which import motor and pymongo) so that
they read as behaviour, and these shapes as data. Index
directions are pymongo's values (1 ascending, -1 descending).

A stored trading document carries the store's lifted fields at the top level and the
broker's record (its codec document, ``fxgate.store.codecs``) under ``doc``, so that a
record's field can never shadow ``_id`` or an indexed field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from fxgate.domain.trading import Account, Deal, Order, Position
from fxgate.services.ports.store.records import (
    ApiKey,
    AuditEntry,
    Candle,
    Doc,
    RefreshToken,
    SigningKey,
    User,
    email_key,
)
from fxgate.store.codecs import encode
from fxgate.store.rules import (
    doc_time,
    optional_str,
    optional_ticket,
    require_str,
    require_ticket,
    utc,
)

MongoDoc = dict[str, Any]
Sort = list[tuple[str, int]]
ASC, DESC = 1, -1

#: (collection, keys, options) created by ``open()``.
INDEXES: tuple[tuple[str, Sort, Mapping[str, Any]], ...] = (
    ("users", [("email_key", ASC)], {"unique": True}),
    ("users", [("created_at", ASC), ("_id", ASC)], {}),
    ("api_keys", [("user_id", ASC)], {}),
    (
        "signing_keys",
        [("active", ASC)],
        {"unique": True, "partialFilterExpression": {"active": True}},
    ),
    ("refresh_tokens", [("expires_at", ASC)], {"expireAfterSeconds": 0}),
    ("refresh_tokens", [("family_id", ASC)], {}),
    ("refresh_tokens", [("user_id", ASC)], {}),
    ("revoked_jtis", [("expires_at", ASC)], {"expireAfterSeconds": 0}),
    ("nonces", [("expires_at", ASC)], {"expireAfterSeconds": 0}),
    ("audit", [("ts", DESC)], {}),
    ("audit", [("actor", ASC), ("ts", DESC)], {}),
    ("audit", [("target", ASC), ("ts", DESC)], {}),
    ("audit", [("action", ASC), ("ts", DESC)], {}),
    (
        "orders",
        [("user_id", ASC), ("client_order_id", ASC)],
        {"unique": True, "partialFilterExpression": {"client_order_id": {"$type": "string"}}},
    ),
    ("orders", [("user_id", ASC), ("status", ASC)], {}),
    ("orders", [("user_id", ASC), ("created_at", DESC)], {}),
    ("orders", [("status", ASC)], {}),
    ("positions", [("user_id", ASC), ("status", ASC)], {}),
    ("positions", [("status", ASC)], {}),
    ("deals", [("user_id", ASC), ("time", DESC)], {}),
    ("alerts", [("user_id", ASC), ("created_at", ASC)], {}),
    ("strategies", [("user_id", ASC), ("created_at", ASC)], {}),
    ("signals", [("ts", DESC)], {}),
    ("signals", [("user_id", ASC), ("ts", DESC)], {}),
    ("signals", [("symbol", ASC), ("ts", DESC)], {}),
    (
        "history",
        [("channel", ASC), ("key", ASC), ("epoch", ASC), ("offset", ASC)],
        {"unique": True},
    ),
    ("history", [("expires_at", ASC)], {"expireAfterSeconds": 0}),
    ("history", [("epoch", ASC)], {}),
    ("history_heads", [("channel", ASC), ("key", ASC), ("epoch", ASC)], {"unique": True}),
    (
        "candles",
        [("symbol", ASC), ("interval", ASC), ("open_time", ASC)],
        {"unique": True},
    ),
    ("api_calls", [("day", ASC)], {}),
)


def dt(value: datetime) -> datetime:
    # A client without tz_aware=True (an injected one) returns naive UTC datetimes.
    return utc(value)


def dt_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def range_query(start: datetime | None, end: datetime | None) -> dict[str, datetime]:
    bounds: dict[str, datetime] = {}
    if start is not None:
        bounds["$gte"] = utc(start)
    if end is not None:
        bounds["$lt"] = utc(end)
    return bounds


def user_from(d: MongoDoc) -> User:
    return User(
        id=d["_id"],
        email=d["email"],
        name=d["name"],
        role=d["role"],
        password_hash=d.get("password_hash"),
        tier=d["tier"],
        disabled=bool(d.get("disabled")),
        preferences=dict(d.get("preferences") or {}),
        created_at=dt(d["created_at"]),
        updated_at=dt(d["updated_at"]),
    )


def api_key_from(d: MongoDoc) -> ApiKey:
    return ApiKey(
        key_id=d["_id"],
        user_id=d["user_id"],
        secret=d["secret"],
        name=d.get("name", ""),
        created_at=dt(d["created_at"]),
        revoked_at=dt_or_none(d.get("revoked_at")),
    )


def signing_key_from(d: MongoDoc) -> SigningKey:
    return SigningKey(
        kid=d["_id"],
        secret=d["secret"],
        algorithm=d["algorithm"],
        created_at=dt(d["created_at"]),
        active=bool(d["active"]),
        retired_at=dt_or_none(d.get("retired_at")),
    )


def refresh_token_from(d: MongoDoc) -> RefreshToken:
    return RefreshToken(
        jti=d["_id"],
        family_id=d["family_id"],
        user_id=d["user_id"],
        expires_at=dt(d["expires_at"]),
        created_at=dt(d["created_at"]),
        used_at=dt_or_none(d.get("used_at")),
        revoked_at=dt_or_none(d.get("revoked_at")),
    )


def audit_from(d: MongoDoc) -> AuditEntry:
    return AuditEntry(
        id=str(d["_id"]),
        ts=dt(d["ts"]),
        actor=d["actor"],
        action=d["action"],
        target=d["target"],
        details=dict(d.get("details") or {}),
    )


def candle_from(d: MongoDoc) -> Candle:
    return Candle(
        symbol=d["symbol"],
        interval=d["interval"],
        open_time=dt(d["open_time"]),
        open=d["open"],
        high=d["high"],
        low=d["low"],
        close=d["close"],
        volume=d["volume"],
    )


def body_of(d: MongoDoc) -> Doc:
    body: Doc = d["doc"]
    return body


def user_document(user: User) -> MongoDoc:
    return {
        "_id": user.id,
        "email": user.email,
        "email_key": email_key(user.email),
        "name": user.name,
        "role": user.role,
        "password_hash": user.password_hash,
        "tier": user.tier,
        "disabled": user.disabled,
        "preferences": dict(user.preferences),
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


def trading_writes(
    orders: Sequence[Order],
    deals: Sequence[Deal],
    positions: Sequence[Position],
    accounts: Sequence[Account],
) -> list[tuple[str, Any, MongoDoc]]:
    """(collection, _id, body) for every record of a ``trading.save`` batch.

    Built, and so validated, before the first write: a malformed record then writes
    nothing even where there are no transactions.
    """
    writes: list[tuple[str, Any, MongoDoc]] = []
    for d in map(encode, orders):
        order_id = require_str(d, "id", "order")
        body = {
            "user_id": require_str(d, "user_id", "order"),
            "ticket": optional_ticket(d, "order"),
            "symbol": optional_str(d, "symbol", "order"),
            "status": optional_str(d, "status", "order"),
            "client_order_id": optional_str(d, "client_order_id", "order"),
            "created_at": doc_time(d.get("created_at")),
            "doc": d,
        }
        writes.append(("orders", order_id, body))
    for d in map(encode, deals):
        body = {
            "user_id": require_str(d, "user_id", "deal"),
            "symbol": optional_str(d, "symbol", "deal"),
            "time": doc_time(d.get("time")),
            "doc": d,
        }
        writes.append(("deals", require_ticket(d, "deal"), body))
    for d in map(encode, positions):
        body = {
            "user_id": require_str(d, "user_id", "position"),
            "symbol": optional_str(d, "symbol", "position"),
            "status": optional_str(d, "status", "position"),
            "doc": d,
        }
        writes.append(("positions", require_ticket(d, "position"), body))
    for d in map(encode, accounts):
        writes.append(("accounts", require_str(d, "user_id", "account"), {"doc": d}))
    return writes
