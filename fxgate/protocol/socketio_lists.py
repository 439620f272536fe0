"""Seed 002's ``positions_update`` / ``orders_update``: the user's full current list.

The seed's dashboard replaces its whole table with every update, so these events are
not the hub's per-position messages but lists, and a list is per user by nature. One
:class:`ListFeed` per (user, list) is the unit: it holds the one hub subscription of
the user's ``positions`` (or ``orders``) channel, and when an event arrives it marks
itself changed and builds the list from the broker's state (an awaited read, never a
blocking one) at most once per ``socketio.list_interval``: the first change after a
quiet spell goes out at once, changes while prices move are coalesced into one list
per window. The list is encoded once and sent to each of the user's connections that
subscribed, however many tabs the user has open.

No I/O here: time through the injected ``Timers``, the build through the trading reads
the channel plugins use, tasks through ``spawn``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol

from fxgate.domain.errors import Disconnect
from fxgate.hub.hub import Hub, Subscription
from fxgate.hub.sink import Dialect
from fxgate.plugins.api import TradingReads
from fxgate.plugins.channel import Channel, Principal
from fxgate.protocol import socketio as sio

log = logging.getLogger(__name__)


class Timers(Protocol):
    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> Any: ...


class ListReceiver(Protocol):
    """A connection that takes lists: ``send`` a payload (the transport frames it)."""

    def send(self, payload: bytes) -> None: ...


class _Changed:
    """The feed's hub dialect: every event is only "something changed" (one empty
    frame per event, whoever holds the feed)."""

    name = "socketio-list"

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        return b""


_CHANGED = _Changed()


class ListFeed:
    """One user's list (positions or orders) and the connections that subscribed it."""

    def __init__(self, feeds: ListFeeds, channel: str, principal: Principal) -> None:
        self.feeds = feeds
        self.channel = channel
        self.user_id = principal.user_id
        #: The first subscriber's (the hub checks its role once, for the whole feed;
        #: each subscriber was checked when its own session subscribed).
        self.principal = Principal(principal.user_id, principal.role, principal.tier)
        self.dialect: Dialect = _CHANGED
        self.receivers: dict[ListReceiver, None] = {}
        self.sub: Subscription | None = None
        #: The last list sent, valid while ``dirty`` is False and no build runs.
        self.payload: bytes | None = None
        self.dirty = False
        self.building = False
        self.scheduled = False
        self.last_sent = -1e18
        self.builds = 0

    # -- the hub's sink --------------------------------------------------------

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        self.dirty = True
        if not self.building and not self.scheduled:
            self._schedule()

    def kick(self, disconnect: Disconnect) -> None:
        """Never kicked: the feed has no socket."""

    # -- building --------------------------------------------------------------

    def _schedule(self) -> None:
        timers = self.feeds.timers
        delay = max(0.0, self.last_sent + self.feeds.interval - timers.time())
        self.scheduled = True
        timers.call_later(delay, self._fire)

    def _fire(self) -> None:
        self.scheduled = False
        if not self.receivers:
            return
        self.feeds.spawn(self._build_and_send())

    async def _build_and_send(self) -> None:
        self.building = True
        self.dirty = False
        try:
            payload = await self.build()
        except Exception:
            log.exception("could not build the %s list", self.channel)
            payload = None
        finally:
            self.building = False
        if payload is not None:
            self.last_sent = self.feeds.timers.time()
            self.payload = payload
            for receiver in list(self.receivers):
                receiver.send(payload)
        if self.dirty and self.receivers:
            self._schedule()

    async def build(self) -> bytes:
        self.builds += 1
        trading = self.feeds.trading
        if self.channel == "positions":
            return sio.positions_list(await trading.positions(self.user_id))
        return sio.orders_list(await trading.pending_orders(self.user_id))

    async def current(self) -> bytes:
        """The list as it is now: the last one sent when nothing changed since."""
        if self.payload is not None and not self.dirty and not self.building:
            return self.payload
        payload = await self.build()
        if not self.dirty and not self.building:
            self.payload = payload
        return payload


class ListFeeds:
    """Every user's list feeds; connections join and leave them as they subscribe."""

    def __init__(
        self,
        hub: Hub,
        trading: TradingReads,
        timers: Timers,
        *,
        interval: float,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
    ) -> None:
        self.hub = hub
        self.trading = trading
        self.timers = timers
        self.interval = interval
        self.spawn = spawn
        self.feeds: dict[tuple[str, str], ListFeed] = {}

    async def join(self, channel: str, principal: Principal, receiver: ListReceiver) -> None:
        """Add ``receiver`` to the user's list and send it the list as it is now."""
        user_id = principal.user_id
        feed = self.feeds.get((channel, user_id))
        if feed is None:
            feed = self.feeds[(channel, user_id)] = ListFeed(self, channel, principal)
            feed.sub = self.hub.make_subscription(feed, channel, None)
            self.hub.add(feed.sub)
        feed.receivers[receiver] = None
        try:
            payload = await feed.current()
        except Exception:
            log.exception("could not build the %s list", channel)
            return
        if receiver in feed.receivers:
            receiver.send(payload)

    def leave(self, channel: str, user_id: str, receiver: ListReceiver) -> None:
        feed = self.feeds.get((channel, user_id))
        if feed is None:
            return
        feed.receivers.pop(receiver, None)
        if not feed.receivers:
            if feed.sub is not None:
                self.hub.remove(feed.sub)
            del self.feeds[(channel, user_id)]

    def unsettled(self, user_id: str) -> tuple[str, ...]:
        """The user's lists with a change not sent yet (coalescing, or being built)."""
        return tuple(
            channel
            for channel in sio.LIST_EVENTS
            if (feed := self.feeds.get((channel, user_id))) is not None
            and (feed.dirty or feed.building or feed.scheduled)
        )

    def leave_all(self, user_id: str, receiver: ListReceiver) -> None:
        for channel in sio.LIST_EVENTS:
            self.leave(channel, user_id, receiver)
