"""What the hub needs from a connection and from a dialect: two small ports.

The hub never awaits a client: ``deliver`` queues and returns. How the bytes reach
the socket (and what happens to a client that cannot keep up) is the writer's job.

A dialect (``fxgate.protocol``) turns an envelope into *payload* bytes and knows
nothing of framing. A sink's ``dialect`` is whatever encoder its transport wants the
hub to call: the WebSocket transport gives every connection of a dialect one shared
encoder that also frames (``fxgate.web.ws.framing.FramedDialect``). The hub caches the
result per event and per encoder object, so an event is encoded and framed once per
dialect and the same bytes go to every matching connection.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from fxgate.domain.errors import Disconnect
    from fxgate.plugins.channel import Channel, Principal


class Dialect(Protocol):
    """Turns a canonical envelope into this dialect's bytes (or None: not sent)."""

    name: str

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None: ...


class Sink(Protocol):
    """A connection as the hub sees it."""

    principal: Principal
    dialect: Dialect

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        """Queue a frame; never blocks, never raises. ``conflate_key`` lets a newer
        frame with the same key replace a queued one while the client is slow."""

    def kick(self, disconnect: Disconnect) -> None:
        """Close the connection (slow consumer, auth expiry, ...): one row of the
        close-code table, never an ad-hoc code and reason."""
