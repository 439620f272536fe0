"""The canonical limits on what a client sends, for dialects with their own sessions.

``ws.max_messages_per_second`` per connection, with the canonical session's answer to a
flood (``fxgate.protocol.session``): a burst over the rate is dropped and told once a
second, and the connection stays; a client still over it ``ws.flood_grace`` seconds into
a run of drops, or dropping more than ten times the rate within a second, is closed
with 4029. ``ws.max_message_size`` is checked by :func:`check_size`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

from fxgate.config.settings import WsSettings
from fxgate.domain.errors import ValidationError
from fxgate.protocol.limits import TokenBucket


class Verdict(enum.Enum):
    OK = "ok"
    #: Dropped, and the client was told less than a second ago.
    DROP = "drop"
    #: Dropped: tell the client (once a second).
    TELL = "tell"
    #: Close the connection (4029).
    KICK = "kick"


class InputGuard:
    def __init__(self, limits: WsSettings, clock: Callable[[], float]) -> None:
        self.limits = limits
        self._clock = clock
        self._bucket = TokenBucket(limits.max_messages_per_second, clock)
        self._window = (0.0, 0)
        self._told = -1e18
        self._flood_start = 0.0
        self._last_drop = -1e18

    def admit(self) -> Verdict:
        if self._bucket.take():
            return Verdict.OK
        now = self._clock()
        if now - self._last_drop >= 1.0:
            self._flood_start = now
        self._last_drop = now
        start, dropped = self._window
        if now - start >= 1.0:
            start, dropped = now, 0
        dropped += 1
        self._window = (start, dropped)
        rate = self.limits.max_messages_per_second
        if now - self._flood_start >= self.limits.flood_grace or dropped > 10 * rate:
            return Verdict.KICK
        if now - self._told >= 1.0:
            self._told = now
            return Verdict.TELL
        return Verdict.DROP


def check_size(raw: str | bytes, limits: WsSettings) -> None:
    if len(raw) > limits.max_message_size:
        raise ValidationError(
            "Message too large",
            field="frame",
            reason="too_large",
            details={"limit": limits.max_message_size, "size": len(raw)},
        )
