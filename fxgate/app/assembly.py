"""Build the node from the settings, whole, in an order where nothing is half-built.

1. Check the settings (:func:`fxgate.app.validation.problems`): a bad one stops here,
   with the same line ``fxgate config check`` prints.
2. The store, then the broker backend (broker and quote feed) on it, by name.
3. The hub (empty), then the bus that delivers to it: from here on ``bus.publish`` is a
   real publish target, so the services are built complete.
4. The activity feed (the ``logs`` channel's producer) and the signal book; the market
   and trading services and the candle recorder; health.
5. The plugin API over those parts, then the channels the plugins register with it,
   into the hub, and the plugins' health checks.

Nothing runs yet: :meth:`fxgate.node.Node.start` opens the store and starts producers.
"""

from __future__ import annotations

import pluggy

from fxgate import __version__
from fxgate.app.backends import BROKERS, BUSES, CLUSTER, STORES, load
from fxgate.app.plugin_api import NodeAPI
from fxgate.app.tasks import Tasks
from fxgate.app.validation import problems
from fxgate.bus.port import Bus
from fxgate.config.settings import Settings
from fxgate.hub.announced import in_history
from fxgate.hub.hub import Hub
from fxgate.node import Node, StartupError
from fxgate.plugins.manager import PluginError, make_plugin_manager
from fxgate.services.activity import ActivityFeed
from fxgate.services.auth.keyring import KeyRing
from fxgate.services.auth.sealing import Sealer, master_key_path
from fxgate.services.auth.tokens import TokenService
from fxgate.services.auth.user_status import UserStatus
from fxgate.services.depth import DepthFeed
from fxgate.services.health import DEGRADED, DOWN, HEALTHY, HealthMonitor
from fxgate.services.market import MarketService
from fxgate.services.market_history import CandleRecorder
from fxgate.services.ports.broker import Broker, BrokerHealth, BrokerTape
from fxgate.services.ports.cluster import Cluster
from fxgate.services.ports.store import Store
from fxgate.services.quota import ApiQuota
from fxgate.services.risk import RiskLimits
from fxgate.services.signals import SignalBook
from fxgate.services.trading import TradingService
from fxgate.services.usage import UsageMeter


def build_node(settings: Settings, *, pm: pluggy.PluginManager | None = None) -> Node:
    """The node for ``settings``, every part present; raises :class:`StartupError`
    (one line per problem, joined) for settings it cannot run with."""
    found = problems(settings, plugins=pm is None)
    if found:
        raise StartupError("; ".join(found))
    if pm is None:
        try:
            pm = make_plugin_manager(disabled=settings.disable_plugins, modules=settings.plugins)
        except PluginError as exc:
            raise StartupError(f"plugins: {exc}") from None

    tasks = Tasks()
    store = STORES.builder(settings.store.backend)(settings)
    cluster: Cluster | None = None
    writer = store  # what the broker and the trading service write through
    if settings.bus.backend == "redis":
        # Several nodes: only the leader's broker may write; the fence sees to it.
        cluster = load(CLUSTER.builder)(settings)
        writer = cluster.fence(store)
    backend = BROKERS.builder(settings.broker.backend)(settings, writer)
    hub = Hub()
    bus = BUSES.builder(settings.bus.backend)(settings, hub, store)

    activity = ActivityFeed(bus.publish)
    signals = SignalBook(store.signals)
    # Every signal this node's hub publishes, whichever node accepted it.
    hub.taps["signals"] = signals.timing.observe
    market = MarketService(backend.quotes, bus.publish, books=backend.broker.order_book)
    candles = CandleRecorder(store.candles)
    # Listen from the start: quotes that arrive while the last bars load are not lost.
    market.add_listener(candles.on_quote)
    trading = TradingService(
        backend.broker if cluster is None else cluster.broker_view(backend.broker),
        writer.trading,
        bus.publish,
        audit=store.audit,
        limits=RiskLimits(
            max_open_positions=settings.risk.max_open_positions,
            max_daily_loss=settings.risk.max_daily_loss or None,
            max_volume=settings.risk.max_order_volume,
        ),
        spawn=tasks.spawn,
        history_users=settings.analytics.cache_users,
        # The daily REST quota, in the store: every worker and node counts one quota.
        usage=UsageMeter(quota=ApiQuota(store.usage)),
        activity=activity,
    )
    if cluster is not None:
        cluster.attach(trading, flush=getattr(bus, "flush", None), announced=in_history(hub))
    # The order book and the tape are made only for watched symbols; with a shared bus
    # the watchers may be on another node, so then they are always made.
    wanted = hub.has_subscribers if settings.bus.backend == "local" else _always
    depth = DepthFeed(backend.broker, bus.publish, wanted, tasks.spawn)
    market.add_listener(depth.on_quote)
    if isinstance(backend.broker, BrokerTape):
        backend.broker.subscribe_tape(depth.on_trade)
    health = HealthMonitor(activity=activity)
    api = NodeAPI(
        version=__version__,
        settings=settings,
        trading=trading,
        market=market,
        health=health,
        signals=signals,
        hub=hub,
        publish=bus.publish,
        spawn=tasks.spawn,
    )
    try:
        for result in pm.hook.register_channels(api=api):
            for channel in result or ():
                hub.register(channel)
    except ValueError as exc:
        raise StartupError(str(exc)) from None
    _core_checks(health, store, market, backend.broker, bus, cluster)
    for result in pm.hook.health_checks(api=api):
        for name, check in (result or {}).items():
            health.add_check(name, check)

    sealer = Sealer(master_key_path(settings.auth.master_key_file, settings.state_dir))
    keyring = KeyRing(
        store.signing_keys,
        sealer=sealer,
        refresh=settings.auth.keyring_refresh,
        activity=activity,
    )
    user_status = UserStatus(store.users, refresh=settings.auth.user_refresh)
    tokens = TokenService(
        keyring,
        default_ttl=settings.auth.access_token_ttl,
        leeway=settings.auth.leeway,
        max_ttl=settings.auth.max_token_ttl,
        is_revoked=store.sessions.is_jti_revoked,
        is_active=user_status.is_active,
    )
    return Node(
        settings,
        pm=pm,
        api=api,
        tasks=tasks,
        store=store,
        sealer=sealer,
        keyring=keyring,
        tokens=tokens,
        user_status=user_status,
        hub=hub,
        bus=bus,
        broker=backend.broker,
        quote_listener=backend.on_quote,
        market=market,
        candles=candles,
        trading=trading,
        health=health,
        activity=activity,
        signals=signals,
        cluster=cluster,
        commands=trading if cluster is None else cluster.commands,
    )


def _always(channel: str, key: str) -> bool:
    return True


def _core_checks(
    health: HealthMonitor,
    store: Store,
    market: MarketService,
    broker: Broker,
    bus: Bus,
    cluster: Cluster | None,
) -> None:
    async def database() -> str:
        return HEALTHY if await store.ping() else DOWN

    def broker_check() -> str:
        if cluster is not None and not cluster.is_leader:
            return HEALTHY  # the broker runs on the leader; this node sends it commands
        if not market.running:
            return DOWN
        if isinstance(broker, BrokerHealth):
            return broker.health
        return HEALTHY if broker.healthy else DEGRADED

    health.add_check("database", database)
    health.add_check("broker", broker_check)
    for name in bus.components:  # "bus", and "redis" for the Redis bus
        health.add_check(name, lambda: HEALTHY if bus.healthy() else DOWN)
