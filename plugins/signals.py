"""``signals``: trading signals with their validators (seed 002's ``signals_update``).

Public by default, private on request. Seed 002 shows one shared feed from a signal
engine, and a signal says "EURUSD looks like a buy", not anything about an account, so
a signal published without ``userId`` reaches every subscriber: it is the channel's
shared stream, which every token's subscription includes. A multi-user gateway also
carries signals that are one user's business (a strategy of theirs, a paid tier's
advice): publishing with ``userId`` makes the signal that user's alone, on the channel,
in ``GET /signals`` and in the snapshot, exactly as per-user channels are kept apart.

Every signal is checked against seed 002's shape (:func:`fxgate.domain.signals.parse_signal`:
side buy/sell, confidence 0 to 1, validators each ``name type approved confidence reason
timestamp``, status pending/approved/rejected; a refusal names its field) and stored
before it is announced; publishing the same ``uuid`` again (``pending`` -> ``approved``)
replaces the stored signal and announces it again. A new subscriber first gets the
latest signals it may see (up to :data:`SNAPSHOT_SIGNALS`, oldest first), from the
store, so a dashboard opened after a restart still shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fxgate.domain.signals import parse_signal
from fxgate.plugins.api import Channel, Event, Filter, Filters, PluginAPI, Principal, hookimpl

#: The stream of the public signals: no user's id.
PUBLIC_STREAM = "@public"
SNAPSHOT_SIGNALS = 20
#: How many recent signals the snapshot reads to find those a filtered subscriber wants.
SNAPSHOT_SCAN = 200


class SignalsChannel(Channel):
    name = "signals"
    message_type = "signal"
    scope = "user"
    shared_stream = PUBLIC_STREAM
    keeps = True
    filters = {
        "symbol": Filter("symbol", "One symbol or a list"),
        "side": Filter("side", "buy or sell"),
        "status": Filter("status", "pending, approved or rejected"),
        "source": Filter("source", "The strategy or engine that made it"),
    }
    # The store is the history: a subscription spans two streams (public and the
    # user's), so ``since`` recovery gets the snapshot from the store instead.
    history_size = 0
    description = "Trading signals with their validators (public, or one user's)"
    required_fields = ("uuid", "symbol", "side", "volume", "source", "confidence", "status")

    def subscription_keys(self, principal: Principal) -> tuple[str, ...]:
        return (principal.user_id, PUBLIC_STREAM)

    def check_published(self, data: Any) -> Mapping[str, Any]:
        return parse_signal(data)

    async def keep(self, event: Event) -> Event:
        assert self.api is not None
        await self.api.signals.keep(event.data, event.user_id)
        return event

    async def snapshot(self, principal: Principal, filters: Filters) -> Iterable[Mapping[str, Any]]:
        if self.api is None:
            return ()
        recent = await self.api.signals.recent(principal.user_id, SNAPSHOT_SCAN)
        return [s for s in recent if self.matches(filters, s)][-SNAPSHOT_SIGNALS:]


@hookimpl
def register_channels(api: PluginAPI) -> list[Channel]:
    return [SignalsChannel(api)]
