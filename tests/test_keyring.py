"""The signing-key ring across processes: a key rotated elsewhere is found at once, and
made-up kids cannot make the daemon hammer the store."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fxgate.services.auth.keyring import MISS_RELOAD_GAP, KeyRing
from fxgate.services.auth.sealing import Sealer
from fxgate.services.ports.store import Store
from fxgate.store.factory import build_store


class CountingStore:
    """The signing-key area, counting the ring's reads."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads = 0

    async def all(self) -> Any:
        self.reads += 1
        return await self.store.signing_keys.all()

    async def add(self, *, kid: str, secret: str, algorithm: str = "HS256") -> Any:
        return await self.store.signing_keys.add(kid=kid, secret=secret, algorithm=algorithm)

    async def retire(self, kid: str) -> bool:
        return await self.store.signing_keys.retire(kid)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = build_store("sqlite", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    await s.open()
    yield s
    await s.close()


def ring(store: Any, tmp_path: Path) -> KeyRing:
    return KeyRing(store, sealer=Sealer(tmp_path / "master.key"), refresh=3600)


async def test_a_key_rotated_by_another_process_is_found_right_after_a_read(
    store: Store, tmp_path: Path
) -> None:
    daemon = ring(store.signing_keys, tmp_path)
    await daemon.ensure_active()
    await daemon.load()  # a periodic read, just before the rotation
    cli = ring(store.signing_keys, tmp_path)
    rotated = await cli.rotate()
    key = await daemon.lookup(rotated.kid)
    assert key is not None
    assert key.secret == rotated.secret


async def test_made_up_kids_cost_one_read_per_gap(store: Store, tmp_path: Path) -> None:
    counting = CountingStore(store)
    daemon = ring(counting, tmp_path)
    await daemon.ensure_active()
    before = counting.reads
    loop = asyncio.get_running_loop()
    start = loop.time()
    found = await asyncio.gather(*(daemon.lookup(secrets.token_hex(8)) for _ in range(200)))
    elapsed = loop.time() - start
    assert found == [None] * 200
    # 200 lookups, one shared read per gap: not 200 reads.
    assert counting.reads - before <= elapsed / MISS_RELOAD_GAP + 2
    assert counting.reads - before <= 3
