"""The in-process bus: a producer's publish is the hub's fan-out, with no copy.

The trading channels' history (``history_ttl``) is kept in the store beside it
(:class:`fxgate.bus.store_history.StoreHistory`), so that clients resume across a
restart; started before anything publishes, and written last at stop.
"""

from __future__ import annotations

from fxgate.bus.store_history import StoreHistory
from fxgate.config.settings import Settings
from fxgate.domain.events import Event
from fxgate.hub.hub import Hub
from fxgate.services.ports.store import Store


class LocalBus:
    name = "local"
    components = ("bus",)
    expecting = None  # a publish here is the fan-out: nothing comes back

    def __init__(self, hub: Hub, history: StoreHistory | None = None) -> None:
        self._hub = hub
        self.history = history

    def publish(self, event: Event) -> None:
        self._hub.publish(event)

    async def start(self) -> None:
        if self.history is not None:
            await self.history.start()

    async def stop(self) -> None:
        if self.history is not None:
            await self.history.stop()

    def healthy(self) -> bool:
        return True

    @property
    def marks(self) -> StoreHistory | None:
        """Where the resume book keeps its marks across a restart (``fxgate.hub.resume``)."""
        return self.history


def build(settings: Settings, hub: Hub, store: Store) -> LocalBus:
    """The ``local`` bus backend: one process; history in the store."""
    return LocalBus(hub, StoreHistory(store.history, hub))
