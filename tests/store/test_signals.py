"""The signals area: public or private signals, replaced by uuid, filtered and paged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.errors import StoreConflictError
from tests.store.builders import T0
from tests.store.conftest import Backend


def signal(uuid: str, minutes: float = 0, **fields: Any) -> dict[str, Any]:
    stamp = (T0 + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {
        "uuid": uuid,
        "symbol": "EURUSD",
        "side": "buy",
        "volume": 0.01,
        "tp": 50,
        "sl": 30,
        "source": "RSI_Strategy",
        "confidence": 0.85,
        "timestamp": stamp,
        "validators": [
            {
                "name": "AI_Validator",
                "type": "ai",
                "approved": True,
                "confidence": 0.92,
                "reason": "Strong bullish pattern detected",
                "timestamp": stamp,
            }
        ],
        "status": "pending",
        **fields,
    }


async def test_a_signal_saved_again_by_uuid_is_replaced(store: Store) -> None:
    assert await store.signals.save(signal("s1")) is True
    approved = signal("s1", minutes=1, status="approved")
    assert await store.signals.save(approved) is False
    assert await store.signals.get("s1") == approved
    items, total = await store.signals.page()
    assert (items, total) == ([approved], 1)
    assert await store.signals.get("nope") is None


async def test_private_signals_are_their_owners_and_nobody_takes_a_uuid_over(
    store: Store,
) -> None:
    await store.signals.save(signal("pub", minutes=0))
    await store.signals.save(signal("mine", minutes=1), "u1")
    await store.signals.save(signal("theirs", minutes=2), "u2")
    seen = {v: [s["uuid"] for s in (await store.signals.page(viewer=v))[0]] for v in ("u1", "u2")}
    assert seen == {"u1": ["mine", "pub"], "u2": ["theirs", "pub"]}
    assert [s["uuid"] for s in (await store.signals.page())[0]] == ["pub"]
    assert await store.signals.get("mine", "u1") is not None
    assert await store.signals.get("mine", "u2") is None
    assert await store.signals.get("mine") is None
    assert await store.signals.get("pub", "u2") is not None
    for uuid, owner in (("mine", "u2"), ("mine", None), ("pub", "u1")):
        with pytest.raises(StoreConflictError):
            await store.signals.save(signal(uuid, status="rejected"), owner)
    assert (await store.signals.get("mine", "u1") or {})["status"] == "pending"
    assert (await store.signals.get("pub") or {})["status"] == "pending"


async def test_signals_filter_and_page_newest_first(store: Store) -> None:
    rows = [
        signal("a", 0, symbol="EURUSD", side="buy", status="approved", source="RSI"),
        signal("b", 1, symbol="GBPUSD", side="sell", status="pending", source="RSI"),
        signal("c", 2, symbol="EURUSD", side="sell", status="rejected", source="MACD"),
        signal("d", 3, symbol="EURUSD", side="buy", status="approved", source="MACD"),
        signal("e", 4, symbol="USDJPY", side="buy", status="pending", source="RSI"),
    ]
    for row in rows:
        await store.signals.save(row)

    async def uuids(**filters: Any) -> tuple[list[str], int]:
        items, total = await store.signals.page(**filters)
        return [s["uuid"] for s in items], total

    assert await uuids() == (["e", "d", "c", "b", "a"], 5)
    assert await uuids(limit=2) == (["e", "d"], 5)
    assert await uuids(offset=4, limit=2) == (["a"], 5)
    assert await uuids(limit=0) == ([], 5)
    assert await uuids(symbol="EURUSD") == (["d", "c", "a"], 3)
    assert await uuids(side="sell") == (["c", "b"], 2)
    assert await uuids(status="approved") == (["d", "a"], 2)
    assert await uuids(source="MACD", side="buy") == (["d"], 1)
    window = {"start": T0 + timedelta(minutes=1), "end": T0 + timedelta(minutes=3)}
    assert await uuids(**window) == (["c", "b"], 2)
    with pytest.raises(ValueError):
        await store.signals.page(offset=-1)


async def test_a_signal_without_its_indexed_fields_is_refused(store: Store) -> None:
    for missing in ("uuid", "symbol", "side", "status", "source", "timestamp"):
        bad = {k: v for k, v in signal("x").items() if k != missing}
        with pytest.raises(ValueError):
            await store.signals.save(bad)
    with pytest.raises(ValueError):
        await store.signals.save(signal("x", timestamp="yesterday"))
    assert (await store.signals.page()) == ([], 0)


async def test_signals_survive_a_reopen(backend: Backend) -> None:
    first = await backend.open()
    await first.signals.save(signal("kept", status="approved"), "u1")
    await first.close()
    again = await backend.open()
    assert (await again.signals.get("kept", "u1") or {})["status"] == "approved"


async def test_signals_of_the_same_moment_list_the_last_published_first(store: Store) -> None:
    """Engines stamp several signals with one timestamp: their order is the order they
    were published, never their uuids' alphabetical order ("s_100" before "s_98")."""
    for uuid in ("s_98", "s_99", "s_100"):
        await store.signals.save(signal(uuid, 7))
    items, _ = await store.signals.page()
    assert [s["uuid"] for s in items] == ["s_100", "s_99", "s_98"]
