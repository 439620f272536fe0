"""Whether an event is in its stream's durable history already: what lets a new trading
leader announce again only what its dead predecessor stored but did not announce.

The history is the one announcement mark that cannot disagree with what clients were
sent: with the Redis bus, a message enters it in the same atomic step that publishes it
(``fxgate.bus.redis``), so an event is in it exactly when it went out. A mark written
after the publish (the command router's ``announced`` key) leaves a window in which a
leader dies with its events out and no mark; an event found here is not sent twice.

Two messages are the same event when the fields of :data:`IDENTITY` agree: one version
of an order (its status and filled volume as of its ``updatedAt``), one execution.
Positions and the account are state, not occurrences: sending their current state again
tells a client nothing wrong, so they are not checked. Read only on that rare path (a take-over),
never per message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fxgate.domain.events import Event
from fxgate.hub.hub import Hub

#: Per channel, the payload fields that make two messages the same event.
IDENTITY: dict[str, tuple[str, ...]] = {
    "orders": ("orderId", "status", "updatedAt", "filledVolume"),
    "trades": ("executionId",),
}
#: How many kept messages of the stream are looked through (its whole history: a
#: trading stream keeps ``history_size`` messages, about a hundred).
LOOKBACK = 10_000


def in_history(hub: Hub) -> Callable[[Event], Awaitable[bool]]:
    """``announced(event)``: True when ``event`` is in its stream's durable history
    already; False when it is not, when its channel has no identity or no durable
    history, or when the history cannot be read (then it is sent: at least once)."""

    async def announced(event: Event) -> bool:
        fields = IDENTITY.get(event.channel)
        durable = hub.durable
        if fields is None or durable is None:
            return False
        routed = hub.route(event)
        if routed is None:
            return False
        ch, key = routed
        page = await durable.read(ch.name, key, 0, LOOKBACK)
        if page is None:
            return False
        payload = ch.payload(event)
        want = tuple(payload.get(f) for f in fields)
        return any(tuple(env["data"].get(f) for f in fields) == want for _, env in page.entries)

    return announced
