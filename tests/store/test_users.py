"""The users area: registration, look-up by email whatever its case, updates, paging."""

from __future__ import annotations

import pytest

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError


async def test_users_are_found_by_email_whatever_its_case(store: Store) -> None:
    user = await store.users.create(
        email="Ann.Lee@Example.com",
        name="Ann",
        role="trader",
        password_hash="argon2$x",
        tier="pro",
        preferences={"theme": "dark"},
    )
    assert user.email == "Ann.Lee@Example.com"
    assert user.created_at.tzinfo is not None
    assert await store.users.get(user.id) == user
    assert await store.users.get_by_email("ann.lee@EXAMPLE.COM") == user
    assert await store.users.get_by_email("bob@example.com") is None


async def test_an_email_registers_once_whatever_its_case(store: Store) -> None:
    await store.users.create(email="ann@example.com", name="Ann", role="trader")
    with pytest.raises(StoreConflictError, match="email"):
        await store.users.create(email="ANN@Example.COM", name="Other", role="viewer")
    _, total = await store.users.page()
    assert total == 1


async def test_a_user_id_registers_once(store: Store) -> None:
    await store.users.create(email="a@example.com", name="A", role="trader", user_id="u1")
    with pytest.raises(StoreConflictError):
        await store.users.create(email="b@example.com", name="B", role="trader", user_id="u1")


async def test_users_created_by_token_issue_have_no_password(store: Store) -> None:
    user = await store.users.create(email="bot@example.com", name="Bot", role="viewer")
    assert user.password_hash is None
    assert user.disabled is False


async def test_update_changes_only_what_is_given(store: Store) -> None:
    user = await store.users.create(email="a@example.com", name="A", role="trader", tier="pro")
    updated = await store.users.update(user.id, role="admin", disabled=True, password_hash="h2")
    assert updated is not None
    assert (updated.role, updated.disabled, updated.password_hash) == ("admin", True, "h2")
    assert (updated.name, updated.tier, updated.email) == ("A", "pro", "a@example.com")
    assert updated.updated_at >= user.updated_at
    assert await store.users.get(user.id) == updated
    assert await store.users.update("nobody", name="X") is None


async def test_users_page_with_a_total(store: Store) -> None:
    for i in range(5):
        await store.users.create(email=f"u{i}@example.com", name=f"U{i}", role="viewer")
    page, total = await store.users.page(offset=3, limit=10)
    assert total == 5
    assert len(page) == 2
    first, _ = await store.users.page(offset=0, limit=3)
    assert {u.id for u in first}.isdisjoint({u.id for u in page})
    with pytest.raises(ValueError):
        await store.users.page(limit=-5)
