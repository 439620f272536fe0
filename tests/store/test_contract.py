"""The store contract: one suite, run against SQLite and MongoDB (see conftest.py).

Each test is a small story a service depends on: a user registers, a token is reused,
an order is retried with its clientOrderId, the daemon restarts. The last sections
cover what only one backend has (SQLite's threading and migrations) and the factory.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fxgate.store.factory import build_store, open_store
from fxgate.store.mongodb import MongoStore
from fxgate.store.port import Store, StoreConflictError, StoreError
from fxgate.store.records import Candle, OwnedDoc
from fxgate.store.sqlite import SQLiteStore
from fxgate.store.sqlite_schema import LATEST_VERSION
from tests.store.conftest import HISTORY_RETENTION, Backend

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def order(
    order_id: str,
    user_id: str = "u1",
    *,
    minutes: int = 0,
    status: str = "pending",
    symbol: str = "EURUSD",
    client_order_id: str | None = None,
    ticket: int | None = None,
) -> dict[str, Any]:
    return {
        "id": order_id,
        "ticket": ticket,
        "user_id": user_id,
        "symbol": symbol,
        "status": status,
        "client_order_id": client_order_id,
        "volume": "0.10",
        "price": "1.08512",
        "created_at": iso(T0 + timedelta(minutes=minutes)),
    }


def position(ticket: int, user_id: str = "u1", status: str = "open") -> dict[str, Any]:
    return {"ticket": ticket, "user_id": user_id, "symbol": "EURUSD", "status": status}


def deal(ticket: int, user_id: str = "u1", *, minutes: int = 0) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "user_id": user_id,
        "symbol": "EURUSD",
        "profit": "-1.20",
        "time": iso(T0 + timedelta(minutes=minutes)),
    }


async def make_user(store: Store, email: str = "ann@example.com", **kw: Any) -> str:
    user = await store.create_user(email=email, name="Ann", role="trader", **kw)
    return user.id


# -- lifecycle ----------------------------------------------------------------------------


async def test_kind_and_ping_follow_the_lifecycle(backend: Backend) -> None:
    store = backend.make()
    assert store.kind == ("sqlite" if backend.is_sqlite else "mongodb")
    assert await store.ping() is False
    await store.open()
    await store.open()  # idempotent
    assert await store.ping() is True
    await store.close()
    await store.close()
    assert await store.ping() is False


async def test_a_closed_store_refuses_work(backend: Backend) -> None:
    store = backend.make()
    with pytest.raises(StoreError):
        await store.get_user("nobody")


# -- users ----------------------------------------------------------------------------------


async def test_users_are_found_by_email_whatever_its_case(store: Store) -> None:
    user = await store.create_user(
        email="Ann.Lee@Example.com",
        name="Ann",
        role="trader",
        password_hash="argon2$x",
        tier="pro",
        preferences={"theme": "dark"},
    )
    assert user.email == "Ann.Lee@Example.com"
    assert user.created_at.tzinfo is not None
    assert await store.get_user(user.id) == user
    assert await store.get_user_by_email("ann.lee@EXAMPLE.COM") == user
    assert await store.get_user_by_email("bob@example.com") is None


async def test_an_email_registers_once_whatever_its_case(store: Store) -> None:
    await store.create_user(email="ann@example.com", name="Ann", role="trader")
    with pytest.raises(StoreConflictError, match="email"):
        await store.create_user(email="ANN@Example.COM", name="Other", role="viewer")
    _, total = await store.list_users()
    assert total == 1


async def test_a_user_id_registers_once(store: Store) -> None:
    await store.create_user(email="a@example.com", name="A", role="trader", user_id="u1")
    with pytest.raises(StoreConflictError):
        await store.create_user(email="b@example.com", name="B", role="trader", user_id="u1")


async def test_users_created_by_token_issue_have_no_password(store: Store) -> None:
    user = await store.create_user(email="bot@example.com", name="Bot", role="viewer")
    assert user.password_hash is None
    assert user.disabled is False


async def test_update_user_changes_only_what_is_given(store: Store) -> None:
    user = await store.create_user(email="a@example.com", name="A", role="trader", tier="pro")
    updated = await store.update_user(user.id, role="admin", disabled=True, password_hash="h2")
    assert updated is not None
    assert (updated.role, updated.disabled, updated.password_hash) == ("admin", True, "h2")
    assert (updated.name, updated.tier, updated.email) == ("A", "pro", "a@example.com")
    assert updated.updated_at >= user.updated_at
    assert await store.get_user(user.id) == updated
    assert await store.update_user("nobody", name="X") is None


async def test_list_users_pages_with_a_total(store: Store) -> None:
    for i in range(5):
        await store.create_user(email=f"u{i}@example.com", name=f"U{i}", role="viewer")
    page, total = await store.list_users(offset=3, limit=10)
    assert total == 5
    assert len(page) == 2
    first, _ = await store.list_users(offset=0, limit=3)
    assert {u.id for u in first}.isdisjoint({u.id for u in page})


# -- API keys -----------------------------------------------------------------------------


async def test_api_keys_are_listed_and_revoked(store: Store) -> None:
    uid = await make_user(store)
    key = await store.create_api_key(user_id=uid, key_id="ak_1", secret="s3cret", name="bot")
    await store.create_api_key(user_id=uid, key_id="ak_2", secret="other")
    assert await store.get_api_key("ak_1") == key
    assert key.active
    assert [k.key_id for k in await store.list_api_keys(uid)] == ["ak_1", "ak_2"]
    assert await store.revoke_api_key("ak_1") is True
    assert await store.revoke_api_key("ak_1") is False
    assert await store.revoke_api_key("missing") is False
    revoked = await store.get_api_key("ak_1")
    assert revoked is not None
    assert revoked.revoked_at is not None
    assert not revoked.active


async def test_api_keys_need_a_real_user_and_a_fresh_id(store: Store) -> None:
    uid = await make_user(store)
    await store.create_api_key(user_id=uid, key_id="ak_1", secret="s")
    with pytest.raises(StoreConflictError):
        await store.create_api_key(user_id=uid, key_id="ak_1", secret="s")
    with pytest.raises(StoreConflictError, match="user"):
        await store.create_api_key(user_id="ghost", key_id="ak_2", secret="s")


# -- signing keys -------------------------------------------------------------------------


async def test_rotation_leaves_exactly_one_active_key(store: Store) -> None:
    for kid in ("k1", "k2", "k3"):
        added = await store.add_signing_key(kid=kid, secret=f"secret-{kid}")
        assert added.active
    ring = await store.list_signing_keys()
    assert [k.kid for k in ring] == ["k1", "k2", "k3"]
    assert [k.kid for k in ring if k.active] == ["k3"]
    assert all(k.verifies for k in ring)  # old keys still verify until retired
    assert ring[0].algorithm == "HS256"


async def test_a_duplicate_kid_leaves_the_ring_as_it_was(store: Store) -> None:
    await store.add_signing_key(kid="k1", secret="a")
    await store.add_signing_key(kid="k2", secret="b")
    with pytest.raises(StoreConflictError):
        await store.add_signing_key(kid="k1", secret="c")
    assert [k.kid for k in await store.list_signing_keys() if k.active] == ["k2"]


async def test_concurrent_rotations_still_leave_one_active_key(backend: Backend) -> None:
    daemon, cli = await backend.open(), await backend.open()
    await asyncio.gather(
        *(s.add_signing_key(kid=f"k{i}", secret="x") for i, s in enumerate([daemon, cli] * 3))
    )
    ring = await daemon.list_signing_keys()
    assert len(ring) == 6
    assert sum(k.active for k in ring) == 1


async def test_retiring_keys(store: Store) -> None:
    await store.add_signing_key(kid="k1", secret="a")
    await store.add_signing_key(kid="k2", secret="b")
    with pytest.raises(StoreConflictError, match="active"):
        await store.retire_signing_key("k2")
    assert await store.retire_signing_key("k1") is True
    assert await store.retire_signing_key("k1") is False
    assert await store.retire_signing_key("nope") is False
    k1, k2 = await store.list_signing_keys()
    assert not k1.verifies
    assert k1.retired_at is not None
    assert k2.active
    assert k2.verifies


# -- refresh tokens, revoked access tokens, nonces --------------------------------------------


async def test_a_reused_refresh_token_is_detected(store: Store) -> None:
    uid = await make_user(store)
    expires = datetime.now(UTC) + timedelta(days=7)
    saved = await store.save_refresh_token(
        jti="r1", family_id="f1", user_id=uid, expires_at=expires
    )
    assert await store.get_refresh_token("r1") == saved
    assert saved.expires_at == expires.replace(microsecond=expires.microsecond // 1000 * 1000)

    assert await store.mark_refresh_token_used("r1") is True  # the rotation
    assert await store.mark_refresh_token_used("r1") is False  # the reuse
    assert await store.mark_refresh_token_used("unknown") is False
    used = await store.get_refresh_token("r1")
    assert used is not None
    assert used.used_at is not None


async def test_only_one_of_concurrent_refreshes_wins(store: Store) -> None:
    uid = await make_user(store)
    expires = datetime.now(UTC) + timedelta(days=7)
    await store.save_refresh_token(jti="r1", family_id="f1", user_id=uid, expires_at=expires)
    results = await asyncio.gather(*(store.mark_refresh_token_used("r1") for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_revoking_a_family_spares_other_families(store: Store) -> None:
    uid = await make_user(store)
    expires = datetime.now(UTC) + timedelta(days=7)
    for jti, family in (("a1", "fa"), ("a2", "fa"), ("b1", "fb")):
        await store.save_refresh_token(jti=jti, family_id=family, user_id=uid, expires_at=expires)
    await store.mark_refresh_token_used("a1")
    assert await store.revoke_refresh_family("fa") == 2
    assert await store.revoke_refresh_family("fa") == 0
    assert await store.mark_refresh_token_used("a2") is False  # revoked: refused
    assert await store.mark_refresh_token_used("b1") is True
    a2 = await store.get_refresh_token("a2")
    assert a2 is not None
    assert a2.revoked_at is not None


async def test_revoking_all_of_a_users_tokens(store: Store) -> None:
    ann, bob = await make_user(store), await make_user(store, "bob@example.com")
    expires = datetime.now(UTC) + timedelta(days=7)
    await store.save_refresh_token(jti="a", family_id="fa", user_id=ann, expires_at=expires)
    await store.save_refresh_token(jti="b", family_id="fb", user_id=bob, expires_at=expires)
    assert await store.revoke_user_refresh_tokens(ann) == 1
    assert await store.mark_refresh_token_used("b") is True


async def test_refresh_tokens_need_a_real_user_and_a_fresh_jti(store: Store) -> None:
    uid = await make_user(store)
    expires = datetime.now(UTC) + timedelta(days=7)
    await store.save_refresh_token(jti="r1", family_id="f", user_id=uid, expires_at=expires)
    with pytest.raises(StoreConflictError):
        await store.save_refresh_token(jti="r1", family_id="f", user_id=uid, expires_at=expires)
    with pytest.raises(StoreConflictError):
        await store.save_refresh_token(jti="r2", family_id="f", user_id="x", expires_at=expires)


async def test_logout_revokes_an_access_token_jti(store: Store) -> None:
    assert await store.is_jti_revoked("j1") is False
    await store.revoke_jti("j1", datetime.now(UTC) + timedelta(minutes=15))
    await store.revoke_jti("j1", datetime.now(UTC) + timedelta(minutes=15))  # twice is fine
    assert await store.is_jti_revoked("j1") is True
    assert await store.is_jti_revoked("j2") is False


async def test_a_nonce_is_accepted_once(store: Store) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    assert await store.remember_nonce("ak_1:n1", expires) is True
    assert await store.remember_nonce("ak_1:n1", expires) is False
    assert await store.remember_nonce("ak_1:n2", expires) is True


async def test_concurrent_replays_of_one_nonce_pass_once(store: Store) -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    results = await asyncio.gather(*(store.remember_nonce("n", expires) for _ in range(6)))
    assert results.count(True) == 1


async def test_an_expired_nonce_may_be_used_again(store: Store) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    assert await store.remember_nonce("n", past) is True
    assert await store.remember_nonce("n", datetime.now(UTC) + timedelta(minutes=5)) is True
    assert await store.remember_nonce("n", datetime.now(UTC) + timedelta(minutes=5)) is False


async def test_purge_removes_only_what_expired(backend: Backend, store: Store) -> None:
    uid = await make_user(store)
    past, future = datetime.now(UTC) - timedelta(seconds=1), datetime.now(UTC) + timedelta(hours=1)
    await store.save_refresh_token(jti="old", family_id="f", user_id=uid, expires_at=past)
    await store.save_refresh_token(jti="new", family_id="f", user_id=uid, expires_at=future)
    await store.revoke_jti("j-old", past)
    await store.revoke_jti("j-new", future)
    await store.remember_nonce("n-old", past)
    await store.remember_nonce("n-new", future)
    removed = await store.purge_expired()
    # MongoDB's TTL monitor (and mongomock's emulation of it) may have come first.
    assert removed == 3 if backend.is_sqlite else 0 <= removed <= 3
    assert await store.get_refresh_token("old") is None
    assert await store.get_refresh_token("new") is not None
    assert await store.is_jti_revoked("j-old") is False
    assert await store.is_jti_revoked("j-new") is True
    assert await store.remember_nonce("n-new", future) is False


# -- audit log ----------------------------------------------------------------------------


async def test_audit_log_filters_and_pages_newest_first(store: Store) -> None:
    for i in range(6):
        await store.append_audit(
            "u1" if i % 2 else "u2",
            "order.create" if i < 4 else "login",
            f"order-{i}",
            {"i": i},
            T0 + timedelta(minutes=i),
        )
    entries, total = await store.list_audit(limit=4)
    assert total == 6
    assert [e.details["i"] for e in entries] == [5, 4, 3, 2]
    rest, total = await store.list_audit(offset=4, limit=4)
    assert [e.details["i"] for e in rest] == [1, 0]
    mine, total = await store.list_audit(actor="u1", action="order.create")
    assert total == 2
    assert [e.target for e in mine] == ["order-3", "order-1"]
    window, total = await store.list_audit(
        start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=3)
    )
    assert [e.details["i"] for e in window] == [2, 1]
    assert total == 2


async def test_audit_entries_default_to_now(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    entry = await store.append_audit("cli", "keys.rotate", "k2")
    assert entry.ts >= before
    assert entry.details == {}
    assert entry.id


# -- trading documents --------------------------------------------------------------------


async def test_orders_are_saved_and_read_back_per_user(store: Store) -> None:
    await store.save_trading(orders=[order("o1", client_order_id="c1", ticket=7)])
    saved = await store.get_order("u1", "o1")
    assert saved == order("o1", client_order_id="c1", ticket=7)
    assert await store.get_order("u2", "o1") is None  # never another user's order
    assert await store.get_order_by_client_id("u1", "c1") == saved
    assert await store.get_order_by_client_id("u2", "c1") is None


async def test_client_order_id_is_unique_per_user_only(store: Store) -> None:
    await store.save_trading(
        orders=[
            order("o1", "u1", client_order_id="same"),
            order("o2", "u2", client_order_id="same"),  # another user may use it too
            order("o3", "u1"),
            order("o4", "u1"),  # many orders without one
        ]
    )
    with pytest.raises(StoreConflictError, match="clientOrderId"):
        await store.save_trading(orders=[order("o5", "u1", client_order_id="same")])
    assert await store.get_order("u1", "o5") is None
    # Updating the order that owns the client id is not a conflict.
    await store.save_trading(orders=[order("o1", "u1", client_order_id="same", status="filled")])
    again = await store.get_order_by_client_id("u1", "same")
    assert again is not None
    assert again["status"] == "filled"


async def test_a_failing_batch_writes_nothing_where_the_backend_is_atomic(
    backend: Backend, store: Store
) -> None:
    await store.save_trading(orders=[order("o1", client_order_id="c1")])
    batch = {
        "orders": [order("o2"), order("o3", client_order_id="c1")],  # o3 conflicts
        "positions": [position(10)],
        "accounts": [{"user_id": "u1", "balance": "9000.00"}],
    }
    with pytest.raises(StoreConflictError):
        await store.save_trading(**batch)
    atomic = backend.is_sqlite or (isinstance(store, MongoStore) and store.supports_transactions)
    if atomic:
        assert await store.get_order("u1", "o2") is None
    else:  # documented: ordered upserts keep what preceded the failure
        assert await store.get_order("u1", "o2") is not None
    assert await store.get_position("u1", 10) is None
    assert await store.get_account("u1") is None


async def test_a_malformed_batch_writes_nothing(store: Store) -> None:
    bad_position = {"ticket": "11", "user_id": "u1", "status": "open"}  # str ticket
    with pytest.raises(ValueError, match="ticket"):
        await store.save_trading(orders=[order("o1")], positions=[bad_position])
    with pytest.raises(ValueError, match="user_id"):
        await store.save_trading(orders=[order("o2")], accounts=[{"balance": "1"}])
    with pytest.raises(ValueError, match="id"):
        await store.save_trading(orders=[{"user_id": "u1"}])
    assert (await store.list_orders("u1"))[1] == 0


async def test_list_orders_pages_newest_first_with_a_total(store: Store) -> None:
    await store.save_trading(
        orders=[
            order(f"o{i}", minutes=i, status="filled" if i % 2 else "pending") for i in range(7)
        ]
        + [order("x1", "u2")]
    )
    page, total = await store.list_orders("u1", limit=3)
    assert total == 7
    assert [o["id"] for o in page] == ["o6", "o5", "o4"]
    last, total = await store.list_orders("u1", offset=6, limit=3)
    assert [o["id"] for o in last] == ["o0"]
    assert total == 7
    beyond, total = await store.list_orders("u1", offset=10)
    assert (beyond, total) == ([], 7)
    filled, total = await store.list_orders("u1", status="filled")
    assert total == 3
    assert {o["status"] for o in filled} == {"filled"}
    window, total = await store.list_orders(
        "u1", start=T0 + timedelta(minutes=2), end=T0 + timedelta(minutes=5)
    )
    assert [o["id"] for o in window] == ["o4", "o3", "o2"]
    assert total == 3
    none, total = await store.list_orders("u1", symbol="GBPUSD")
    assert (none, total) == ([], 0)
    counted, total = await store.list_orders("u1", limit=0)
    assert (counted, total) == ([], 7)


async def test_pending_orders_of_everyone_are_restored(store: Store) -> None:
    await store.save_trading(
        orders=[
            order("a", "u1", status="pending"),
            order("b", "u2", status="pending", minutes=1),
            order("c", "u2", status="filled"),
            order("d", "u3", status="partially_filled", minutes=2),
        ]
    )
    assert [o["id"] for o in await store.list_pending_orders()] == ["a", "b"]
    both = await store.list_pending_orders(["pending", "partially_filled"])
    assert [o["id"] for o in both] == ["a", "b", "d"]
    assert await store.list_pending_orders([]) == []


async def test_positions_open_close_and_restore(store: Store) -> None:
    await store.save_trading(
        positions=[position(3), position(1), position(2, "u2"), position(4, status="closed")]
    )
    assert [p["ticket"] for p in await store.list_positions("u1")] == [1, 3, 4]
    assert [p["ticket"] for p in await store.list_positions("u1", "open")] == [1, 3]
    assert [p["ticket"] for p in await store.list_open_positions()] == [1, 2, 3]
    await store.save_trading(positions=[position(1, status="closed")])
    assert [p["ticket"] for p in await store.list_open_positions()] == [2, 3]
    assert await store.get_position("u1", 1) == position(1, status="closed")
    assert await store.get_position("u2", 1) is None


async def test_deals_page_by_time(store: Store) -> None:
    await store.save_trading(deals=[deal(100 + i, minutes=i) for i in range(5)] + [deal(9, "u2")])
    page, total = await store.list_deals("u1", limit=2)
    assert total == 5
    assert [d["ticket"] for d in page] == [104, 103]
    window, total = await store.list_deals(
        "u1", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3), 1, 10
    )
    assert total == 2
    assert [d["ticket"] for d in window] == [101]


async def test_deal_time_may_be_epoch_seconds(store: Store) -> None:
    mt5_deal = {"ticket": 5, "user_id": "u1", "symbol": "EURUSD", "time": T0.timestamp()}
    await store.save_trading(deals=[mt5_deal, deal(6, minutes=1)])
    page, _ = await store.list_deals("u1")
    assert [d["ticket"] for d in page] == [6, 5]
    assert page[1] == mt5_deal


async def test_accounts_are_one_per_user(store: Store) -> None:
    await store.save_trading(accounts=[{"user_id": "u2", "balance": "10000.00"}])
    await store.save_trading(
        accounts=[{"user_id": "u1", "balance": "5.00"}, {"user_id": "u2", "balance": "9.50"}]
    )
    assert await store.get_account("u2") == {"user_id": "u2", "balance": "9.50"}
    assert await store.get_account("u3") is None
    assert [a["user_id"] for a in await store.list_accounts()] == ["u1", "u2"]


async def test_sequences_count_up_without_repeats(store: Store) -> None:
    assert [await store.next_sequence("ticket") for _ in range(3)] == [1, 2, 3]
    assert await store.next_sequence("order") == 1
    values = await asyncio.gather(*(store.next_sequence("ticket") for _ in range(10)))
    assert sorted(values) == list(range(4, 14))


# -- restarts and a second process ----------------------------------------------------------


async def test_everything_survives_close_and_reopen(backend: Backend) -> None:
    store = await backend.open()
    uid = await make_user(store)
    await store.add_signing_key(kid="k1", secret="s")
    await store.save_trading(orders=[order("o1", uid)], positions=[position(1, uid)])
    await store.upsert_candle("EURUSD", "1m", T0, "1.1", "1.2", "1.0", "1.15", "42")
    await store.append_history("orders:u1", 1, "e1", {"type": "order"})
    assert [await store.next_sequence("ticket") for _ in range(3)] == [1, 2, 3]
    await store.close()

    reopened = await backend.open()
    assert await reopened.get_user_by_email("ANN@example.com") is not None
    assert [k.kid for k in await reopened.list_signing_keys() if k.active] == ["k1"]
    assert await reopened.get_order(uid, "o1") == order("o1", uid)
    assert [p["ticket"] for p in await reopened.list_open_positions()] == [1]
    assert len(await reopened.list_candles("EURUSD", "1m")) == 1
    last = await reopened.last_history("orders:u1")
    assert last is not None
    assert last.offset == 1
    assert await reopened.next_sequence("ticket") == 4  # tickets survive restarts


async def test_two_store_instances_share_one_database(backend: Backend) -> None:
    daemon, cli = await backend.open(), await backend.open()
    user = await cli.create_user(email="new@example.com", name="New", role="trader")
    assert await daemon.get_user(user.id) == user
    with pytest.raises(StoreConflictError):
        await daemon.create_user(email="NEW@example.com", name="Dup", role="trader")
    await cli.add_signing_key(kid="k1", secret="a")
    await daemon.add_signing_key(kid="k2", secret="b")
    assert [k.kid for k in await cli.list_signing_keys() if k.active] == ["k2"]
    values = await asyncio.gather(*(s.next_sequence("ticket") for s in [daemon, cli] * 10))
    assert sorted(values) == list(range(1, 21))


def _cli_writer(path: Path, count: int) -> subprocess.Popen[bytes]:
    """Another process writing to the file, as ``fxgate users add`` would."""
    code = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from fxgate.store.sqlite import SQLiteStore\n"
        "async def main():\n"
        "    store = SQLiteStore(Path(sys.argv[1]))\n"
        "    await store.open()\n"
        f"    for i in range({count}):\n"
        "        await store.next_sequence('ticket')\n"
        "        await store.create_user(email=f'cli{i}@example.com', name='c', role='viewer')\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=root)


async def test_sqlite_file_is_shared_with_another_process(tmp_path: Path) -> None:
    path = tmp_path / "fxgate.sqlite3"
    daemon = SQLiteStore(path)
    await daemon.open()
    try:
        cli = _cli_writer(path, 40)
        mine = []
        for i in range(40):
            mine.append(await daemon.next_sequence("ticket"))
            await daemon.create_user(email=f"d{i}@example.com", name="d", role="viewer")
        assert await asyncio.to_thread(cli.wait, 60) == 0
        _, total = await daemon.list_users()
        assert total == 80
        assert await daemon.next_sequence("ticket") == 81  # no value was handed out twice
        assert mine == sorted(mine)
    finally:
        await daemon.close()


# -- alerts, strategies, signals ----------------------------------------------------------


async def test_alerts_belong_to_their_owner(store: Store) -> None:
    await store.save_alert("u1", "a1", {"symbol": "EURUSD", "above": "1.10"})
    await store.save_alert("u1", "a2", {"symbol": "GBPUSD", "below": "1.20"})
    await store.save_alert("u2", "b1", {"symbol": "USDJPY"})
    await store.save_alert("u1", "a1", {"symbol": "EURUSD", "above": "1.11"})  # update
    assert await store.get_alert("u1", "a1") == {"symbol": "EURUSD", "above": "1.11"}
    assert await store.get_alert("u2", "a1") is None
    with pytest.raises(StoreConflictError):
        await store.save_alert("u2", "a1", {"stolen": True})
    assert len(await store.list_alerts("u1")) == 2
    everyone = await store.list_all_alerts()
    assert sorted((a.user_id, a.id) for a in everyone) == [("u1", "a1"), ("u1", "a2"), ("u2", "b1")]
    assert isinstance(everyone[0], OwnedDoc)
    assert await store.delete_alert("u2", "a1") is False
    assert await store.delete_alert("u1", "a1") is True
    assert [a["symbol"] for a in await store.list_alerts("u1")] == ["GBPUSD"]


async def test_strategies_belong_to_their_owner(store: Store) -> None:
    await store.save_strategy("u1", "s1", {"name": "Trend", "status": "inactive"})
    await store.save_strategy("u1", "s1", {"name": "Trend", "status": "active"})
    with pytest.raises(StoreConflictError):
        await store.save_strategy("u2", "s1", {"name": "Mine now"})
    assert await store.list_strategies("u1") == [{"name": "Trend", "status": "active"}]
    assert await store.get_strategy("u2", "s1") is None
    assert await store.delete_strategy("u1", "s1") is True
    assert await store.list_strategies("u1") == []


async def test_signals_public_and_private(store: Store) -> None:
    await store.save_signal("g1", None, {"symbol": "EURUSD", "signal": "buy"})
    await store.save_signal("p1", "u1", {"symbol": "GBPUSD", "signal": "sell"})
    await store.save_signal("p2", "u2", {"symbol": "USDJPY", "signal": "hold"})
    await store.save_signal("g2", None, {"symbol": "XAUUSD", "signal": "buy"})
    mine, total = await store.list_signals("u1")
    assert total == 3
    assert [s["symbol"] for s in mine] == ["XAUUSD", "GBPUSD", "EURUSD"]  # newest first
    public, total = await store.list_signals(None, limit=1)
    assert total == 2
    assert [s["symbol"] for s in public] == ["XAUUSD"]
    assert await store.get_signal("p2") == OwnedDoc(
        "p2", "u2", {"symbol": "USDJPY", "signal": "hold"}
    )
    assert await store.get_signal("nope") is None


# -- candles --------------------------------------------------------------------------------


async def test_candles_upsert_and_list_newest_last(store: Store) -> None:
    for i in range(5):
        await store.upsert_candle(
            "EURUSD", "1m", T0 + timedelta(minutes=i), "1.1", "1.2", "1.0", f"1.1{i}", str(i)
        )
    await store.upsert_candle("EURUSD", "1m", T0, "1.1", "1.3", "0.9", "1.25", "99")  # replace
    await store.upsert_candle("EURUSD", "5m", T0, "1", "1", "1", "1", "1")
    bars = await store.list_candles("EURUSD", "1m", limit=3)
    assert [b.close for b in bars] == ["1.12", "1.13", "1.14"]  # the latest three, in order
    everything = await store.list_candles("EURUSD", "1m")
    assert len(everything) == 5
    assert everything[0] == Candle("EURUSD", "1m", T0, "1.1", "1.3", "0.9", "1.25", "99")
    window = await store.list_candles(
        "EURUSD", "1m", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)
    )
    assert [b.open_time for b in window] == [T0 + timedelta(minutes=m) for m in (1, 2)]
    await store.upsert_candles(
        [
            Candle("GBPUSD", "1h", T0 + timedelta(hours=h), "1", "2", "0", "1", "5")
            for h in range(40)
        ]
    )
    assert len(await store.list_candles("GBPUSD", "1h", limit=1000)) == 40


# -- channel history ----------------------------------------------------------------------


async def test_history_replays_after_an_offset(store: Store) -> None:
    for offset in range(1, 4):
        await store.append_history("trades:u1", offset, "e1", {"n": offset})
    await store.append_history("trades:u2", 1, "e1", {"n": 99})
    after = await store.read_history("trades:u1", 1)
    assert [(e.offset, e.epoch, e.payload["n"]) for e in after] == [(2, "e1", 2), (3, "e1", 3)]
    assert [e.offset for e in await store.read_history("trades:u1", 0, limit=1)] == [1]
    assert await store.read_history("trades:u1", 3) == []
    assert await store.last_history("nothing") is None


async def test_history_keeps_only_the_retention_bound(store: Store) -> None:
    for offset in range(1, 13):
        await store.append_history("s", offset, "e1", {"n": offset})
    kept = await store.read_history("s", 0)
    assert [e.offset for e in kept] == list(range(13 - HISTORY_RETENTION, 13))


async def test_a_new_epoch_drops_the_old_history(store: Store) -> None:
    for offset in range(1, 4):
        await store.append_history("s", offset, "old", {"n": offset})
    await store.append_history("s", 1, "new", {"n": 1})
    kept = await store.read_history("s", 0)
    assert [(e.offset, e.epoch) for e in kept] == [(1, "new")]
    last = await store.last_history("s")
    assert last is not None
    assert last.epoch == "new"


async def test_negative_paging_is_refused(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.list_orders("u1", offset=-1)
    with pytest.raises(ValueError):
        await store.list_users(limit=-5)


# -- SQLite specifics -----------------------------------------------------------------------


async def test_sqlite_never_runs_statements_on_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: set[int] = set()
    real_connect: Callable[..., sqlite3.Connection] = sqlite3.connect

    def spying_connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real_connect(*args, **kwargs)
        conn.set_trace_callback(lambda _sql: threads.add(threading.get_ident()))
        return conn

    monkeypatch.setattr(sqlite3, "connect", spying_connect)  # what the store calls
    store = SQLiteStore(tmp_path / "fxgate.sqlite3")
    await store.open()
    try:
        uid = await make_user(store)
        await store.save_trading(orders=[order("o1", uid)])
        await store.list_orders(uid)
        await store.next_sequence("ticket")
        assert await store.ping()
    finally:
        await store.close()
    assert threads, "the spy saw no statements"
    assert threading.get_ident() not in threads
    assert len(threads) == 1  # one dedicated worker, one connection


async def test_sqlite_file_is_wal_with_the_latest_schema(tmp_path: Path) -> None:
    store = SQLiteStore.in_state_dir(tmp_path / "state")
    await store.open()
    await store.close()
    assert store.path == tmp_path / "state" / "fxgate.sqlite3"
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert (
            conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] == LATEST_VERSION
        )
    finally:
        conn.close()


async def test_sqlite_refuses_a_file_from_a_newer_fxgate(tmp_path: Path) -> None:
    path = tmp_path / "fxgate.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST_VERSION + 1,))
    conn.commit()
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        await SQLiteStore(path).open()


# -- the factory ----------------------------------------------------------------------------


async def test_factory_builds_an_unopened_sqlite_store_in_the_state_dir(tmp_path: Path) -> None:
    store = build_store("sqlite", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "fxgate.sqlite3"
    assert not store.path.exists()
    opened = await open_store("sqlite", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    try:
        assert await opened.ping()
    finally:
        await opened.close()


def test_factory_refuses_what_it_cannot_build(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="URI"):
        build_store("mongodb", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    with pytest.raises(ValueError, match="unknown"):
        build_store("postgres", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    mongo = build_store(
        "mongodb", state_dir=tmp_path, mongodb_uri="mongodb://h:1", mongodb_database="x"
    )
    assert mongo.kind == "mongodb"


# -- MongoDB specifics ----------------------------------------------------------------------


async def test_mongodb_falls_back_when_transactions_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mongomock_motor import AsyncMongoMockClient

    async def claims_transactions(_db: object) -> bool:
        return True  # a topology that says yes, then refuses (mongomock has no sessions)

    monkeypatch.setattr(MongoStore, "_detect_transactions", staticmethod(claims_transactions))
    store = MongoStore(client=AsyncMongoMockClient(), database="fallback")
    await store.open()
    try:
        assert store.supports_transactions is True
        await store.save_trading(orders=[order("o1")], positions=[position(1)])
        assert store.supports_transactions is False
        assert await store.get_order("u1", "o1") == order("o1")
        await store.add_signing_key(kid="k1", secret="s")
        assert [k.kid for k in await store.list_signing_keys() if k.active] == ["k1"]
    finally:
        await store.close()
