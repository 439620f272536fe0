"""The activity feed: log lines for dashboards, published on the ``logs`` channel.

Each line is seed 002's ``logs_update`` payload, ``{timestamp, level, message, module,
extra}``. A line about a user names them (their own stream of the channel); a system
line names nobody and goes to the channel's shared stream, which only admins receive.
Lines below INFO are not published: a dashboard shows what happened, not how.

Nothing secret may reach a dashboard through ``extra``: keys that name a secret
(token, password, secret, HMAC, signature, authorization, cookie) are dropped, and so
are values shaped like a JWT, whatever key carries them. The services pass ids and
codes only; this is the net under them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from fxgate.domain.events import Event
from fxgate.domain.timefmt import iso_ms
from fxgate.services.ports.activity import Level, Scalar

CHANNEL = "logs"
_RANK = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
MAX_MESSAGE = 500
MAX_VALUE = 200
MAX_EXTRA = 20

_SECRET_KEY = re.compile(
    r"token|passw|secret|hmac|signature|authori[sz]ation|cookie|credential|private|api_?key$",
    re.IGNORECASE,
)
_JWT = re.compile(r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]*")


def safe_extra(extra: Mapping[str, Any]) -> dict[str, Scalar]:
    """``extra`` without secrets: scalar values only, short, and no key or value that
    looks like a credential."""
    out: dict[str, Scalar] = {}
    for key, value in extra.items():
        if len(out) >= MAX_EXTRA or _SECRET_KEY.search(key):
            continue
        if isinstance(value, str):
            if _JWT.search(value):
                continue
            out[key] = value[:MAX_VALUE]
        elif value is None or isinstance(value, bool | int | float):
            out[key] = value
    return out


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
            "message": message[:MAX_MESSAGE],
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
