"""MetaTrader 5's margin and profit formulas, and their conversion into the deposit currency.

Formulas (MQL5 Reference, ``ENUM_SYMBOL_CALC_MODE``,
https://www.mql5.com/en/docs/constants/environment_state/marketinfoconstants#enum_symbol_calc_mode,
with the paper broker's margin rate of 1):

- ``SYMBOL_CALC_MODE_FOREX`` (forex pairs): margin = lots * contract_size / leverage, in
  the *margin currency* (the base: EUR for EURUSD); profit = (close - open) *
  contract_size * lots, in the *profit currency* (the quote: JPY for USDJPY).
- ``SYMBOL_CALC_MODE_CFDLEVERAGE`` (XAUUSD and the other metals and commodities here):
  margin = lots * contract_size * market_price / leverage; multiplying by the price
  makes it an amount of the quote currency (USD for XAUUSD); profit as for forex.
- ``SYMBOL_CALC_MODE_CFD`` (the crypto CFDs, BTCUSD and ETHUSD): margin = lots *
  contract_size * market_price * margin_rate, without the account's leverage (MT5.md's
  table); the spec's ``margin_rate`` (0.2 for crypto) is what limits the exposure.

Every formula is multiplied by the symbol's ``margin_rate`` (MT5's initial margin rate).

Which price is used (MetaTrader 5 Help, "Margin Calculation: Retail Forex, Futures",
https://www.metatrader5.com/en/terminal/help/trading_advanced/margin_forex):

- The market price in the CFD formula is the Ask for a buy and the Bid for a sell, i.e.
  the price the deal is done at.
- Converting margin into the deposit currency uses the current rate of the conversion
  symbol on the same side: Ask for a buy, Bid for a sell. Buying 1 lot of EURUSD at
  1.08500 on a USD account: 100000 / 100 = 1000 EUR, times the EURUSD Ask 1.08500 =
  1085.00 USD.
- Converting profit uses the conversion symbol's Bid when the amount is a profit and
  its Ask when it is a loss, whether the amount is multiplied (EURGBP's GBP profit by
  GBPUSD) or divided (USDJPY's JPY profit by USDJPY). The MQL5 reference does not spell
  this out; it is how brokers document MT5's conversion (Exness, "How currencies are
  converted": "For MT5 ... in case of profit ... the bid price is used, and in case of
  loss, the ask price is used").

A conversion takes the direct pair (``EURUSD`` to turn EUR into USD, or ``USDJPY``
inverted to turn JPY into USD) and otherwise goes through USD in two hops. Amounts are
rounded once, to the deposit currency's digits, after conversion. Equity, free margin
and margin level are MT5's ``account_info`` definitions.

Open positions are charged at current rates, as MT5 recomputes ``account_info().margin``:
a position's margin is what ``order_calc_margin`` would ask for it now (its volume on
its side at the current Ask or Bid, converted at the current rate), so a 0.1 lot EURUSD
position on a USD account costs more as EURUSD rises, and an EURGBP position on a USD
account follows EURUSD.

Hedged margin (MetaTrader 5 Help, "Margin Calculation", hedging accounts; the MQL5
reference for ``SYMBOL_MARGIN_HEDGED`` and ``SYMBOL_MARGIN_HEDGED_USE_LEG``): buy and sell
positions on one symbol overlap, and the overlapped ("hedged") volume is charged less:

- with ``margin_hedged_use_leg`` the symbol costs the margin of its larger leg, the sum of
  its buy positions' margins or of its sell positions', whichever is more: 1 lot bought
  and 1 lot sold cost the margin of the bought lot (charged at the Ask);
- otherwise the hedged volume ``min(buy lots, sell lots)`` of each leg is charged as a
  contract of ``margin_hedged`` units instead of ``contract_size`` (the formula's other
  terms unchanged), and the rest of the larger leg in full. With MT5's usual 50,000 for a
  100,000 contract, a full hedge of 1 lot costs half a lot per leg.

MetaQuotes publishes no algorithm beyond these definitions (see MT5.md); the paper broker
applies them per symbol, from each leg's margin at current rates. ``order_calc_margin``
ignores open positions, as MT5's does; the check before a fill charges what the fill adds
to the account's margin, so a hedging order on a full account is not refused.

Not modelled: maintenance margins, and margin rates per side or per order type.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import NamedTuple

from fxgate.domain.errors import refused
from fxgate.domain.market import Quote, SymbolSpec
from fxgate.domain.money import ZERO, round_money, round_percent, to_decimal
from fxgate.domain.trading import Side


class BidAsk(NamedTuple):
    bid: Decimal
    ask: Decimal


#: A rates lookup: symbol to its current prices, as a ``BidAsk``, a ``Quote`` or ``(bid, ask)``.
Rates = Mapping[str, BidAsk | Quote | tuple[Decimal, Decimal]]


class CalcMode(enum.StrEnum):
    FOREX = "forex"
    CFD = "cfd"
    CFD_LEVERAGE = "cfd_leverage"


class RateSide(enum.Enum):
    BID = "bid"
    ASK = "ask"


def calc_mode(spec: SymbolSpec) -> CalcMode:
    """Forex pairs use MT5's Forex mode, crypto CFDs its CFD mode (no leverage), metals
    and everything else CFD-leverage mode."""
    if spec.kind == "forex":
        return CalcMode.FOREX
    if spec.kind == "crypto":
        return CalcMode.CFD
    return CalcMode.CFD_LEVERAGE


def bid_ask(value: BidAsk | Quote | tuple[Decimal, Decimal]) -> BidAsk:
    if isinstance(value, BidAsk):
        return value
    if isinstance(value, Quote):
        return BidAsk(to_decimal(value.bid), to_decimal(value.ask))
    return BidAsk(to_decimal(value[0]), to_decimal(value[1]))


def entry_price(side: Side, prices: BidAsk) -> Decimal:
    """A buy is done at the Ask, a sell at the Bid."""
    return prices.ask if side is Side.BUY else prices.bid


def exit_price(side: Side, prices: BidAsk) -> Decimal:
    """A buy position is valued and closed at the Bid, a sell position at the Ask."""
    return prices.bid if side is Side.BUY else prices.ask


# ---------------------------------------------------------------------------------------
# Conversion


def conversion_path(
    from_ccy: str, to_ccy: str, symbols: Mapping[str, object]
) -> tuple[tuple[str, bool], ...] | None:
    """The symbols to convert through, each with ``True`` when the amount is divided.

    ``()`` when no conversion is needed, ``None`` when no path exists among ``symbols``.
    """
    if from_ccy == to_ccy:
        return ()
    direct = from_ccy + to_ccy
    if direct in symbols:
        return ((direct, False),)
    inverse = to_ccy + from_ccy
    if inverse in symbols:
        return ((inverse, True),)
    if "USD" in (from_ccy, to_ccy):
        return None
    first = conversion_path(from_ccy, "USD", symbols)
    second = conversion_path("USD", to_ccy, symbols)
    if first is None or second is None:
        return None
    return first + second


def convert(amount: Decimal, from_ccy: str, to_ccy: str, rates: Rates, side: RateSide) -> Decimal:
    """Convert ``amount`` at the ``side`` price of each conversion symbol, unrounded."""
    path = conversion_path(from_ccy, to_ccy, rates)
    if path is None:
        raise refused(f"No rate to convert {from_ccy} into {to_ccy}", "no_conversion_rate")
    for symbol, divide in path:
        prices = bid_ask(rates[symbol])
        rate = prices.ask if side is RateSide.ASK else prices.bid
        if rate <= 0:
            raise refused(f"No valid price for {symbol}", "no_price", symbol=symbol)
        amount = amount / rate if divide else amount * rate
    return amount


def dependent_symbols(specs: Mapping[str, SymbolSpec], currency: str) -> dict[str, set[str]]:
    """For each symbol, the other symbols whose profit or margin in ``currency`` its price
    converts (a GBPUSD tick changes the USD profit of an EURGBP position, an EURUSD tick
    its USD margin)."""
    out: dict[str, set[str]] = {}
    for spec in specs.values():
        for ccy in (spec.profit_currency, spec.margin_currency):
            for sym, _ in conversion_path(ccy, currency, specs) or ():
                if sym != spec.symbol:
                    out.setdefault(sym, set()).add(spec.symbol)
    return out


# ---------------------------------------------------------------------------------------
# Margin and profit


def margin_amount(
    spec: SymbolSpec, volume: Decimal, price: Decimal, leverage: int
) -> tuple[Decimal, str]:
    """The margin in its own currency, before conversion: ``(amount, currency)``."""
    mode = calc_mode(spec)
    rate = spec.margin_rate
    if mode is CalcMode.FOREX:
        return volume * spec.contract_size / leverage * rate, spec.margin_currency
    if mode is CalcMode.CFD:
        return volume * spec.contract_size * price * rate, spec.profit_currency
    return volume * spec.contract_size * price / leverage * rate, spec.profit_currency


def required_margin(
    spec: SymbolSpec,
    side: Side,
    volume: Decimal,
    price: Decimal,
    leverage: int,
    account_currency: str,
    rates: Rates,
) -> Decimal:
    """Margin for ``volume`` lots dealt at ``price``, in the deposit currency, rounded."""
    amount, currency = margin_amount(spec, volume, price, leverage)
    rate_side = RateSide.ASK if side is Side.BUY else RateSide.BID
    return round_money(
        convert(amount, currency, account_currency, rates, rate_side), account_currency
    )


def profit_in_profit_currency(
    spec: SymbolSpec, side: Side, volume: Decimal, open_price: Decimal, close_price: Decimal
) -> Decimal:
    """``(close - open) * contract_size * lots``, negated for a sell, in the quote currency."""
    return (close_price - open_price) * side.sign * spec.contract_size * volume


def profit(
    spec: SymbolSpec,
    side: Side,
    volume: Decimal,
    open_price: Decimal,
    close_price: Decimal,
    account_currency: str,
    rates: Rates,
) -> Decimal:
    """Profit of ``volume`` lots from ``open_price`` to ``close_price`` in the deposit currency."""
    raw = profit_in_profit_currency(spec, side, volume, open_price, close_price)
    if raw == 0:
        return round_money(ZERO, account_currency)
    rate_side = RateSide.BID if raw > 0 else RateSide.ASK
    return round_money(
        convert(raw, spec.profit_currency, account_currency, rates, rate_side), account_currency
    )


def hedged_margin(
    spec: SymbolSpec,
    buy_lots: Decimal,
    buy_margin: Decimal,
    sell_lots: Decimal,
    sell_margin: Decimal,
) -> Decimal:
    """The margin of a symbol's positions from each leg's lots and margin at current rates,
    with the hedged volume charged as the symbol's hedged-margin settings say. Unrounded
    (the caller rounds the account's total once)."""
    hedged = min(buy_lots, sell_lots)
    if hedged <= 0:
        return buy_margin + sell_margin
    if spec.margin_hedged_use_leg:
        return max(buy_margin, sell_margin)
    # Margin is linear in lots and in contract size: scale each leg's own margin.
    k = spec.hedged_contract / spec.contract_size
    return (
        buy_margin * (buy_lots - hedged + k * hedged) / buy_lots
        + sell_margin * (sell_lots - hedged + k * hedged) / sell_lots
    )


# ---------------------------------------------------------------------------------------
# Account figures


def equity(balance: Decimal, floating_profit: Decimal, swap: Decimal = ZERO) -> Decimal:
    """Commission is already in the balance (charged at each deal), so it is not added here."""
    return balance + floating_profit + swap


def free_margin(equity_value: Decimal, margin: Decimal) -> Decimal:
    return equity_value - margin


def margin_level(equity_value: Decimal, margin: Decimal) -> Decimal | None:
    """``equity / margin * 100`` in percent, or ``None`` when no margin is in use."""
    if margin <= 0:
        return None
    return round_percent(equity_value / margin * 100)
