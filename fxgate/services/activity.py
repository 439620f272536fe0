"""The activity feed: log lines for dashboards, published on the ``logs`` channel.

Each line is seed 002's ``logs_update`` payload, ``{timestamp, level, message, module,
extra}``. A line about a user names them (their own stream of the channel); a system
line names nobody and goes to the channel's shared stream, which only admins receive.
Lines below INFO are not published: a dashboard shows what happened, not how.

Nothing secret may reach a dashboard through ``extra``: the services pass ids and codes
only, and :func:`fxgate.domain.redact.safe_extra` is the net under them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from fxgate.domain.events import Event
from fxgate.domain.redact import redact_text, safe_extra
from fxgate.domain.timefmt import iso_ms
from fxgate.services.ports.activity import Level, Scalar

__all__ = ["CHANNEL", "ActivityFeed", "NoActivity", "safe_extra"]

CHANNEL = "logs"
_RANK = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
MAX_MESSAGE = 500


class ActivityFeed:
    """:class:`~fxgate.services.ports.activity.ActivityLog` over the bus's publish."""

    def __init__(
        self,
        publish: Callable[[Event], None],
        *,
        min_level: Level = "INFO",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._publish = publish
        self._min = _RANK[min_level]
        self._clock = clock

    def user(self, user_id: str, level: Level, message: str, module: str, **extra: Scalar) -> None:
        self._emit(user_id, level, message, module, extra)

    def system(self, level: Level, message: str, module: str, **extra: Scalar) -> None:
        self._emit(None, level, message, module, extra)

    def _emit(
        self,
        user_id: str | None,
        level: Level,
        message: str,
        module: str,
        extra: Mapping[str, Any],
    ) -> None:
        if _RANK[level] < self._min:
            return
        ts = self._clock()
        line = {
            "timestamp": iso_ms(ts),
            "level": level,
            "message": redact_text(message[:MAX_MESSAGE]),
            "module": module,
            "extra": safe_extra(extra),
        }
        self._publish(Event(CHANNEL, line, user_id=user_id, ts=ts))


class NoActivity:
    """An activity log that says nothing (services built without a feed, in tests)."""

    def user(self, user_id: str, level: Level, message: str, module: str, **extra: Scalar) -> None:
        return None

    def system(self, level: Level, message: str, module: str, **extra: Scalar) -> None:
        return None
