"""One dashboard message on its way out, framed once per framer and shared.

A framer is what a connection's transport uses to turn a payload into a WebSocket
frame: plain, or permessage-deflate with one set of negotiated parameters. There is
one framer object per parameter set in the process (``fxgate.web.ws.deflate``), so
caching frames by framer means a market-data batch is compressed once per parameter
set, however many connections share it, and a user's own message once per parameter
set among that user's connections.
"""

from __future__ import annotations

from typing import Protocol


class Framer(Protocol):
    def frame(self, payload: bytes) -> bytes:
        """The complete frame carrying ``payload``."""
        ...


class Outgoing:
    __slots__ = ("_frames", "kind", "payload", "ref")

    def __init__(self, kind: str, payload: bytes, ref: str | None = None) -> None:
        self.kind = kind
        self.payload = payload
        #: A notification's id: which event it tells of.
        self.ref = ref
        self._frames: dict[Framer, bytes] = {}

    def frame(self, framer: Framer) -> bytes:
        found = self._frames.get(framer)
        if found is None:
            found = self._frames[framer] = framer.frame(self.payload)
        return found

    @property
    def framings(self) -> int:
        """How many times it was framed (the tests' proof of sharing)."""
        return len(self._frames)
