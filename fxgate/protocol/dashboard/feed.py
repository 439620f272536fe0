"""One user's dashboard feed: their state, and the pacing of what their connections get.

The feed is the hub's sink for the user's channels (``positions account orders trades
alerts analytics`` and ``signals`` when it exists) and is its own encoder: the hub
calls ``encode_event`` once per event for it, with the canonical envelope, and the feed
keeps what the event changed and answers None (nothing for the hub to deliver). What
goes out is decided here, on the feed's own schedule:

* ``notification`` per alert, fill, rejected order or signal: never dropped, in order;
* ``trading_status`` when positions, the account or signals changed, at most every
  ``dashboard.interval`` (a state, so the latest replaces an unsent one);
* ``analytics`` when a trade closed or the summary changed, at most as often;
* ``system_metrics`` and ``market_data`` when the process-wide tickers offer them
  (the latest replaces an unsent one; unsent market batches merge, latest per symbol).

Everything goes through one :class:`~fxgate.protocol.dashboard.budget.SendBudget` per
user, so the user's connections together get at most ``max_messages_per_second``; the
trading types come first, market data waits and merges. A message is encoded once per
user and framed once per framer among the user's connections (``Outgoing``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from fxgate.config.settings import DashboardSettings
from fxgate.domain.errors import AuthorizationError, Disconnect, Disconnects
from fxgate.hub.hub import Hub, Subscription
from fxgate.hub.resume import missed_late
from fxgate.hub.sink import Dialect
from fxgate.plugins.channel import Channel, Principal
from fxgate.protocol.dashboard import messages as m
from fxgate.protocol.dashboard import wire
from fxgate.protocol.dashboard.budget import SendBudget
from fxgate.protocol.dashboard.outgoing import Framer, Outgoing

if TYPE_CHECKING:
    from fxgate.protocol.session import Cancellable, Timers

log = logging.getLogger(__name__)

#: The canonical channels a feed listens to, when the daemon has them.
CHANNELS = ("positions", "account", "orders", "trades", "alerts", "analytics", "signals")
#: The types that are a state: a slow socket keeps only the latest one waiting. Market
#: batches (each carries only what changed) and notifications are kept in order.
STATES: dict[str, object] = {
    t: ("dashboard", t) for t in ("trading_status", "analytics", "system_metrics")
}
#: Unsent notifications past which the user's connections cannot keep up: 4008.
MAX_QUEUED = 10_000


#: A frame for a socket, and the key a waiting one conflates by.
Push = Callable[[bytes, object | None], None]


class Viewer(Protocol):
    """A dashboard connection, as its feed sees it. When its ``types`` change, it
    tells the feed (:meth:`UserFeed.retarget`): the feed keeps who takes each type."""

    types: set[str]
    framer: Framer
    #: Where the feed's messages go, called once per viewer per message: the socket's
    #: writer itself while the connection is open (no call in between), a no-op once
    #: it is closing (and the viewer then tells the feed, ``retarget``).
    out: Push

    def push(self, frame: bytes, conflate_key: object | None = None) -> None:
        """Queue a frame for the socket (never blocks); while the socket is blocked, a
        frame with the same ``conflate_key`` replaces the one waiting."""

    def kick(self, disconnect: Disconnect) -> None: ...


class DashboardReads(Protocol):
    """What a feed reads once, when it starts (the web layer adapts the services)."""

    async def summary(self, user_id: str) -> Mapping[str, Any]:
        """Seed 000's ``performance_summary`` of the user's trading so far."""
        ...

    async def recent_trades(self, user_id: str, n: int) -> list[Mapping[str, Any]]:
        """The user's last ``n`` deals as canonical trade payloads, oldest first."""
        ...


class UserFeed:
    name = "dashboard-feed"

    def __init__(
        self,
        *,
        principal: Principal,
        hub: Hub,
        reads: DashboardReads,
        settings: DashboardSettings,
        budget: SendBudget,
        timers: Timers,
        clock: Callable[[], float],
        on_signal: Callable[[str], None] | None = None,
        since: Mapping[str, tuple[int, str]] | None = None,
        recovery_limit: int = 0,
    ) -> None:
        self.principal = principal
        self.dialect: Dialect = self
        self.user_id = principal.user_id
        self.hub = hub
        self.reads = reads
        self.settings = settings
        self.budget = budget
        self._timers = timers
        self._clock = clock
        self._on_signal = on_signal
        self.viewers: list[Viewer] = []
        self.positions: dict[str, Mapping[str, Any]] = {}
        self.account: Mapping[str, Any] | None = None
        self.signals: dict[str, Mapping[str, Any]] = {}
        self.summary: Mapping[str, Any] | None = None
        self.activity: deque[dict[str, Any]] = deque(maxlen=settings.activity_size)
        self._buffered: list[tuple[str, Mapping[str, Any], float]] | None = []
        #: Events missed while the user was away (a resume), applied once state is read.
        self._missed: list[tuple[str, Mapping[str, Any], float]] = []
        self._loading: asyncio.Future[None] | None = None
        self._notes: deque[Outgoing] = deque()
        #: Per viewer: the notifications that were still waiting when it joined. It
        #: gets them with the others, so a late replay (``late_notes``) leaves them out.
        self._waiting_at_join: dict[Viewer, set[str]] = {}
        self._status_due = False
        self._status_at = -1e18
        self._analytics_due = False
        self._analytics_at = -1e18
        self._metrics: Outgoing | None = None
        self._market: Outgoing | None = None
        self._market_entries: dict[str, Mapping[str, Any]] | None = None
        self._market_src: Mapping[str, Mapping[str, Any]] = {}
        self._market_meta: tuple[str, str] = ("closed", "low")
        self._timer: Cancellable | None = None
        self._timer_at = float("inf")
        self._flush_soon = False
        #: Per type: the viewers that take it, grouped by framer (their ``push``), and
        #: how many. Built on the first message of the type after the viewers or their
        #: types changed, so a batch costs one frame per framer and one call per viewer.
        self._targets: dict[str, tuple[int, list[tuple[Framer, list[Push]]]]] = {}
        self.closed = False
        self.subs: list[Subscription] = []
        self._recovery_limit = recovery_limit
        #: Subscriptions with a resume mark: they join the hub in ``_load``, each right
        #: after its missed events are recovered.
        self._marked: list[tuple[Subscription, tuple[int, str]]] = []
        for name in CHANNELS:
            if name not in hub.channels:
                continue
            try:
                sub = hub.make_subscription(self, name, None)
            except AuthorizationError:
                continue  # a channel above the user's role: not on their dashboard
            mark = (since or {}).get(name)
            if mark is None:
                hub.add(sub)  # live from now on (buffered until the state is read)
                self.subs.append(sub)
            else:
                self._marked.append((sub, mark))

    # -- the hub's side: Sink and Dialect ----------------------------------------------

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        data = envelope.get("data")
        if isinstance(data, Mapping) and not self.closed:
            if self._buffered is not None:
                self._buffered.append((channel.name, data, self._clock()))
            else:
                self._apply(channel.name, data, self._clock())
                self._soon()
        return None

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        """Never called: ``encode_event`` answers None."""

    def kick(self, disconnect: Disconnect) -> None:
        for viewer in list(self.viewers):
            viewer.kick(disconnect)

    # -- state --------------------------------------------------------------------------

    async def _recover(self) -> None:
        """What each marked stream got after the user's resume mark, from memory or the
        durable history (``Hub.recover``: a restart, another node). Each subscription
        joins the hub right after its answer, with no await between, so every event
        is either in the answer or live (buffered), never both, never neither. When
        the history no longer holds them all: nothing, the fresh state only."""
        marked, self._marked = self._marked, []
        for sub, since in marked:
            replay = await self.hub.recover(sub, since, self._recovery_limit)
            if self.closed:
                return  # ``close`` removed the subscriptions: this one must not join
            self.hub.add(sub)
            self.subs.append(sub)
            for env in replay.envelopes if replay is not None else ():
                data = env.get("data")
                if isinstance(data, Mapping):
                    self._missed.append((sub.channel.name, data, _event_time(env, self._clock)))

    def _apply(
        self,
        channel: str,
        data: Mapping[str, Any],
        ts: float,
        live: bool = True,
        activity: bool = True,
    ) -> None:
        """Take one event (``live``) or snapshot item (not news: no notification).
        ``activity`` False: a trade already in ``recent_activity`` (read with the state)."""
        ttl = self.settings.notification_ttl
        if channel in m.NOTIFIED:
            note = m.note_of(channel, data, ts, ttl)
            if note is not None:
                self._note(note, ts)
        if channel == "positions":
            key = str(data.get("ticket"))
            if str(data.get("status", "OPEN")).upper() == "CLOSED":
                self.positions.pop(key, None)
            else:
                self.positions[key] = data
            self._status_due = True
        elif channel == "account":
            self.account = data
            self._status_due = True
        elif channel == "trades":
            if activity:
                self.activity.appendleft(m.activity_of_trade(data, ts))
            self._analytics_due = True
        elif channel == "analytics":
            if data.get("type") == "PERFORMANCE_SUMMARY" and "performance_summary" in data:
                self.summary = data["performance_summary"]
                self._analytics_due = True
        elif channel == "signals":
            self._apply_signal(data, ts, ttl, live)

    def _apply_signal(self, data: Mapping[str, Any], ts: float, ttl: int, live: bool) -> None:
        key = m.signal_key(data)
        if m.signal_active(data):
            new = key not in self.signals
            self.signals[key] = data
            if new and live:
                self._note(m.from_signal(data, ts, ttl), ts)
                self.activity.appendleft(m.activity_of_signal(data, ts))
                self._analytics_due = True
                if self._on_signal is not None:
                    self._on_signal(self.user_id)
        else:
            self.signals.pop(key, None)
        self._status_due = True

    def _note(self, data: dict[str, Any], ts: float) -> None:
        self._notes.append(self._notification(data, ts))
        if len(self._notes) > MAX_QUEUED:
            log.warning("dashboard notifications piling up", extra={"user": self.user_id})
            self._notes.clear()
            self.kick(Disconnects.SLOW_CONSUMER)

    def _notification(self, data: dict[str, Any], ts: float) -> Outgoing:
        payload = wire.message("notification", data, ts, self.user_id)
        return Outgoing("notification", payload, ref=str(data.get("id")))

    def late_notes(
        self, viewer: Viewer, channel: str, since: tuple[int, str], upto: int
    ) -> list[Outgoing]:
        """The notifications of ``channel``'s events after ``since`` up to offset
        ``upto`` that ``viewer`` never got: it joined after they were pushed to the
        user's other connections, one of which has just closed behind them (a reconnect
        before the close, ``fxgate.hub.resume``). Those still waiting when it joined
        went to it too. The events are the hub's in memory; past it, none."""
        if channel not in m.NOTIFIED:
            return []
        sub = next((s for s in self.subs if s.channel.name == channel), None)
        replay = self.hub.replay(sub, since) if sub is not None else None
        if replay is None:
            return []
        got = self._waiting_at_join.get(viewer, set())
        ttl = self.settings.notification_ttl
        late = []
        for env in missed_late(replay.envelopes, upto, records=True, item="ticket"):
            data = env.get("data")
            if not isinstance(data, Mapping):
                continue
            ts = _event_time(env, self._clock)
            note = m.note_of(channel, data, ts, ttl)
            if note is not None and str(note.get("id")) not in got:
                late.append(self._notification(note, ts))
        return late

    async def ready(self) -> None:
        """Wait until the feed has read the user's state (once, for every viewer)."""
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._load())
        await asyncio.shield(self._loading)

    async def _load(self) -> None:
        await self._recover()
        if self.closed:
            return
        # Missed events first (older than the state read next, which supersedes their
        # state): their notifications are queued in order, ahead of the live ones.
        missed, self._missed = self._missed, []
        for channel, data, ts in missed:
            self._apply(channel, data, ts, activity=False)
        read_trades = False
        try:
            for sub in self.subs:
                if sub.channel.name in ("positions", "account", "signals"):
                    for item in await sub.channel.snapshot(self.principal, {}):
                        self._apply(sub.channel.name, item, self._clock(), live=False)
            self.summary = await self.reads.summary(self.user_id)
            for trade in await self.reads.recent_trades(self.user_id, self.activity.maxlen or 10):
                self.activity.appendleft(m.activity_of_trade(trade, _trade_time(trade)))
            read_trades = True
        except Exception:
            log.exception("dashboard state could not be read", extra={"user": self.user_id})
        if not read_trades:
            # The recent trades read would have listed the missed ones: list them here.
            for channel, data, ts in missed:
                if channel == "trades":
                    self.activity.appendleft(m.activity_of_trade(data, ts))
        # Events that came while reading are newer than what was read (or the same).
        buffered, self._buffered = self._buffered or [], None
        for channel, data, ts in buffered:
            self._apply(channel, data, ts)
        # The first viewer gets the state as it is now; what happened meanwhile and
        # is news (fills, alerts) follows it.
        self._status_due = self._analytics_due = False
        if self._notes:
            self._soon()

    @property
    def settled(self) -> bool:
        """Every event taken is in frames pushed to the viewers, as far as news goes
        (notifications, activity): nothing loading, recovering or waiting for the
        budget. A state message still due (``trading_status``) does not count: a
        resumed dashboard reads the state afresh."""
        return self._buffered is None and not self._marked and not self._notes

    # -- viewers ------------------------------------------------------------------------

    def add(self, viewer: Viewer, extra: Iterable[Outgoing] = ()) -> None:
        """A connection joins: it gets the current state of each of its types now
        (counted, and sent even over the cap: a dashboard must start complete)."""
        self.viewers.append(viewer)
        self._targets.clear()
        waiting = {out.ref for out in self._notes if out.ref is not None}
        if waiting:
            self._waiting_at_join[viewer] = waiting
        now = self._timers.time()
        first = [self.status_message(), self.analytics_message(), *extra]
        sent = 0
        for out in first:
            if out.kind in viewer.types:
                viewer.push(out.frame(viewer.framer), STATES.get(out.kind))
                sent += 1
        self.budget.record(now, sent)
        if self._notes:
            self._soon()  # news read with the state (a resume's missed events) follows it

    def remove(self, viewer: Viewer) -> None:
        self._waiting_at_join.pop(viewer, None)
        if viewer in self.viewers:
            self.viewers.remove(viewer)
            self._targets.clear()

    def retarget(self) -> None:
        """A viewer's ``types`` changed (a subscribe or unsubscribe)."""
        self._targets.clear()

    def _targets_of(self, kind: str) -> tuple[int, list[tuple[Framer, list[Push]]]]:
        found = self._targets.get(kind)
        if found is None:
            groups: dict[Framer, list[Push]] = {}
            n = 0
            for v in self.viewers:
                if kind in v.types:
                    groups.setdefault(v.framer, []).append(v.out)
                    n += 1
            found = self._targets[kind] = (n, list(groups.items()))
        return found

    def close(self) -> None:
        self.closed = True
        for sub in self.subs:
            self.hub.remove(sub)
        self.subs.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- messages -----------------------------------------------------------------------

    def status_message(self) -> Outgoing:
        data = m.trading_status(self.signals.values(), self.positions.values(), self.account)
        return Outgoing(
            "trading_status", wire.message("trading_status", data, self._clock(), self.user_id)
        )

    def analytics_message(self) -> Outgoing:
        data = m.analytics(self.summary, self.activity)
        return Outgoing("analytics", wire.message("analytics", data, self._clock(), self.user_id))

    def offer_metrics(self, out: Outgoing) -> None:
        self._metrics = out
        self._soon()

    def offer_market(
        self, out: Outgoing, entries: Mapping[str, Mapping[str, Any]], meta: tuple[str, str]
    ) -> None:
        """A tier's market batch. Taken as it is (shared bytes) when nothing is waiting;
        merged with the waiting one (latest per symbol, encoded for this user) when the
        user's budget held the last one back."""
        if self._market is None and self._market_entries is None:
            if not self._notes and not self._flush_soon:
                # Nothing waits ahead of it: straight out, no flush callback per user.
                wait = self._send(out, self._timers.time())
                if not wait:
                    return
            self._market = out
            self._market_src = entries
        else:
            merged = dict(self._market_entries or self._market_src)
            merged.update(entries)
            self._market_entries = merged
            self._market = None
        self._market_meta = meta
        self._soon()

    def _merged_market(self) -> Outgoing:
        assert self._market_entries is not None
        session, volatility = self._market_meta
        data = {
            "symbols": [self._market_entries[s] for s in sorted(self._market_entries)],
            "market_session": session,
            "volatility": volatility,
        }
        return Outgoing("market_data", wire.message("market_data", data, self._clock()))

    # -- pacing -------------------------------------------------------------------------

    def _soon(self) -> None:
        if not self._flush_soon and not self.closed:
            self._flush_soon = True
            self._timers.call_later(0, self._flush)

    def _wake(self, delay: float) -> None:
        at = self._timers.time() + delay
        if self._timer is not None:
            if self._timer_at <= at:
                return
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._timers.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        self._flush()

    def _send(self, out: Outgoing, now: float) -> float:
        """Send to the viewers that take its type; 0 when done, else seconds to wait."""
        n, groups = self._targets_of(out.kind)
        if not n:
            return 0.0
        if not self.budget.take(now, n):
            return self.budget.wait(now, n)
        key = STATES.get(out.kind)
        for framer, pushes in groups:
            frame = out.frame(framer)
            for push in pushes:
                push(frame, key)
        return 0.0

    def _flush(self) -> None:
        self._flush_soon = False
        if self.closed or self._buffered is not None or not self.viewers:
            return  # no viewer yet: the first one's ``add`` flushes what waits
        now = self._timers.time()
        interval = self.settings.interval
        while self._notes:
            wait = self._send(self._notes[0], now)
            if wait:
                self._wake(wait)
                return
            self._notes.popleft()
        for kind in ("trading_status", "analytics"):
            due = self._status_due if kind == "trading_status" else self._analytics_due
            if not due:
                continue
            last = self._status_at if kind == "trading_status" else self._analytics_at
            if now < last + interval:
                self._wake(last + interval - now)
                continue
            out = self.status_message() if kind == "trading_status" else self.analytics_message()
            wait = self._send(out, now)
            if wait:
                self._wake(wait)
                return
            if kind == "trading_status":
                self._status_due, self._status_at = False, now
            else:
                self._analytics_due, self._analytics_at = False, now
        if self._metrics is not None:
            wait = self._send(self._metrics, now)
            if wait:
                self._wake(wait)
                return
            self._metrics = None
        if self._market is not None or self._market_entries is not None:
            out = self._market if self._market is not None else self._merged_market()
            wait = self._send(out, now)
            if wait:
                self._wake(wait)
                return
            self._market = None
            self._market_entries = None


def _event_time(envelope: Mapping[str, Any], clock: Callable[[], float]) -> float:
    """When a replayed event happened (its envelope's timestamp), else now."""
    ts = envelope.get("timestamp")
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return clock()


def _trade_time(trade: Mapping[str, Any]) -> float:
    ts = trade.get("executedAt")
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
