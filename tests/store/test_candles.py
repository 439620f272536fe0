"""The candles area: bars upserted by key, the latest ones listed oldest first."""

from __future__ import annotations

from datetime import timedelta

from fxgate.services.ports.store import Store
from fxgate.services.ports.store.records import Candle
from tests.store.builders import T0


async def test_candles_upsert_and_list_newest_last(store: Store) -> None:
    await store.candles.upsert(
        [
            Candle(
                "EURUSD", "1m", T0 + timedelta(minutes=i), "1.1", "1.2", "1.0", f"1.1{i}", str(i)
            )
            for i in range(5)
        ]
    )
    replaced = Candle("EURUSD", "1m", T0, "1.1", "1.3", "0.9", "1.25", "99")
    await store.candles.upsert([replaced, Candle("EURUSD", "5m", T0, "1", "1", "1", "1", "1")])
    bars = await store.candles.latest("EURUSD", "1m", limit=3)
    assert [b.close for b in bars] == ["1.12", "1.13", "1.14"]  # the latest three, in order
    everything = await store.candles.latest("EURUSD", "1m")
    assert len(everything) == 5
    assert everything[0] == replaced
    window = await store.candles.latest(
        "EURUSD", "1m", T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)
    )
    assert [b.open_time for b in window] == [T0 + timedelta(minutes=m) for m in (1, 2)]
    assert await store.candles.latest("EURUSD", "1m", limit=0) == []


async def test_a_backfill_of_many_bars(store: Store) -> None:
    await store.candles.upsert(
        [
            Candle("GBPUSD", "1h", T0 + timedelta(hours=h), "1", "2", "0", "1", "5")
            for h in range(40)
        ]
    )
    assert len(await store.candles.latest("GBPUSD", "1h", limit=1000)) == 40
