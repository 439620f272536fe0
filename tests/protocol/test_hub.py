"""The hub in memory: one encoding (and one framing) per event per dialect, routing,
filters and conflation keys, with fake sinks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fxgate.domain.errors import Disconnect
from fxgate.domain.roles import Role
from fxgate.hub.hub import Hub
from fxgate.hub.sink import Dialect
from fxgate.plugins.channel import Channel, Principal
from fxgate.protocol.canonical import CANONICAL
from fxgate.web.ws.framing import framed, text_frame
from tests.protocol.fakes import Orders, Quotes, order, quote


class CountingDialect:
    name = "counting"

    def __init__(self) -> None:
        self.calls = 0

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        self.calls += 1
        return CANONICAL.encode_event(channel, envelope)


class RecordingSink:
    def __init__(self, user: str, dialect: Dialect, role: Role = Role.TRADER) -> None:
        self.principal = Principal(user, role)
        self.dialect = dialect
        self.got: list[tuple[bytes, object | None]] = []

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        self.got.append((frame, conflate_key))

    def kick(self, disconnect: Disconnect) -> None:
        raise AssertionError("the hub never kicks")


def subscribe(hub: Hub, sink: RecordingSink, channel: str, filters: Any = None) -> None:
    hub.add(hub.make_subscription(sink, channel, filters))


def test_an_event_is_encoded_once_per_dialect_and_shared() -> None:
    a_dialect, b_dialect = CountingDialect(), CountingDialect()
    hub = Hub([Quotes(), Orders()])
    sinks = [RecordingSink(f"u{i}", a_dialect if i % 2 else b_dialect) for i in range(10)]
    for s in sinks:
        subscribe(hub, s, "quotes")
    hub.publish(quote("EURUSD", 1.1))
    assert (a_dialect.calls, b_dialect.calls) == (1, 1)
    frames = {id(s.got[0][0]) for s in sinks}
    assert len(frames) == 2  # the same bytes object for every sink of a dialect


def test_the_transport_frames_once_per_event_per_dialect() -> None:
    inner = CountingDialect()
    wire = framed(inner)
    assert framed(inner) is wire  # every connection of the dialect shares it
    hub = Hub([Quotes()])
    sinks = [RecordingSink(f"u{i}", wire) for i in range(5)]
    for s in sinks:
        subscribe(hub, s, "quotes")
    hub.publish(quote("EURUSD", 1.1))
    assert inner.calls == 1
    frame = sinks[0].got[0][0]
    assert all(s.got[0][0] is frame for s in sinks)
    payload = CANONICAL.encode_event(Quotes(), {"x": 1})
    assert payload is not None
    assert text_frame(payload)[2:] == payload


def test_per_user_events_reach_only_their_user_and_filters_apply() -> None:
    hub = Hub([Quotes(), Orders()])
    alice, bob = RecordingSink("alice", CANONICAL), RecordingSink("bob", CANONICAL)
    subscribe(hub, alice, "orders", {"symbol": "EURUSD"})
    subscribe(hub, bob, "orders")
    hub.publish(order("alice", 1, "EURUSD"))
    hub.publish(order("alice", 2, "GBPUSD"))
    hub.publish(order("bob", 3))
    assert len(alice.got) == 1
    assert b'"n":1' in alice.got[0][0]
    assert len(bob.got) == 1
    assert b'"n":3' in bob.got[0][0]


def test_market_data_carries_a_conflation_key_and_trading_does_not() -> None:
    hub = Hub([Quotes(), Orders()])
    sink = RecordingSink("alice", CANONICAL)
    subscribe(hub, sink, "quotes", {"symbol": "EURUSD"})
    subscribe(hub, sink, "orders")
    hub.publish(quote("EURUSD", 1.1))
    hub.publish(order("alice", 1))
    assert [key for _, key in sink.got] == [("quotes", "EURUSD"), None]


def test_removing_the_last_subscription_empties_the_index() -> None:
    hub = Hub([Quotes()])
    sink = RecordingSink("alice", CANONICAL)
    sub = hub.make_subscription(sink, "quotes", {"symbol": ["EURUSD", "GBPUSD"]})
    hub.add(sub)
    assert hub.subscriber_count() == 2
    hub.remove(sub)
    assert hub.subscriber_count() == 0
    hub.publish(quote("EURUSD", 1.1))
    assert sink.got == []
