"""Market data for every dashboard: one hub subscription, one batch per tier.

The batcher is the hub's one sink on ``market-data`` (all symbols) while any dashboard
is connected, and its own encoder: each tick reaches it once, whatever the number of
dashboards, and only updates the latest entry of its symbol and the set of symbols
changed for each tier. Each tier then sends at most ``market_data_per_second``
messages, each carrying the tier's symbols that changed since its last one, encoded
once and framed once per framer for every feed of that tier (``Outgoing``). A batch
goes out on the loop iteration after its tick while the tier is under its rate, and
waits (gathering the later ticks, latest per symbol) only while it is over
(:class:`~fxgate.protocol.dashboard.pace.MarketPace`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fxgate.config.settings import TierSettings
from fxgate.domain.errors import Disconnect
from fxgate.domain.roles import Role
from fxgate.hub.hub import Hub, Subscription
from fxgate.hub.sink import Dialect
from fxgate.plugins.channel import Channel, Principal
from fxgate.protocol.dashboard import wire
from fxgate.protocol.dashboard.clock import market_session
from fxgate.protocol.dashboard.messages import market_entry
from fxgate.protocol.dashboard.outgoing import Outgoing
from fxgate.protocol.dashboard.pace import MarketPace
from fxgate.protocol.dashboard.volatility import VolatilityMeter

if TYPE_CHECKING:
    from fxgate.protocol.dashboard.feed import UserFeed
    from fxgate.protocol.session import Cancellable, Timers

CHANNEL = "market-data"


class TierMarket:
    """One tier's batches: its symbols (None: all), its pace, its feeds."""

    def __init__(self, name: str, tier: TierSettings) -> None:
        self.name = name
        self.symbols: frozenset[str] | None = (
            None if "*" in tier.symbols else frozenset(s.upper() for s in tier.symbols)
        )
        self.pace = MarketPace(tier.market_data_per_second)
        self.dirty: dict[str, None] = {}
        self.feeds: dict[UserFeed, None] = {}
        self.timer: Cancellable | None = None
        self.batches = 0

    def allows(self, symbol: str) -> bool:
        return self.symbols is None or symbol in self.symbols


class MarketBatcher:
    name = "dashboard-market"

    def __init__(
        self,
        hub: Hub,
        tiers: Mapping[str, TierSettings],
        *,
        timers: Timers,
        clock: Callable[[], float],
        volatility: VolatilityMeter,
    ) -> None:
        self.principal = Principal("", Role.VIEWER)
        self.dialect: Dialect = self
        self.hub = hub
        self.tiers = {name: TierMarket(name, t) for name, t in tiers.items()}
        self._timers = timers
        self._clock = clock
        self.volatility = volatility
        self.latest: dict[str, dict[str, Any]] = {}
        #: Age of the last tick when it was published, in milliseconds.
        self.latency_ms: float | None = None
        self._sub: Subscription | None = None
        self._active: list[TierMarket] = []

    # -- feeds ---------------------------------------------------------------------------

    def join(self, tier: str, feed: UserFeed) -> None:
        t = self.tiers[tier]
        t.feeds[feed] = None
        self._active = [t for t in self.tiers.values() if t.feeds]
        if self._sub is None and CHANNEL in self.hub.channels:
            self._sub = self.hub.make_subscription(self, CHANNEL, None)
            self.hub.add(self._sub)

    async def prime(self) -> None:
        """Fill the latest quotes before the first tick (a new dashboard's first
        market_data shows every symbol of its tier, not only those that ticked since)."""
        if self.latest or CHANNEL not in self.hub.channels:
            return
        for item in await self.hub.channels[CHANNEL].snapshot(self.principal, {}):
            if item.get("bid") is not None and item.get("ask") is not None:
                entry = market_entry(item)
                self.latest.setdefault(entry["symbol"], entry)

    def leave(self, tier: str, feed: UserFeed) -> None:
        t = self.tiers[tier]
        t.feeds.pop(feed, None)
        self._active = [t for t in self.tiers.values() if t.feeds]
        if not t.feeds:
            t.dirty.clear()
            if t.timer is not None:
                t.timer.cancel()
                t.timer = None
        if not self._active and self._sub is not None:
            self.hub.remove(self._sub)
            self._sub = None
            self.latest.clear()  # no longer followed: read afresh by the next prime()

    # -- the hub's side ---------------------------------------------------------------

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        data = envelope.get("data")
        if not isinstance(data, Mapping) or data.get("bid") is None or data.get("ask") is None:
            return None
        entry = market_entry(data)
        symbol = entry["symbol"]
        for t in self._active:
            if symbol in t.dirty and t.timer is not None and not t.pace.wait(self._timers.time()):
                # Under the rate a tick is never merged away: the waiting batch first.
                t.timer.cancel()
                self._flush(t)
        self.latest[symbol] = entry
        now = self._clock()
        self.volatility.observe(symbol, (entry["bid"] + entry["ask"]) / 2, now)
        ts = envelope.get("timestamp")
        if isinstance(ts, str):
            try:
                tick = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
                self.latency_ms = round(max(0.0, now - tick) * 1000, 1)
            except ValueError:
                pass
        for t in self._active:
            if t.allows(symbol):
                t.dirty[symbol] = None
                if t.timer is None:
                    # Not at once: the ticks of this loop iteration share the batch.
                    delay = t.pace.wait(self._timers.time())
                    t.timer = self._timers.call_later(delay, self._flush, t)
        return None

    def deliver(self, frame: bytes, conflate_key: object | None = None) -> None:
        """Never called: ``encode_event`` answers None."""

    def kick(self, disconnect: Disconnect) -> None:
        """Nothing to close: the batcher is not a connection."""

    # -- batches ------------------------------------------------------------------------

    def _meta(self, symbols: list[str]) -> tuple[str, str]:
        return market_session(self._clock()), self.volatility.label(symbols)

    def _message(self, symbols: list[str], meta: tuple[str, str]) -> Outgoing:
        data = {
            "symbols": [self.latest[s] for s in symbols],
            "market_session": meta[0],
            "volatility": meta[1],
        }
        return Outgoing("market_data", wire.message("market_data", data, self._clock()))

    def _flush(self, t: TierMarket) -> None:
        t.timer = None
        if not t.dirty or not t.feeds:
            return
        now = self._timers.time()
        wait = t.pace.wait(now)
        if wait > 0:  # over the rate: later, with whatever else changed meanwhile
            t.timer = self._timers.call_later(wait, self._flush, t)
            return
        t.pace.spend(now)
        symbols = sorted(t.dirty)
        t.dirty = {}
        t.batches += 1
        meta = self._meta(symbols)
        out = self._message(symbols, meta)
        entries = {s: self.latest[s] for s in symbols}
        for feed in list(t.feeds):
            feed.offer_market(out, entries, meta)

    def snapshot(self, tier: str) -> Outgoing | None:
        """The latest quote of each of the tier's symbols, for a new connection."""
        t = self.tiers[tier]
        symbols = sorted(s for s in self.latest if t.allows(s))
        if not symbols:
            return None
        return self._message(symbols, self._meta(symbols))
