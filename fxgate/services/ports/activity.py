"""The activity port: what the services tell the ``logs`` channel they did.

Services call it with a message they wrote for a person to read and a few named,
scalar facts (``extra``): an order id, a symbol, a reason code. It is never fed from
the text log (no handler scrapes log records), so what reaches a dashboard is only what
a service chose to say, and the implementation drops anything that looks like a
secret as a second line of defence.
"""

from __future__ import annotations

from typing import Literal, Protocol

from fxgate.domain.redact import Scalar

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
__all__ = ["ActivityLog", "Level", "Scalar"]


class ActivityLog(Protocol):
    def user(self, user_id: str, level: Level, message: str, module: str, **extra: Scalar) -> None:
        """A line about one user's trading (an order, a fill, a rejection, a risk
        alert): only that user's connections receive it. Never blocks."""
        ...

    def system(self, level: Level, message: str, module: str, **extra: Scalar) -> None:
        """A line about the daemon itself (the broker connection, signing keys, start
        and stop): only admins receive it. Never blocks."""
        ...
