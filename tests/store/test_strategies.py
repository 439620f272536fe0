"""The strategies area: documents that belong to their owner."""

from __future__ import annotations

import pytest

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError


async def test_strategies_belong_to_their_owner(store: Store) -> None:
    await store.strategies.save("u1", "s1", {"name": "Trend", "status": "inactive"})
    await store.strategies.save("u1", "s1", {"name": "Trend", "status": "active"})
    await store.strategies.save("u1", "s2", {"name": "Range", "status": "inactive"})
    with pytest.raises(StoreConflictError):
        await store.strategies.save("u2", "s1", {"name": "Mine now"})
    assert [s["name"] for s in await store.strategies.of_user("u1")] == ["Trend", "Range"]
    assert await store.strategies.get("u1", "s1") == {"name": "Trend", "status": "active"}
    assert await store.strategies.get("u2", "s1") is None
    assert await store.strategies.of_user("u2") == []
