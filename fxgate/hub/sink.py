"""What the hub needs from a connection and from a dialect: two small ports.

The hub never awaits a client: ``deliver`` queues and returns. How the bytes reach
the socket (and what happens to a client that cannot keep up) is the writer's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fxgate.plugins.channel import Channel, Principal


class Dialect(Protocol):
    """Turns a canonical envelope into this dialect's frame (or None: not sent)."""

    name: str

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None: ...


class Sink(Protocol):
    """A connection as the hub sees it."""

    principal: Principal
    dialect: Dialect

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        """Queue a frame; never blocks, never raises. ``conflate_key`` lets a newer
        frame with the same key replace a queued one while the client is slow."""

    def kick(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` (slow consumer, auth expiry, ...)."""
