"""The Redis bus: every node's events reach every node's hub, numbered once, in Redis.

Publishing is Centrifuge's Redis engine in small (``SCALE.md``): for a channel with
history, one Lua script increments the stream's offset in a meta hash (its epoch is a
field beside it, created when the hash is missing, i.e. when Redis lost the stream),
appends the message to a Redis stream (``XADD MAXLEN ~``, id ``<offset>-0``, for
channels with a durable history), refreshes both TTLs and ``PUBLISH``es
``<offset>:<epoch>:<record>``, all in one atomic step. So offsets are global per stream:
the same message has the same offset on every node. Channels without history (market
data) are published as they are (``0::<record>``) and each node numbers them itself.

The Redis hop carries one encoding of the event (the record: channel, key, payload,
timestamp, id, as JSON); each node's hub then encodes it once per dialect, as with the
local bus. A node receives its own events through Redis too, so every hub sees every
stream in the one order Redis gave it.

A slow or lost Redis never blocks the event loop: ``publish`` writes the event's script
call to its own connection at once (the first of a loop iteration; the rest of that
iteration in one write after it) and never awaits; replies come back in order on the
same connection (:mod:`fxgate.bus.resp`), so many calls are in flight, each still one
atomic script, in publish order. Incoming messages are parsed and fanned out on the
subscription socket's own read callback. Either way a message crosses the loop only
where the socket makes it, never through a Task wake-up (each one is one more
iteration, and an iteration of a busy node carries a slice of its fan-out).
When Redis cannot take an event (``redis_queue`` calls unanswered, no reply within
``redis_timeout``, Redis down), the node delivers it to its own clients at once (they keep the
market data and trading updates this node produces) and marks the stream: a per-user
stream delivered locally gets a local epoch (its clients' ``since`` no longer matches
anything) and, once Redis is back, a new epoch in Redis too, so a client of another
node that resumes across the lost message gets ``recovered: false`` and a snapshot,
never a silent gap. After an outage the node also catches up the durable streams it
knows from Redis's history, so its clients get what other nodes published meanwhile.
The price of local delivery: the node's clients got messages that no other node's did
(they resume with a snapshot, as said), and a batch that timed out but that Redis ran
after all reaches this node's clients a second time, under Redis's epoch; refusing
instead would have left every client of the node without its own node's updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, TypeAlias

import redis.asyncio as aioredis
import ujson
from redis.exceptions import RedisError

from fxgate.bus import redis_client
from fxgate.bus.hop import HopMeter
from fxgate.bus.port import BusUnavailable
from fxgate.bus.resp import Link, ReplyError, pack, release, take
from fxgate.config.settings import Settings
from fxgate.domain.events import Event
from fxgate.domain.timefmt import iso_ms
from fxgate.hub.history import HistoryPage
from fxgate.hub.hub import Channel, Hub
from fxgate.hub.streams import new_epoch
from fxgate.services.ports.store import Store

log = logging.getLogger(__name__)

#: KEYS: meta hash, history stream. ARGV: record, maxlen, history ttl (0: no XADD),
#: meta ttl, an epoch for a new stream, the pub/sub channel, and the epoch and offset
#: the publishing node last saw: Redis behind them in that epoch lost history (a
#: failover to a replica that missed the last writes), so the stream starts a new one.
PUBLISH_LUA = """
local epoch = redis.call("hget", KEYS[1], "e")
if not epoch or (epoch == ARGV[7]
    and tonumber(redis.call("hget", KEYS[1], "s") or "0") < tonumber(ARGV[8])) then
  epoch = ARGV[5]
  redis.call("hset", KEYS[1], "e", epoch)
  redis.call("del", KEYS[2])
end
local offset = redis.call("hincrby", KEYS[1], "s", 1)
redis.call("expire", KEYS[1], ARGV[4])
if tonumber(ARGV[3]) > 0 then
  redis.call("xadd", KEYS[2], "MAXLEN", "~", ARGV[2], offset .. "-0", "d", ARGV[1])
  redis.call("expire", KEYS[2], ARGV[3])
end
redis.call("publish", ARGV[6], offset .. ":" .. epoch .. ":" .. ARGV[1])
return {offset, epoch}
"""

#: A stream whose messages were delivered only locally: a new epoch, the old history
#: gone. KEYS: meta hash, history stream. ARGV: the new epoch, meta ttl.
NEW_EPOCH_LUA = """
redis.call("hset", KEYS[1], "e", ARGV[1])
redis.call("expire", KEYS[1], ARGV[2])
redis.call("del", KEYS[2])
return 1
"""

#: Where a stream stands, for a resume mark of a stream the node holds no message of:
#: one Redis has no trace of gets its epoch now (offset 0, the history gone as when
#: PUBLISH_LUA makes one), so that its first message keeps it. KEYS: meta hash, history
#: stream. ARGV: an epoch for a new stream, meta ttl.
POSITION_LUA = """
local epoch = redis.call("hget", KEYS[1], "e")
if not epoch then
  epoch = ARGV[1]
  redis.call("hset", KEYS[1], "e", epoch, "s", 0)
  redis.call("del", KEYS[2])
end
redis.call("expire", KEYS[1], ARGV[2])
return {tonumber(redis.call("hget", KEYS[1], "s") or "0"), epoch}
"""

#: An event on its way to Redis: channel, stream key, payload, timestamp, message id.
Item: TypeAlias = tuple[Channel, str, Mapping[str, Any], str, str]


#: The same test for a stream nobody publishes to after a reconnect. KEYS: meta hash,
#: history stream. ARGV: the epoch and offset this node saw, a new epoch, meta ttl.
REWIND_LUA = """
if redis.call("hget", KEYS[1], "e") == ARGV[1]
    and tonumber(redis.call("hget", KEYS[1], "s") or "0") < tonumber(ARGV[2]) then
  redis.call("hset", KEYS[1], "e", ARGV[3])
  redis.call("expire", KEYS[1], ARGV[4])
  redis.call("del", KEYS[2])
  return 1
end
return 0
"""

BATCH = 256


class RedisBus:
    name = "redis"
    components = ("bus", "redis")

    def __init__(self, settings: Settings, hub: Hub) -> None:
        s = settings.bus
        self._hub = hub
        self._where = redis_client.where(s)
        self._prefix = s.redis_prefix
        self._timeout = s.redis_timeout
        self._max_queue = s.redis_queue
        self._meta_ttl = s.history_meta_ttl
        self._channel = f"{self._prefix}:bus"
        # One factory (a URL or Sentinel): after a failover, new connections of both
        # pools go to the new master.
        self._redis = redis_client.connect(s, socket_timeout=s.redis_timeout)
        # The subscription waits for messages as long as none come: no read timeout
        # (a dead Redis closes its socket; a stalled one is the monitor's to notice).
        self._sub = redis_client.connect(s, socket_timeout=None)
        self._sha = ""
        # The constant head of every plain PUBLISH (market data), packed once.
        self._publish_head = pack("PUBLISH", self._channel, "")[: -len(b"$0\r\n\r\n")]
        # Epoch candidates for a stream Redis does not have: unique per node run and
        # cheap (a uuid per script call was a visible share of the publish path).
        self._epochs = itertools.count(int(new_epoch(), 16))
        self._epoch_script = self._redis.register_script(NEW_EPOCH_LUA)
        self._rewind_script = self._redis.register_script(REWIND_LUA)
        self._position_script = self._redis.register_script(POSITION_LUA)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        #: The publishing connection, while it works (None: Redis lost, events local).
        self._pub: Link | None = None
        #: Sent, not yet answered, in order: the item (None: a SCRIPT LOAD), when sent.
        self._inflight: deque[tuple[Item | None, float]] = deque()
        #: Commands of this loop iteration after its first, written together after it.
        self._out: list[bytes] = []
        self._corked = False
        self._timer: asyncio.TimerHandle | None = None
        #: Redis lost the script (restarted): the calls it refused, to send again in
        #: order once it is loaded, and what was published meanwhile, to follow them.
        self._reloading = False
        self._retry: list[Item] = []
        self._held: list[Item] = []
        #: A replica refused a call (a failover): the publisher reconnects to the master
        #: and what it carried goes out there, not here (see :meth:`_publisher_refused`).
        self._rerouting = False
        self._refusals = 0
        #: Publishing to Redis works (the publishing connection is up).
        self._writing = False
        #: The pub/sub subscription is live.
        self._listening = False
        self._subscribed: asyncio.Future[None] | None = None
        #: Streams with messages delivered only here while Redis was away.
        self._dirty: set[tuple[str, str]] = set()
        self.local_deliveries = 0
        #: Publish → this node's hub, per event of this node (``/metrics``).
        self.hop = HopMeter()
        self._mark_tasks: set[asyncio.Task[None]] = set()
        #: Stream positions asked for in this loop iteration (resume marks), and who waits.
        self._asked: list[tuple[Sequence[tuple[str, str]], asyncio.Future[Any]]] = []
        # flush(): items taken in, items gone out (to Redis or, failing it, delivered
        # here), and who waits for a count (the cluster's trading replies).
        self._taken = 0
        self._gone = 0
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []
        #: Started: events before (start-up lines, nobody subscribed yet) are only
        #: delivered here, and mark nothing.
        self._started = False
        hub.durable = self

    # -- for the rest of the node (leader lease, command stream) ----------------------

    @property
    def client(self) -> aioredis.Redis:
        """The bus's Redis connection pool, for other Redis users of the node."""
        return self._redis

    def key(self, *parts: str) -> str:
        """A Redis key under this deployment's prefix (``bus.redis_prefix``)."""
        return ":".join((self._prefix, *parts))

    # -- keys --------------------------------------------------------------------------

    def _keys(self, channel: str, key: str) -> list[str]:
        # One hash tag per stream: meta and history live in one slot of a cluster.
        tag = f"{self._prefix}:{{{channel}:{key}}}"
        return [f"{tag}:m", f"{tag}:h"]

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._redis.ping(), self._timeout)
        except (RedisError, OSError, TimeoutError) as exc:
            raise BusUnavailable(
                f"bus.redis_url: {self._where} is unreachable ({exc or 'timeout'})"
            ) from None
        loop = self._loop = asyncio.get_running_loop()
        try:
            await self._connect_publisher()
        except (RedisError, OSError, TimeoutError) as exc:
            raise BusUnavailable(
                f"bus.redis_url: {self._where} is unreachable ({exc or 'timeout'})"
            ) from None
        ready = loop.create_future()
        self._tasks = [
            loop.create_task(self._listener(ready), name="redis-bus-listener"),
            loop.create_task(self._monitor(), name="redis-bus-monitor"),
            # Sentinel: both pools to the new master as soon as it is named.
            loop.create_task(
                redis_client.follow_master(self._redis, "bus"), name="redis-bus-master"
            ),
            loop.create_task(
                redis_client.follow_master(self._sub, "bus subscription"), name="redis-sub-master"
            ),
        ]
        try:
            await asyncio.wait_for(ready, self._timeout * 2)
        except TimeoutError:
            await self.stop()
            raise BusUnavailable(f"bus.redis_url: {self._where} took no subscription") from None
        self._started = True

    async def stop(self) -> None:
        # What is on its way still goes out (briefly), so a clean stop loses nothing.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), self._timeout)
        if self._mark_tasks:  # resume marks of the connections just closed
            await asyncio.wait(list(self._mark_tasks), timeout=self._timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._pub is not None:
            link, self._pub = self._pub, None
            self._writing = False
            await release(link)
        for client in (self._redis, self._sub):
            await redis_client.close(client)

    def healthy(self) -> bool:
        return self._writing and self._listening

    # -- publishing --------------------------------------------------------------------

    def expecting(self) -> bool:
        return self.hop.expecting()

    def publish(self, event: Event) -> None:
        hub = self._hub
        routed = hub.route(event)
        if routed is None:
            return
        ch, key = routed
        item = (ch, key, ch.payload(event), iso_ms(event.ts), hub.new_id())
        if ch.node_local:
            hub.fan_out(*item)
            return
        if self._rerouting and len(self._held) < self._max_queue:
            self._taken += 1
            self._held.append(item)
            return
        if self._pub is None or len(self._inflight) + len(self._held) >= self._max_queue:
            self._deliver_here(*item)
            return
        self._taken += 1
        self.hop.sent(item[4])
        if self._reloading:
            self._held.append(item)
        else:
            self._send(item)

    async def flush(self) -> None:
        """Return once every event published so far has gone to Redis (or, Redis
        failing, to this node's clients): a trading command is answered only after the
        events it caused are out, so a leader killed right after answering loses none."""
        if self._gone >= self._taken:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushes.append((self._taken, waiter))
        await waiter

    def _went(self, count: int) -> None:
        self._gone += count
        if self._flushes:
            ready = [w for w in self._flushes if w[0] <= self._gone]
            self._flushes = [w for w in self._flushes if w[0] > self._gone]
            for _, waiter in ready:
                if not waiter.done():
                    waiter.set_result(None)

    def _deliver_here(
        self, ch: Channel, key: str, payload: Mapping[str, Any], ts: str, msg_id: str
    ) -> None:
        """Redis cannot take it: this node's clients still get it, and a stream with
        history is marked so that no client ever resumes across it silently."""
        self.local_deliveries += 1
        if ch.history_size and self._started:
            self._dirty.add((ch.name, key))
            stream = self._hub.streams.get(ch.name, key)
            if not stream.epoch.startswith("local-"):
                # Numbered here, not by Redis: offsets of their own epoch.
                stream.epoch = "local-" + new_epoch()
                stream.history.clear()
        self._hub.fan_out(ch, key, payload, ts, msg_id)

    def _command(self, item: Item) -> bytes:
        ch, key, payload, ts, msg_id = item
        record = ujson.dumps(
            {"c": ch.name, "k": key, "d": payload, "t": ts, "i": msg_id}, ensure_ascii=False
        )
        if not ch.history_size:
            body = b"0::" + record.encode()
            return b"%b$%d\r\n%b\r\n" % (self._publish_head, len(body), body)
        meta, hist = self._keys(ch.name, key)
        seen = self._hub.streams.find(ch.name, key)
        return pack(
            "EVALSHA",
            self._sha,
            2,
            meta,
            hist,
            record,
            ch.history_size,
            int(ch.history_ttl),
            self._meta_ttl,
            f"{next(self._epochs) % 16**12:012x}",
            self._channel,
            seen.epoch if seen is not None else "",
            seen.offset if seen is not None else 0,
        )

    def _send(self, item: Item | None) -> None:
        """Write one script call (or, for None, a SCRIPT LOAD) behind those in flight."""
        cmd = pack("SCRIPT", "LOAD", PUBLISH_LUA) if item is None else self._command(item)
        loop = self._loop
        assert loop is not None
        assert self._pub is not None
        self._inflight.append((item, loop.time()))
        if self._timer is None:
            self._timer = loop.call_at(loop.time() + self._timeout, self._check_replies)
        if self._corked:
            self._out.append(cmd)
            return
        # The first command of an iteration goes out now; the others of the same
        # iteration (a burst) follow in one write.
        self._pub.write(cmd)
        self._corked = True
        loop.call_soon(self._uncork)

    def _uncork(self) -> None:
        self._corked = False
        if self._out:
            data = b"".join(self._out)
            self._out.clear()
            if self._pub is not None:
                self._pub.write(data)

    def _check_replies(self) -> None:
        """Redis owes a reply longer than ``redis_timeout``: it is lost or stalled."""
        self._timer = None
        if not self._inflight:
            return
        assert self._loop is not None
        due = self._inflight[0][1] + self._timeout
        if self._loop.time() >= due - 0.001:
            self._publisher_lost(TimeoutError(f"no reply within {self._timeout:g} s"))
        else:
            self._timer = self._loop.call_at(due, self._check_replies)

    def _on_reply(self, value: Any) -> None:
        # The publishing connection subscribes to nothing and tracks no keys, so nothing
        # but replies comes on it: each one answers the oldest call in flight.
        if not self._inflight:
            return
        item, _ = self._inflight.popleft()
        if item is None:  # the script loaded again: what it refused goes out, in order
            if isinstance(value, ReplyError):
                self._publisher_lost(value)
                return
            self._sha = value.decode()
            self._reloading = False
            again, self._retry, self._held = [*self._retry, *self._held], [], []
            for it in again:
                self._send(it)
            return
        if isinstance(value, ReplyError):
            if str(value).startswith("NOSCRIPT"):
                # Redis restarted (its script cache empty): every call behind this one
                # is refused too, until the script is back; new events wait for them.
                self._retry.append(item)
                if not self._reloading:
                    self._reloading = True
                    self._send(None)
                return
            if str(value).startswith(("READONLY", "MASTERDOWN", "LOADING")):
                # Not a master (any more): a failover. Reconnect, through Sentinel.
                self._inflight.appendleft((item, 0.0))
                self._publisher_refused(value)
                return
            log.warning("Redis refused an event (%s): delivered here only", value)
            self._deliver_here(*item)
        self._refusals = 0  # the master answers
        self._went(1)

    def _publisher_refused(self, exc: BaseException) -> None:
        """A replica refused the oldest call in flight (READONLY, MASTERDOWN, LOADING:
        a failover under way). A refused script ran nothing, and neither did the calls
        behind it on the same connection, so rather than delivering them here under a
        local epoch, they wait, in order and with what is published meanwhile, for
        the publisher to reconnect (to the master Sentinel names now) and go out there.
        Refused again right after, or no master within the timeout: delivered here."""
        self._refusals += 1
        if self._rerouting or self._refusals > 1:
            self._refusals = 0
            self._publisher_lost(exc)
            return
        link, self._pub = self._pub, None
        if link is not None:
            self._spawn(release(link))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._out.clear()
        items = [it for it, _ in self._inflight if it is not None]
        self._inflight.clear()
        self._held = [*self._retry, *items, *self._held]
        self._retry = []
        self._reloading = False
        self._rerouting = True
        log.warning("Redis refused a write (%s): publishing again on the master", exc)
        self._spawn(self._reroute())

    async def _reroute(self) -> None:
        try:
            await asyncio.wait_for(self._connect_publisher(), 3 * self._timeout)
        except Exception as exc:  # not only RedisError: see _connect_publisher
            self._rerouting = False
            self._publisher_lost(exc)  # what was held: delivered here, in order
            return
        self._rerouting = False
        held, self._held = self._held, []
        for it in held:
            self._send(it)

    def _publisher_gone(self, link: Link, exc: Exception | None) -> None:
        if link is self._pub:
            self._publisher_lost(exc or ConnectionError("connection closed by Redis"))
            if not self._rerouting:
                # A dropped connection (a Sentinel failover drops every one): reconnect
                # now, holding what is published meanwhile, rather than delivering it
                # here under a local epoch until the monitor's next round.
                self._rerouting = True
                self._spawn(self._reroute())

    def _publisher_lost(self, exc: BaseException) -> None:
        """The publishing connection failed: what it carried unanswered is delivered
        here (Redis may have run some of it: those reach this node twice, under Redis's
        epoch and a local one), and so is everything until the monitor reconnects."""
        link, self._pub = self._pub, None
        if link is not None:
            self._spawn(release(link))
        if self._writing:
            log.error("Redis lost: publishing locally (%s)", exc)
        self._writing = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._out.clear()
        # In publish order: the refused calls were sent before those still in flight.
        items = self._retry + [it for it, _ in self._inflight if it is not None] + self._held
        self._inflight.clear()
        self._retry, self._held = [], []
        self._reloading = False
        for it in items:
            self._deliver_here(*it)
        self._went(len(items))

    async def _connect_publisher(self) -> None:
        """Open the publishing connection. Its callers treat any ``Exception`` as one
        failed attempt: redis-py has races of its own when a pool is disconnected under
        a connection being opened (which :func:`follow_master` does in a failover), and
        they raise ``AttributeError`` and the like rather than a ``RedisError``
        (redis/redis-py#2349). Letting one end the reroute or the monitor would leave
        the node publishing locally for good."""
        link = Link(self._on_reply, lambda exc: self._publisher_gone(link, exc))
        try:
            await asyncio.wait_for(take(self._redis, link), self._timeout)
            self._sha = await self._redis.script_load(PUBLISH_LUA)
        except BaseException:
            await release(link)
            raise
        self._pub = link
        self._writing = True

    def _spawn(self, coro: Awaitable[None]) -> None:
        async def run() -> None:
            await coro

        task = asyncio.get_running_loop().create_task(run(), name="redis-bus-close")
        self._mark_tasks.add(task)
        task.add_done_callback(self._mark_tasks.discard)

    # -- receiving ---------------------------------------------------------------------

    async def _listener(self, ready: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.1
        while True:
            lost: asyncio.Future[Exception | None] = loop.create_future()
            self._subscribed = subscribed = loop.create_future()

            def gone(exc: Exception | None, lost: asyncio.Future[Exception | None] = lost) -> None:
                if not lost.done():
                    lost.set_result(exc)

            link = Link(self._on_push, gone, self.hop.read)
            try:
                await asyncio.wait_for(take(self._sub, link), self._timeout)
                link.write(pack("SUBSCRIBE", self._channel))
                await asyncio.wait(
                    {subscribed, lost}, timeout=self._timeout, return_when="FIRST_COMPLETED"
                )
                if not subscribed.done():
                    raise ConnectionError("Redis took no subscription")
                if self._listening is False and not ready.done():
                    ready.set_result(None)
                elif not self._listening:
                    await self._recovered()
                self._listening = True
                delay = 0.1
                exc = await lost
                log.error("Redis subscription lost (%s); retrying", exc or "closed")
                self._listening = False
            except asyncio.CancelledError:
                await release(link)
                raise
            except (RedisError, OSError, TimeoutError) as exc:
                if self._listening:
                    log.error("Redis subscription lost (%s); retrying", exc)
                self._listening = False
            except Exception as exc:  # redis-py's own races too: see _connect_publisher
                log.warning("Redis bus listener: %s: %s; retrying", type(exc).__name__, exc)
                log.debug("Redis bus listener failure", exc_info=True)
                self._listening = False
            await release(link)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _on_push(self, value: Any) -> None:
        """A pub/sub message, on the socket's read callback: fanned out right here."""
        if not isinstance(value, list) or len(value) < 3:
            return
        kind = value[0]
        if kind == b"message":
            self._on_message(value[2])
        elif kind == b"subscribe":
            waiter = self._subscribed
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def _on_message(self, data: bytes) -> None:
        offset, epoch, body = data.split(b":", 2)
        rec = ujson.loads(body)
        ch = self._hub.channels.get(rec["c"])
        if ch is None:  # a channel this node runs without (its plugin disabled)
            dropped = self._hub.dropped
            dropped[rec["c"]] = dropped.get(rec["c"], 0) + 1
            return
        self.hop.arrived(rec["i"])
        if epoch:
            self._hub.fan_out(
                ch, rec["k"], rec["d"], rec["t"], rec["i"], int(offset), epoch.decode()
            )
        else:
            self._hub.fan_out(ch, rec["k"], rec["d"], rec["t"], rec["i"])

    async def _monitor(self) -> None:
        """Notice a Redis that went away while nothing was published, and come back.
        Nothing but cancellation ends it: a round that fails in a way nobody foresaw
        is logged in one line and the next one tries again."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await self._monitor_round()
            except Exception as exc:
                log.warning("Redis bus monitor: %s: %s; trying again", type(exc).__name__, exc)
                log.debug("Redis bus monitor failure", exc_info=True)

    async def _monitor_round(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            if self._pub is not None:
                self._publisher_lost(exc)
            return
        if self._pub is not None or self._rerouting:
            return
        try:
            await asyncio.wait_for(self._connect_publisher(), 3 * self._timeout)
        except Exception as exc:  # not only RedisError: see _connect_publisher
            log.debug("Redis answers pings but no publishing connection yet (%r)", exc)
            return
        log.info("Redis back: publishing through Redis again")
        if self._listening:
            await self._recovered()

    async def _recovered(self) -> None:
        """Redis is back: new epochs for the streams delivered only here, and the
        durable streams this node's clients hold caught up from Redis's history (what
        other nodes published while this one could not hear them)."""
        try:
            await self._rewound()
            for channel, key in list(self._dirty):
                await self._epoch_script(
                    keys=self._keys(channel, key), args=["r" + new_epoch(), self._meta_ttl]
                )
                self._dirty.discard((channel, key))
            for name, ch in self._hub.channels.items():
                if not ch.history_ttl:
                    continue
                for key in self._hub.streams.keys_of(name):
                    if self._hub.has_subscribers(name, key):
                        await self._catch_up(ch, key)
        except (RedisError, OSError) as exc:
            log.warning("Redis resync incomplete (%s)", exc)

    async def _rewound(self) -> None:
        """Redis may be another server now (a failover to a replica that had not got
        the last writes): a stream whose offset there is behind what this node saw, in
        the same epoch, lost those messages, and gets a new epoch, so that no client
        resumes across them and no later message reuses their offsets unnoticed."""
        pipe = self._redis.pipeline(transaction=False)
        queued = 0
        for name, ch in self._hub.channels.items():
            if not ch.history_size:
                continue
            for key in self._hub.streams.keys_of(name):
                stream = self._hub.streams.find(name, key)
                if stream is None or not stream.offset or stream.epoch.startswith("local-"):
                    continue
                args: list[str | int] = [
                    stream.epoch,
                    stream.offset,
                    "f" + new_epoch(),
                    self._meta_ttl,
                ]
                await self._rewind_script(keys=self._keys(name, key), args=args, client=pipe)
                queued += 1
                if queued % BATCH == 0:
                    await pipe.execute()
        if queued % BATCH:
            await pipe.execute()

    async def _catch_up(self, ch: Channel, key: str) -> None:
        stream = self._hub.streams.get(ch.name, key)
        page = await self.read(ch.name, key, stream.offset, 10_000)
        if page is None or page.epoch != stream.epoch:
            return  # another epoch: the next message says so; resumes get snapshots
        for offset, env in page.entries:
            self._hub.fan_out(ch, key, env["data"], env["timestamp"], env["id"], offset, page.epoch)

    # -- resume marks (fxgate.hub.resume) ------------------------------------------------

    @property
    def marks(self) -> RedisBus:
        return self

    def put_mark(self, user_id: str, mark: Mapping[str, Any], ttl: float) -> None:
        key = self.key("resume", user_id)
        self._mark_task(self._redis.set(key, ujson.dumps(mark), ex=max(1, int(ttl))))

    def drop_mark(self, user_id: str) -> None:
        self._mark_task(self._redis.delete(self.key("resume", user_id)))

    def _mark_task(self, command: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await command
            except (RedisError, OSError) as exc:
                log.warning("resume mark not updated in Redis (%s)", exc)

        task = asyncio.get_running_loop().create_task(run(), name="resume-mark")
        self._mark_tasks.add(task)
        task.add_done_callback(self._mark_tasks.discard)

    async def take_mark(self, user_id: str) -> Mapping[str, Any] | None:
        raw = await self._redis.getdel(self.key("resume", user_id))
        if raw is None:
            return None
        mark: Mapping[str, Any] = ujson.loads(raw)
        return mark

    async def positions(
        self, streams: Sequence[tuple[str, str]]
    ) -> Mapping[tuple[str, str], tuple[int, str]] | None:
        """Each stream's (offset, epoch) in Redis, creating the epoch of one Redis does
        not have (``fxgate.hub.history.SharedPositions``). What every connection that
        closes in one loop iteration asks (a node stopping closes them all) is read
        together, in pipelines of script calls, one per stream (its keys share a slot)."""
        if not self._writing:
            return None  # Redis away, or another epoch coming: the mark as it is
        answer: asyncio.Future[Mapping[tuple[str, str], tuple[int, str]] | None]
        answer = asyncio.get_running_loop().create_future()
        self._asked.append((streams, answer))
        if len(self._asked) == 1:  # runs next iteration, with every ask of this one
            self._spawn(self._read_positions())
        return await answer

    async def _read_positions(self) -> None:
        asked, self._asked = self._asked, []
        wanted = list(dict.fromkeys(s for streams, _ in asked for s in streams))
        got: dict[tuple[str, str], tuple[int, str]] = {}
        found: dict[tuple[str, str], tuple[int, str]] | None = got
        try:
            for i in range(0, len(wanted), BATCH):
                batch = wanted[i : i + BATCH]
                pipe = self._redis.pipeline(transaction=False)
                for channel, key in batch:
                    epoch = f"{next(self._epochs) % 16**12:012x}"
                    args: list[str | int] = [epoch, self._meta_ttl]
                    keys = self._keys(channel, key)
                    await self._position_script(keys=keys, args=args, client=pipe)
                for stream, (offset, e) in zip(batch, await pipe.execute(), strict=True):
                    got[stream] = (int(offset), e.decode())
        except Exception as exc:  # whatever it is, every ask gets its answer
            log.warning("stream positions not read from Redis (%s)", exc)
            found = None
        for streams, answer in asked:
            if not answer.done():
                answer.set_result(None if found is None else {s: found[s] for s in streams})

    # -- durable history ---------------------------------------------------------------

    async def read(self, channel: str, key: str, after: int, limit: int) -> HistoryPage | None:
        ch = self._hub.channels.get(channel)
        if ch is None:
            return None
        meta, hist = self._keys(channel, key)
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.hmget(meta, "s", "e")
            pipe.xrange(hist, min=f"{after + 1}-0", max="+", count=limit + 1)
            (top, epoch), rows = await pipe.execute()
        except (RedisError, OSError):
            return None
        if epoch is None:
            return None
        entries: list[tuple[int, Mapping[str, Any]]] = []
        for entry_id, fields in rows:
            offset = int(entry_id.split(b"-", 1)[0])
            rec = ujson.loads(fields[b"d"])
            envelope = {
                "type": ch.message_type,
                "channel": channel,
                "data": rec["d"],
                "timestamp": rec["t"],
                "id": rec["i"],
                "offset": offset,
                "epoch": epoch.decode(),
            }
            entries.append((offset, envelope))
        return HistoryPage(epoch.decode(), int(top or 0), entries)


def build(settings: Settings, hub: Hub, store: Store) -> RedisBus:
    """The ``redis`` bus backend (the ``redis`` extra); the history is Redis's."""
    return RedisBus(settings, hub)


def check(settings: Settings) -> list[str]:
    return redis_client.problems(settings)
