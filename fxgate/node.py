"""The node: one running daemon, assembled whole, started and stopped in order.

Like Centrifugo's Node it owns the parts (store, key ring, hub, bus, broker, services),
every one of them present from construction on: :func:`fxgate.app.assembly.build_node`
builds them from the settings and hands them over, so nothing here knows which store,
bus or broker it holds. Plugins never see the node; they get :attr:`Node.api`. Nothing
here touches Tornado.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol

import pluggy

from fxgate.app.tasks import Tasks
from fxgate.bus.port import Bus, BusUnavailable
from fxgate.config.settings import Settings
from fxgate.domain.errors import Disconnect
from fxgate.domain.events import Event
from fxgate.domain.market import Quote
from fxgate.hub.connections import ConnectionRegistry
from fxgate.hub.hub import Hub
from fxgate.hub.resume import ResumeBook
from fxgate.plugins.api import PluginAPI
from fxgate.plugins.manager import await_me_maybe
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.services.activity import ActivityFeed
from fxgate.services.auth.keyring import KeyRing
from fxgate.services.auth.sealing import Sealer, SealError
from fxgate.services.auth.tokens import Claims, TokenService
from fxgate.services.auth.user_status import UserStatus
from fxgate.services.health import HealthMonitor
from fxgate.services.market import CHANNEL as MARKET_CHANNEL
from fxgate.services.market import MarketService
from fxgate.services.market_history import CandleRecorder
from fxgate.services.ports.broker import Broker
from fxgate.services.ports.cluster import Cluster, TradingCommands
from fxgate.services.ports.store import Store
from fxgate.services.signals import SignalBook
from fxgate.services.trading import TradingService

log = logging.getLogger(__name__)


class LiveSession(Protocol):
    """A connected client's session, of any dialect, as shutdown and the kicks see it."""

    @property
    def claims(self) -> Claims | None: ...

    def disconnect(self, disconnect: Disconnect, notice: bytes | None = None) -> None: ...

    def shutdown_notice(self, canonical_notice: bytes) -> bytes:
        """What this session's client is told before close 1001, in its dialect."""
        ...


class StartupError(Exception):
    """The daemon cannot start; the message says why, for the operator."""


class Node:
    def __init__(
        self,
        settings: Settings,
        *,
        pm: pluggy.PluginManager,
        api: PluginAPI,
        tasks: Tasks,
        store: Store,
        sealer: Sealer,
        keyring: KeyRing,
        tokens: TokenService,
        user_status: UserStatus,
        hub: Hub,
        bus: Bus,
        broker: Broker,
        quote_listener: Callable[[Quote], None] | None,
        market: MarketService,
        candles: CandleRecorder,
        trading: TradingService,
        health: HealthMonitor,
        activity: ActivityFeed,
        signals: SignalBook,
        cluster: Cluster | None = None,
        commands: TradingCommands | None = None,
    ) -> None:
        self.settings = settings
        self.version = api.version
        self.pm = pm
        #: What plugins receive instead of the node.
        self.api = api
        self.store = store
        #: Seals the secrets kept in the store (signing keys, API-key secrets).
        self.sealer = sealer
        self.keyring = keyring
        self.tokens = tokens
        #: Who is still allowed in (disabled users are refused): see user_status.
        self.user_status = user_status
        self.hub = hub
        self.bus = bus
        self.broker = broker
        self.market = market
        self.candles = candles
        self.trading = trading
        #: Where trading writes go: ``trading`` itself in one process; with the redis
        #: bus, the leader (here or over Redis), see ``fxgate.services.ports.cluster``.
        self.commands: TradingCommands = commands if commands is not None else trading
        #: This node's place in a cluster (None: one process, the broker runs here).
        self.cluster = cluster
        self._leading = False
        #: The broker is starting as leader; the lease was lost meanwhile.
        self._starting = False
        self._lost_starting = False
        self._feed: asyncio.Task[Any] | None = None
        self.health = health
        #: The ``logs`` channel's feed: users' trading lines, admins' system lines.
        self.activity = activity
        self.signals = signals
        self.connection_rate = SlidingWindowCounter(settings.ws.connections_per_minute)
        #: Live sessions, for shutdown and for closing those of a retired key.
        self.sessions: set[LiveSession] = set()
        #: Where each user's trading streams stood when their last connection closed,
        #: for the dialects whose clients cannot send an offset (fxgate.hub.resume).
        self.resume = ResumeBook(
            hub, settings.ws.recovery_window, marks=getattr(bus, "marks", None)
        )
        #: Authenticated sockets of every endpoint, by user (``/auth/sessions``).
        self.connections = ConnectionRegistry()
        self.started_at = time.time()
        self.stopping = False
        self._tasks = tasks
        self._quote_listener = quote_listener

    # -- what the node's own parts and the web layer use ----------------------------

    def publish(self, event: Event) -> None:
        """Fan an event out to its subscribers (through the bus). Never blocks."""
        self.bus.publish(event)

    def ingest(self, channel: str, data: Any, *, user_id: str | None = None) -> Awaitable[None]:
        """Publish an event made outside fxgate's own services, validated against its
        channel first (``ValidationError`` otherwise); await the result to know a kept
        event (a signal) is stored and announced: see ``PluginAPI.ingest``."""
        return self.api.ingest(channel, data, user_id=user_id)

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run a background task that shutdown cancels; a crash is logged, not lost."""
        return self._tasks.spawn(coro, name=name)

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        try:
            await self.store.open()
        except Exception as exc:
            raise StartupError(f"the {s.store.backend} store could not be opened: {exc}") from exc
        try:
            # Read (unseal) the stored keys before touching the master key file, so
            # that a lost file is reported, not replaced by a new key.
            await self.keyring.load()
            self.sealer.ensure_key()
            first = self.keyring.active_or_none() is None
            key = await self.keyring.ensure_active()
        except SealError as exc:
            raise StartupError(str(exc)) from None
        if first:
            await self.store.audit.append(actor="daemon", action="keys.create", target=key.kid)
        log.info("signing key ready", extra={"kid": key.kid})
        self.keyring.on_retired(self._kick_retired)

        try:
            # Before anything publishes: the bus (Redis, or the kept history's epoch
            # and offsets) numbers the first event already.
            await self.bus.start()
        except BusUnavailable as exc:
            raise StartupError(str(exc)) from None
        if self.cluster is None:
            await self._lead()

        for result in self.pm.hook.startup(api=self.api):
            await await_me_maybe(result)
        self.spawn(self.candles.record(self.market.symbols), name="candle-recorder")
        if self.cluster is not None:
            self.hub.taps[MARKET_CHANNEL] = self._follow_price
            try:
                await self.cluster.start(
                    on_elected=self._lead, on_lost=self._lose, on_follow=self._follow
                )
            except Exception as exc:
                raise StartupError(
                    f"bus.redis_url: cannot reach Redis for the cluster: {exc}"
                ) from None
        self.spawn(self._refresh_keys(), name="keyring-refresh")
        self.spawn(self.user_status.run(self._kick_disabled), name="user-status-refresh")
        self.spawn(self._purge_expired(), name="store-purge")
        self.spawn(self.trading.usage.quota.run(), name="api-quota")
        await self.health.check()
        self.spawn(self.health.run(), name="health")
        self.health.ready = True
        self.activity.system(
            "INFO",
            f"fxgate {self.version} started",
            "daemon",
            version=self.version,
            broker=s.broker.backend,
            store=s.store.backend,
            bus=s.bus.backend,
        )

    async def _lead(self) -> None:
        """Run the broker here: restore its state from the store (paper) or connect to
        the terminal (MT5), then the market feed, the one feed every node streams.

        The lease can be lost while the broker starts (the clock running out during a
        slow terminal connect): then the broker, once started, is stopped again here,
        and this node does not lead. A start that fails (its first write refused) leads
        to nothing either: the campaign drops the lease."""
        self._starting = True
        self._lost_starting = False
        try:
            await self.broker.start()
        finally:
            self._starting = False
        if self._lost_starting:
            await self.broker.stop()
            return
        self._leading = True
        if self._quote_listener is not None:
            for quote in self.market.latest():  # prices before the first tick
                self._quote_listener(quote)
            self.market.add_listener(self._quote_listener)
        await self.trading.restore()
        self._feed = self.spawn(self.market.run(), name="market-feed")

    def _lose(self) -> None:
        """No lease: the broker stops (its writes are fenced already). The market feed
        goes on, so this node's clients keep their prices, until another leads."""
        if self._starting:
            self._lost_starting = True  # :meth:`_lead` stops the broker once started
        if self._leading:
            self._leading = False
            # Ticks first: a quote would fill or revalue, and so write, on a broker
            # whose writes are refused from now on.
            if self._quote_listener is not None:
                self.market.remove_listener(self._quote_listener)
            self.spawn(self.broker.stop(), name="broker-stop")

    def _follow_price(self, symbol: str, payload: Mapping[str, Any]) -> None:
        """A price of the leader's feed, kept here too: REST quotes and the snapshots
        of new subscribers on this node show the prices every node streams."""
        if self._leading:
            return
        try:
            self.market.source.set_quote(symbol, payload["bid"], payload["ask"], time.time())
        except Exception:  # a source that cannot take prices (MT5): its own are kept
            log.debug("cannot keep the leader's price", extra={"symbol": symbol})

    def _follow(self) -> None:
        """Another node leads: its feed is the one every node streams."""
        if self._feed is not None and not self._leading:
            self._feed.cancel()
            self._feed = None

    def announce_stopping(self) -> None:
        """Tell admins' dashboards, while they are still connected, that the daemon stops."""
        self.activity.system("WARNING", "fxgate stopping", "daemon", connections=len(self.sessions))

    async def _refresh_keys(self) -> None:
        while True:
            await asyncio.sleep(self.settings.auth.keyring_refresh)
            try:
                await self.keyring.load()
            except SealError as exc:
                log.error("could not re-read the signing keys: %s", exc)
            except Exception:
                log.exception("could not re-read the signing keys")

    async def _purge_expired(self) -> None:
        """Drop expired refresh tokens, revoked jtis and nonces (MongoDB's TTL indexes
        do it too; SQLite has only this)."""
        while True:
            await asyncio.sleep(600)
            try:
                await self.store.purge_expired()
            except Exception:
                log.exception("could not purge expired auth records")

    def _kick_retired(self, kids: set[str]) -> None:
        from fxgate.domain.errors import Disconnects

        for session in list(self.sessions):
            if session.claims is not None and session.claims.kid in kids:
                session.disconnect(Disconnects.KEY_RETIRED)

    def _kick_disabled(self, user_ids: set[str]) -> None:
        from fxgate.domain.errors import Disconnects

        for session in list(self.sessions):
            if session.claims is not None and session.claims.sub in user_ids:
                session.disconnect(Disconnects.USER_DISABLED)

    async def stop(self) -> None:
        """Stop producers, run shutdown hooks, close the store. Clients are closed by
        the web layer before this is called."""
        self.stopping = True
        self.health.ready = False
        for result in self.pm.hook.shutdown(api=self.api):
            try:
                await asyncio.wait_for(await_me_maybe(result), 5)
            except Exception:
                log.exception("a shutdown hook failed")
        await self._tasks.cancel_all()
        try:  # the REST calls counted since the last flush, or a restart forgets them
            await self.trading.usage.quota.flush()
        except Exception as exc:
            log.warning("could not write the REST call counts: %s", exc)
        if self._leading:
            await self.broker.stop()
        if self.cluster is not None:
            await self.cluster.stop()
        # Marks of the connections just closed, still reading their streams' positions.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.resume.settle(), self.settings.bus.redis_timeout)
        await self.bus.stop()
        await self.store.close()
