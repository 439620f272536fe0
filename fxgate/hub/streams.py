"""Streams: per (channel, key) offsets and a bounded history for ``since`` recovery.

A stream is (channel, user) for per-user channels and (channel, symbol) for market
data. ``offset`` grows by one per message of the stream; ``epoch`` names this
process's history, so a client resuming against another process (after a restart)
learns that its offsets no longer mean anything and gets a fresh snapshot instead.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Entry:
    offset: int
    envelope: Mapping[str, Any]

    @property
    def payload(self) -> Mapping[str, Any]:
        data: Mapping[str, Any] = self.envelope["data"]
        return data


@dataclass(slots=True)
class Stream:
    offset: int = 0
    history: deque[Entry] = field(default_factory=deque)

    def replay_after(self, offset: int) -> list[Entry] | None:
        """Entries after ``offset``, or None when some of them are no longer kept."""
        if offset >= self.offset:
            return []
        if not self.history or self.history[0].offset > offset + 1:
            return None
        return [e for e in self.history if e.offset > offset]


class StreamTable:
    def __init__(self, epoch: str | None = None) -> None:
        self.epoch = epoch or uuid.uuid4().hex[:12]
        self._streams: dict[tuple[str, str], Stream] = {}

    def get(self, channel: str, key: str) -> Stream:
        stream = self._streams.get((channel, key))
        if stream is None:
            stream = self._streams[(channel, key)] = Stream()
        return stream

    def find(self, channel: str, key: str) -> Stream | None:
        return self._streams.get((channel, key))

    def keys_of(self, channel: str) -> list[str]:
        return [k for (c, k) in self._streams if c == channel]
