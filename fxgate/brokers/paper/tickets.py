"""Ticket numbers that stay unique across restarts without a store round trip each.

The engine needs a ticket synchronously, in the middle of a matching step, so tickets
come from blocks reserved in the store ahead of need: one ``next_sequence`` call buys
``BLOCK`` tickets, and the next block is reserved in the background when half of the
current one is used.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from fxgate.domain.errors import refused

log = logging.getLogger(__name__)

BLOCK = 10_000
#: MT5-looking tickets: block 1 starts at 10,010,000.
BASE = 10_000_000


class SequenceStore(Protocol):
    async def next_sequence(self, name: str) -> int: ...


class TicketAllocator:
    def __init__(self, store: SequenceStore, *, name: str = "paper.ticket_block") -> None:
        self._store = store
        self._name = name
        self._blocks: deque[range] = deque()
        self._current: range = range(0)
        self._index = 0
        self._refill: asyncio.Task[None] | None = None

    async def prime(self) -> None:
        await self._reserve()
        self._advance()

    async def _reserve(self) -> None:
        block = await self._store.next_sequence(self._name)
        start = BASE + block * BLOCK
        self._blocks.append(range(start, start + BLOCK))

    def _advance(self) -> None:
        if not self._blocks:
            raise refused("No ticket numbers left; the store is not answering", "no_tickets")
        self._current = self._blocks.popleft()
        self._index = 0

    def __call__(self) -> int:
        if self._index >= len(self._current):
            self._advance()
        ticket = self._current[self._index]
        self._index += 1
        if (
            self._index >= len(self._current) // 2
            and not self._blocks
            and (self._refill is None or self._refill.done())
        ):
            self._refill = asyncio.get_running_loop().create_task(self._reserve())
        return ticket
