"""The one place that makes a Redis client for the node (the bus, its subscription, the
cluster), from ``bus.redis_url``: a plain URL, or a master found through Sentinel.

With Sentinel, the client is redis-py's own (:class:`redis.asyncio.sentinel.Sentinel`,
``master_for``): each new connection asks the sentinels where the master is, and a
connection to a demoted master (``READONLY``, or killed by Sentinel's ``CLIENT KILL`` on
failover) is dropped, so the next command, the next subscription, reaches the new
master. fxgate writes no failover logic of its own; what the bus does on top is in
:mod:`fxgate.bus.redis` (re-subscribe, script reload, epochs).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.exceptions import RedisError

from fxgate.config.redis_url import has_password, is_sentinel, parse_sentinel, redacted, url_problem
from fxgate.config.settings import BusSettings, Settings

log = logging.getLogger(__name__)


def password(s: BusSettings) -> str | None:
    """The password of ``bus.redis_password_file`` (its first line), if set."""
    if not s.redis_password_file:
        return None
    lines = Path(s.redis_password_file).read_text(encoding="utf-8").splitlines()
    return lines[0] if lines else ""


def connect(s: BusSettings, *, socket_timeout: float | None) -> aioredis.Redis:
    """A client (a pool; nothing is connected yet). ``socket_timeout=None``: reads wait
    as long as they must (the subscription)."""
    secret = password(s)
    options: dict[str, Any] = {
        "socket_timeout": socket_timeout,
        "socket_connect_timeout": s.redis_timeout,
    }
    if not is_sentinel(s.redis_url):
        if secret is not None:
            options["password"] = secret
        return aioredis.Redis.from_url(s.redis_url, **options)
    target = parse_sentinel(s.redis_url)
    sentinels = Sentinel(  # type: ignore[no-untyped-call]
        list(target.sentinels),
        sentinel_kwargs={
            "socket_timeout": s.redis_timeout,
            "socket_connect_timeout": s.redis_timeout,
            "ssl": target.tls,
        },
    )
    master: aioredis.Redis = sentinels.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=secret if secret is not None else target.password,
        ssl=target.tls,
        **options,
    )
    return master


async def follow_master(client: Any, what: str, every: float = 1.0) -> None:
    """With Sentinel, ask every ``every`` seconds where the master is; when it moved,
    drop every connection of the pool, those in use too, so that each of their users
    (a subscription, a blocking read) fails and reconnects to the new master at once.

    redis-py alone reconnects a connection only when it breaks. After a ``SENTINEL
    FAILOVER`` the old master keeps taking writes until Sentinel reconfigures it, up to
    ten seconds later, and what it took then is lost. Returns at once for a plain URL.
    """
    pool = getattr(client, "connection_pool", None)
    if not isinstance(pool, SentinelConnectionPool):
        return
    # Where this watcher last saw the master: not the pool's ``master_address``, which
    # a connection opened meanwhile updates while older ones stay where they were.
    known = pool.master_address
    while True:
        await asyncio.sleep(every)
        try:
            known = await _follow(pool, known, what)
        except Exception as exc:  # redis-py's races on disconnect: the next round again
            log.warning("following the Redis master (%s): %s: %s", what, type(exc).__name__, exc)


async def _follow(pool: SentinelConnectionPool, known: Any, what: str) -> Any:
    """One round of :func:`follow_master`: where the master is now, as it knows it."""
    try:
        address = tuple(await pool.sentinel_manager.discover_master(pool.service_name))
    except (RedisError, OSError):
        return known  # no sentinel answers, or none knows a master: nothing to follow yet
    if known is not None and address != tuple(known):
        log.warning("Redis master moved (%s:%s to %s:%s): %s reconnecting", *known, *address, what)
        pool.master_address = address
        await pool.disconnect()
    elif _elsewhere(pool, address):
        # A connection that reconnected in the middle of the switch (Sentinel drops
        # the old master's clients before every sentinel names the new one) is open
        # to the old master, now a replica: a subscription there hears nothing.
        log.warning("a Redis connection is not on the master %s:%s: %s reconnecting",
                    *address, what)  # fmt: skip
        await pool.disconnect()
    return address


def _elsewhere(pool: Any, address: tuple[Any, ...]) -> bool:
    """Whether a connection of ``pool`` is open to another server than ``address``. The
    pool's connection lists are redis-py's private state, read here only."""
    conns = [
        *getattr(pool, "_available_connections", ()),
        *getattr(pool, "_in_use_connections", ()),
    ]
    master = (str(address[0]), int(address[1]))
    for c in conns:
        host, port = getattr(c, "host", None), getattr(c, "port", None)
        if host and port and getattr(c, "is_connected", False) and (str(host), int(port)) != master:
            return True
    return False


async def close(client: Any) -> None:
    """Close the client and, for Sentinel, its connections to the sentinels (which
    ``aclose`` leaves open)."""
    with contextlib.suppress(Exception):
        await client.aclose()
    manager = getattr(getattr(client, "connection_pool", None), "sentinel_manager", None)
    if manager is not None:
        with contextlib.suppress(Exception):
            await manager.aclose()


def problems(settings: Settings) -> list[str]:
    """``bus.redis_url`` and ``bus.redis_password_file``, one line each."""
    s = settings.bus
    problem = url_problem(s.redis_url)
    if problem is not None:
        return [f"bus.redis_url: {redacted(s.redis_url)!r} {problem}"]
    if not s.redis_password_file:
        return []
    if has_password(s.redis_url):
        return ["bus.redis_password_file: bus.redis_url has a password too; give it in one place"]
    try:
        if not password(s):
            return [f"bus.redis_password_file: {s.redis_password_file} is empty"]
    except (OSError, UnicodeDecodeError) as exc:
        return [f"bus.redis_password_file: cannot read {s.redis_password_file} ({exc})"]
    return []


def where(s: BusSettings) -> str:
    """The Redis named in errors: the URL, redacted, and for Sentinel what it asks for."""
    if is_sentinel(s.redis_url):
        target = parse_sentinel(s.redis_url)
        hosts = ",".join(f"{h}:{p}" for h, p in target.sentinels)
        return f"Redis master {target.service!r} via sentinels {hosts}"
    return f"Redis at {redacted(s.redis_url)}"
