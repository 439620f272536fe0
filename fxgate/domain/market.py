"""Instruments and quotes: the vocabulary shared by the feed, the brokers and the channels."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """An instrument's specification, with MetaTrader 5's field meanings.

    ``contract_size`` is units of the base asset per lot (100,000 for forex majors,
    100 oz for XAUUSD); margin is computed in ``margin_currency`` (the base currency for
    forex) and profit in ``profit_currency`` (the quote currency).

    Hedged margin (MT5 ``margin_hedged``, ``margin_hedged_use_leg``): opposite positions
    on one symbol (a hedging account) are charged less than the sum of their legs. With
    ``margin_hedged_use_leg`` (the default here, as on most MT5 forex servers) the symbol
    costs the margin of its larger leg: 1 lot bought and 1 lot sold cost one lot.
    Otherwise each hedged lot of each leg is charged as a contract of ``margin_hedged``
    units instead of ``contract_size`` (``None``: half the contract, MT5's usual 50,000
    for a 100,000 forex contract, which again makes a full hedge cost one lot).
    """

    symbol: str
    description: str
    kind: str  # forex | commodity | crypto | stock
    base: str
    quote: str
    digits: int
    contract_size: Decimal
    volume_min: Decimal = Decimal("0.01")
    volume_max: Decimal = Decimal("100")
    volume_step: Decimal = Decimal("0.01")
    typical_spread_points: int = 10
    daily_volatility: float = 0.006  # fraction of price, one standard deviation per day
    start_price: Decimal = Decimal("1")
    trading_hours: str = "forex"  # the session template (see brokers.paper.hours)
    stops_level_points: int = 0
    margin_hedged: Decimal | None = None
    margin_hedged_use_leg: bool = True
    #: MT5's ``SYMBOL_MARGIN_INITIAL`` rate, the multiplier of every margin formula (1 for
    #: the forex pairs and metals here; crypto CFDs are charged a fifth of their value).
    margin_rate: Decimal = Decimal(1)

    @property
    def point(self) -> Decimal:
        return Decimal(1).scaleb(-self.digits)

    @property
    def hedged_contract(self) -> Decimal:
        """Contract units charged per hedged lot of each leg (without ``use_leg``)."""
        if self.margin_hedged is not None:
            return self.margin_hedged
        return self.contract_size / 2

    @property
    def margin_currency(self) -> str:
        return self.base

    @property
    def profit_currency(self) -> str:
        return self.quote

    def too_fine(self, prices: Mapping[str, Decimal | None]) -> list[str]:
        """The names of the prices with more decimals than the symbol quotes: refused
        by every entry point rather than rounded (a limit at 1.085004 on a 5-digit
        symbol is a client bug, not 1.08500)."""
        too_fine = []
        for name, value in prices.items():
            exponent = value.as_tuple().exponent if value is not None else 0
            if isinstance(exponent, int) and -exponent > self.digits:
                too_fine.append(name)
        return too_fine


@dataclass(frozen=True, slots=True)
class Quote:
    """One tick, with the running day statistics that seed 001's market data carries.

    ``open``/``day_high``/``day_low`` are of the current trading day; ``close`` is the
    previous day's close, against which ``change`` and ``change_percent`` are computed.
    Prices are floats on the wire path (they are quoted at the symbol's digits), and
    brokers convert to ``Decimal`` where money is computed. ``stale`` marks the last
    quote re-sent once when prices stopped arriving (the MT5 terminal lost): its ``ts``
    tells its age, and it is not a new price.
    """

    symbol: str
    bid: float
    ask: float
    last: float
    volume: int
    spread_points: int
    ts: float  # epoch seconds
    open: float
    day_high: float
    day_low: float
    close: float
    change: float
    change_percent: float
    digits: int = 5
    stale: bool = False


def _fx(
    symbol: str,
    digits: int,
    start: str,
    spread: int,
    vol: float,
    description: str,
) -> SymbolSpec:
    return SymbolSpec(
        symbol=symbol,
        description=description,
        kind="forex",
        base=symbol[:3],
        quote=symbol[3:],
        digits=digits,
        contract_size=Decimal(100_000),
        typical_spread_points=spread,
        daily_volatility=vol,
        start_price=Decimal(start),
    )


#: The instruments the paper market trades, with typical retail spreads and volatility.
DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    _fx("EURUSD", 5, "1.08500", 10, 0.0055, "Euro vs US Dollar"),
    _fx("GBPUSD", 5, "1.27000", 14, 0.0065, "Great Britain Pound vs US Dollar"),
    _fx("USDJPY", 3, "148.500", 12, 0.0060, "US Dollar vs Japanese Yen"),
    _fx("USDCHF", 5, "0.88000", 15, 0.0055, "US Dollar vs Swiss Franc"),
    _fx("AUDUSD", 5, "0.66000", 12, 0.0070, "Australian Dollar vs US Dollar"),
    _fx("USDCAD", 5, "1.35000", 16, 0.0050, "US Dollar vs Canadian Dollar"),
    _fx("NZDUSD", 5, "0.61000", 16, 0.0072, "New Zealand Dollar vs US Dollar"),
    _fx("EURGBP", 5, "0.85500", 15, 0.0040, "Euro vs Great Britain Pound"),
    _fx("EURJPY", 3, "161.000", 18, 0.0065, "Euro vs Japanese Yen"),
    SymbolSpec(
        symbol="XAUUSD",
        description="Gold vs US Dollar",
        kind="commodity",
        base="XAU",
        quote="USD",
        digits=2,
        contract_size=Decimal(100),
        volume_max=Decimal(50),
        typical_spread_points=25,
        daily_volatility=0.009,
        start_price=Decimal("2030.00"),
    ),
    # Crypto CFDs (seed 004 trades BTC/USD): one coin per lot, quoted in dollars and
    # cents as MT5 brokers do, traded around the clock (``trading_hours = "24x7"`` keeps
    # them open under the ``forex`` schedule), margined in MT5's CFD mode (price times
    # contract, no leverage) at a rate of 0.2: 1:5, as MT5 brokers commonly give crypto
    # CFDs (ESMA's retail limit is 1:2), so that seed 004's example order (1 BTC) fits a
    # 10,000 USD demo account.
    SymbolSpec(
        symbol="BTCUSD",
        description="Bitcoin vs US Dollar",
        kind="crypto",
        base="BTC",
        quote="USD",
        digits=2,
        contract_size=Decimal(1),
        volume_max=Decimal(20),
        typical_spread_points=3500,
        daily_volatility=0.03,
        start_price=Decimal("95000.00"),
        trading_hours="24x7",
        margin_rate=Decimal("0.2"),
    ),
    SymbolSpec(
        symbol="ETHUSD",
        description="Ethereum vs US Dollar",
        kind="crypto",
        base="ETH",
        quote="USD",
        digits=2,
        contract_size=Decimal(1),
        volume_max=Decimal(200),
        typical_spread_points=250,
        daily_volatility=0.04,
        start_price=Decimal("3400.00"),
        trading_hours="24x7",
        margin_rate=Decimal("0.2"),
    ),
)


@dataclass(frozen=True, slots=True)
class MarketTrade:
    """One execution on the market's tape (seed 004's ``trades``): the market's, not an
    account's deal. ``side`` is the aggressor's (``buy`` lifted the ask, ``sell`` hit
    the bid); ``volume`` is in lots; ``id`` is unique per symbol and grows."""

    symbol: str
    price: float
    volume: float
    side: str  # buy | sell
    ts: float
    id: str
