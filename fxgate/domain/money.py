"""Decimal helpers, so that every amount is rounded the one way MetaTrader 5 rounds it.

MT5 normalises money to the deposit currency's digits and prices to the symbol's digits,
rounding half away from zero (``NormalizeDouble``); ``ROUND_HALF_UP`` is that rule for
``Decimal``. Rounding once, at the edge where an amount becomes a balance, a profit or
a margin, is what keeps sums of rounded amounts from drifting.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

#: Minor-unit digits of the currencies an account may be kept in (ISO 4217); others use 2.
CURRENCY_DIGITS: dict[str, int] = {
    "JPY": 0,
    "KRW": 0,
    "HUF": 0,
    "CLP": 0,
    "ISK": 0,
    "VND": 0,
    "IDR": 0,
    "BHD": 3,
    "KWD": 3,
    "OMR": 3,
    "JOD": 3,
    "TND": 3,
}

ZERO = Decimal(0)
_QUANTS: dict[int, Decimal] = {d: Decimal(1).scaleb(-d) for d in range(0, 12)}


def quantum(digits: int) -> Decimal:
    """The smallest step at ``digits`` places, cached because it is needed on every tick."""
    q = _QUANTS.get(digits)
    return q if q is not None else Decimal(1).scaleb(-digits)


def currency_digits(currency: str) -> int:
    return CURRENCY_DIGITS.get(currency.upper(), 2)


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round an amount to the currency's minor unit, half away from zero as MT5 does."""
    return amount.quantize(quantum(currency_digits(currency)), rounding=ROUND_HALF_UP)


def round_price(price: Decimal, digits: int) -> Decimal:
    """Round a price to a symbol's digits; requests arrive as JSON floats (1.0850000000002)."""
    return price.quantize(quantum(digits), rounding=ROUND_HALF_UP)


def round_percent(value: Decimal) -> Decimal:
    """Margin level and similar ratios are shown with two decimals, as in the terminal."""
    return value.quantize(quantum(2), rounding=ROUND_HALF_UP)


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Convert without inheriting binary noise: ``1.085`` becomes ``Decimal('1.085')``.

    ``Decimal(1.085)`` would be ``1.0849999999999999644...``; going through ``repr`` keeps
    the shortest decimal that round-trips, which is what the sender meant.
    """
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(value)


def is_multiple(value: Decimal, step: Decimal) -> bool:
    """Whether ``value`` is a whole number of ``step`` (volume steps, price ticks)."""
    if step <= 0:
        return True
    return (value % step) == 0
