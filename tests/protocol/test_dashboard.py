"""Seed 000's dashboard dialect in memory: wire, labels, the cap, shared frames.

The real hub and the dashboard's feeds, batcher and sessions, with a fake clock and
fake connections, so pacing is checked second by second without a daemon.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from fxgate.config.settings import Settings
from fxgate.domain.errors import Disconnect, Disconnects, ValidationError
from fxgate.domain.events import Event
from fxgate.domain.roles import Role
from fxgate.hub.hub import Hub
from fxgate.hub.resume import ResumeBook
from fxgate.plugins.channel import Channel, Filter, Filters, Principal
from fxgate.protocol.dashboard import messages as m
from fxgate.protocol.dashboard import wire
from fxgate.protocol.dashboard.budget import SendBudget
from fxgate.protocol.dashboard.clock import market_session
from fxgate.protocol.dashboard.pace import MarketPace
from fxgate.protocol.dashboard.registry import DashboardHub
from fxgate.protocol.dashboard.session import DashboardSession
from fxgate.protocol.dashboard.volatility import VolatilityMeter
from fxgate.services.auth.tokens import Claims
from fxgate.services.health import HealthReport
from fxgate.services.usage import UsageMeter
from tests.protocol.fakes import FakeClock


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# -- labels ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("when", "label"),
    [
        ("2026-12-01 03:00", "sydney_tokyo"),  # a Tuesday
        ("2026-12-01 07:30", "tokyo"),
        ("2026-12-01 08:30", "tokyo_london"),
        ("2026-12-01 10:00", "london"),
        ("2026-12-01 14:00", "london_new_york"),
        ("2026-12-01 18:00", "new_york"),
        ("2026-12-01 23:00", "sydney"),
        ("2026-12-04 21:59", "new_york"),  # Friday, before the close
        ("2026-12-04 22:00", "closed"),
        ("2026-12-05 12:00", "closed"),  # Saturday
        ("2026-12-06 21:00", "closed"),  # Sunday, before the open
        ("2026-12-06 22:00", "sydney"),
    ],
)
def test_market_session_from_the_clock(when: str, label: str) -> None:
    assert market_session(at(when)) == label


def test_volatility_from_the_recent_range() -> None:
    v = VolatilityMeter(window=300)
    for i in range(100):
        v.observe("EURUSD", 1.1 + (i % 2) * 0.00002, 1000 + i)
        v.observe("XAUUSD", 2000 + (i % 2) * 2.0, 1000 + i)
        v.observe("GBPUSD", 1.25 + i * 0.0001, 1000 + i)
    assert v.label(["EURUSD"]) == "low"
    assert v.label(["XAUUSD"]) == "medium"
    assert v.label(["GBPUSD"]) == "high"
    assert v.label([]) == "low"
    v.observe("EURUSD", 1.2, 2000)  # the old samples left the window
    assert v.label(["EURUSD"]) == "low"


def test_the_budget_holds_in_every_one_second_window() -> None:
    b = SendBudget(100)
    assert b.take(0.0, 60)
    assert b.take(0.5, 40)
    assert not b.take(0.9, 1)
    assert b.wait(0.9, 1) == pytest.approx(0.1)
    assert b.take(1.0, 60)
    assert not b.take(1.2, 1)
    assert b.take(1.5, 40)
    assert b.take(5.0, 250)  # more connections than the cap: one message still goes


# -- wire ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{}", "frame"),
        ("nope", "frame"),
        ("3", "frame"),
        ('{"type": "auth"}', "type"),
        ('{"type": "subscribe"}', "types"),
        ('{"type": "subscribe", "types": []}', "types"),
        ('{"type": "subscribe", "types": ["weather"]}', "types"),
        ('{"type": "unsubscribe", "types": [1]}', "types"),
    ],
)
def test_bad_frames_are_validation_errors_naming_the_field(raw: str | bytes, field: str) -> None:
    with pytest.raises(ValidationError) as info:
        wire.parse(raw)
    assert info.value.details["field"] == field
    msg = json.loads(wire.error(info.value))
    assert msg["type"] == "error"
    assert msg["data"]["code"] == "VALIDATION_ERROR"


def test_commands() -> None:
    assert wire.parse('{"type":"ping"}') == wire.Ping()
    cmd = wire.parse('{"type":"subscribe","types":["market_data","market_data","analytics"]}')
    assert cmd == wire.Subscribe(("market_data", "analytics"))


# -- feeds over the real hub -----------------------------------------------------------------


class UserChannel(Channel):
    scope = "user"

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]
        self.message_type = name  # type: ignore[misc]


class MarketChannel(Channel):
    name = "market-data"
    message_type = "market_data"
    scope = "public"
    filters = {"symbol": Filter("symbol")}
    key_filter = "symbol"
    conflate = True

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        return []


class Reads:
    async def summary(self, user_id: str) -> Mapping[str, Any]:
        return {"win_rate": 0.5, "profit_factor": 1.2, "total_trades": 2,
                "profitable_trades": 1, "average_profit": 3.0, "max_drawdown": 0.01}  # fmt: skip

    async def recent_trades(self, user_id: str, n: int) -> list[Mapping[str, Any]]:
        return []


class Health:
    report = HealthReport(
        "HEALTHY", {"broker": "HEALTHY", "database": "HEALTHY", "bus": "HEALTHY"}, "ok"
    )

    def on_change(self, fn: Any) -> None:
        pass


class Framer:
    """Frames as they are, counting each framing."""

    def __init__(self) -> None:
        self.framed = 0

    def frame(self, payload: bytes) -> bytes:
        self.framed += 1
        return payload


class Viewer:
    def __init__(
        self, framer: Framer, types: Iterable[str] | None = None, clock: FakeClock | None = None
    ) -> None:
        self.framer = framer
        self.clock = clock
        #: When each frame was pushed (with a clock).
        self.pushed_at: list[float] = []
        self.types = set(types or wire.DASHBOARD_TYPES)
        self.frames: list[bytes] = []
        self.kicked: Disconnect | None = None
        self.out = self.push

    def push(self, frame: bytes, conflate_key: object | None = None) -> None:
        self.frames.append(frame)
        if self.clock is not None:
            self.pushed_at.append(self.clock.now)

    def kick(self, disconnect: Disconnect) -> None:
        self.kicked = disconnect

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in map(json.loads, self.frames) if m["type"] == kind]


def make_dash(clock: FakeClock, **tier: Any) -> tuple[Hub, DashboardHub]:
    channels: list[Channel] = [UserChannel(n) for n in ("positions", "account", "trades", "alerts")]
    hub = Hub([*channels, MarketChannel()])
    settings = Settings(tiers={"free": {}, "pro": {"market_data_per_second": 10, **tier}})
    dash = DashboardHub(
        hub=hub, settings=settings, reads=Reads(), usage=UsageMeter(clock), health=Health(),
        timers=clock, clock=clock,
    )  # fmt: skip
    return hub, dash


def tick(symbol: str, bid: float, ts: float) -> Event:
    data = {"symbol": symbol, "bid": bid, "ask": bid + 0.0001, "change": 0.0,
            "changePercent": 0.0, "timestamp": "2026-12-01T10:00:00.000Z"}  # fmt: skip
    return Event("market-data", data, key=symbol, ts=ts)


def fill(user: str, n: int) -> Event:
    data = {"executionId": str(n), "ticket": n, "symbol": "EURUSD", "action": "BUY",
            "entry": "IN", "volume": 0.01, "openPrice": 1.1, "profit": 0.0}  # fmt: skip
    return Event("trades", data, user_id=user)


PRO = Principal("ann", Role.TRADER, "pro")


async def test_one_market_batch_is_framed_once_for_every_viewer_of_a_framer() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock)
    shared, other = Framer(), Framer()
    viewers = [Viewer(shared), Viewer(shared), Viewer(other)]
    for i, v in enumerate(viewers):
        await dash.join(Principal(f"u{i}", Role.TRADER, "pro"), "pro", v)
    before = shared.framed, other.framed
    hub.publish(tick("EURUSD", 1.1, clock.now))
    hub.publish(tick("GBPUSD", 1.3, clock.now))
    clock.advance(0.2)
    batches = [v.of("market_data") for v in viewers]
    assert all(len(b) == 1 for b in batches)
    assert [s["symbol"] for s in batches[0][0]["data"]["symbols"]] == ["EURUSD", "GBPUSD"]
    assert viewers[0].frames[-1] is viewers[1].frames[-1]  # the same bytes object
    assert (shared.framed - before[0], other.framed - before[1]) == (1, 1)


async def test_the_cap_batches_market_data_and_loses_no_fill() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock, market_data_per_second=1000)
    viewers = [Viewer(Framer(), clock=clock) for _ in range(2)]
    for v in viewers:
        await dash.join(PRO, "pro", v)
    for step in range(3000):  # three seconds: a tick a millisecond, a fill every 10 ms
        hub.publish(tick("EURUSD" if step % 2 else "USDJPY", 1.1 + step * 1e-5, clock.now))
        if step % 10 == 0:
            hub.publish(fill("ann", step))
        clock.advance(0.001)
    clock.advance(5)
    for v in viewers:
        assert len(v.of("notification")) == 300  # every fill, on both connections
        assert v.of("market_data")  # market data still flows, batched
    sent = sorted(t for v in viewers for t in v.pushed_at)
    worst = max(sum(1 for t in sent[i:] if t < s + 1.0) for i, s in enumerate(sent))
    assert worst == 100  # busy, and never more


async def test_a_viewer_narrowed_to_market_data_gets_no_fills() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock)
    narrow, wide = Viewer(Framer(), ["market_data"]), Viewer(Framer())
    await dash.join(PRO, "pro", narrow)
    await dash.join(PRO, "pro", wide)
    hub.publish(fill("ann", 1))
    hub.publish(fill("bob", 2))  # someone else's
    clock.advance(1)
    assert len(wide.of("notification")) == 1
    assert narrow.of("notification") == []
    assert narrow.of("trading_status") == []


def position(user: str, ticket: int, volume: float) -> Event:
    data = {"ticket": ticket, "symbol": "EURUSD", "type": "BUY", "volume": volume,
            "openPrice": 1.1, "currentPrice": 1.1, "profit": 0.0, "status": "OPEN"}  # fmt: skip
    return Event("positions", data, user_id=user)


async def test_trading_status_follows_changes_at_most_once_an_interval() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock)
    v = Viewer(Framer(), ["trading_status"])
    await dash.join(PRO, "pro", v)
    assert len(v.of("trading_status")) == 1  # the state on joining
    clock.advance(2)
    for i in range(50):  # fifty changes within a second
        hub.publish(position("ann", 1, 0.01 * (i + 1)))
        clock.advance(0.02)
    clock.advance(2)
    statuses = v.of("trading_status")
    assert 2 <= len(statuses) <= 3  # at once, then once a second
    [pos] = statuses[-1]["data"]["open_positions"]
    assert pos["volume"] == 0.5  # the latest state, nothing lost
    assert pos["ticket"] == "1"


async def test_signals_become_active_signals_notifications_and_activity() -> None:
    clock = FakeClock()
    channels: list[Channel] = [UserChannel(n) for n in ("positions", "signals")]
    hub = Hub(channels)
    settings = Settings()
    dash = DashboardHub(
        hub=hub, settings=settings, reads=Reads(), usage=UsageMeter(clock), health=Health(),
        timers=clock, clock=clock,
    )  # fmt: skip
    v = Viewer(Framer())
    await dash.join(PRO, "pro", v)
    signal = {"uuid": "s1", "symbol": "EURUSD", "side": "buy", "volume": 0.1, "tp": 1.2,
              "sl": 1.0, "source": "engine", "confidence": 0.85, "status": "pending",
              "timestamp": "2026-12-01T10:00:00.000Z", "validators": []}  # fmt: skip
    hub.publish(Event("signals", signal, user_id="ann"))
    clock.advance(1.5)
    [note] = v.of("notification")
    assert note["data"]["type"] == "trading_signal"
    assert note["data"]["message"] == "BUY EURUSD signal generated with 85% confidence"
    [active] = v.of("trading_status")[-1]["data"]["active_signals"]
    assert active == {"symbol": "EURUSD", "signal": "BUY", "confidence": 0.85,
                      "entry_price": None, "stop_loss": 1.0, "take_profit": 1.2,
                      "timestamp": "2026-12-01T10:00:00.000Z", "status": "active"}  # fmt: skip
    assert v.of("analytics")[-1]["data"]["recent_activity"][0]["action"] == "Signal Generated"
    assert dash.usage.today("ann").signals == 1
    hub.publish(Event("signals", {**signal, "status": "rejected"}, user_id="ann"))
    clock.advance(1.5)
    assert v.of("trading_status")[-1]["data"]["active_signals"] == []
    assert len(v.of("notification")) == 1


async def test_alerts_are_notifications_and_metrics_come_every_ten_seconds() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock)
    v = Viewer(Framer(), ["notification", "system_metrics"])
    await dash.join(PRO, "pro", v)
    assert len(v.of("system_metrics")) == 1
    alert = {"alertId": "a1", "type": "RISK_LIMIT", "severity": "CRITICAL",
             "title": "Daily loss limit", "message": "80% of the daily loss used"}  # fmt: skip
    hub.publish(Event("alerts", alert, user_id="ann"))
    clock.advance(9)
    [note] = v.of("notification")
    assert note["user_id"] == "ann"
    assert note["data"]["type"] == "risk_limit"
    assert note["data"]["priority"] == "high"
    assert note["data"]["action_required"] is True
    assert len(v.of("system_metrics")) == 1
    clock.advance(1.5)
    metrics = v.of("system_metrics")
    assert len(metrics) == 2
    assert metrics[-1]["data"]["usage"]["subscription_tier"] == "pro"
    assert metrics[-1]["data"]["connection_status"]["mt5"] == "connected"


async def test_a_channel_above_the_users_role_is_left_out() -> None:
    class TradersOnly(UserChannel):
        min_role = Role.TRADER

    clock = FakeClock()
    hub = Hub([UserChannel("positions"), TradersOnly("trades")])
    dash = DashboardHub(
        hub=hub, settings=Settings(), reads=Reads(), usage=UsageMeter(clock), health=Health(),
        timers=clock, clock=clock,
    )  # fmt: skip
    v = Viewer(Framer())
    feed = await dash.join(Principal("vic", Role.VIEWER, "pro"), "pro", v)
    assert [s.channel.name for s in feed.subs] == ["positions"]
    assert v.of("trading_status")


async def test_a_resume_replays_missed_fills_as_notifications_within_the_cap() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock)
    book = ResumeBook(hub, window=120.0)
    first = Viewer(Framer(), clock=clock)
    book.opened("ann")
    feed = await dash.join(PRO, "pro", first)
    hub.publish(fill("ann", 1))
    clock.advance(2)
    assert len(first.of("notification")) == 1
    dash.leave(feed, first)
    book.closed("ann", clock.time())

    for n in range(2, 152):  # 150 fills while away
        hub.publish(fill("ann", n))
    clock.advance(10)
    again = Viewer(Framer(), clock=clock)
    book.opened("ann")
    now = clock.time()
    await dash.join(PRO, "pro", again, lambda ch: book.since("ann", ch, now))
    clock.advance(5)
    notes = again.of("notification")
    assert [n["data"]["id"] for n in notes] == [
        m.from_trade(fill("ann", n).data, 0, 0)["id"] for n in range(2, 152)
    ]
    # the state came first, then the missed news, at most 100 a second
    assert [m["type"] for m in map(json.loads, again.frames[:2])] == [
        "trading_status",
        "analytics",
    ]
    for t in again.pushed_at:
        assert sum(1 for u in again.pushed_at if t <= u < t + 1) <= 100

    # a second viewer meanwhile: a fresh subscriber, nothing replayed
    tab = Viewer(Framer(), clock=clock)
    await dash.join(PRO, "pro", tab, lambda ch: book.since("ann", ch, clock.time()))
    clock.advance(2)
    assert tab.of("notification") == []


@pytest.mark.parametrize(
    ("late", "missed"), [(121.0, 1), (1.0, 300)], ids=["past-the-window", "past-the-history"]
)
async def test_no_resume_past_the_window_or_the_history_only_the_state(
    late: float, missed: int
) -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock)
    book = ResumeBook(hub, window=120.0)  # and the channels keep 200 messages
    v = Viewer(Framer(), clock=clock)
    book.opened("ann")
    feed = await dash.join(PRO, "pro", v)
    dash.leave(feed, v)
    book.closed("ann", clock.time())
    for n in range(missed):
        hub.publish(fill("ann", n))
    clock.advance(late)
    again = Viewer(Framer(), clock=clock)
    book.opened("ann")
    now = clock.time()
    await dash.join(PRO, "pro", again, lambda ch: book.since("ann", ch, now))
    clock.advance(2)
    assert again.of("notification") == []
    assert again.of("trading_status")
    assert again.of("analytics")


# -- market batches: at once under the tier's rate, coalesced only over it ---------------


def market_pushes(v: Viewer) -> list[tuple[float, dict[str, Any]]]:
    """(when pushed, message) of each market_data batch the viewer got."""
    found = [(t, json.loads(f)) for t, f in zip(v.pushed_at, v.frames, strict=True)]
    return [(t, m) for t, m in found if m["type"] == "market_data"]


def bids(batch: dict[str, Any]) -> dict[str, float]:
    return {s["symbol"]: s["bid"] for s in batch["data"]["symbols"]}


async def test_under_the_tier_rate_each_tick_goes_out_at_once() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock, market_data_per_second=200)
    v = Viewer(Framer(), ["market_data"], clock=clock)
    await dash.join(PRO, "pro", v)
    published: list[float] = []
    for i in range(100):  # 100 ticks a second, in pairs 1 ms apart: bunched, but under 200
        hub.publish(tick("EURUSD", 1.1 + i * 1e-5, clock.now))
        published.append(clock.now)
        clock.advance(0.001 if i % 2 == 0 else 0.019)
    clock.advance(1)
    batches = market_pushes(v)
    # one batch per tick, each pushed at the time of its tick: no wait for a period
    assert [t for t, _ in batches] == published
    assert [bids(b)["EURUSD"] for _, b in batches] == [
        pytest.approx(1.1 + i * 1e-5) for i in range(100)
    ]
    # ticks of one loop iteration share a batch; a second tick of a symbol already in
    # it sends the batch first rather than replacing the quote (not over the rate)
    hub.publish(tick("EURUSD", 1.2, clock.now))
    hub.publish(tick("GBPUSD", 1.3, clock.now))
    hub.publish(tick("EURUSD", 1.21, clock.now))
    clock.advance(0)
    assert [bids(b) for _, b in market_pushes(v)[100:]] == [
        {"EURUSD": 1.2, "GBPUSD": 1.3},
        {"EURUSD": 1.21},
    ]


async def test_over_the_tier_rate_batches_coalesce_latest_per_symbol_within_the_rate() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock)  # pro: 10 batches a second
    v = Viewer(Framer(), ["market_data"], clock=clock)
    await dash.join(PRO, "pro", v)
    start = clock.now
    last: dict[str, float] = {}
    for step in range(3000):  # three seconds of a tick a millisecond, two symbols
        symbol = "EURUSD" if step % 2 else "GBPUSD"
        last[symbol] = bid = 1.1 + step * 1e-5
        hub.publish(tick(symbol, bid, clock.now))
        clock.advance(0.001)
    clock.advance(1)
    batches = [(t, b) for t, b in market_pushes(v) if t >= start]
    times = [t for t, _ in batches]
    # the budget: never more than 10 in any one second, and evenly paced (no bursts)
    assert max(sum(1 for u in times if t <= u < t + 1) for t in times) == 10
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) == pytest.approx(0.1, abs=0.002)
    # coalesced: each batch has both symbols, the latest of each, and the last one
    # carries the final quotes (nothing stuck behind the budget)
    assert all(set(bids(b)) == {"EURUSD", "GBPUSD"} for _, b in batches[1:])
    assert bids(batches[-1][1]) == pytest.approx(last)
    assert len(batches) == pytest.approx(30, abs=2)


def test_the_market_pace_allows_a_burst_then_the_rate_and_never_more_a_second() -> None:
    pace = MarketPace(200)
    now = 1000.0
    sent: list[float] = []
    while now < 1003.0:  # as fast as it lets
        wait = pace.wait(now)
        if wait:
            now += wait
            continue
        pace.spend(now)
        sent.append(now)
    assert sum(1 for t in sent if t < 1000.0 + 1e-9) == 20  # a tenth of a second's worth
    for t in sent:
        assert sum(1 for u in sent if t <= u < t + 1) <= 200
    assert len(sent) == pytest.approx(600, abs=2)  # and the rate, sustained
    slow = MarketPace(0.5)  # below one a second: one, then one every two seconds
    assert slow.wait(0.0) == 0
    slow.spend(0.0)
    assert slow.wait(0.0) == pytest.approx(2.0)


class Transport:
    """A dashboard connection's writer: what it was given, and its close."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.kicked: Disconnect | None = None

    def control(self, frame: bytes, conflate_key: object | None = None) -> None:
        assert self.kicked is None, "a frame after the close"
        self.frames.append(frame)

    def send(self, payload: bytes) -> None:
        self.control(payload)

    def kick(self, disconnect: Disconnect) -> None:
        self.kicked = disconnect

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in map(json.loads, self.frames) if m["type"] == kind]


async def test_a_session_narrowed_or_closing_gets_no_more_batches() -> None:
    clock = FakeClock()
    hub, dash = make_dash(clock)
    claims = Claims("ann", Role.TRADER, "pro", int(clock.now), int(clock.now) + 900, "j", "k")
    conns = [Transport(), Transport()]
    sessions = [
        DashboardSession(
            dash=dash,
            claims=claims,
            transport=t,
            framer=Framer(),
            settings=dash.settings,
            timers=clock,
            clock=clock,
        )
        for t in conns
    ]
    for s in sessions:
        await s.start()
    narrowed, closing = conns
    hub.publish(tick("GBPUSD", 1.3, clock.now))
    clock.advance(1)
    assert all(c.of("market_data") for c in conns)  # both took market data so far
    await sessions[0].on_message(json.dumps({"type": "subscribe", "types": ["notification"]}))
    before = len(narrowed.of("market_data"))
    hub.publish(tick("EURUSD", 1.1, clock.now))
    hub.publish(fill("ann", 1))
    clock.advance(1)
    assert len(narrowed.of("market_data")) == before
    assert len(narrowed.of("notification")) == 1
    sessions[1].disconnect(Disconnects.SESSION_ENDED)
    closing.frames.clear()
    hub.publish(tick("EURUSD", 1.2, clock.now))
    hub.publish(fill("ann", 2))
    clock.advance(1)
    assert closing.frames == []  # nothing after the close (Transport asserts it too)
    assert len(narrowed.of("notification")) == 2
