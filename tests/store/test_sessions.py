"""The sessions area: refresh tokens spent once, families revoked, access tokens denied."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError
from tests.store.builders import make_user

WEEK = timedelta(days=7)


async def test_a_reused_refresh_token_is_detected(store: Store) -> None:
    uid = await make_user(store)
    expires = datetime.now(UTC) + WEEK
    saved = await store.sessions.save_refresh_token(
        jti="r1", family_id="f1", user_id=uid, expires_at=expires
    )
    assert await store.sessions.get_refresh_token("r1") == saved
    assert await store.sessions.get_refresh_token("r2") is None
    assert saved.expires_at == expires.replace(microsecond=expires.microsecond // 1000 * 1000)

    assert await store.sessions.mark_refresh_token_used("r1") is True  # the rotation
    assert await store.sessions.mark_refresh_token_used("r1") is False  # the reuse
    assert await store.sessions.mark_refresh_token_used("unknown") is False
    used = await store.sessions.get_refresh_token("r1")
    assert used is not None
    assert used.used_at is not None


async def test_only_one_of_concurrent_refreshes_wins(store: Store) -> None:
    uid = await make_user(store)
    expires = datetime.now(UTC) + WEEK
    await store.sessions.save_refresh_token(
        jti="r1", family_id="f1", user_id=uid, expires_at=expires
    )
    results = await asyncio.gather(
        *(store.sessions.mark_refresh_token_used("r1") for _ in range(8))
    )
    assert sorted(results) == [False] * 7 + [True]


async def test_revoking_a_family_spares_other_families(store: Store) -> None:
    uid = await make_user(store)
    expires = datetime.now(UTC) + WEEK
    for jti, family in (("a1", "fa"), ("a2", "fa"), ("b1", "fb")):
        await store.sessions.save_refresh_token(
            jti=jti, family_id=family, user_id=uid, expires_at=expires
        )
    await store.sessions.mark_refresh_token_used("a1")
    assert await store.sessions.revoke_refresh_family("fa") == 2
    assert await store.sessions.revoke_refresh_family("fa") == 0
    assert await store.sessions.mark_refresh_token_used("a2") is False  # revoked: refused
    assert await store.sessions.mark_refresh_token_used("b1") is True
    a2 = await store.sessions.get_refresh_token("a2")
    assert a2 is not None
    assert a2.revoked_at is not None


async def test_revoking_all_of_a_users_tokens(store: Store) -> None:
    ann, bob = await make_user(store), await make_user(store, "bob@example.com")
    expires = datetime.now(UTC) + WEEK
    await store.sessions.save_refresh_token(
        jti="a", family_id="fa", user_id=ann, expires_at=expires
    )
    await store.sessions.save_refresh_token(
        jti="b", family_id="fb", user_id=bob, expires_at=expires
    )
    assert await store.sessions.revoke_user_refresh_tokens(ann) == 1
    assert await store.sessions.mark_refresh_token_used("a") is False
    assert await store.sessions.mark_refresh_token_used("b") is True


async def test_refresh_tokens_need_a_real_user_and_a_fresh_jti(store: Store) -> None:
    uid = await make_user(store)
    expires = datetime.now(UTC) + WEEK
    await store.sessions.save_refresh_token(
        jti="r1", family_id="f", user_id=uid, expires_at=expires
    )
    with pytest.raises(StoreConflictError):
        await store.sessions.save_refresh_token(
            jti="r1", family_id="f", user_id=uid, expires_at=expires
        )
    with pytest.raises(StoreConflictError):
        await store.sessions.save_refresh_token(
            jti="r2", family_id="f", user_id="x", expires_at=expires
        )


async def test_logout_revokes_an_access_token_jti(store: Store) -> None:
    assert await store.sessions.is_jti_revoked("j1") is False
    await store.sessions.revoke_jti("j1", datetime.now(UTC) + timedelta(minutes=15))
    await store.sessions.revoke_jti("j1", datetime.now(UTC) + timedelta(minutes=15))  # twice ok
    assert await store.sessions.is_jti_revoked("j1") is True
    assert await store.sessions.is_jti_revoked("j2") is False


async def test_live_refresh_tokens_are_the_spendable_ones(store: Store) -> None:
    uid = await make_user(store)
    other = await make_user(store, "other")
    soon = datetime.now(UTC) + WEEK
    for jti, fam, user in (
        ("a1", "fa", uid),
        ("b1", "fb", uid),
        ("c1", "fc", uid),
        ("o1", "fo", other),
    ):
        await store.sessions.save_refresh_token(
            jti=jti, family_id=fam, user_id=user, expires_at=soon
        )
    await store.sessions.save_refresh_token(
        jti="old", family_id="fd", user_id=uid, expires_at=datetime.now(UTC) - timedelta(seconds=1)
    )
    assert await store.sessions.mark_refresh_token_used("a1")  # rotated: a2 is the live one
    await store.sessions.save_refresh_token(jti="a2", family_id="fa", user_id=uid, expires_at=soon)
    await store.sessions.revoke_refresh_family("fb")
    live = await store.sessions.live_refresh_tokens(uid)
    assert sorted(t.jti for t in live) == ["a2", "c1"]
    assert {t.family_id for t in live} == {"fa", "fc"}
    assert await store.sessions.live_refresh_tokens("nobody") == []
