"""``logs``: what the daemon did that a dashboard shows (seed 002's ``logs_update``).

Per user: the lines about the user's own orders, fills, refusals and risk alerts, INFO
and above, each ``{timestamp, level, message, module, extra}``. The services write them
through their activity port (never by reading the text log), with ids and codes in
``extra`` and never a token, password, key secret or signature.

Admins also get the daemon's system lines (the broker connection going down and coming
back, signing-key rotation and retirement, start and stop) on the same channel: those
lines are the channel's shared stream, which :meth:`LogsChannel.subscription_keys` adds
for an admin's token only. One channel rather than a second ``system-logs`` one, so that
a dashboard subscribes to ``logs`` whatever its user's role (as seed 002's does), and
every dialect maps one channel. A token refreshed with a lower role loses the
subscription (``AUTHORIZATION_ERROR``), so an ex-admin keeps no system lines.

A new subscriber first gets the latest lines the hub keeps for its streams (up to
:data:`SNAPSHOT_LINES`, oldest first, each ``"snapshot": true``): a log panel opens on
what just happened, including the ``started`` line no client could be connected for.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from fxgate.domain.errors import ValidationError
from fxgate.domain.redact import MAX_EXTRA, MAX_VALUE, redact_text, safe_extra
from fxgate.domain.roles import Role
from fxgate.domain.timefmt import iso_ms, parse_iso
from fxgate.plugins.api import Channel, Filter, Filters, PluginAPI, Principal, hookimpl

#: The stream of the system lines: no user's id (a token naming it is refused).
SYSTEM_STREAM = "@system"
SNAPSHOT_LINES = 50
LEVELS = ("INFO", "WARNING", "ERROR", "CRITICAL")


class LogsChannel(Channel):
    name = "logs"
    message_type = "log"
    scope = "user"
    shared_stream = SYSTEM_STREAM
    filters = {
        "level": Filter("level", "INFO, WARNING, ERROR or CRITICAL (one or a list)"),
        "module": Filter("module", "trading, risk, health, auth.keyring, daemon, ..."),
    }
    history_size = 100  # per user: recovery with ``since``, and the snapshot's source
    description = "Log lines about your trading; admins also get the daemon's own"
    required_fields = ("level", "message", "module")

    def subscription_keys(self, principal: Principal) -> tuple[str, ...]:
        if principal.role.at_least(Role.ADMIN):
            return (principal.user_id, SYSTEM_STREAM)
        return (principal.user_id,)

    def normalize_value(self, filter_name: str, value: str) -> str:
        return value.upper() if filter_name == "level" else value

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        # Read from memory with no await before it: nothing is published in between,
        # so no line is both in the snapshot and among the held live messages.
        if self.api is None:
            return ()
        return self.api.recent(self.name, self.subscription_keys(principal), SNAPSHOT_LINES)

    def check_published(self, data: Any) -> Mapping[str, Any]:
        """A line from a back-end service: seed 002's fields, short, scalar ``extra``."""
        data = super().check_published(data)
        unknown = sorted(set(data) - {"timestamp", "level", "message", "module", "extra"})
        if unknown:
            raise _bad(f"data.{unknown[0]}", "unknown field")
        if data["level"] not in LEVELS:
            raise _bad("data.level", "must be INFO, WARNING, ERROR or CRITICAL")
        for key, most in (("message", 500), ("module", 64)):
            value = data[key]
            if not isinstance(value, str) or not value or len(value) > most:
                raise _bad(f"data.{key}", f"a string of 1 to {most} characters")
        extra = data.get("extra") or {}
        if not isinstance(extra, Mapping) or len(extra) > MAX_EXTRA:
            raise _bad("data.extra", f"an object of at most {MAX_EXTRA} fields")
        for key, value in extra.items():
            scalar = value is None or isinstance(value, bool | int | float | str)
            if not scalar or (isinstance(value, str) and len(value) > MAX_VALUE) or len(key) > 64:
                raise _bad(f"data.extra.{key}", "a number, string (200 at most), bool or null")
            if isinstance(value, float) and not math.isfinite(value):
                raise _bad(f"data.extra.{key}", "a finite number")
        return {
            "timestamp": _timestamp(data.get("timestamp")),
            "level": data["level"],
            "message": redact_text(data["message"]),
            "module": data["module"],
            # What names a secret is dropped, here as for the services' own lines.
            "extra": safe_extra(extra),
        }


def _bad(field: str, reason: str) -> ValidationError:
    return ValidationError(
        "Invalid log line", field=field, reason=reason, details={"channel": "logs"}
    )


def _timestamp(value: Any) -> str:
    if value is None:
        return iso_ms()
    try:
        if isinstance(value, str) and len(value) <= 64:
            when = parse_iso(value)
            if 1970 <= when.year <= 2999:
                return iso_ms(when.timestamp())
    except ValueError:
        pass
    raise _bad("data.timestamp", "an ISO 8601 time")


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [LogsChannel(api)]
