"""The bus port: carries events from producers to the hub(s)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from fxgate.domain.events import Event


class BusUnavailable(Exception):
    """The bus cannot start (Redis unreachable); the message is the operator's line."""


class Bus(Protocol):
    name: str
    #: The health components this bus reports (``healthy()`` for each): ``bus``, and
    #: ``redis`` for the Redis bus.
    components: tuple[str, ...]

    def publish(self, event: Event) -> None:
        """Hand an event over for delivery; never blocks, never awaits the network."""

    async def start(self) -> None:
        """Connect; raises :class:`BusUnavailable` when it cannot."""

    async def stop(self) -> None: ...

    def healthy(self) -> bool: ...

    #: Whether events this node published are on their way back to its own hub
    #: (through Redis): the frame writer then yields to the loop more often, so that
    #: they are read as soon as they arrive. Asked once per chunk of a flush pass.
    #: None for a bus whose publish is the fan-out: nothing comes back, nothing is asked.
    expecting: Callable[[], bool] | None
