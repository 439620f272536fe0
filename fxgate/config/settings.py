"""The daemon's configuration: one typed tree, read from TOML, overridden by ``FXGATE_…``.

Every key has a default, so no file at all gives the embedded setup (SQLite, local bus,
paper broker). An environment variable ``FXGATE_<SECTION>_<KEY>`` overrides
``[section] key`` (``FXGATE_SERVER_PORT=9000``, ``FXGATE_WS_MAX_SUBSCRIPTIONS=100``);
list values are JSON (``FXGATE_PAPER_SYMBOLS='["EURUSD"]'``). Unknown keys are
errors, so a typo in ``fxgate.toml`` is caught by ``fxgate config check`` instead of
being ignored. What the types cannot say (backend names, paper symbols) is checked by
:mod:`fxgate.app.validation`, for ``config check`` and start-up alike. Every key here is
used: a key arrives with the feature that reads it.
"""

from __future__ import annotations

import os
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from fxgate.domain.trading import AccountMode


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(Section):
    host: str = Field("0.0.0.0", description="Address to listen on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")
    xheaders: bool = Field(False, description="Trust X-Forwarded-For/-Proto from a reverse proxy.")
    shutdown_grace: float = Field(
        2.0, ge=0, description="Seconds given to clients to read the RESTARTING message."
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="Origins allowed to call the REST API from a browser."
    )
    gc_freeze: bool = Field(
        True, description="gc.freeze() after start-up, keeping the cyclic GC off the hot path."
    )
    switch_interval: float = Field(
        0.001,
        gt=0,
        le=0.1,
        description="Seconds another thread (the store's, the broker's) may hold the GIL"
        " before the event loop gets it back (sys.setswitchinterval; Python's default is"
        " 0.005, a 5 ms stall of the loop).",
    )
    rate_limit_per_minute: int = Field(
        100, ge=1, description="REST requests per user per minute (seed 003)."
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a connection has to send a request's headers (and to start"
        " the next one when idle); then it is closed.",
    )
    body_timeout: float = Field(30.0, gt=0, description="Seconds a request has to send its body.")
    max_header_size: int = Field(
        64 * 1024,
        ge=1024,
        le=1024 * 1024,
        description="Bytes of request line and headers; larger gets 431.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes sharing the port (a supervisor runs them); more"
        ' than 1 needs bus.backend = "redis".',
    )


class LogSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = Field("json", description="json: one object per line.")


class StoreSettings(Section):
    backend: str = Field(
        "sqlite", description="sqlite (embedded, the default) or mongodb (the mongodb extra)."
    )
    mongodb_uri: str = Field(
        "mongodb://localhost:27017", description="Secret-bearing: prefer FXGATE_STORE_MONGODB_URI."
    )
    mongodb_database: str = "fxgate"


class BusSettings(Section):
    """How events travel between producers and hubs. ``local``: in-process, one worker;
    history of the trading channels kept in the store. ``redis``: every node's hub gets
    every node's events through Redis, which numbers them and keeps their history."""

    backend: str = Field(
        "local",
        description="local: in-process, one worker; redis: several workers and hosts"
        " through Redis (the redis extra).",
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0",
        description="The Redis of the redis bus (redis://, rediss:// or unix://), or a"
        " master found through Sentinel (redis+sentinel://host:26379[,host:port...]"
        "/master[/db], rediss+sentinel:// for TLS); secret-bearing with a password:"
        " prefer FXGATE_BUS_REDIS_URL or redis_password_file.",
    )
    redis_password_file: str = Field(
        "",
        description="File holding the Redis password (a systemd credential, a container"
        " secret), for a redis_url without one; empty: the URL's password, if any.",
    )
    redis_prefix: str = Field(
        "fxgate",
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Prefix of fxgate's Redis keys and channel: two deployments can"
        " share one Redis.",
    )
    redis_timeout: float = Field(
        2.0, gt=0, description="Seconds to connect to Redis or wait for one command."
    )
    redis_queue: int = Field(
        10_000,
        ge=100,
        description="Events waiting for Redis before each one is delivered locally"
        " instead (a slow Redis never blocks the event loop).",
    )
    history_meta_ttl: int = Field(
        86_400,
        gt=0,
        description="Seconds Redis keeps a stream's offset and epoch after its last"
        " message; later, the stream starts a new epoch.",
    )
    leader_lease: float = Field(
        5.0,
        ge=1,
        le=300,
        description="Seconds the trading leader's lease in Redis lasts unless renewed:"
        " another node takes over within this when the leader dies.",
    )
    command_timeout: float = Field(
        5.0,
        gt=0,
        le=120,
        description="Seconds a trading command sent to the leader waits for its answer"
        " before the client gets SERVICE_UNAVAILABLE.",
    )
    command_concurrency: int = Field(
        4,
        ge=1,
        le=64,
        description="Trading commands from other nodes the leader runs at once; one"
        " user's commands always run one after the other, in the order sent.",
    )


class BrokerSettings(Section):
    backend: str = Field(
        "paper",
        description="paper: the built-in simulated market; mt5: a MetaTrader 5 terminal"
        " (the [mt5] section).",
    )
    leader_eligible: bool = Field(
        True,
        description="With the redis bus: whether this node may become the trading leader"
        " (run the broker); false on nodes that cannot reach the MT5 terminal.",
    )


class PaperSettings(Section):
    """The paper broker's market and the terms every paper account opens with.

    The one definition of these terms: the config section and the engine read the same
    object. ``commission_per_lot`` is charged per side, on every deal (opening and
    closing), in the account currency. ``stop_out_level`` and ``margin_call_level`` are
    margin levels in percent: below the first, positions are closed (largest loss first)
    until the level recovers; below the second, the account's ``margin_call`` flag is set.
    Liquidity: each side of the synthetic order book has ``book_levels`` levels of
    ``book_level_volume`` lots, and one order takes at most their sum from one quote.
    """

    seed: int | None = Field(None, description="Fixes the simulated market for reproducible runs.")
    tick_rate: float = Field(2.0, gt=0, le=10_000, description="Mean ticks/s per symbol.")
    market_hours: Literal["24x7", "forex"] = "24x7"
    symbols: list[str] = Field(
        default_factory=lambda: [
            "EURUSD",
            "GBPUSD",
            "USDJPY",
            "USDCHF",
            "AUDUSD",
            "USDCAD",
            "NZDUSD",
            "EURGBP",
            "EURJPY",
            "XAUUSD",
            "BTCUSD",
            "ETHUSD",
        ]
    )
    initial_balance: Decimal = Field(Decimal("10000"), ge=0)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")
    leverage: int = Field(100, ge=1, le=3000)
    account_mode: AccountMode = AccountMode.HEDGING
    commission_per_lot: Decimal = Field(Decimal("0"), ge=0)
    stop_out_level: Decimal = Field(Decimal("50"), ge=0)
    margin_call_level: Decimal = Field(Decimal("100"), ge=0)
    book_levels: int = Field(5, ge=1, le=50, description="Order book levels a side.")
    book_level_volume: Decimal = Field(Decimal("10"), gt=0, description="Lots per level.")

    @property
    def liquidity(self) -> Decimal:
        """Lots one order can fill from one quote."""
        return self.book_levels * self.book_level_volume


class Mt5Settings(Section):
    """The MetaTrader 5 terminal the ``mt5`` broker drives (``fxgate.brokers.mt5``).

    One terminal is one account, owned by one fxgate user (``owner``): only that user
    trades it and sees its positions, orders and deals, including those made by hand in
    the terminal or by an Expert Advisor. ``terminal_path``, ``login``, ``server``,
    ``timeout`` and ``portable`` go to ``MetaTrader5.initialize`` as they are (empty /
    unset: the terminal's own choice). The password comes from ``password_file`` or the
    ``FXGATE_MT5_PASSWORD`` environment variable; it is never logged, stored, or shown
    in a repr. ``bridge`` empty uses the native package (Windows); ``mt5linux://host:port``
    talks to an ``mt5linux`` server next to a terminal under Wine.
    """

    terminal_path: str = Field("", description="terminal64.exe; empty: the installed one.")
    login: int | None = Field(None, description="Account number; unset: the terminal's.")
    server: str = Field("", description="Trade server name, e.g. MetaQuotes-Demo.")
    password_file: str = Field(
        "", description="File holding the account password (or FXGATE_MT5_PASSWORD)."
    )
    password: SecretStr | None = Field(
        None,
        repr=False,
        description="Only from the environment (FXGATE_MT5_PASSWORD), never in a file.",
    )
    timeout: int = Field(60_000, gt=0, description="initialize() timeout, milliseconds.")
    portable: bool = Field(False, description="Start the terminal in portable mode.")
    symbols: list[str] = Field(
        default_factory=list, description="Symbols to stream; empty: the Market Watch."
    )
    owner: str = Field("", description="The fxgate user id whose account this is.")
    poll_interval: float = Field(0.1, gt=0, description="Seconds between tick polls.")
    trade_poll_interval: float = Field(
        0.25, gt=0, description="Seconds between polls of positions, orders, deals, account."
    )
    magic: int = Field(
        20_260_701, ge=0, description="Expert id stamped on fxgate's orders (TradeRequest.magic)."
    )
    deviation: int = Field(10, ge=0, description="Slippage allowed on market orders, in points.")
    bridge: str = Field(
        "", description="Empty: the MetaTrader5 package; mt5linux://127.0.0.1:18812: the bridge."
    )
    worker: Literal["process", "thread"] = Field(
        "process",
        description="process: the terminal's owner is a child process (no GIL shared with"
        " the event loop); thread: a thread of the daemon.",
    )


class AuthSettings(Section):
    access_token_ttl: int = Field(900, gt=0, description="Seconds (seed 003: 15 minutes).")
    refresh_token_ttl: int = Field(7 * 86400, gt=0, description="Seconds (seed 003: 7 days).")
    keyring_refresh: float = Field(
        5.0, gt=0, description="Seconds between re-reading the signing keys from the store."
    )
    signature_window: int = Field(
        30, gt=0, description="Seconds an API-key signature's timestamp may be off."
    )
    leeway: int = Field(0, ge=0, description="Clock skew tolerated on exp/iat, in seconds.")
    login_attempts_per_minute: int = Field(
        10, ge=1, description="Password attempts per email and client address per minute."
    )
    max_token_ttl: int = Field(
        366 * 86400,
        gt=0,
        description="Seconds: the longest lifetime a token may have; one whose exp is"
        " further from its iat is refused, whoever signed it.",
    )
    user_refresh: float = Field(
        2.0,
        gt=0,
        description="Seconds between re-reads of changed users: a user disabled by the"
        " CLI is refused, and their sockets closed, within this.",
    )
    master_key_file: str = Field(
        "",
        description="File with the key that encrypts signing keys and API-key secrets in the"
        " store; empty: <state_dir>/master.key, created (0600) on first use.",
    )


class WsSettings(Section):
    ping_interval: float = Field(30.0, gt=0, description="Seconds between WebSocket pings.")
    ping_timeout: float = Field(10.0, gt=0, description="Seconds to wait for a pong.")
    auth_timeout: float = Field(10.0, gt=0, description="Seconds to send the first auth message.")
    max_subscriptions: int = Field(50, ge=1)
    max_messages_per_second: int = Field(100, ge=1)
    flood_grace: float = Field(
        5.0,
        gt=0,
        description="Seconds a client may stay over max_messages_per_second (messages"
        " dropped with no second free of drops) before it is closed with 4029.",
    )
    max_message_size: int = Field(64 * 1024, ge=256, description="Bytes; larger gets an error.")
    max_frame_size: int = Field(
        4 * 1024 * 1024, ge=1024, description="Bytes; larger closes the connection (1009)."
    )
    connections_per_minute: int = Field(10, ge=1, description="Per user.")
    queue_max_bytes: int = Field(
        1024 * 1024, ge=4096, description="Per-connection outbound backlog before 4008."
    )
    recovery_max_messages: int = Field(
        300,
        ge=0,
        description="Most messages a since recovery replays; a larger gap gets a"
        " snapshot (recovered: false). 0: no cap.",
    )
    anonymous_market_data: bool = Field(
        False,
        description="Let /ws/market-data (seed 004) take clients without a token, limited"
        " to public market data; off: they are refused with 4001.",
    )
    anonymous_connections_per_minute: int = Field(
        30, ge=1, description="Anonymous /ws/market-data connections per client address."
    )
    recovery_window: float = Field(
        120.0,
        ge=0,
        description="Seconds after a user's last connection closed within which the next"
        " one of a dialect without offsets (Socket.IO) gets the missed trading events"
        " replayed; later, fresh lists and snapshots.",
    )


class SocketIOSettings(Section):
    list_interval: float = Field(
        1.0,
        gt=0,
        description="Seconds: at most one positions_update/orders_update per user per"
        " interval while prices move (the first change after a quiet spell goes out at once).",
    )


class RiskSettings(Section):
    max_open_positions: int = Field(200, ge=1)
    max_daily_loss: Decimal = Field(Decimal("1000"), ge=0, description="Account currency; 0 = off.")
    max_order_volume: Decimal = Field(Decimal("50"), gt=0)


class AnalyticsSettings(Section):
    cache_users: int = Field(
        1000,
        ge=1,
        description="Users whose closed trades are kept in memory for analytics (about"
        " 0.22 KB a trade); the least recently used beyond it are read again when needed.",
    )


class SystemSettings(Section):
    status_interval: float = Field(30.0, gt=0, description="Seconds between system messages.")


#: What a dashboard (``/ws/dashboard``, seed 000) can receive, by ``type``.
DASHBOARD_TYPES = ("trading_status", "system_metrics", "market_data", "notification", "analytics")


class DashboardSettings(Section):
    """``/ws/dashboard`` (seed 000): pacing, the per-user cap, compression."""

    interval: float = Field(
        1.0, gt=0, description="Seconds: trading_status goes out on change, at most this often."
    )
    metrics_interval: float = Field(10.0, gt=0, description="Seconds between system_metrics.")
    max_messages_per_second: int = Field(
        100,
        ge=1,
        description="Messages per user per second across all their dashboard connections"
        " (seed 000); market data is batched to stay under it, trading events wait.",
    )
    default_tier: str = Field(
        "free", description="The tier of a token whose tier claim names none of [tiers]."
    )
    compression: bool = Field(
        True, description="Accept permessage-deflate when a client offers it."
    )
    compression_threshold: int = Field(
        512, ge=0, description="Bytes: smaller messages go out uncompressed."
    )
    compression_level: int = Field(6, ge=1, le=9, description="zlib level.")
    notification_ttl: int = Field(
        300, gt=0, description="Seconds until a notification's expires_at."
    )
    volatility_window: float = Field(
        300.0, gt=0, description="Seconds of prices the volatility label is measured over."
    )
    activity_size: int = Field(
        10, ge=1, le=100, description="Entries of analytics.recent_activity."
    )


class TierSettings(Section):
    """One subscription tier: what its tokens' dashboards get (``tier`` claim)."""

    types: list[str] = Field(
        default_factory=lambda: list(DASHBOARD_TYPES), description="Dashboard message types."
    )
    symbols: list[str] = Field(
        default_factory=lambda: ["*"], description='Market-data symbols; ["*"]: all.'
    )
    market_data_per_second: float = Field(
        1.0, gt=0, le=1000, description="market_data messages per second (batched)."
    )
    api_calls_per_day: int = Field(
        0, ge=0, description="REST requests per user per UTC day; 0: no daily quota."
    )


def _default_tiers() -> dict[str, TierSettings]:
    return {
        "free": TierSettings(
            types=["trading_status", "system_metrics", "market_data", "notification"],
            symbols=["EURUSD", "GBPUSD", "USDJPY"],
            market_data_per_second=1.0,
            api_calls_per_day=10_000,
        ),
        "pro": TierSettings(market_data_per_second=5.0, api_calls_per_day=100_000),
        "enterprise": TierSettings(market_data_per_second=20.0, api_calls_per_day=0),
    }


class Settings(BaseSettings):
    """The whole configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix="FXGATE_",
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
    )

    server: ServerSettings = ServerSettings()
    log: LogSettings = LogSettings()
    store: StoreSettings = StoreSettings()
    bus: BusSettings = BusSettings()
    broker: BrokerSettings = BrokerSettings()
    paper: PaperSettings = PaperSettings()
    mt5: Mt5Settings = Mt5Settings()
    auth: AuthSettings = AuthSettings()
    ws: WsSettings = WsSettings()
    socketio: SocketIOSettings = SocketIOSettings()
    risk: RiskSettings = RiskSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    system: SystemSettings = SystemSettings()
    dashboard: DashboardSettings = DashboardSettings()
    tiers: dict[str, TierSettings] = Field(
        default_factory=_default_tiers,
        description="Subscription tiers by name (the token's tier claim).",
    )
    plugins: list[str] = Field(
        default_factory=list, description="Extra plugin modules to load, by import name."
    )
    disable_plugins: list[str] = Field(
        default_factory=list, description="Plugins (built-in or third-party) not to register."
    )
    state_dir: Path = Field(Path("var"), description="Where the SQLite file lives.")

    def tier(self, name: str) -> tuple[str, TierSettings]:
        """The tier a token's ``tier`` claim names, or ``dashboard.default_tier`` for a
        name the config does not know (so an unknown tier never gets more than it)."""
        found = self.tiers.get(name)
        if found is not None:
            return name, found
        default = self.dashboard.default_tier
        return default, self.tiers.get(default) or TierSettings()

    @field_validator("state_dir", mode="before")
    @classmethod
    def _expand(cls, v: Any) -> Any:
        return Path(v).expanduser() if isinstance(v, str) else v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment first: it overrides what the file (passed as init values) says.
        return (env_settings, init_settings)


#: Where ``fxgate serve`` looks when no --config is given (first that exists).
DEFAULT_CONFIG_PATHS = (Path("etc/fxgate.toml"), Path("/etc/fxgate/fxgate.toml"))


def read_toml(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def load_settings(path: Path | None = None, *, use_default_paths: bool = False) -> Settings:
    """Settings from ``path`` (TOML) with ``FXGATE_…`` overrides.

    ``FXGATE_STATE_DIR`` also sets ``state_dir``; ``FXGATE_CONFIG`` names the file when
    ``path`` is None. Raises ``pydantic.ValidationError`` (or ``tomllib.TOMLDecodeError``)
    on a bad file; :func:`describe_error` turns it into one line per bad key.
    """
    if path is None and os.environ.get("FXGATE_CONFIG"):
        path = Path(os.environ["FXGATE_CONFIG"])
    if path is None and use_default_paths:
        path = next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)
    data = read_toml(path) if path is not None else {}
    return Settings(**data)


def describe_error(exc: Exception) -> list[str]:
    """One human line per problem, naming the key as ``section.key``."""
    from pydantic import ValidationError as PydanticValidationError

    if isinstance(exc, PydanticValidationError):
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(root)"
            if err["type"] == "extra_forbidden":
                lines.append(f"{key}: unknown key")
            else:
                lines.append(f"{key}: {err['msg']} (got {err.get('input')!r})")
        return lines
    if isinstance(exc, tomllib.TOMLDecodeError):
        return [f"TOML syntax: {exc}"]
    return [str(exc)]
