"""The user-status cache in memory: one read per new user, one query per re-read."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from fxgate.services.auth.user_status import UserStatus
from fxgate.services.ports.store.records import User
from fxgate.store.rules import new_user


class FakeUsers:
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.reads = 0
        self.changed_reads: list[datetime] = []

    async def get(self, user_id: str) -> User | None:
        self.reads += 1
        return self.users.get(user_id)

    async def changed_since(self, since: datetime) -> list[User]:
        self.changed_reads.append(since)
        return [u for u in self.users.values() if u.updated_at >= since]


def user(uid: str) -> User:
    return new_user(
        user_id=uid, email=f"{uid}@x.invalid", name=uid, role="trader",
        password_hash=None, tier="free", preferences=None,
    )  # fmt: skip


async def test_users_are_read_once_then_refreshed_by_one_query() -> None:
    store = FakeUsers()
    store.users = {"a": user("a"), "b": user("b")}
    status = UserStatus(store)
    for _ in range(5):
        assert await status.is_active("a")
        assert await status.is_active("b")
        assert not await status.is_active("ghost")
    assert store.reads == 3
    assert await status.refresh() == set()
    # Disabled elsewhere: the next re-read refuses them and names them once.
    a = store.users["a"]
    store.users["a"] = replace(a, disabled=True, updated_at=datetime.now(a.updated_at.tzinfo))
    assert await status.refresh() == {"a"}
    assert not await status.is_active("a")
    assert await status.is_active("b")
    assert await status.refresh() == set()
    assert store.reads == 3
    assert len(store.changed_reads) == 3


async def test_a_user_created_after_being_refused_is_let_in_at_the_next_read() -> None:
    store = FakeUsers()
    status = UserStatus(store)
    assert not await status.is_active("late")
    store.users["late"] = user("late")
    assert await status.refresh() == set()
    assert await status.is_active("late")
