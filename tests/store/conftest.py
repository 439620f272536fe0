"""One store contract, every backend: the ``backend`` and ``store`` fixtures.

The contract suite is one module per area of the port (``test_users.py`` …
``test_strategies.py``, plus ``test_lifecycle.py`` for what spans areas), and
``test_contract_coverage.py`` checks that every method of every area is called by it.
Each test that takes ``store`` or ``backend`` runs against:

- ``sqlite``: a fresh file under ``tmp_path``;
- ``mongodb-real``: a real server, when ``FXGATE_TEST_MONGODB_URI`` is set (a fresh
  database per test, dropped afterwards);
- ``mongodb-mock``: otherwise mongomock-motor, so that the adapter's code still runs
  in CI without a server.

The test id says which MongoDB variant ran (``test_x[mongodb-mock]``).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from motor.motor_asyncio import AsyncIOMotorClient

from fxgate.services.ports.store import Store
from fxgate.store.mongodb import MongoStore
from fxgate.store.sqlite import SQLiteStore

MONGODB_URI = os.environ.get("FXGATE_TEST_MONGODB_URI")
MONGODB_VARIANT = "mongodb-real" if MONGODB_URI else "mongodb-mock"


@dataclass
class Backend:
    """A way to make stores over one backing database, for close/reopen and for two
    concurrent instances (the CLI beside the daemon)."""

    name: str
    make: Callable[[], Store]
    opened: list[Store] = field(default_factory=list)

    async def open(self) -> Store:
        store = self.make()
        await store.open()
        self.opened.append(store)
        return store

    @property
    def is_sqlite(self) -> bool:
        return self.name == "sqlite"


def _sqlite(tmp_path: Path) -> Callable[[], Store]:
    path = tmp_path / "state" / "fxgate.sqlite3"
    return lambda: SQLiteStore(path)


@pytest.fixture(params=["sqlite", pytest.param(MONGODB_VARIANT, marks=pytest.mark.mongodb)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    client: Any = None
    database = f"fxgate_test_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        make = _sqlite(tmp_path)
    elif request.param == "mongodb-real":
        client = AsyncIOMotorClient(MONGODB_URI, tz_aware=True, serverSelectionTimeoutMS=3000)

        def make() -> Store:
            return MongoStore(uri=MONGODB_URI, database=database)
    else:
        from mongomock_motor import AsyncMongoMockClient

        client = AsyncMongoMockClient(tz_aware=True)

        def make() -> Store:
            return MongoStore(client=client, database=database)

    b = Backend(request.param, make)
    try:
        yield b
    finally:
        for store in b.opened:
            await store.close()
        if request.param == "mongodb-real":
            await client.drop_database(database)
            client.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return await backend.open()
