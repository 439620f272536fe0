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

A slow or lost Redis never blocks the event loop: ``publish`` appends to a bounded queue
that one task drains in pipelined batches. When Redis cannot take an event (the queue
full, Redis down), the node delivers it to its own clients at once (they keep the
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
import logging
from collections import deque
from collections.abc import Awaitable, Mapping
from typing import Any

import redis.asyncio as aioredis
import ujson
from redis.exceptions import NoScriptError, RedisError

from fxgate.bus import redis_client
from fxgate.bus.port import BusUnavailable
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
        self._epoch_script = self._redis.register_script(NEW_EPOCH_LUA)
        self._rewind_script = self._redis.register_script(REWIND_LUA)
        self._queue: deque[tuple[Channel, str, Mapping[str, Any], str, str]] = deque()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        #: Publishing to Redis works (the last batch went through).
        self._writing = False
        #: The pub/sub subscription is live.
        self._listening = False
        #: Streams with messages delivered only here while Redis was away.
        self._dirty: set[tuple[str, str]] = set()
        self.local_deliveries = 0
        self._mark_tasks: set[asyncio.Task[None]] = set()
        # flush(): items taken in, items gone out (to Redis or, failing it, delivered
        # here), and who waits for a count (the cluster's trading replies).
        self._taken = 0
        self._gone = 0
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []
        #: A batch is on its way to Redis (stop waits for it).
        self._sending = False
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
        self._sha = await self._redis.script_load(PUBLISH_LUA)
        self._writing = True
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        self._tasks = [
            loop.create_task(self._publisher(), name="redis-bus-publisher"),
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
        # What is queued still goes out (briefly), so a clean stop loses nothing.
        deadline = asyncio.get_running_loop().time() + self._timeout
        while (
            (self._queue or self._sending)
            and self._writing
            and asyncio.get_running_loop().time() < deadline
        ):
            self._wake.set()
            await asyncio.sleep(0.01)
        if self._mark_tasks:  # resume marks of the connections just closed
            await asyncio.wait(list(self._mark_tasks), timeout=self._timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        for client in (self._redis, self._sub):
            await redis_client.close(client)

    def healthy(self) -> bool:
        return self._writing and self._listening

    # -- publishing --------------------------------------------------------------------

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
        if not self._writing or len(self._queue) >= self._max_queue:
            self._deliver_here(*item)
            return
        self._queue.append(item)
        self._taken += 1
        self._wake.set()

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

    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
                self._sending = True
                try:
                    await self._send(batch)
                    self._writing = True
                except (RedisError, OSError) as exc:
                    if self._writing:
                        log.error("Redis lost: publishing locally (%s)", exc)
                    self._writing = False
                    for item in batch:
                        self._deliver_here(*item)
                    while self._queue:
                        self._deliver_here(*self._queue.popleft())
                        self._went(1)
                finally:
                    self._sending = False
                self._went(len(batch))

    async def _send(self, batch: list[tuple[Channel, str, Mapping[str, Any], str, str]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for ch, key, payload, ts, msg_id in batch:
            record = ujson.dumps(
                {"c": ch.name, "k": key, "d": payload, "t": ts, "i": msg_id}, ensure_ascii=False
            )
            if ch.history_size:
                meta, hist = self._keys(ch.name, key)
                seen = self._hub.streams.find(ch.name, key)
                pipe.evalsha(
                    self._sha,
                    2,
                    meta,
                    hist,
                    record,
                    ch.history_size,
                    int(ch.history_ttl),
                    self._meta_ttl,
                    new_epoch(),
                    self._channel,
                    seen.epoch if seen is not None else "",
                    seen.offset if seen is not None else 0,
                )
            else:
                pipe.publish(self._channel, "0::" + record)
        try:
            await pipe.execute()
        except NoScriptError:
            # Redis restarted (its script cache empty): nothing ran; load and resend.
            # The plain publishes of the batch went out; only the scripts are resent.
            self._sha = await self._redis.script_load(PUBLISH_LUA)
            await self._send([item for item in batch if item[0].history_size])

    # -- receiving ---------------------------------------------------------------------

    async def _listener(self, ready: asyncio.Future[None]) -> None:
        delay = 0.1
        while True:
            pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if self._listening is False and not ready.done():
                    ready.set_result(None)
                elif not self._listening:
                    await self._recovered()
                self._listening = True
                delay = 0.1
                while True:
                    msg = await pubsub.get_message(timeout=1.0)
                    if msg is not None:
                        self._on_message(msg["data"])
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                raise
            except (RedisError, OSError) as exc:
                if self._listening:
                    log.error("Redis subscription lost (%s); retrying", exc)
                self._listening = False
            except Exception:
                log.exception("Redis bus listener failed; retrying")
                self._listening = False
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _on_message(self, data: bytes) -> None:
        offset, epoch, body = data.split(b":", 2)
        rec = ujson.loads(body)
        ch = self._hub.channels.get(rec["c"])
        if ch is None:  # a channel this node runs without (its plugin disabled)
            dropped = self._hub.dropped
            dropped[rec["c"]] = dropped.get(rec["c"], 0) + 1
            return
        if epoch:
            self._hub.fan_out(
                ch, rec["k"], rec["d"], rec["t"], rec["i"], int(offset), epoch.decode()
            )
        else:
            self._hub.fan_out(ch, rec["k"], rec["d"], rec["t"], rec["i"])

    async def _monitor(self) -> None:
        """Notice a Redis that went away while nothing was published, and come back."""
        while True:
            await asyncio.sleep(1.0)
            try:
                await self._redis.ping()
            except (RedisError, OSError) as exc:
                if self._writing:
                    log.error("Redis lost (%s)", exc)
                self._writing = False
                continue
            if not self._writing:
                self._writing = True
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
