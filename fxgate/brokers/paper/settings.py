"""The paper broker's account terms and simulated liquidity, with their defaults."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fxgate.domain.money import ZERO
from fxgate.domain.trading import AccountMode


@dataclass(frozen=True, slots=True)
class PaperSettings:
    """Terms every paper account opens with, and the depth the paper market offers.

    ``commission_per_lot`` is charged per side, on every deal (opening and closing), in
    the account currency. ``stop_out_level`` and ``margin_call_level`` are margin levels
    in percent: below the first, positions are closed (largest loss first) until the level
    recovers; below the second, the account's ``margin_call`` flag is set.

    Liquidity: each side of the synthetic order book has ``book_levels`` levels of
    ``book_level_volume`` lots, and an order can take at most their sum from one quote
    (see ``book.py``).
    """

    initial_balance: Decimal = Decimal(10000)
    currency: str = "USD"
    leverage: int = 100
    mode: AccountMode = AccountMode.HEDGING
    commission_per_lot: Decimal = ZERO
    stop_out_level: Decimal = Decimal(50)
    margin_call_level: Decimal = Decimal(100)
    book_levels: int = 5
    book_level_volume: Decimal = Decimal(10)

    def __post_init__(self) -> None:
        if self.leverage <= 0:
            raise ValueError("leverage must be positive")
        if self.initial_balance < 0 or self.commission_per_lot < 0:
            raise ValueError("initial_balance and commission_per_lot must not be negative")
        if self.book_levels <= 0 or self.book_level_volume <= 0:
            raise ValueError("the order book needs at least one level with some volume")
        if len(self.currency) != 3:
            raise ValueError("currency must be an ISO 4217 code")

    @property
    def liquidity(self) -> Decimal:
        """Lots one order can fill from one quote."""
        return self.book_levels * self.book_level_volume
