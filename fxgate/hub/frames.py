"""WebSocket framing for server messages, done once per event and shared by every client.

Server-to-client frames are never masked (RFC 6455 §5.1), so one ``bytes`` object can go
to every connection unchanged. The connection's writer only concatenates.
"""

from __future__ import annotations

import struct

_TEXT = 0x81  # FIN + opcode 1 (text)


def text_frame(payload: bytes) -> bytes:
    """A complete unfragmented, uncompressed text frame holding ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", _TEXT, 126, n) + payload
    return struct.pack("!BBQ", _TEXT, 127, n) + payload
