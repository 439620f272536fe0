"""The trading leader's lease in Redis, with a fencing token.

``<prefix>:leader`` holds ``<node>:<token>`` with a TTL of ``bus.leader_lease``: taken only
when absent (``SET NX PX``, in a script that also draws the token), renewed by its holder
every third of the lease, deleted by its holder on a clean stop. The token is
``INCR <prefix>:leader:fence``: every new leader has a larger one than any before it.

Two fences keep a paused old leader (a VM stalled, a process stopped under a debugger)
from writing after another took over:

- :meth:`Lease.valid`, no I/O, by this node's monotonic clock: the lease counts as held
  until ``lease`` seconds after the renewal that was *sent* last was answered, minus a
  margin for clock drift; a process that wakes up after a pause finds it expired before
  it writes anything. Every trading store write on the leader checks it
  (:class:`~fxgate.bus.cluster.fence.FencedTradingStore`).
- :meth:`Lease.still_mine`, one round trip: Redis still names this node *and token*; each
  trading command is checked with it before it runs.

Neither helps when the lease key itself is lost (a Redis failover before it reached the
replica) while the old leader's clock says it still holds it: a third fence is in the
store, which refuses a trading write carrying a lower token than one it has seen
(:attr:`Lease.fence_token`, passed by the fenced store; :meth:`Lease.superseded` is
called when the store refuses).

A Redis that cannot be reached is a lease that cannot be renewed: the leader stops
writing when :meth:`valid` runs out, exactly as if it had lost the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fxgate.services.ports.store.errors import StoreFencedError

log = logging.getLogger(__name__)


_ACQUIRE = """
if redis.call('exists', KEYS[1]) == 1 then return 0 end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return token
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('pexpire', KEYS[1], ARGV[2]) return 1
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""

#: The share of the lease the clock may drift by (a leader stops this much early).
DRIFT = 0.1


class Lease:
    def __init__(
        self,
        redis: Any,
        node_id: str,
        *,
        lease: float,
        eligible: bool = True,
        prefix: str = "fxgate",
        clock: Callable[[], float] = time.monotonic,
        clock_fence: bool = True,
    ) -> None:
        self._redis = redis
        self._key = f"{prefix}:leader"
        self._fence_key = f"{prefix}:leader:fence"
        self.node_id = node_id
        self.lease = lease
        self.eligible = eligible
        self._clock = clock
        #: This node's fencing token while it leads, else None.
        self.token: int | None = None
        #: The token of this node's last term, kept after the lease is lost: writes
        #: still in flight then carry it, and the store refuses them once a newer
        #: leader has written. None before the first election.
        self.fence_token: int | None = None
        #: False only in tests (``FXGATE_TEST_NO_CLOCK_FENCE``): the lease counts as held
        #: until Redis says otherwise, so that the store's fence is seen working alone.
        self._clock_fence = clock_fence
        self._valid_until = 0.0
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)
        self.reachable = True
        self._on_lost: Callable[[], None] | None = None

    @property
    def held(self) -> bool:
        return self.token is not None

    @property
    def _value(self) -> str:
        return f"{self.node_id}:{self.token}"

    @property
    def _px(self) -> int:
        return int(self.lease * 1000)

    def valid(self) -> bool:
        if not self._clock_fence:
            return self.token is not None
        return self.token is not None and self._clock() < self._valid_until

    async def try_acquire(self) -> bool:
        sent = self._clock()
        keys, args = [self._key, self._fence_key], [self.node_id, self._px]
        token = int(await self._acquire(keys=keys, args=args))
        if token:
            self.token = self.fence_token = token
            self._valid_until = sent + self.lease * (1 - DRIFT)
        return bool(token)

    async def renew(self) -> bool:
        sent = self._clock()
        if not int(await self._renew(keys=[self._key], args=[self._value, self._px])):
            return False
        self._valid_until = sent + self.lease * (1 - DRIFT)
        return True

    async def still_mine(self) -> bool:
        if not self.valid():
            return False
        value = await self._redis.get(self._key)
        return bool(value is not None and _text(value) == self._value)

    async def release(self) -> None:
        if self.token is not None:
            with contextlib.suppress(Exception):
                await self._release(keys=[self._key], args=[self._value])
        self.token = None

    async def campaign(
        self,
        on_elected: Callable[[], Awaitable[None]],
        on_lost: Callable[[], None],
        on_follow: Callable[[], None] = lambda: None,
    ) -> None:
        """Forever: take the lease when it is free (if eligible), keep it, and call
        ``on_lost`` (once) when it cannot be kept, whether Redis said so or the clock;
        ``on_follow`` whenever another node is seen holding it."""
        step = self.lease / 3
        self._on_lost = on_lost
        while True:
            # First, with no I/O: a node woken from a pause finds its lease run out and
            # stops its broker now, not a Redis round trip later.
            self.ran_out()
            try:
                if self.token is None:
                    if self.eligible and await self.try_acquire():
                        log.info("elected trading leader", extra={"token": self.token})
                        try:
                            await on_elected()
                        except StoreFencedError:
                            # The broker's first write on start-up was refused: a newer
                            # leader has written (a failover lost this lease's key). The
                            # term is over before it began; not a Redis problem.
                            self.superseded()
                    elif await self._redis.exists(self._key):
                        on_follow()
                elif not await self.renew():
                    self._lose(on_lost, "another node holds the lease")
                self.reachable = True
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.reachable:
                    log.error("cannot reach Redis for the leader lease: %s", exc)
                self.reachable = False
            self.ran_out()
            await asyncio.sleep(step)

    def ran_out(self) -> None:
        """Lose the lease now if it is held but no longer valid by the clock: from the
        campaign, and from the fence when it refuses a write (so that the first refused
        write stops the broker, whatever task ran first after a pause)."""
        if self.token is not None and not self.valid() and self._on_lost is not None:
            self._lose(self._on_lost, "the lease ran out before it could be renewed")

    def superseded(self) -> None:
        """The store refused a write: a newer leader has written. Lose the lease now,
        whatever the clock says (it was wrong: a failover lost the key, or a pause)."""
        if self.token is not None and self._on_lost is not None:
            self._lose(self._on_lost, "the store has seen a newer leader's fencing token")

    def _lose(self, on_lost: Callable[[], None], why: str) -> None:
        log.error(
            "lost the trading lease (%s): this node serves as a follower until it is restarted",
            why,
            extra={"token": self.token},
        )
        # A broker stopped here holds state another leader has since changed: it is not
        # started again in this process (a restart reloads it from the store).
        self.eligible = False
        self.token = None
        self._valid_until = 0.0
        on_lost()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
