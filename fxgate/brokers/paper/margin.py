"""MetaTrader 5's margin and profit formulas, and their conversion into the deposit currency.

Formulas (MQL5 Reference, ``ENUM_SYMBOL_CALC_MODE``,
https://www.mql5.com/en/docs/constants/environment_state/marketinfoconstants#enum_symbol_calc_mode,
with the paper broker's margin rate of 1):

- ``SYMBOL_CALC_MODE_FOREX`` (forex pairs): margin = lots * contract_size / leverage, in
  the *margin currency* (the base: EUR for EURUSD); profit = (close - open) *
  contract_size * lots, in the *profit currency* (the quote: JPY for USDJPY).
- ``SYMBOL_CALC_MODE_CFDLEVERAGE`` (XAUUSD and other non-forex instruments here):
  margin = lots * contract_size * market_price / leverage; multiplying by the price
  makes it an amount of the quote currency (USD for XAUUSD); profit as for forex.

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

Not modelled: MT5's reduced "hedged margin" for opposite positions on one symbol (each
position carries its full margin) and per-symbol margin rates (all 1).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from decimal import Decimal
from typing import NamedTuple

from fxgate.domain.errors import TradingError
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
    CFD_LEVERAGE = "cfd_leverage"


class RateSide(enum.Enum):
    BID = "bid"
    ASK = "ask"


def calc_mode(spec: SymbolSpec) -> CalcMode:
    """Forex pairs use MT5's Forex mode; metals and everything else CFD-leverage mode."""
    return CalcMode.FOREX if spec.kind == "forex" else CalcMode.CFD_LEVERAGE


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
        raise TradingError(f"No rate to convert {from_ccy} into {to_ccy}")
    for symbol, divide in path:
        prices = bid_ask(rates[symbol])
        rate = prices.ask if side is RateSide.ASK else prices.bid
        if rate <= 0:
            raise TradingError(f"No valid price for {symbol}")
        amount = amount / rate if divide else amount * rate
    return amount


def dependent_symbols(specs: Mapping[str, SymbolSpec], currency: str) -> dict[str, set[str]]:
    """For each symbol, the other symbols whose profit in ``currency`` its price converts
    (a GBPUSD tick changes the USD value of an EURGBP position)."""
    out: dict[str, set[str]] = {}
    for spec in specs.values():
        for sym, _ in conversion_path(spec.profit_currency, currency, specs) or ():
            if sym != spec.symbol:
                out.setdefault(sym, set()).add(spec.symbol)
    return out


# ---------------------------------------------------------------------------------------
# Margin and profit


def margin_amount(
    spec: SymbolSpec, volume: Decimal, price: Decimal, leverage: int
) -> tuple[Decimal, str]:
    """The margin in its own currency, before conversion: ``(amount, currency)``."""
    if calc_mode(spec) is CalcMode.FOREX:
        return volume * spec.contract_size / leverage, spec.margin_currency
    return volume * spec.contract_size * price / leverage, spec.profit_currency


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
