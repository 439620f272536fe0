"""The ``signals`` channel (issue 8, item 5): seed 002's signals, published, kept, listed.

A back end publishes a signal over ``POST /api/v1/publish``; it is checked against seed
002's shape (a bad one is refused naming its field, and nothing is published), stored,
and announced on ``/api/ws`` as a ``signal`` message. Without ``userId`` it is public;
with one, only that user sees it. The same uuid again updates the stored signal and is
announced again. ``GET /signals`` lists what a user may see, with filters and paging.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fxgate.app.assembly import build_node
from fxgate.config.settings import Settings
from fxgate.domain.errors import ValidationError
from tests.conftest import Daemon, until
from tests.trading_helpers import HTTP, Admin, Trader, error, unique
from tests.wsclient import Client


def seed_signal(uuid: str, **fields: Any) -> dict[str, Any]:
    """Seed 002's example ``signals_update`` payload."""
    return {
        "uuid": uuid,
        "symbol": "EURUSD",
        "side": "buy",
        "volume": 0.01,
        "tp": 50,
        "sl": 30,
        "source": "RSI_Strategy",
        "confidence": 0.85,
        "timestamp": "2024-01-01T12:00:00Z",
        "validators": [
            {
                "name": "AI_Validator",
                "type": "ai",
                "approved": True,
                "confidence": 0.92,
                "reason": "Strong bullish pattern detected",
                "timestamp": "2024-01-01T12:00:01Z",
            },
            {
                "name": "RSI_Strategy",
                "type": "strategy",
                "approved": True,
                "confidence": 0.85,
                "reason": "RSI oversold + trend confirmation",
                "timestamp": "2024-01-01T12:00:01Z",
            },
        ],
        "status": "approved",
        **fields,
    }


def as_stored(signal: dict[str, Any]) -> dict[str, Any]:
    """What fxgate sends back: the same fields, times with milliseconds."""
    out = {**signal, "timestamp": signal["timestamp"].replace("Z", ".000Z")}
    out["validators"] = [
        {**v, "timestamp": v["timestamp"].replace("Z", ".000Z")} for v in signal["validators"]
    ]
    return out


async def live_signal(c: Client, uuid: str, timeout: float = 5) -> dict[str, Any]:
    msg = await c.wait_for(
        lambda m: (
            m.get("type") == "signal"
            and m["data"]["uuid"] == uuid
            and not m["data"].get("snapshot")
        ),
        timeout,
    )
    assert msg["channel"] == "signals"
    assert set(msg) == {"type", "channel", "data", "timestamp", "id", "offset", "epoch"}
    data: dict[str, Any] = msg["data"]
    return data


def listed(trader: Trader, **params: Any) -> dict[str, Any]:
    r = trader.get("/signals", params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["success"] is True
    return body


async def test_a_public_signal_reaches_everyone_and_is_listed(market: Daemon) -> None:
    admin = Admin(market)
    x, y = Trader.issued(market), Trader.issued(market, role="viewer")
    cx = await x.socket("signals")
    cy = await y.socket("signals")
    try:
        await cx.barrier()
        await cy.barrier()
        source = unique("Public_")
        sig = seed_signal(unique("signal_"), source=source)
        r = admin.publish({"channel": "signals", "data": sig})
        assert r.status_code == 200, r.text
        assert r.json()["data"] == {"published": 1}
        assert await live_signal(cx, sig["uuid"]) == as_stored(sig)
        assert await live_signal(cy, sig["uuid"]) == as_stored(sig)
        for who in (x, y):
            body = listed(who, source=source)
            assert body["data"] == [as_stored(sig)]
            assert body["pagination"] == {"page": 1, "limit": 50, "total": 1, "totalPages": 1}
        one = x.get(f"/signals/{sig['uuid']}")
        assert one.status_code == 200
        assert one.json()["data"] == as_stored(sig)
        # Through the un-prefixed path too, like every REST route.
        r2 = HTTP.get(market.url("/signals"), params={"source": source}, headers=x.headers)
        assert r2.json()["data"] == [as_stored(sig)]
    finally:
        await cx.close()
        await cy.close()


async def test_a_signal_with_a_user_id_is_that_users_alone(market: Daemon) -> None:
    admin = Admin(market)
    x, y = Trader.issued(market), Trader.issued(market)
    cx = await x.socket("signals")
    cy = await y.socket("signals")
    try:
        await cx.barrier()
        await cy.barrier()
        source = unique("Private_")
        sig = seed_signal(unique("signal_"), source=source)
        r = admin.publish({"channel": "signals", "data": sig, "userId": x.user_id})
        assert r.status_code == 200, r.text
        assert (await live_signal(cx, sig["uuid"]))["source"] == source
        assert [m for m in await cy.barrier() if m.get("type") == "signal"] == []
        assert [s["uuid"] for s in listed(x, source=source)["data"]] == [sig["uuid"]]
        assert listed(y, source=source)["data"] == []
        error(y.get(f"/signals/{sig['uuid']}"), 404, "NOT_FOUND_ERROR")
        # Nobody takes a private uuid over, not even as a public signal.
        taken = admin.publish({"channel": "signals", "data": {**sig, "status": "rejected"}})
        error(taken, 409, "CONFLICT_ERROR")
        assert listed(x, source=source)["data"][0]["status"] == "approved"
    finally:
        await cx.close()
        await cy.close()


async def test_the_same_uuid_updates_the_stored_signal_and_is_announced_again(
    market: Daemon,
) -> None:
    admin = Admin(market)
    x = Trader.issued(market)
    c = await x.socket("signals")
    try:
        await c.barrier()
        source = unique("Update_")
        pending = seed_signal(unique("signal_"), source=source, status="pending", validators=[])
        assert admin.publish({"channel": "signals", "data": pending}).status_code == 200
        assert (await live_signal(c, pending["uuid"]))["status"] == "pending"
        approved = seed_signal(pending["uuid"], source=source)
        assert admin.publish({"channel": "signals", "data": approved}).status_code == 200
        again = await live_signal(c, pending["uuid"])
        assert again == as_stored(approved)
        body = listed(x, source=source)
        assert body["data"] == [as_stored(approved)]
        assert body["pagination"]["total"] == 1
    finally:
        await c.close()


def test_signals_are_listed_with_filters_and_pages(market: Daemon) -> None:
    admin = Admin(market)
    x = Trader.issued(market)
    tag = unique("F")
    rows = [
        ("a", "EURUSD", "buy", "approved", "RSI", "2024-01-01T10:00:00Z"),
        ("b", "GBPUSD", "sell", "pending", "RSI", "2024-01-01T11:00:00Z"),
        ("c", "EURUSD", "sell", "rejected", "MACD", "2024-01-01T12:00:00Z"),
        ("d", "EURUSD", "buy", "approved", "MACD", "2024-01-01T13:00:00Z"),
    ]
    events = [
        {
            "channel": "signals",
            "data": seed_signal(
                f"{tag}_{u}", symbol=sym, side=side, status=st, source=f"{tag}{src}", timestamp=ts
            ),
        }
        for u, sym, side, st, src, ts in rows
    ]
    assert admin.publish({"events": events}).status_code == 200

    def uuids(**params: Any) -> list[str]:
        return [s["uuid"].split("_")[-1] for s in listed(x, **params)["data"]]

    assert uuids(source=f"{tag}RSI") == ["b", "a"]
    assert uuids(source=f"{tag}MACD", side="buy") == ["d"]
    assert uuids(source=f"{tag}MACD", status="rejected") == ["c"]
    assert uuids(source=f"{tag}RSI", symbol="gbpusd") == ["b"]
    since = {"since": "2024-01-01T11:00:00Z", "until": "2024-01-01T13:00:00Z"}
    assert uuids(source=f"{tag}MACD", **since) == ["c"]
    assert uuids(source=f"{tag}RSI", **since) == ["b"]
    page = listed(x, source=f"{tag}RSI", limit=1, page=2)
    assert [s["uuid"] for s in page["data"]] == [f"{tag}_a"]
    assert page["pagination"] == {"page": 2, "limit": 1, "total": 2, "totalPages": 2}
    for params, field in (
        ({"side": "hold"}, "side"),
        ({"status": "done"}, "status"),
        ({"since": "yesterday"}, "since"),
        ({"limit": 501}, "limit"),
    ):
        err = error(x.get("/signals", params=params), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, err


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"side": "hold"}, "data.side", id="side"),
        pytest.param({"status": "done"}, "data.status", id="status"),
        pytest.param({"confidence": 1.5}, "data.confidence", id="confidence-above-1"),
        pytest.param({"confidence": -0.1}, "data.confidence", id="confidence-below-0"),
        pytest.param({"confidence": "high"}, "data.confidence", id="confidence-text"),
        pytest.param({"volume": 1e300}, "data.volume", id="huge-volume"),
        pytest.param({"volume": 10**400}, "data.volume", id="huge-integer"),
        pytest.param({"volume": 0}, "data.volume", id="zero-volume"),
        pytest.param({"tp": True}, "data.tp", id="boolean-tp"),
        pytest.param({"uuid": "x" * 65}, "data.uuid", id="long-uuid"),
        pytest.param({"uuid": None}, "data.uuid", id="no-uuid"),
        pytest.param({"symbol": "E" * 1000}, "data.symbol", id="long-symbol"),
        pytest.param({"source": "s" * 100_000}, "data.source", id="huge-source"),
        pytest.param({"timestamp": "noon"}, "data.timestamp", id="timestamp"),
        pytest.param({"validators": "all"}, "data.validators", id="validators-not-a-list"),
        pytest.param({"validators": [{}] * 100}, "data.validators", id="too-many-validators"),
        pytest.param({"colour": "red"}, "data.colour", id="unknown-field"),
        pytest.param({"generationMs": -1}, "data.generationMs", id="negative-generation"),
        pytest.param({"generationMs": 3_600_001}, "data.generationMs", id="generation-over-1h"),
        pytest.param({"generationMs": "fast"}, "data.generationMs", id="generation-text"),
        pytest.param({"generationMs": True}, "data.generationMs", id="generation-boolean"),
    ],
)
async def test_a_signal_off_seed_002s_shape_is_refused_naming_its_field(
    market: Daemon, change: dict[str, Any], field: str
) -> None:
    admin = Admin(market)
    x = Trader.issued(market)
    c = await x.socket("signals")
    try:
        await c.barrier()
        bad = {**seed_signal(unique("bad_")), **change}
        err = error(admin.publish({"channel": "signals", "data": bad}), 422, "VALIDATION_ERROR")
        assert err["details"]["field"] == field, err
        assert err["details"]["errors"][0]["field"] == field
        assert [m for m in await c.barrier() if m.get("type") == "signal"] == []
        if isinstance(bad.get("uuid"), str):
            error(x.get(f"/signals/{bad['uuid']}"), 404, "NOT_FOUND_ERROR")
    finally:
        await c.close()


@pytest.mark.parametrize(
    ("validator", "field"),
    [
        ({"approved": "yes"}, "data.validators.1.approved"),
        ({"confidence": 2}, "data.validators.1.confidence"),
        ({"name": ""}, "data.validators.1.name"),
        ({"reason": "r" * 5000}, "data.validators.1.reason"),
        ({"timestamp": "later"}, "data.validators.1.timestamp"),
        ({"weight": 1}, "data.validators.1.weight"),
    ],
)
def test_each_validator_is_checked_too(
    market: Daemon, validator: dict[str, Any], field: str
) -> None:
    sig = seed_signal(unique("badv_"))
    sig["validators"][1] = {**sig["validators"][1], **validator}
    err = error(Admin(market).publish({"channel": "signals", "data": sig}), 422, "VALIDATION_ERROR")
    assert err["details"]["field"] == field, err


async def test_a_new_subscriber_gets_the_latest_signals_first(market: Daemon) -> None:
    admin = Admin(market)
    x = Trader.issued(market)
    source = unique("Snap_")
    first = seed_signal(unique("snap_"), source=source, symbol="USDJPY")
    second = seed_signal(unique("snap_"), source=source, symbol="USDJPY", side="sell")
    private = seed_signal(unique("snap_"), source=source, symbol="USDJPY")
    assert admin.publish({"events": [{"channel": "signals", "data": s} for s in (first, second)]})
    assert admin.publish({"channel": "signals", "data": private, "userId": x.user_id})
    c = await x.socket({"name": "signals", "filters": {"symbol": "USDJPY", "source": source}})
    other = await Trader.issued(market).socket(
        {"name": "signals", "filters": {"symbol": "USDJPY", "source": source}}
    )
    try:
        got = [m["data"] for m in await c.barrier() if m.get("type") == "signal"]
        assert [s["uuid"] for s in got] == [first["uuid"], second["uuid"], private["uuid"]]
        assert all(s["snapshot"] is True for s in got)
        theirs = [m["data"]["uuid"] for m in await other.barrier() if m.get("type") == "signal"]
        assert theirs == [first["uuid"], second["uuid"]]
    finally:
        await c.close()
        await other.close()


async def test_node_ingest_keeps_a_signal_before_it_is_announced(tmp_path: Path) -> None:
    """In-process producers (the signal engine to come) call ``node.ingest``; awaiting it
    means the signal is stored. A bad one is refused at once, before anything is kept."""
    node = build_node(Settings(state_dir=tmp_path))
    await node.start()
    try:
        sig = seed_signal("engine_1", status="pending")
        await node.ingest("signals", sig)
        assert await node.store.signals.get("engine_1", "anyone") == as_stored(sig)
        await node.ingest("signals", {**sig, "status": "approved"}, user_id=None)
        assert (await node.store.signals.get("engine_1") or {})["status"] == "approved"
        with pytest.raises(ValidationError) as refused:
            node.ingest("signals", {**sig, "confidence": 7})
        assert refused.value.field == "data.confidence"
        node.ingest("signals", seed_signal("engine_2"))  # not awaited: kept all the same
        await until(lambda: node.store.signals.get("engine_2"), what="engine_2 stored")
    finally:
        await node.stop()
