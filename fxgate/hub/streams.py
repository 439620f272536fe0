"""Streams: per (channel, key) offsets, an epoch, and a bounded history for recovery.

A stream is (channel, user) for per-user channels and (channel, symbol) for market
data. ``offset`` grows by one per message of the stream; ``epoch`` names the history
those offsets belong to, so a client resuming against a history that was lost (a crash,
Redis restarted empty) learns that its offsets no longer mean anything and gets a fresh
snapshot instead. Each stream carries its own epoch: with the local bus every stream
starts with the table's (the node's, kept across clean restarts), with the Redis bus
each stream takes the one Redis keeps beside its offset.

The history here is the node's memory of recent messages, the fast path of recovery;
a durable history (:mod:`fxgate.hub.history`) answers what memory no longer holds.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def new_epoch() -> str:
    return uuid.uuid4().hex[:12]


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
    epoch: str = ""
    history: deque[Entry] = field(default_factory=deque)

    def replay_after(self, offset: int) -> list[Entry] | None:
        """Entries after ``offset``, or None when some of them are no longer kept (or
        never arrived: a hole in the offsets is a loss, never skipped silently)."""
        if offset == self.offset:
            return []
        if offset > self.offset:
            return None  # ahead of this stream: offsets that mean nothing here
        if not self.history or self.history[0].offset > offset + 1:
            return None
        entries = [e for e in self.history if e.offset > offset]
        if len(entries) != self.offset - offset:
            return None
        return entries


class StreamTable:
    def __init__(self, epoch: str | None = None) -> None:
        #: The epoch new streams start with (the node's).
        self.epoch = epoch or new_epoch()
        self._streams: dict[tuple[str, str], Stream] = {}

    def get(self, channel: str, key: str) -> Stream:
        stream = self._streams.get((channel, key))
        if stream is None:
            stream = self._streams[(channel, key)] = Stream(epoch=self.epoch)
        return stream

    def find(self, channel: str, key: str) -> Stream | None:
        return self._streams.get((channel, key))

    def keys_of(self, channel: str) -> list[str]:
        return [k for (c, k) in self._streams if c == channel]

    def restore(self, epoch: str, heads: Mapping[tuple[str, str], int]) -> None:
        """Start from a kept history (before anything publishes): the node's epoch, and
        where each kept stream stood, so offsets go on instead of starting over."""
        self.epoch = epoch
        for stream in self._streams.values():
            stream.epoch = epoch
        for (channel, key), offset in heads.items():
            stream = self.get(channel, key)
            stream.offset = max(stream.offset, offset)
