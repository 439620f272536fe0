"""The API-key area: keys that need a real user, revocation, and signature nonces."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError
from tests.store.builders import make_user


async def test_api_keys_are_listed_and_revoked(store: Store) -> None:
    uid = await make_user(store)
    key = await store.api_keys.create(user_id=uid, key_id="ak_1", secret="s3cret", name="bot")
    await store.api_keys.create(user_id=uid, key_id="ak_2", secret="other")
    assert await store.api_keys.get("ak_1") == key
    assert key.active
    assert [k.key_id for k in await store.api_keys.of_user(uid)] == ["ak_1", "ak_2"]
    assert await store.api_keys.of_user("someone-else") == []
    assert await store.api_keys.revoke("ak_1") is True
    assert await store.api_keys.revoke("ak_1") is False
    assert await store.api_keys.revoke("missing") is False
    revoked = await store.api_keys.get("ak_1")
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert not revoked.active


async def test_api_keys_need_a_real_user_and_a_fresh_id(store: Store) -> None:
    uid = await make_user(store)
    await store.api_keys.create(user_id=uid, key_id="ak_1", secret="s")
    with pytest.raises(StoreConflictError):
        await store.api_keys.create(user_id=uid, key_id="ak_1", secret="s")
    with pytest.raises(StoreConflictError, match="user"):
        await store.api_keys.create(user_id="ghost", key_id="ak_2", secret="s")


async def test_a_nonce_is_accepted_once(store: Store) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert await store.api_keys.remember_nonce("ak_1:n1", expires) is True
    assert await store.api_keys.remember_nonce("ak_1:n1", expires) is False
    assert await store.api_keys.remember_nonce("ak_1:n2", expires) is True


async def test_concurrent_replays_of_one_nonce_pass_once(store: Store) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    results = await asyncio.gather(*(store.api_keys.remember_nonce("n", expires) for _ in range(6)))
    assert results.count(True) == 1


async def test_an_expired_nonce_may_be_used_again(store: Store) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert await store.api_keys.remember_nonce("n", past) is True
    assert await store.api_keys.remember_nonce("n", later) is True
    assert await store.api_keys.remember_nonce("n", later) is False
