"""The in-process bus: a producer's publish is the hub's fan-out, with no copy."""

from __future__ import annotations

from fxgate.config.settings import Settings
from fxgate.domain.events import Event
from fxgate.hub.hub import Hub


class LocalBus:
    name = "local"
    components = ("bus",)

    def __init__(self, hub: Hub) -> None:
        self._hub = hub

    def publish(self, event: Event) -> None:
        self._hub.publish(event)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    def healthy(self) -> bool:
        return True


def build(settings: Settings, hub: Hub) -> LocalBus:
    """The ``local`` bus backend: one process, no settings of its own."""
    return LocalBus(hub)
