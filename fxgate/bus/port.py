"""The bus port: carries events from producers to the hub(s)."""

from __future__ import annotations

from typing import Protocol

from fxgate.domain.events import Event


class Bus(Protocol):
    name: str

    def publish(self, event: Event) -> None:
        """Hand an event over for delivery; never blocks."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def healthy(self) -> bool: ...
