"""The node: one running daemon, built from the settings, started and stopped in order.

Like Centrifugo's Node it owns the parts (store, key ring, hub, bus, broker, services)
and is what plugins receive: ``node.publish`` fans an event out, ``node.spawn`` runs a
task that shutdown cancels, ``node.store``/``node.market``/``node.health`` are the
services a channel's snapshot may read. Nothing here touches Tornado.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

import pluggy

from fxgate import __version__
from fxgate.brokers.paper.broker import PaperBroker
from fxgate.brokers.paper.feed import MarketSimulator
from fxgate.brokers.paper.hours import make_hours
from fxgate.brokers.paper.settings import PaperSettings
from fxgate.bus.local import LocalBus
from fxgate.config.settings import Settings
from fxgate.domain.errors import ValidationError
from fxgate.domain.events import Event
from fxgate.domain.market import DEFAULT_SYMBOLS, SymbolSpec
from fxgate.domain.trading import AccountMode
from fxgate.hub.hub import Hub
from fxgate.plugins.channel import Channel
from fxgate.plugins.manager import await_me_maybe, make_plugin_manager
from fxgate.protocol.limits import SlidingWindowCounter
from fxgate.services.auth.keyring import KeyRing
from fxgate.services.auth.sealing import Sealer, SealError, master_key_path
from fxgate.services.auth.tokens import TokenService
from fxgate.services.auth.user_status import UserStatus
from fxgate.services.health import DEGRADED, DOWN, HEALTHY, HealthMonitor
from fxgate.services.market import MarketService
from fxgate.services.risk import RiskLimits
from fxgate.services.trading import TradingService
from fxgate.store.factory import build_store
from fxgate.store.port import Store

if TYPE_CHECKING:
    from fxgate.protocol.session import Session

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The daemon cannot start; the message says why, for the operator."""


def paper_symbols(names: Iterable[str]) -> list[SymbolSpec]:
    known = {s.symbol: s for s in DEFAULT_SYMBOLS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise StartupError(f"paper.symbols: unknown symbols {unknown}; known: {sorted(known)}")
    return [known[n] for n in names]


class Node:
    def __init__(self, settings: Settings, *, pm: pluggy.PluginManager | None = None) -> None:
        self.settings = settings
        self.version = __version__
        self.pm = pm or make_plugin_manager(
            disabled=settings.disable_plugins, modules=settings.plugins
        )
        self.store: Store = build_store(
            settings.store.backend,
            state_dir=settings.state_dir,
            mongodb_uri=settings.store.mongodb_uri,
            mongodb_database=settings.store.mongodb_database,
        )
        #: Seals the secrets kept in the store (signing keys, API-key secrets).
        self.sealer = Sealer(master_key_path(settings.auth.master_key_file, settings.state_dir))
        self.keyring = KeyRing(
            self.store, sealer=self.sealer, refresh=settings.auth.keyring_refresh
        )
        #: Who is still allowed in (disabled users are refused): see user_status.
        self.user_status = UserStatus(self.store, refresh=settings.auth.user_refresh)
        self.tokens = TokenService(
            self.keyring,
            default_ttl=settings.auth.access_token_ttl,
            leeway=settings.auth.leeway,
            max_ttl=settings.auth.max_token_ttl,
            is_revoked=self.store.is_jti_revoked,
            is_active=self.user_status.is_active,
        )
        self.health = HealthMonitor()
        self.connection_rate = SlidingWindowCounter(settings.ws.connections_per_minute)
        #: Live sessions, for shutdown and for closing those of a retired key.
        self.sessions: set[Session] = set()
        self.started_at = time.time()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.hub: Hub | None = None
        self.bus: LocalBus | None = None
        self.market: MarketService | None = None
        self.broker: PaperBroker | None = None
        self.trading: TradingService | None = None
        self.stopping = False

    # -- the API plugins use ---------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Fan an event out to its subscribers (through the bus). Never blocks."""
        assert self.bus is not None, "publish() before start()"
        self.bus.publish(event)

    def ingest(self, channel: str, data: Any, *, user_id: str | None = None) -> None:
        """Publish an event made outside fxgate's own services (Centrifugo's server
        publish API): validated against the channel, then fanned out like any other.

        Raises ``ValidationError`` for an unknown channel, a per-user channel without a
        user, or a payload the channel refuses.
        """
        assert self.hub is not None, "ingest() before start()"
        ch = self.hub.channels.get(channel)
        if ch is None:
            raise ValidationError("Invalid channel", details={"channel": channel})
        payload = ch.check_published(data)
        key = None
        if ch.scope == "user":
            if not user_id:
                raise ValidationError(
                    "This channel is per-user: name the user", details={"field": "userId"}
                )
        else:
            user_id = None
            if ch.key_filter:
                key = str(payload.get(ch.filters[ch.key_filter].field, "")) or None
        self.publish(Event(channel, dict(payload), user_id=user_id, key=key))

    def spawn(
        self, coro: Coroutine[Any, Any, Any], *, name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run a background task that shutdown cancels; a crash is logged, not lost."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "background task failed",
                exc_info=task.exception(),
                extra={"task": task.get_name()},
            )

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        # Accepted by the configuration schema, but their adapters are not built yet:
        # refuse them loudly rather than quietly running something else.
        if s.bus.backend != "local":
            raise StartupError(f"bus.backend = {s.bus.backend!r} is not available yet; use 'local'")
        if s.broker.backend != "paper":
            raise StartupError(
                f"broker.backend = {s.broker.backend!r} is not available yet; use 'paper'"
            )
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
            await self.store.append_audit(actor="daemon", action="keys.create", target=key.kid)
        log.info("signing key ready", extra={"kid": key.kid})
        self.keyring.on_retired(self._kick_retired)

        specs = paper_symbols(s.paper.symbols)
        hours = make_hours(s.paper.market_hours)
        source = MarketSimulator(specs, seed=s.paper.seed, hours=hours, tick_rate=s.paper.tick_rate)
        # The market service needs a publish target before the hub exists: bind late.
        self.market = MarketService(source, self.publish)
        self.broker = PaperBroker(
            specs,
            self.store,
            settings=PaperSettings(
                initial_balance=s.paper.initial_balance,
                currency=s.paper.currency,
                leverage=s.paper.leverage,
                mode=AccountMode(s.paper.account_mode),
                commission_per_lot=s.paper.commission_per_lot,
                stop_out_level=s.paper.stop_out_level,
                margin_call_level=s.paper.margin_call_level,
            ),
            is_open=hours.is_open,
        )
        await self.broker.start()
        for quote in self.market.latest():  # prices before the first tick
            self.broker.on_quote(quote)
        self.market.add_listener(self.broker.on_quote)
        self.trading = TradingService(
            self.broker,
            self.store,
            self.publish,
            limits=RiskLimits(
                max_open_positions=s.risk.max_open_positions,
                max_daily_loss=s.risk.max_daily_loss or None,
                max_volume=s.risk.max_order_volume,
            ),
            spawn=self.spawn,
            history_users=s.analytics.cache_users,
        )
        await self.trading.restore()
        from fxgate.services import market_history

        market_history.install(self)

        channels: list[Channel] = []
        for result in self.pm.hook.register_channels(node=self):
            channels.extend(result or ())
        self.hub = Hub(channels)
        self.bus = LocalBus(self.hub)

        self.health.add_check("database", self._check_store)
        self.health.add_check("broker", self._check_broker)
        self.health.add_check("bus", lambda: HEALTHY if self.bus and self.bus.healthy() else DOWN)
        for result in self.pm.hook.health_checks(node=self):
            for name, check in (result or {}).items():
                self.health.add_check(name, check)

        for result in self.pm.hook.startup(node=self):
            await await_me_maybe(result)
        self.spawn(self.market.run(), name="market-feed")
        self.spawn(self._refresh_keys(), name="keyring-refresh")
        self.spawn(self.user_status.run(self._kick_disabled), name="user-status-refresh")
        self.spawn(self._purge_expired(), name="store-purge")
        await self.health.check()
        self.spawn(self.health.run(), name="health")
        self.health.ready = True

    async def _check_store(self) -> str:
        return HEALTHY if await self.store.ping() else DOWN

    def _check_broker(self) -> str:
        market = self.market
        if market is None or not market.running or self.broker is None:
            return DOWN
        return HEALTHY if self.broker.healthy else DEGRADED

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
        from fxgate.domain.errors import CloseCode

        for session in list(self.sessions):
            if session.claims is not None and session.claims.kid in kids:
                session.conn.kick(CloseCode.AUTHENTICATION, "Signing key retired")

    def _kick_disabled(self, user_ids: set[str]) -> None:
        from fxgate.domain.errors import CloseCode

        for session in list(self.sessions):
            if session.claims is not None and session.claims.sub in user_ids:
                session.conn.kick(CloseCode.AUTHENTICATION, "Account disabled")

    async def stop(self) -> None:
        """Stop producers, run shutdown hooks, close the store. Clients are closed by
        the web layer before this is called."""
        self.stopping = True
        self.health.ready = False
        for result in self.pm.hook.shutdown(node=self):
            try:
                await asyncio.wait_for(await_me_maybe(result), 5)
            except Exception:
                log.exception("a shutdown hook failed")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.broker is not None:
            await self.broker.stop()
        await self.store.close()
