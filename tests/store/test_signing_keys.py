"""The signing-key area: rotation leaves exactly one active key, even concurrently."""

from __future__ import annotations

import asyncio

import pytest

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError
from tests.store.conftest import Backend


async def test_rotation_leaves_exactly_one_active_key(store: Store) -> None:
    for kid in ("k1", "k2", "k3"):
        added = await store.signing_keys.add(kid=kid, secret=f"secret-{kid}")
        assert added.active
    ring = await store.signing_keys.all()
    assert [k.kid for k in ring] == ["k1", "k2", "k3"]
    assert [k.kid for k in ring if k.active] == ["k3"]
    assert all(k.verifies for k in ring)  # old keys still verify until retired
    assert ring[0].algorithm == "HS256"


async def test_a_duplicate_kid_leaves_the_ring_as_it_was(store: Store) -> None:
    await store.signing_keys.add(kid="k1", secret="a")
    await store.signing_keys.add(kid="k2", secret="b")
    with pytest.raises(StoreConflictError):
        await store.signing_keys.add(kid="k1", secret="c")
    assert [k.kid for k in await store.signing_keys.all() if k.active] == ["k2"]


async def test_concurrent_rotations_still_leave_one_active_key(backend: Backend) -> None:
    daemon, cli = await backend.open(), await backend.open()
    await asyncio.gather(
        *(s.signing_keys.add(kid=f"k{i}", secret="x") for i, s in enumerate([daemon, cli] * 3))
    )
    ring = await daemon.signing_keys.all()
    assert len(ring) == 6
    assert sum(k.active for k in ring) == 1


async def test_retiring_keys(store: Store) -> None:
    await store.signing_keys.add(kid="k1", secret="a")
    await store.signing_keys.add(kid="k2", secret="b")
    with pytest.raises(StoreConflictError, match="active"):
        await store.signing_keys.retire("k2")
    assert await store.signing_keys.retire("k1") is True
    assert await store.signing_keys.retire("k1") is False
    assert await store.signing_keys.retire("nope") is False
    k1, k2 = await store.signing_keys.all()
    assert not k1.verifies
    assert k1.retired_at is not None
    assert k2.active
    assert k2.verifies
