"""The hub: subscription index and fan-out, one encoding per event per dialect.

Subscriptions are indexed by (channel, stream key): the user id for per-user channels
(taken from the token, so a user can only ever be indexed under their own id), and the
key filter's value (the symbol) for keyed public channels, or ``*`` for "all keys". An
event therefore finds its receivers with one or two dict lookups, and only the
subscriptions with filters the key does not decide pay for a ``matches`` call.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fxgate.domain.errors import AuthorizationError, ValidationError
from fxgate.domain.events import Event
from fxgate.domain.timefmt import iso_ms
from fxgate.hub.history import DurableHistory, HistoryPage
from fxgate.hub.sink import Dialect, Sink
from fxgate.hub.streams import Entry, StreamTable, new_epoch
from fxgate.plugins.channel import Channel, Filters, Principal

log = logging.getLogger(__name__)

ALL = "*"


@dataclass(eq=False, slots=True)
class Subscription:
    sink: Sink
    channel: Channel
    filters: Filters
    #: Filters not already decided by the index key; empty means "deliver everything".
    residual: Filters
    keys: tuple[str, ...]

    def describe_filters(self) -> dict[str, Any]:
        return {k: sorted(v) if len(v) > 1 else next(iter(v)) for k, v in self.filters.items()}


@dataclass(slots=True)
class _Bucket:
    #: sink -> number of its subscriptions here that take every message
    plain: dict[Sink, int] = field(default_factory=dict)
    #: sink -> its subscriptions here that need ``matches``
    filtered: dict[Sink, list[Subscription]] = field(default_factory=dict)

    def empty(self) -> bool:
        return not self.plain and not self.filtered


@dataclass(frozen=True, slots=True)
class Replay:
    """What a new subscriber gets before live messages: the envelopes it missed, for
    the session to encode in its own dialect (recovery is per client, not shared)."""

    recovered: bool
    envelopes: list[Mapping[str, Any]]


class Hub:
    """Services publish domain events whatever channels exist: an event for a channel
    that is not registered (its plugin disabled) is counted in ``dropped`` and goes
    nowhere, so turning a channel off never breaks the producer that feeds it."""

    def __init__(self, channels: Iterable[Channel] = (), *, epoch: str | None = None) -> None:
        self.channels: dict[str, Channel] = {}
        self.streams = StreamTable(epoch)
        self._index: dict[tuple[str, str], _Bucket] = {}
        self._ids = itertools.count(1)
        self._id_prefix = f"msg_{new_epoch()}_"
        #: Where recovery looks when memory cannot answer (Redis, the store); None:
        #: memory only.
        self.durable: DurableHistory | None = None
        #: Told every message of a channel with a durable history (``history_ttl``)
        #: numbered here, to keep it (the local bus's store history); must not block.
        self.recorder: Callable[[Channel, str, Mapping[str, Any]], None] | None = None
        #: Told every message of a channel as it is fanned out, one call per message
        #: (not per client), by channel name: a follower node keeps its market prices
        #: current from the leader's feed this way. Must not block.
        self.taps: dict[str, Callable[[str, Mapping[str, Any]], None]] = {}
        self.published = 0
        self.delivered = 0
        #: Events for channels that are not registered, by channel name.
        self.dropped: dict[str, int] = {}
        for ch in channels:
            self.register(ch)

    def register(self, channel: Channel) -> None:
        """Add a channel (at assembly, before anything publishes)."""
        if channel.name in self.channels:
            raise ValueError(f"two plugins define the channel {channel.name!r}")
        self.channels[channel.name] = channel

    @property
    def epoch(self) -> str:
        return self.streams.epoch

    # -- producers -------------------------------------------------------------

    def route(self, event: Event) -> tuple[Channel, str] | None:
        """The channel and stream key of ``event``; None (counted in ``dropped``) for
        a channel that is not registered. For a bus that numbers events elsewhere."""
        ch = self.channels.get(event.channel)
        if ch is None:
            self.dropped[event.channel] = self.dropped.get(event.channel, 0) + 1
            return None
        if ch.scope == "user":
            key = event.user_id or ch.shared_stream
            if not key:
                raise ValueError(f"channel {ch.name!r} is per-user: the event needs a user_id")
        else:
            key = event.key or ""
        return ch, key

    def new_id(self) -> str:
        return self._id_prefix + str(next(self._ids))

    def publish(self, event: Event) -> None:
        """Fan ``event`` out to every matching subscriber, numbered here (the local
        bus); returns without awaiting."""
        ch = self.channels.get(event.channel)
        if ch is None:
            self.dropped[event.channel] = self.dropped.get(event.channel, 0) + 1
            return
        if ch.scope == "user":
            key = event.user_id or ch.shared_stream
            if not key:
                raise ValueError(f"channel {ch.name!r} is per-user: the event needs a user_id")
        else:
            key = event.key or ""
        self.fan_out(ch, key, ch.payload(event), iso_ms(event.ts), self.new_id())

    def fan_out(
        self,
        ch: Channel,
        key: str,
        payload: Mapping[str, Any],
        timestamp: str,
        msg_id: str,
        offset: int = 0,
        epoch: str | None = None,
    ) -> bool:
        """Deliver one message of stream (``ch``, ``key``) to the local subscribers.

        Without ``epoch`` the hub numbers it (next offset of the stream); with one, the
        message was numbered by the bus (Redis) and carries the offset every node gives
        it: one already seen in that epoch is dropped (False), another epoch replaces
        the stream's (its history was lost, the memory of the old one goes too).
        """
        stream = self.streams.get(ch.name, key)
        if epoch is None:
            stream.offset += 1
        elif epoch == stream.epoch:
            if offset <= stream.offset:
                return False
            stream.offset = offset
        else:
            stream.epoch = epoch
            stream.offset = offset
            stream.history.clear()
        envelope = {
            "type": ch.message_type,
            "channel": ch.name,
            "data": payload,
            "timestamp": timestamp,
            "id": msg_id,
            "offset": stream.offset,
            "epoch": stream.epoch,
        }
        self.published += 1
        tap = self.taps.get(ch.name)
        if tap is not None:
            tap(key, payload)
        frames: dict[Dialect, bytes | None] = {}
        if ch.history_size:
            history = stream.history
            history.append(Entry(stream.offset, envelope))
            if len(history) > ch.history_size:
                history.popleft()
            if ch.history_ttl and self.recorder is not None:
                self.recorder(ch, key, envelope)
        index = self._index
        bucket = index.get((ch.name, key))
        wild = index.get((ch.name, ALL)) if ch.scope == "public" and key else None
        if bucket is None and wild is None:
            return True
        ckey = (ch.name, key) if ch.conflate else None
        if bucket is not None and wild is not None:
            targets = self._targets(ch, payload, (bucket, wild))
            self._send(targets, ch, envelope, frames, ckey)
            return True
        b = bucket if bucket is not None else wild
        assert b is not None
        # The common case: every subscriber in one bucket takes the message as it is.
        receivers: Iterable[Sink] = self._targets(ch, payload, (b,)) if b.filtered else b.plain
        self._send(receivers, ch, envelope, frames, ckey)
        return True

    @staticmethod
    def _targets(
        ch: Channel, payload: Mapping[str, Any], buckets: tuple[_Bucket, ...]
    ) -> dict[Sink, None]:
        targets: dict[Sink, None] = {}
        for b in buckets:
            for sink in b.plain:
                targets[sink] = None
            for sink, subs in b.filtered.items():
                if sink not in targets and any(ch.matches(s.residual, payload) for s in subs):
                    targets[sink] = None
        return targets

    def _send(
        self,
        targets: Iterable[Sink],
        ch: Channel,
        envelope: Mapping[str, Any],
        frames: dict[Dialect, bytes | None],
        ckey: object | None,
    ) -> None:
        # The hot loop: consecutive sinks almost always share a dialect, so the frame is
        # looked up again only when the dialect changes.
        n = 0
        last: Dialect | None = None
        frame: bytes | None = None
        for sink in targets:
            dialect = sink.dialect
            if dialect is not last:
                last = dialect
                frame = frames.get(dialect, _MISSING)
                if frame is _MISSING:
                    frame = frames[dialect] = dialect.encode_event(ch, envelope)
            if frame is not None:
                sink.deliver(frame, ckey)
                n += 1
        self.delivered += n

    def event_for(self, channel: str, data: Any, *, user_id: str | None = None) -> Event:
        """The event for a payload made outside fxgate's own services (Centrifugo's
        server publish API), validated against its channel.

        Raises ``ValidationError`` for an unknown channel, a per-user channel without a
        user, or a payload the channel refuses.
        """
        ch = self.channels.get(channel)
        if ch is None:
            raise ValidationError("Invalid channel", field="channel", details={"channel": channel})
        payload = ch.check_published(data)
        key = None
        if ch.scope == "user":
            if not user_id and ch.shared_stream is None:
                raise ValidationError("This channel is per-user: name the user", field="userId")
            user_id = user_id or None
        else:
            user_id = None
            if ch.key_filter:
                key = str(payload.get(ch.filters[ch.key_filter].field, "")) or None
        return Event(channel, dict(payload), user_id=user_id, key=key)

    # -- subscriptions ---------------------------------------------------------

    def make_subscription(self, sink: Sink, channel_name: str, raw_filters: Any) -> Subscription:
        """Validate a subscription request (channel, role, filters) without registering."""
        ch = self.channels.get(channel_name) if isinstance(channel_name, str) else None
        if ch is None:
            raise ValidationError(
                "Invalid channel", field="channels", details={"channel": channel_name}
            )
        self.check_access(sink.principal, ch)
        filters = ch.normalize_filters(raw_filters)
        if ch.scope == "user":
            keys: tuple[str, ...] = ch.subscription_keys(sink.principal)
            residual = filters
        elif ch.key_filter and ch.key_filter in filters:
            keys = tuple(sorted(filters[ch.key_filter]))
            residual = {k: v for k, v in filters.items() if k != ch.key_filter}
        else:
            keys = (ALL,) if ch.key_filter else ("",)
            residual = filters
        return Subscription(sink, ch, filters, residual, keys)

    @staticmethod
    def check_access(
        principal: Principal, ch: Channel, held: tuple[str, ...] | None = None
    ) -> None:
        """Raise ``AuthorizationError`` unless ``principal`` may hold ``ch``; asked at
        subscribe time and again for every held subscription when a token is refreshed,
        with the streams it ``held``: a per-user channel whose streams the new token
        would not get (an admin's system lines, after a refresh as a trader) is refused."""
        if not principal.role.at_least(ch.min_role):
            raise AuthorizationError(
                "Permission denied",
                details={"channel": ch.name, "requiredRole": str(ch.min_role)},
            )
        if ch.scope != "user":
            return
        if principal.user_id == ch.shared_stream:
            # The shared stream's key is no user's: a token naming it gets nothing.
            raise AuthorizationError("Permission denied", details={"channel": ch.name})
        if held is not None and not set(held) <= set(ch.subscription_keys(principal)):
            raise AuthorizationError("Permission denied", details={"channel": ch.name})

    def recent(self, channel: str, keys: Iterable[str], limit: int) -> list[Mapping[str, Any]]:
        """The payloads of the latest ``limit`` messages kept (``history_size``) on
        those streams of ``channel``, oldest first: a snapshot for channels whose
        recent past is what a new subscriber wants (log lines)."""
        entries: list[Entry] = []
        for key in keys:
            stream = self.streams.find(channel, key)
            if stream is not None:
                entries.extend(stream.history)
        # Stable: equal timestamps keep each stream's own order.
        entries.sort(key=lambda e: str(e.envelope["timestamp"]))
        return [e.payload for e in entries[-limit:]] if limit > 0 else []

    def add(self, sub: Subscription) -> None:
        for key in sub.keys:
            bucket = self._index.get((sub.channel.name, key))
            if bucket is None:
                bucket = self._index[(sub.channel.name, key)] = _Bucket()
            if sub.residual:
                bucket.filtered.setdefault(sub.sink, []).append(sub)
            else:
                bucket.plain[sub.sink] = bucket.plain.get(sub.sink, 0) + 1

    def remove(self, sub: Subscription) -> None:
        for key in sub.keys:
            ik = (sub.channel.name, key)
            bucket = self._index.get(ik)
            if bucket is None:
                continue
            if sub.residual:
                subs = bucket.filtered.get(sub.sink)
                if subs and sub in subs:
                    subs.remove(sub)
                    if not subs:
                        del bucket.filtered[sub.sink]
            else:
                n = bucket.plain.get(sub.sink, 0) - 1
                if n > 0:
                    bucket.plain[sub.sink] = n
                else:
                    bucket.plain.pop(sub.sink, None)
            if bucket.empty():
                del self._index[ik]

    def replay(
        self, sub: Subscription, since: tuple[int, str] | None, limit: int = 0
    ) -> Replay | None:
        """Messages missed since ``since`` = (offset, epoch), from the node's memory,
        when they are all there (and at most ``limit`` of them, 0: no cap).

        Returns None when memory cannot recover it (another epoch, history too short,
        a subscription spanning several streams); :meth:`recover` then asks the
        durable history, and the caller sends a snapshot if that cannot either.
        """
        key = self._recoverable(sub, since)
        if key is None or since is None:
            return None
        offset, epoch = since
        stream = self.streams.find(sub.channel.name, key)
        if stream is None:
            fresh = offset == 0 and epoch == self.streams.epoch and self.durable is None
            return Replay(True, []) if fresh else None
        if epoch != stream.epoch or (limit and stream.offset - offset > limit):
            return None
        entries = stream.replay_after(offset)
        if entries is None:
            return None
        return self._replay(sub, [(e.offset, e.envelope) for e in entries])

    async def recover(
        self, sub: Subscription, since: tuple[int, str] | None, limit: int
    ) -> Replay | None:
        """:meth:`replay`, or else the durable history's answer (a restart, another
        node): exactly the messages after ``since`` in order, or None (a snapshot).

        The caller adds ``sub`` to the index right after this returns, with no await
        between: messages read from the durable history that this node has not
        delivered yet (in flight on the bus) are delivered here first to the stream's
        current subscribers, so the new one gets each message once, replayed or live.
        """
        found = self.replay(sub, since, limit)
        if found is not None or self.durable is None:
            return found
        key = self._recoverable(sub, since)
        if key is None or since is None or not sub.channel.history_ttl:
            return None
        offset, epoch = since
        try:
            page = await self.durable.read(sub.channel.name, key, offset, limit)
        except Exception:
            log.exception("history read failed", extra={"channel": sub.channel.name})
            return None
        if page is None or page.epoch != epoch:
            return None
        return self._merge(sub, key, offset, limit, page)

    def _merge(
        self, sub: Subscription, key: str, offset: int, limit: int, page: HistoryPage
    ) -> Replay | None:
        ch = sub.channel
        stream = self.streams.get(ch.name, key)
        kept: dict[int, Mapping[str, Any]] = dict(page.entries)
        if stream.epoch == page.epoch:
            for e in stream.history:
                kept.setdefault(e.offset, e.envelope)
            top = max(page.top, stream.offset)
        else:
            top = page.top
        if offset > top or (limit and top - offset > limit):
            return None
        wanted = range(offset + 1, top + 1)
        if any(o not in kept for o in wanted):
            return None
        # Messages this node has not delivered yet: now, to the stream's subscribers
        # (the new one is not among them yet); the bus's copies are then duplicates.
        caught_up = stream.offset if stream.epoch == page.epoch else 0
        for o in range(max(caught_up, offset) + 1, top + 1):
            env = kept[o]
            self.fan_out(ch, key, env["data"], env["timestamp"], env["id"], o, page.epoch)
        return self._replay(sub, [(o, kept[o]) for o in wanted])

    def _recoverable(self, sub: Subscription, since: tuple[int, str] | None) -> str | None:
        if since is None or not sub.channel.history_size or len(sub.keys) != 1:
            return None
        key = sub.keys[0]
        return None if key == ALL else key

    @staticmethod
    def _replay(sub: Subscription, entries: list[tuple[int, Mapping[str, Any]]]) -> Replay:
        ch = sub.channel
        return Replay(
            True,
            [
                envelope
                for _, envelope in entries
                if not sub.residual or ch.matches(sub.residual, envelope["data"])
            ],
        )

    def snapshot_offsets(self, sub: Subscription) -> dict[str, int]:
        """Each of the subscription's streams' offsets now, taken before its snapshot is
        read. A snapshot item carries the offset its stream had when the snapshot was
        read, so the live messages published meanwhile (held, and sent after it) follow
        it with higher offsets instead of repeating its own."""
        ch = sub.channel
        keys = self.streams.keys_of(ch.name) if ALL in sub.keys else sub.keys
        found = ((k, self.streams.find(ch.name, k)) for k in keys)
        return {k: stream.offset for k, stream in found if stream is not None}

    def snapshot_envelope(
        self,
        sub: Subscription,
        payload: Mapping[str, Any],
        offsets: Mapping[str, int] | None = None,
    ) -> dict[str, Any]:
        """The envelope of one snapshot item: marked, and carrying its stream's offset
        (from ``offsets``, see :meth:`snapshot_offsets`) so the client can resume."""
        ch = sub.channel
        key = sub.keys[0] if len(sub.keys) == 1 else ALL
        if ch.key_filter and ch.key_filter in ch.filters and key == ALL:
            field_name = ch.filters[ch.key_filter].field
            key = str(payload.get(field_name, ""))
        stream = self.streams.find(ch.name, key)
        epoch = stream.epoch if stream is not None else self.streams.epoch
        default = stream.offset if stream is not None else 0
        offset = offsets.get(key, 0) if offsets is not None else default
        return {
            "type": ch.message_type,
            "channel": ch.name,
            "data": {**payload, "snapshot": True},
            "timestamp": iso_ms(),
            "id": self._id_prefix + str(next(self._ids)),
            "offset": offset,
            "epoch": epoch,
        }

    def has_subscribers(self, channel: str, key: str) -> bool:
        """Whether anything here takes ``channel`` events of stream ``key``: two dict
        lookups, so that a producer can skip building events nobody would receive (the
        order book per tick)."""
        index = self._index
        return (channel, key) in index or (channel, ALL) in index

    def position(self, channel: str, key: str) -> tuple[int, str]:
        """Where stream (``channel``, ``key``) stands on this node: the ``since`` that
        resumes right after its last message (for a server-side resume book, which
        notes it when a client goes away and subscribes with it later)."""
        stream = self.streams.find(channel, key)
        if stream is None:
            return (0, self.streams.epoch)
        return (stream.offset, stream.epoch)

    def adopt(self, channel: str, key: str, epoch: str) -> None:
        """Stream (``channel``, ``key``), which has no message here yet, takes the
        ``epoch`` the shared history created for it (``SharedPositions``), so that its
        first message (offset 1 in that epoch) is its next message here, not an epoch
        change. A stream that got a message meanwhile keeps what that message said."""
        stream = self.streams.get(channel, key)
        if stream.offset == 0:
            stream.epoch = epoch

    def subscriber_count(self, channel: str | None = None) -> int:
        return sum(
            len(b.plain) + len(b.filtered)
            for (c, _), b in self._index.items()
            if channel is None or c == channel
        )


_MISSING: Any = object()


__all__ = ["ALL", "Channel", "Hub", "Replay", "Subscription"]
