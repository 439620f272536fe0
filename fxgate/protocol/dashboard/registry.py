"""Every dashboard of the process: feeds by user and tier, the market batcher, the
metrics ticker, one send budget per user.

Built once per application. Costs nothing while no dashboard is connected: the
batcher's hub subscription and the metrics timer exist only while some feed does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fxgate.config.settings import Settings
from fxgate.hub.hub import Hub
from fxgate.plugins.api import HealthReads
from fxgate.plugins.channel import Principal
from fxgate.protocol.dashboard import wire
from fxgate.protocol.dashboard.budget import SendBudget
from fxgate.protocol.dashboard.feed import CHANNELS, DashboardReads, UserFeed, Viewer
from fxgate.protocol.dashboard.market import MarketBatcher
from fxgate.protocol.dashboard.metrics import Uptime, metrics_data
from fxgate.protocol.dashboard.outgoing import Outgoing
from fxgate.protocol.dashboard.volatility import VolatilityMeter
from fxgate.services.usage import UsageMeter

if TYPE_CHECKING:
    from fxgate.protocol.session import Cancellable, Timers


class DashboardHub:
    def __init__(
        self,
        *,
        hub: Hub,
        settings: Settings,
        reads: DashboardReads,
        usage: UsageMeter,
        health: HealthReads,
        timers: Timers,
        clock: Callable[[], float] = time.time,
        started_at: float | None = None,
        signal_ms: Callable[[], float | None] = lambda: None,
    ) -> None:
        self.hub = hub
        self.settings = settings
        self.reads = reads
        self.usage = usage
        self.health = health
        #: ``signal_generation_ms`` now (``SignalTiming.median_ms``).
        self.signal_ms = signal_ms
        self._timers = timers
        self._clock = clock
        self.market = MarketBatcher(
            hub,
            settings.tiers,
            timers=timers,
            clock=clock,
            volatility=VolatilityMeter(settings.dashboard.volatility_window),
        )
        self.uptime = Uptime(health.report, clock, started_at)
        health.on_change(self.uptime.on_change)
        self.feeds: dict[tuple[str, str], UserFeed] = {}
        self._budgets: dict[str, tuple[SendBudget, int]] = {}
        self._metrics_timer: Cancellable | None = None

    # -- joining and leaving --------------------------------------------------------------

    async def join(
        self,
        principal: Principal,
        tier: str,
        viewer: Viewer,
        since: Callable[[str], tuple[int, str] | None] | None = None,
    ) -> UserFeed:
        """The viewer's feed, created (and its state read) for the user's first one; the
        viewer gets its first messages at once. ``since`` (a resume: channel -> where
        the user's stream stood when they went away) is asked only for a new feed: an
        existing one has a viewer that saw every event."""
        key = (principal.user_id, tier)
        feed = self.feeds.get(key)
        if feed is None:
            feed = self.feeds[key] = UserFeed(
                principal=Principal(principal.user_id, principal.role, tier),
                hub=self.hub,
                reads=self.reads,
                settings=self.settings.dashboard,
                budget=self._budget(principal.user_id),
                timers=self._timers,
                clock=self._clock,
                on_signal=self.usage.signal,
                since=_marks(since),
                recovery_limit=self.settings.ws.recovery_max_messages,
            )
            self.market.join(tier, feed)
            if self._metrics_timer is None:
                self._metrics_timer = self._timers.call_later(
                    self.settings.dashboard.metrics_interval, self._metrics_tick
                )
            # ``api_calls_remaining``: the stored count, kept fresh while the feed lives.
            await self.usage.quota.watch(principal.user_id)
        await self.market.prime()
        await feed.ready()
        first = [self.metrics_message(principal.user_id, tier)]
        market = self.market.snapshot(tier)
        if market is not None:
            first.append(market)
        feed.add(viewer, first)
        return feed

    def leave(self, feed: UserFeed, viewer: Viewer) -> None:
        feed.remove(viewer)
        if feed.viewers or feed.closed:
            return
        tier = feed.principal.tier
        self.feeds.pop((feed.user_id, tier), None)
        self.market.leave(tier, feed)
        feed.close()
        self.usage.quota.unwatch(feed.user_id)
        budget, n = self._budgets[feed.user_id]
        if n <= 1:
            del self._budgets[feed.user_id]
        else:
            self._budgets[feed.user_id] = (budget, n - 1)
        if not self.feeds and self._metrics_timer is not None:
            self._metrics_timer.cancel()
            self._metrics_timer = None

    def _budget(self, user_id: str) -> SendBudget:
        """One budget per user, shared by their feeds (one per tier they connect with)."""
        found = self._budgets.get(user_id)
        if found is None:
            budget = SendBudget(self.settings.dashboard.max_messages_per_second)
            self._budgets[user_id] = (budget, 1)
            return budget
        self._budgets[user_id] = (found[0], found[1] + 1)
        return found[0]

    # -- system_metrics ------------------------------------------------------------------

    def metrics_message(self, user_id: str, tier: str) -> Outgoing:
        data = metrics_data(
            report=self.health.report,
            uptime=self.uptime,
            usage=self.usage,
            latency_ms=self.market.latency_ms,
            signal_ms=self.signal_ms(),
            user_id=user_id,
            tier_name=tier,
            tier=self.settings.tier(tier)[1],
        )
        return Outgoing("system_metrics", wire.message("system_metrics", data, self._clock()))

    def _metrics_tick(self) -> None:
        self._metrics_timer = self._timers.call_later(
            self.settings.dashboard.metrics_interval, self._metrics_tick
        )
        for (user_id, tier), feed in list(self.feeds.items()):
            feed.offer_metrics(self.metrics_message(user_id, tier))


def _marks(
    since: Callable[[str], tuple[int, str] | None] | None,
) -> dict[str, tuple[int, str]] | None:
    if since is None:
        return None
    found = {name: since(name) for name in CHANNELS}
    return {name: s for name, s in found.items() if s is not None}
