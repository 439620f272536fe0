"""This node's membership of the cluster: the lease campaign, the command router, the
leader's consumer, over one Redis connection pool."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from fxgate.bus.cluster.commands import CONCURRENCY, ClusterCommands, CommandRouter
from fxgate.bus.cluster.fence import FencedStore
from fxgate.bus.cluster.follower import FollowerBroker
from fxgate.bus.cluster.lease import Lease
from fxgate.config.settings import Settings
from fxgate.domain.events import Event
from fxgate.services.ports.broker import Broker
from fxgate.services.ports.cluster import TradingCommands
from fxgate.services.ports.store import Store

log = logging.getLogger(__name__)


def node_id() -> str:
    """Unique per process and start: host, pid and a random part (a restarted process
    with the same pid is another node)."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class RedisCluster:
    def __init__(
        self,
        redis: Any,
        *,
        lease: float,
        timeout: float,
        eligible: bool,
        prefix: str = "fxgate",
        name: str | None = None,
        clock_fence: bool = True,
        concurrency: int = CONCURRENCY,
    ) -> None:
        self._redis = redis
        self.node_id = name or node_id()
        self.lease = Lease(
            redis,
            self.node_id,
            lease=lease,
            eligible=eligible,
            prefix=prefix,
            clock_fence=clock_fence,
        )
        self.router = CommandRouter(
            redis, self.node_id, self.lease, timeout=timeout, prefix=prefix, concurrency=concurrency
        )
        self.commands = ClusterCommands(self.router)
        self._tasks: list[asyncio.Task[None]] = []
        self._serving: asyncio.Task[None] | None = None

    @property
    def is_leader(self) -> bool:
        return self.router.leading and self.lease.valid()

    def lease_valid(self) -> bool:
        return self.lease.valid()

    def healthy(self) -> bool:
        return self.lease.reachable

    def fence(self, store: Store) -> Store:
        lease = self.lease
        return cast(
            Store,
            FencedStore(
                store,
                lease.valid,
                lease.ran_out,
                token=lambda: lease.fence_token,
                superseded=lease.superseded,
            ),
        )

    def attach(
        self,
        local: TradingCommands,
        flush: Callable[[], Awaitable[None]] | None = None,
        announced: Callable[[Event], Awaitable[bool]] | None = None,
    ) -> None:
        self.router.local = local
        self.router.flush = flush
        self.router.announced = announced

    def broker_view(self, broker: Broker) -> Broker:
        self.router.broker = broker
        return cast(Broker, FollowerBroker(broker, self.router))

    async def start(
        self,
        *,
        on_elected: Callable[[], Awaitable[None]],
        on_lost: Callable[[], None],
        on_follow: Callable[[], None],
    ) -> None:
        await self._redis.ping()
        await self.router.ensure_group()
        loop = asyncio.get_running_loop()
        from fxgate.bus.redis_client import follow_master

        # Sentinel: the lease and the command stream move to a new master at once.
        self._tasks.append(
            loop.create_task(follow_master(self._redis, "cluster"), name="cluster-master")
        )
        self._tasks.append(loop.create_task(self.router.listen(), name="cluster-replies"))
        await self.router.wait_subscribed(5)

        async def elected() -> None:
            await on_elected()
            self.router.leading = True
            self._serving = loop.create_task(self._serve(), name="cluster-commands")

        def lost() -> None:
            self.router.leading = False
            if self._serving is not None:
                self._serving.cancel()
            on_lost()

        self._tasks.append(
            loop.create_task(self.lease.campaign(elected, lost, on_follow), name="cluster-lease")
        )

    async def _serve(self) -> None:
        while True:
            try:
                await self.router.serve()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("trading commands: lost Redis (%s); reading again", exc)
                await asyncio.sleep(0.5)

    async def stop(self) -> None:
        self.router.leading = False
        await cancel_each([*([self._serving] if self._serving else []), *self._tasks])
        await self.lease.release()
        from fxgate.bus.redis_client import close

        await close(self._redis)


def build(settings: Settings) -> RedisCluster:
    """The cluster of a node whose bus is ``redis``: the same ``bus.redis_url`` (or
    Sentinel's master), through the bus's one client factory."""
    from fxgate.bus.redis_client import connect

    client = connect(settings.bus, socket_timeout=settings.bus.redis_timeout + 2)
    return RedisCluster(
        client,
        lease=settings.bus.leader_lease,
        timeout=settings.bus.command_timeout,
        concurrency=settings.bus.command_concurrency,
        eligible=settings.broker.leader_eligible,
        prefix=settings.bus.redis_prefix,
        # A test hook, not a setting: shows the store's fence stopping an old leader
        # whose own clock would not (tests/test_cluster_store_fence.py).
        clock_fence=not os.environ.get("FXGATE_TEST_NO_CLOCK_FENCE"),
    )


async def cancel_each(tasks: list[asyncio.Task[None]], within: float = 2.0) -> None:
    """Cancel the tasks one after the other, each awaited (bounded): cancelling several
    redis-py reads of one pool at once can leave them waiting on each other."""
    for task in tasks:
        task.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), within)
