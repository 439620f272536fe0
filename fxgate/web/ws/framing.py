"""WebSocket framing for server messages, done once per event and shared by every client.

Server-to-client frames are never masked (RFC 6455 §5.1), so one ``bytes`` object can go
to every connection unchanged. Dialects (``fxgate.protocol``) return payloads; this
module is where they become frames. For live events the hub calls the connection's
encoder once per event per encoder object, so every connection of a dialect shares one
:class:`FramedDialect` (:func:`framed`): one encoding and one framing per event per
dialect, and the writer only concatenates.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fxgate.hub.sink import Dialect

if TYPE_CHECKING:
    from fxgate.plugins.channel import Channel

_TEXT = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """A complete unfragmented, uncompressed text frame holding ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _TEXT, 126, n) + payload
    return struct.pack("!BBQ", _TEXT, 127, n) + payload


class FramedDialect:
    """A dialect whose payloads come out as WebSocket text frames."""

    __slots__ = ("inner", "name")

    def __init__(self, inner: Dialect) -> None:
        self.inner = inner
        self.name = inner.name

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        payload = self.inner.encode_event(channel, envelope)
        return None if payload is None else text_frame(payload)


_FRAMED: dict[int, FramedDialect] = {}


def framed(dialect: Dialect) -> FramedDialect:
    """The one framed encoder of ``dialect`` (the hub's per-event cache is keyed by the
    encoder object, so two would mean framing twice)."""
    found = _FRAMED.get(id(dialect))
    if found is None or found.inner is not dialect:
        found = _FRAMED[id(dialect)] = FramedDialect(dialect)
    return found


_TEXT_DEFLATED = 0xC1  # FIN + RSV1 (permessage-deflate, RFC 7692) + opcode 1


def deflated_text_frame(data: bytes) -> bytes:
    """A text frame whose payload ``data`` is already compressed (RSV1 set)."""
    n = len(data)
    if n < 126:
        return bytes((_TEXT_DEFLATED, n)) + data
    if n < 65536:
        return struct.pack("!BBH", _TEXT_DEFLATED, 126, n) + data
    return struct.pack("!BBQ", _TEXT_DEFLATED, 127, n) + data
