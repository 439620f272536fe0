"""``/market/symbols`` and ``/market/data``: instruments, and candles recorded from the feed.

The recorder is exercised in-process against a real SQLite store (closed candles, the
periodic snapshot of the open ones, continuing a bar after a restart) and end to end
through a node built by ``build_node`` (its ``candles`` recorder) and the real Tornado app.
"""

from __future__ import annotations

import calendar
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from fxgate.domain.market import Quote
from fxgate.services.market_history import CandleRecorder
from fxgate.services.ports.store import Store
from fxgate.services.ports.store.records import Candle
from fxgate.store.factory import build_store
from tests.conftest import Daemon
from tests.test_rest_basics import bearer, error, fields

T10 = calendar.timegm((2024, 1, 10, 10, 0, 0, 0, 0, 0))


def quote(ts: float, bid: float, volume: int, symbol: str = "EURUSD") -> Quote:
    return Quote(symbol, bid, bid + 0.0001, bid, volume, 10, ts, 1.0, 2.0, 0.5, 1.0, 0.0, 0.0, 5)


def test_symbols_carry_what_an_order_form_needs(daemon: Daemon, user: str) -> None:
    r = httpx.get(
        daemon.url("/api/v1/market/symbols"), headers=bearer(daemon.token(user, "viewer"))
    )
    assert r.status_code == 200
    symbols = {s["symbol"]: s for s in r.json()["data"]}
    assert "XAUUSD" in symbols
    assert symbols["EURUSD"] == {
        "symbol": "EURUSD",
        "name": "Euro vs US Dollar",
        "type": "forex",
        "baseAsset": "EUR",
        "quoteAsset": "USD",
        "minQuantity": 0.01,
        "maxQuantity": 100,
        "tickSize": 0.00001,
        "active": True,
        "digits": 5,
        "contractSize": 100_000,
        "volumeStep": 0.01,
    }
    assert symbols["XAUUSD"]["type"] == "commodity"
    assert symbols["XAUUSD"]["contractSize"] == 100
    assert symbols["USDJPY"]["tickSize"] == 0.001


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("symbol=NOPE", "symbol"),
        ("symbol=EURUSD&interval=2m", "interval"),
        ("symbol=EURUSD&limit=0", "limit"),
        ("symbol=EURUSD&startTime=yesterday", "startTime"),
        ("interval=1m", "symbol"),
    ],
)
def test_market_data_refuses_bad_queries(daemon: Daemon, user: str, query: str, field: str) -> None:
    r = httpx.get(daemon.url(f"/market/data?{query}"), headers=bearer(daemon.token(user)))
    assert set(fields(error(r, 422, "VALIDATION_ERROR"))) == {field}


def test_market_data_has_seed_003_shape(daemon: Daemon, user: str) -> None:
    r = httpx.get(
        daemon.url("/market/data?symbol=eur/usd&interval=5m&limit=10"),
        headers=bearer(daemon.token(user)),
    )
    assert r.status_code == 200
    data = r.json()["data"]
    assert (data["symbol"], data["interval"]) == ("EURUSD", "5m")
    assert len(data["data"]) <= 10
    for bar in data["data"]:
        assert bar["low"] <= min(bar["open"], bar["close"]) <= max(bar["open"], bar["close"])
        assert bar["timestamp"].endswith(":00.000Z")


# -- the recorder, in-process -------------------------------------------------------------


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = build_store("sqlite", state_dir=tmp_path, mongodb_uri=None, mongodb_database="x")
    await s.open()
    yield s
    await s.close()


def ohlcv(bar: Candle) -> tuple[str, str, str, str, str]:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume)


async def test_closed_candles_are_batched_to_the_store(store: Store) -> None:
    rec = CandleRecorder(store.candles, intervals=["1m", "5m"], snapshot_every=5)
    rec.on_quote(quote(T10 + 5, 1.1000, 3))
    rec.on_quote(quote(T10 + 30, 1.1020, 4))
    rec.on_quote(quote(T10 + 65, 1.1015, 7))  # closes the 10:00 minute
    assert await store.candles.latest("EURUSD", "1m") == []  # nothing written on the quote path

    # Served before any flush: the closed minute from memory, then the open one.
    bars = await rec.query("EURUSD", "1m")
    assert [b.open_time.timestamp() for b in bars] == [T10, T10 + 60]
    assert ohlcv(bars[0]) == ("1.10000", "1.10200", "1.10000", "1.10200", "7")

    assert await rec.flush() == 1  # the closed candle; the open ones wait for a snapshot
    stored = await store.candles.latest("EURUSD", "1m")
    assert [ohlcv(b) for b in stored] == [("1.10000", "1.10200", "1.10000", "1.10200", "7")]

    await rec.flush(snapshot=True)
    assert len(await store.candles.latest("EURUSD", "1m")) == 2
    five = await store.candles.latest("EURUSD", "5m")
    assert [ohlcv(b) for b in five] == [("1.10000", "1.10200", "1.10000", "1.10150", "14")]
    from_ten_one = await rec.query("EURUSD", "1m", start=five[0].open_time.replace(minute=1))
    assert [b.open_time.timestamp() for b in from_ten_one] == [T10 + 60]


async def test_a_restart_continues_the_open_candle(store: Store) -> None:
    before = CandleRecorder(store.candles, intervals=["1m", "5m"])
    before.on_quote(quote(T10 + 5, 1.1000, 3))
    before.on_quote(quote(T10 + 30, 1.1020, 4))
    await before.flush(snapshot=True)  # then the process dies

    after = CandleRecorder(store.candles, intervals=["1m", "5m"])
    await after.load(["EURUSD"])
    after.on_quote(quote(T10 + 50, 1.0990, 2))  # same minute as the snapshot
    current = after.current("EURUSD", "1m")
    assert current is not None
    assert ohlcv(current) == ("1.10000", "1.10200", "1.09900", "1.09900", "9")
    await after.flush(snapshot=True)
    assert [ohlcv(b) for b in await store.candles.latest("EURUSD", "1m")] == [ohlcv(current)]

    after.on_quote(quote(T10 + 61, 1.1030, 1))  # the next minute: a fresh bar
    bars = await after.query("EURUSD", "1m")
    assert [ohlcv(b) for b in bars] == [
        ("1.10000", "1.10200", "1.09900", "1.09900", "9"),
        ("1.10300", "1.10300", "1.10300", "1.10300", "1"),
    ]
    five = after.current("EURUSD", "5m")
    assert five is not None
    assert five.volume == "10"


async def test_market_data_end_to_end_through_a_node(tmp_path: Path) -> None:
    from fxgate.app.assembly import build_node
    from fxgate.config.settings import Settings
    from fxgate.web.app import make_app

    settings = Settings(
        state_dir=tmp_path,
        paper={"seed": 3, "tick_rate": 0.01, "symbols": ["EURUSD", "USDJPY"]},
    )
    node = build_node(settings)
    await node.start()
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(make_app(node))
    server.add_sockets(sockets)
    try:
        recorder = node.candles
        node.market.set_quote("EURUSD", 1.5, 1.5001)
        # A token's user must exist (and not be disabled) to be let in.
        await node.store.users.create(
            user_id="viewer-1", email="viewer-1@test.invalid", name="V", role="viewer"
        )
        token, _ = node.tokens.issue("viewer-1", "viewer")
        url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/api/v1/market/data"
        async with httpx.AsyncClient() as http:
            r = await http.get(url, params={"symbol": "EURUSD"}, headers=bearer(token))
        assert r.status_code == 200, r.text
        last = r.json()["data"]["data"][-1]
        assert last["close"] == pytest.approx(1.5, abs=0.001)
        assert last["high"] >= last["close"]
        await recorder.flush(snapshot=True)
        stored = await node.store.candles.latest("EURUSD", "1m")
        assert stored
        assert float(stored[-1].close) == pytest.approx(1.5, abs=0.001)
    finally:
        server.stop()
        await node.stop()
