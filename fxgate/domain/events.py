"""Events: what producers publish and the hub fans out."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened, addressed to a channel.

    ``data`` is whatever the channel's producer emits (a domain object or a mapping);
    the channel plugin turns it into the canonical payload, once per event. A per-user
    channel's event names its ``user_id``: the hub never delivers it to anybody else.
    A public channel's event may carry a stream ``key`` (the symbol, for market data),
    which is also what slow clients are conflated by.
    """

    channel: str
    data: Any
    user_id: str | None = None
    key: str | None = None
    ts: float = field(default_factory=time.time)
