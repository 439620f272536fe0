"""Trading commands to the leader over a Redis stream, answered on a reply channel.

A node that does not lead ``XADD``s each command to ``<prefix>:commands`` (request id, op,
user, arguments as JSON, its reply channel, a deadline) and waits up to
``bus.command_timeout`` for the answer on ``<prefix>:reply:<node>``. The leader reads the
stream in the consumer group ``leader`` (``XREADGROUP``), runs each command on its
trading service, keeps the answer for ten minutes under ``<prefix>:cmd:result:<id>``,
publishes it, and only then ``XACK``s it. Delivery is at least once:

- a leader that dies (or is paused past its lease) before the ``XACK`` leaves the entry
  pending; the next leader claims every pending entry (``XAUTOCLAIM``) before it reads
  new ones, and after that, every second, whatever another consumer has held unacked
  for a second;
- an entry whose answer is kept is answered again, not run again (dedup by request id);
- an entry that a dead leader *started* but did not answer is run again only when that
  is safe: an order with a ``clientOrderId`` (the trading service returns the order it
  already placed, from the store); anything else is answered
  ``SERVICE_UNAVAILABLE`` ("outcome unknown"), since running it twice could trade twice;
- an entry past its deadline is dropped unrun: its sender has already told its client
  that nothing was done.

The leader runs up to ``bus.command_concurrency`` commands at once, one user's in the
order they were read (:mod:`.lanes`): a slow broker call for one user holds no other
user's commands. An entry still running here is not taken again when the every-second
``XAUTOCLAIM`` finds it unacknowledged.

The leader runs its own node's commands directly (no hop), behind the same fence. Pub/sub
drops a message to a subscriber that is reconnecting: a sender that times out reads the
kept answer once before it gives up.

Every order placed is marked *announced* in Redis once its events are on the bus. An
order found again by its ``clientOrderId`` without that mark was stored by a leader that
died before its events went out, or after some or all of them went out but before the
mark: the new leader announces again those of its events (its order, fills, position
and account) that are not in their streams' history (``announced``,
:mod:`fxgate.hub.announced`), so no client misses one and none sees an order or a fill
twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from redis.exceptions import RedisError

from fxgate.bus.cluster.lanes import Lanes
from fxgate.bus.cluster.lease import Lease
from fxgate.bus.cluster.wire import decode, encode, error_in, error_out
from fxgate.domain.errors import ErrorCode, FxgateError
from fxgate.domain.events import Event
from fxgate.domain.trading import (
    Account,
    AccountTerms,
    Order,
    OrderChanges,
    OrderRequest,
    Position,
)
from fxgate.services.ports.cluster import TradingCommands

log = logging.getLogger(__name__)

#: The command stream's name under the default prefix (``bus.redis_prefix``).
STREAM = "fxgate:commands"
GROUP = "leader"
RESULT_TTL = 600
#: Entries kept in the stream (trimmed approximately on every XADD).
STREAM_MAXLEN = 10_000
BATCH = 64
#: Milliseconds a command may stay unacknowledged with another consumer before the
#: leader takes it (and half of it: how long one read of new commands blocks).
CLAIM_IDLE_MS = 1000
#: Commands the leader runs at once unless told (``bus.command_concurrency``).
CONCURRENCY = 4


def unavailable(message: str, **details: Any) -> FxgateError:
    return FxgateError(message, code=ErrorCode.SERVICE_UNAVAILABLE, details=details or None)


class CommandRouter:
    def __init__(
        self,
        redis: Any,
        node_id: str,
        lease: Lease,
        *,
        timeout: float,
        prefix: str = "fxgate",
        clock: Callable[[], float] = time.time,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._redis = redis
        self.node_id = node_id
        self.concurrency = concurrency
        #: While serving: the lanes commands run in, and the entries running in them.
        self._lanes: Lanes | None = None
        self._inflight: set[str] = set()
        self._prefix = prefix
        self.stream = f"{prefix}:commands"
        self.reply_channel = f"{prefix}:reply:{node_id}"
        self._lease = lease
        #: The trading service commands run on here (set before the node starts).
        self.local: TradingCommands | None = None
        self.timeout = timeout
        self._clock = clock
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._subscribed = asyncio.Event()
        #: True once this node leads *and* its broker has started (commands run here).
        self.leading = False
        #: This node's broker, for the reads followers send (see ``follower.py``).
        self.broker: Any = None
        #: Awaited before a write is answered: the events it caused are out on the bus.
        self.flush: Callable[[], Awaitable[None]] | None = None
        #: Whether an event went out already (see ``_announced``); None: send again.
        self.announced: Callable[[Event], Awaitable[bool]] | None = None

    # -- the sender's side ---------------------------------------------------------------

    async def read(self, op: str, user_id: str, args: dict[str, Any]) -> Any:
        """A read of the leader's broker state (``account``, ``positions``, ...)."""
        return await self.call(f"read.{op}", user_id, None, args)

    async def call(self, op: str, user_id: str, actor: str | None, args: dict[str, Any]) -> Any:
        """Run ``op`` on the leader; its result, or its refusal raised here."""
        if self.leading and self._lease.valid():
            return await self._run(op, user_id, actor, args)
        rid = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            try:
                await self._redis.xadd(
                    self.stream,
                    {
                        "rid": rid,
                        "op": op,
                        "user": user_id,
                        "actor": actor or "",
                        "args": json.dumps(args),
                        "reply": self.reply_channel,
                        "deadline": repr(self._clock() + self.timeout),
                    },
                    maxlen=STREAM_MAXLEN,
                    approximate=True,
                )
            except Exception as exc:
                log.warning("cannot send a trading command to the leader: %s", exc)
                raise unavailable(
                    "Trading is unavailable: this node cannot reach Redis, and through it the"
                    " trading leader; nothing was sent",
                    reason="redis_unavailable",
                ) from None
            reply: dict[str, Any] | None
            try:
                reply = await asyncio.wait_for(asyncio.shield(future), self.timeout)
            except TimeoutError:
                reply = await self._kept(rid)
                if reply is None:
                    raise unavailable(
                        f"Trading is unavailable: no trading leader answered within"
                        f" {self.timeout:g} s; the request was not carried out (an order"
                        " with a clientOrderId can be sent again safely)",
                        reason="leader_timeout",
                    ) from None
        finally:
            self._pending.pop(rid, None)
        return _result(op, reply)

    async def _kept(self, rid: str) -> dict[str, Any] | None:
        with contextlib.suppress(Exception):
            raw = await self._redis.get(f"{self._prefix}:cmd:result:{rid}")
            if raw is not None:
                kept: dict[str, Any] = json.loads(raw)
                return kept
        return None

    async def listen(self) -> None:
        """Forever: deliver the answers published to this node's reply channel."""
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.reply_channel)
                self._subscribed.set()
                async for message in pubsub.listen():
                    reply = json.loads(message["data"])
                    future = self._pending.get(reply.get("rid", ""))
                    if future is not None and not future.done():
                        future.set_result(reply)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("trading replies: lost Redis (%s); resubscribing", exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def wait_subscribed(self, within: float) -> None:
        await asyncio.wait_for(self._subscribed.wait(), within)

    # -- the leader's side ---------------------------------------------------------------

    async def ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(self.stream, GROUP, id="0", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def serve(self) -> None:
        """While this node leads: take over what other consumers hold (all of it at
        first: the last leader's; then whatever stays unacknowledged for a second, e.g.
        taken by a leader that was paused and lost its lease), and run each new command
        concurrently (one user's in order), until the lease is no longer ours. Commands
        still running then are cancelled: unacknowledged, they go to the next leader."""
        await self.ensure_group()
        self._lanes = lanes = Lanes(self.concurrency)
        try:
            idle = 0
            while True:
                if not await self._claim(idle):
                    return
                idle = CLAIM_IDLE_MS
                got = await self._redis.xreadgroup(
                    GROUP, self.node_id, {self.stream: ">"}, count=BATCH, block=CLAIM_IDLE_MS // 2
                )
                if not await self._run_entries(got[0][1] if got else []):
                    return
        finally:
            self._lanes = None
            await lanes.close()
            self._inflight.clear()

    async def _claim(self, min_idle: int) -> bool:
        start = "0-0"
        while True:  # XAUTOCLAIM: entries delivered to a consumer that did not ack them
            claimed = await self._redis.xautoclaim(
                self.stream, GROUP, self.node_id, min_idle_time=min_idle, start_id=start,
                count=BATCH,
            )  # fmt: skip
            if not await self._run_entries(claimed[1]):
                return False
            start = _text(claimed[0])
            if start == "0-0":
                return True

    async def _run_entries(self, entries: list[Any]) -> bool:
        for entry_id, fields in entries:
            if fields is None:  # trimmed away meanwhile
                continue
            key = _text(entry_id)
            if key in self._inflight:  # claimed again while it runs here
                continue
            if not await self._lease.still_mine():
                log.warning("not the leader any more: leaving commands to the next one")
                return False
            decoded = {_text(k): _text(v) for k, v in fields.items()}
            self._inflight.add(key)
            job = functools.partial(self._run_entry, entry_id, key, decoded)
            if self._lanes is None:
                await job()
            else:
                await self._lanes.submit(decoded.get("user", ""), job)
        return True

    async def _run_entry(self, entry_id: Any, key: str, fields: dict[str, str]) -> None:
        try:
            if self._lease.valid():  # it may have waited in its lane meanwhile
                await self._handle(entry_id, fields)
        except (OSError, RedisError) as exc:
            # Unacknowledged: taken again (from its kept answer, if any) within a second.
            log.warning("trading command left for a retry: lost Redis (%s)", exc)
        finally:
            self._inflight.discard(key)

    async def _handle(self, entry_id: Any, fields: dict[str, str]) -> None:
        rid = fields.get("rid", "")
        result_key = f"{self._prefix}:cmd:result:{rid}"
        kept = await self._redis.get(result_key)
        if kept is not None:
            reply_raw = _text(kept)
        elif float(fields.get("deadline", "0")) < self._clock():
            log.info("dropped a trading command past its deadline", extra={"rid": rid})
            await self._redis.xack(self.stream, GROUP, entry_id)
            return
        else:
            reply = await self._execute(rid, fields)
            reply_raw = json.dumps(reply)
            await self._redis.set(result_key, reply_raw, ex=RESULT_TTL)
        await self._redis.publish(fields.get("reply", ""), reply_raw)
        await self._redis.xack(self.stream, GROUP, entry_id)

    async def _execute(self, rid: str, fields: dict[str, str]) -> dict[str, Any]:
        op, args = fields.get("op", ""), json.loads(fields.get("args", "{}"))
        started = f"{self._prefix}:cmd:started:{rid}"
        first = await self._redis.set(started, self.node_id, nx=True, ex=RESULT_TTL)
        again_ok = op.startswith("read.") or (
            op == "place_order" and args["request"].get("client_order_id")
        )
        if not first and not again_ok:
            exc = unavailable(
                "Trading leader changed while this request ran; its outcome is unknown:"
                " check your orders and positions before sending it again",
                reason="outcome_unknown",
            )
            return {"rid": rid, "ok": False, "error": error_out(exc)}
        user = fields.get("user", "")
        try:
            value = await self._run(op, user, fields.get("actor") or None, args)
        except FxgateError as exc:
            return {"rid": rid, "ok": False, "error": error_out(exc)}
        except Exception:
            log.exception("a trading command failed on the leader", extra={"op": op})
            return {"rid": rid, "ok": False, "error": error_out(FxgateError())}
        return {"rid": rid, "ok": True, "value": encode(value)}

    async def _announced(self, user_id: str, placed: tuple[Order, bool]) -> None:
        """Mark a placed order as announced (its events are out); an order returned by
        ``clientOrderId`` without the mark was stored by a leader that died before the
        mark: announce again what of it did not go out."""
        order, created = placed
        mark = f"{self._prefix}:cmd:announced:{user_id}:{order.id}"
        if not created and not await self._redis.exists(mark):
            again = getattr(self.local, "reannounce", None)
            if again is not None:
                log.warning(
                    "announcing again an order a dead leader stored", extra={"order": order.id}
                )
                await again(user_id, order, announced=self.announced)
                if self.flush is not None:
                    await self.flush()
        await self._redis.set(mark, 1, ex=RESULT_TTL)

    async def _run(self, op: str, user_id: str, actor: str | None, args: dict[str, Any]) -> Any:
        if op.startswith("read."):
            read = _READS.get(op)
            if read is None or self.broker is None:
                raise FxgateError(f"unknown broker read {op!r}")
            return await read(self.broker, user_id, args)
        run = _OPS.get(op)
        if run is None:
            raise FxgateError(f"unknown trading command {op!r}")
        if self.local is None:
            raise FxgateError("trading commands arrived before the trading service")
        result = await run(self.local, user_id, actor, args)
        if self.flush is not None:
            await self.flush()
        if op == "place_order":
            await self._announced(user_id, result)
        return result


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


_Op = Callable[[TradingCommands, str, str | None, dict[str, Any]], Awaitable[Any]]


async def _place(t: TradingCommands, user: str, actor: str | None, a: dict[str, Any]) -> Any:
    return await t.place_order(user, decode(OrderRequest, a["request"]), actor=actor)


async def _modify(t: TradingCommands, user: str, actor: str | None, a: dict[str, Any]) -> Any:
    changes = decode(OrderChanges, a["changes"])
    return await t.modify_order(user, a["order_id"], changes, actor=actor)


async def _cancel(t: TradingCommands, user: str, actor: str | None, a: dict[str, Any]) -> Any:
    return await t.cancel_order(user, a["order_id"], actor=actor)


async def _close(t: TradingCommands, user: str, actor: str | None, a: dict[str, Any]) -> Any:
    return await t.close_position(user, int(a["ticket"]), _dec(a.get("volume")), actor=actor)


async def _modify_position(
    t: TradingCommands, user: str, actor: str | None, a: dict[str, Any]
) -> Any:
    return await t.modify_position(
        user, int(a["ticket"]), _dec(a.get("stop_loss")), _dec(a.get("take_profit")), actor=actor
    )


_OPS: dict[str, _Op] = {
    "place_order": _place,
    "modify_order": _modify,
    "cancel_order": _cancel,
    "close_position": _close,
    "modify_position": _modify_position,
}


_READS: dict[str, Callable[[Any, str, dict[str, Any]], Awaitable[Any]]] = {
    "read.account": lambda b, user, a: b.account(user),
    "read.account_terms": lambda b, user, a: b.account_terms(user),
    "read.positions": lambda b, user, a: b.positions(user, a.get("symbol")),
    "read.position": lambda b, user, a: b.position(user, int(a["ticket"])),
    "read.orders": lambda b, user, a: b.orders(user, a.get("symbol")),
}
_READ_TYPES: dict[str, type] = {
    "read.account": Account,
    "read.account_terms": AccountTerms,
    "read.positions": Position,
    "read.position": Position,
    "read.orders": Order,
}


def _result(op: str, reply: dict[str, Any]) -> Any:
    if not reply.get("ok"):
        raise error_in(reply["error"])
    value = reply["value"]
    if op in _READ_TYPES:
        cls = _READ_TYPES[op]
        if isinstance(value, list):
            return [decode(cls, v) for v in value]
        return decode(cls, value)
    if op == "place_order":
        order, created = value
        return decode(Order, order), bool(created)
    if op in ("modify_order", "cancel_order"):
        return decode(Order, value)
    return decode(Position, value)


class ClusterCommands:
    """:class:`~fxgate.services.ports.cluster.TradingCommands` through the leader."""

    def __init__(self, router: CommandRouter) -> None:
        self._router = router

    async def place_order(
        self, user_id: str, request: OrderRequest, *, actor: str | None = None
    ) -> tuple[Order, bool]:
        result: tuple[Order, bool] = await self._router.call(
            "place_order", user_id, actor, {"request": encode(request)}
        )
        return result

    async def modify_order(
        self, user_id: str, order_id: str, changes: OrderChanges, *, actor: str | None = None
    ) -> Order:
        args = {"order_id": order_id, "changes": encode(changes)}
        order: Order = await self._router.call("modify_order", user_id, actor, args)
        return order

    async def cancel_order(self, user_id: str, order_id: str, *, actor: str | None = None) -> Order:
        order: Order = await self._router.call(
            "cancel_order", user_id, actor, {"order_id": order_id}
        )
        return order

    async def close_position(
        self,
        user_id: str,
        ticket: int,
        volume: Decimal | None = None,
        *,
        actor: str | None = None,
    ) -> Position:
        args = {"ticket": ticket, "volume": encode(volume)}
        position: Position = await self._router.call("close_position", user_id, actor, args)
        return position

    async def modify_position(
        self,
        user_id: str,
        ticket: int,
        stop_loss: Decimal | None,
        take_profit: Decimal | None,
        *,
        actor: str | None = None,
    ) -> Position:
        args = {
            "ticket": ticket,
            "stop_loss": encode(stop_loss),
            "take_profit": encode(take_profit),
        }
        position: Position = await self._router.call("modify_position", user_id, actor, args)
        return position
