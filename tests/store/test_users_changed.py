"""``users.changed_since``: the one read a daemon makes to notice users disabled by
another process (the CLI), on every backend of the store contract."""

from __future__ import annotations

from datetime import timedelta

from fxgate.services.ports.store import Store
from fxgate.store.rules import now


async def test_changed_since_lists_created_and_updated_users_only(store: Store) -> None:
    old = await store.users.create(email="old@example.com", name="Old", role="trader")
    idle = await store.users.create(email="idle@example.com", name="Idle", role="trader")
    later = max(old.updated_at, idle.updated_at) + timedelta(milliseconds=5)
    assert await store.users.changed_since(later) == []
    # A user disabled after `later` (a CLI in another process) shows up, disabled.
    while now() < later:
        pass
    await store.users.update(old.id, disabled=True)
    fresh = await store.users.create(email="new@example.com", name="New", role="viewer")
    changed = await store.users.changed_since(later)
    assert {(u.id, u.disabled) for u in changed} == {(old.id, True), (fresh.id, False)}
    everyone = await store.users.changed_since(old.created_at - timedelta(seconds=1))
    assert {u.id for u in everyone} == {old.id, idle.id, fresh.id}
