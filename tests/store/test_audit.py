"""The audit area: entries filtered and paged newest first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fxgate.services.ports.store import Store
from tests.store.builders import T0


async def test_audit_log_filters_and_pages_newest_first(store: Store) -> None:
    for i in range(6):
        await store.audit.append(
            "u1" if i % 2 else "u2",
            "order.create" if i < 4 else "login",
            f"order-{i}",
            {"i": i},
            T0 + timedelta(minutes=i),
        )
    entries, total = await store.audit.page(limit=4)
    assert total == 6
    assert [e.details["i"] for e in entries] == [5, 4, 3, 2]
    rest, total = await store.audit.page(offset=4, limit=4)
    assert [e.details["i"] for e in rest] == [1, 0]
    mine, total = await store.audit.page(actor="u1", action="order.create")
    assert total == 2
    assert [e.target for e in mine] == ["order-3", "order-1"]
    window, total = await store.audit.page(
        start=T0 + timedelta(minutes=1), end=T0 + timedelta(minutes=3)
    )
    assert [e.details["i"] for e in window] == [2, 1]
    assert total == 2


async def test_audit_entries_default_to_now(store: Store) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    entry = await store.audit.append("cli", "keys.rotate", "k2")
    assert entry.ts >= before
    assert entry.details == {}
    assert entry.id
