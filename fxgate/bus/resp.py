"""A Redis connection's socket driven directly, for the Redis bus's two hot paths.

Through redis-py's asyncio client, a published event cost per command a pool checkout, a
Task (``asyncio.wait_for`` around each send on Python 3.11) and a coroutine chain per
reply, and per pub/sub message a read under its own timer and a Task wake-up. Each Task
wake-up is one more event-loop iteration between a tick and the hub, and on a busy node
every iteration also carries a slice of the fan-out (the frame writer flushes a chunk
of connections per iteration): that was most of the hop's latency, and much of its CPU.

redis-py still opens the connection (URL, TLS, AUTH, HELLO, SELECT, Sentinel: whatever
the pool's connection class does); :func:`take` then moves the connected socket to a
:class:`Link`, which writes a command the moment it is given one and parses replies
and pushes in ``data_received``, on the loop's own I/O callback, with no Task between.
The RESP parsing and packing themselves are hiredis's (the C parser redis-py uses when it
is installed): only the transport is ours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

log = logging.getLogger(__name__)


class ReplyError(Exception):
    """A ``-ERR ...`` reply: returned as a value, in its place among the replies."""


#: What ``hiredis.Reader.gets`` answers while the buffer ends inside a reply (a
#: sentinel of ours: its default, False, is also a RESP3 boolean reply).
_MORE = object()


#: hiredis's packer; its stub types the argument as a one-element tuple.
_pack_command: Callable[[tuple[bytes | str | int, ...]], bytes] = hiredis.pack_command  # type: ignore[assignment]


def pack(*args: bytes | str | int) -> bytes:
    """One command as a RESP array of bulk strings (hiredis's packer, as redis-py uses)."""
    return _pack_command(args)


class Link(asyncio.Protocol):
    """One socket to Redis: ``write`` sends at once; each reply or push goes to
    ``on_reply`` as it is parsed, after ``on_read`` (if given) once per read; ``on_lost``
    is told once when the socket is gone."""

    def __init__(
        self,
        on_reply: Callable[[Any], None],
        on_lost: Callable[[Exception | None], None],
        on_read: Callable[[], None] | None = None,
    ) -> None:
        self._on_reply = on_reply
        self._on_lost = on_lost
        self._on_read = on_read
        self._reader = hiredis.Reader(replyError=ReplyError, notEnoughData=_MORE)
        self._transport: asyncio.Transport | None = None
        #: redis-py's connection object that opened the socket, and its pool.
        self.conn: Any = None
        self.pool: Any = None
        #: The protocol the socket had before (redis-py's stream reader's).
        self.inner: asyncio.BaseProtocol | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._on_read is not None:
            self._on_read()
        reader = self._reader
        reader.feed(data)
        on_reply = self._on_reply
        while True:
            try:
                value = reader.gets()
            except hiredis.ProtocolError as exc:
                log.error("Redis sent what is not RESP (%s): closing the connection", exc)
                self.close()
                return
            if value is _MORE:
                return
            try:
                on_reply(value)
            except Exception:
                log.exception("Redis reply handler failed")

    def eof_received(self) -> bool | None:
        return None  # close

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.closed = True
            self._on_lost(exc)
        # redis-py's own protocol learns it too: its ``disconnect`` (the pool's, on a
        # Sentinel failover) waits for that.
        inner, self.inner = self.inner, None
        if inner is not None:
            inner.connection_lost(exc)

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(data)

    def close(self) -> None:
        """Drop the socket now (what is unsent is lost); ``on_lost`` follows."""
        if self._transport is not None:
            self._transport.abort()


async def take(client: aioredis.Redis, link: Link) -> None:
    """A connection of ``client``'s pool, opened by redis-py, its socket given to ``link``.

    It stays counted as in use by the pool, so that what the pool does to every
    connection (``disconnect`` when a Sentinel master moved) reaches this one too. The
    only private piece of redis-py used: the connection's stream writer, whose transport
    moves to ``link`` right after the pool's checks, when nothing is unread."""
    pool = client.connection_pool
    conn = await pool.get_connection()  # type: ignore[no-untyped-call]
    writer = getattr(conn, "_writer", None)
    if writer is None:
        await pool.release(conn)
        raise RedisConnectionError("the Redis connection has no stream")
    transport = writer.transport
    link.conn, link.pool, link.inner = conn, pool, transport.get_protocol()
    transport.set_protocol(link)
    link.connection_made(transport)


async def release(link: Link) -> None:
    """Close ``link``, and give the redis-py connection behind it back to its pool,
    closed (the pool opens it again for its next user)."""
    link.close()
    conn, pool, link.conn, link.pool = link.conn, link.pool, None, None
    if conn is None:
        return
    try:
        await conn.disconnect(nowait=True)
        if pool is not None:
            await pool.release(conn)
    except Exception as exc:  # already gone; nothing to keep
        log.debug("closing a Redis connection: %s", exc)
