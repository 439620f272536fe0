"""Choose the store backend from the configuration.

MongoDB is imported only when asked for, so a default install runs without motor
imported (and without it installed, should the extra be left out).
"""

from __future__ import annotations

from pathlib import Path

from fxgate.config.settings import Settings
from fxgate.services.ports.store import Store
from fxgate.store.sqlite import SQLiteStore


def build_sqlite(settings: Settings) -> Store:
    """The ``sqlite`` store backend: one file in the state directory."""
    return SQLiteStore.in_state_dir(settings.state_dir)


def check_mongodb(settings: Settings) -> list[str]:
    if not settings.store.mongodb_uri:
        return ["store.mongodb_uri: the mongodb store needs a MongoDB URI"]
    return []


def build_mongodb(settings: Settings) -> Store:
    """The ``mongodb`` store backend (motor, the ``mongodb`` extra)."""
    from fxgate.store.mongodb import MongoStore

    return MongoStore(uri=settings.store.mongodb_uri, database=settings.store.mongodb_database)


def build_store(
    kind: str,
    *,
    state_dir: Path,
    mongodb_uri: str | None,
    mongodb_database: str,
) -> Store:
    """Construct the store, **not yet opened**: nothing connects until ``open()``.

    For callers that build the object graph first and start it later (the app's
    lifecycle); ``open_store`` is the one-step variant.
    """
    if kind == "sqlite":
        return SQLiteStore.in_state_dir(state_dir)
    if kind == "mongodb":
        if not mongodb_uri:
            raise ValueError("store backend 'mongodb' needs a MongoDB URI (store.mongodb_uri)")
        from fxgate.store.mongodb import MongoStore

        return MongoStore(uri=mongodb_uri, database=mongodb_database)
    raise ValueError(f"unknown store backend {kind!r} (expected 'sqlite' or 'mongodb')")


async def open_store(
    kind: str,
    *,
    state_dir: Path,
    mongodb_uri: str | None,
    mongodb_database: str,
) -> Store:
    """Construct the store and **open** it (schema migrated, indexes created).

    The caller owns it and must ``await store.close()``; a backend that cannot be
    reached raises here, at startup, rather than on the first request.
    """
    store = build_store(
        kind,
        state_dir=state_dir,
        mongodb_uri=mongodb_uri,
        mongodb_database=mongodb_database,
    )
    await store.open()
    return store
