"""The paper market's tape of executions, made from its ticks and tick volumes.

The simulated market has no other participants, so its trades are made up the way a
tick chart suggests them: every tick with volume is one print of ``volume`` ticks'
worth of the symbol's smallest lot (``volume * volume_step`` lots), on the side the
price moved (a rising bid is a buyer lifting the ask, so the print is at the ask; a
falling or unchanged bid is a seller hitting the bid). A quote with no volume (one set
by an operator or a test) prints nothing. Pure and per symbol: ids grow by one.
"""

from __future__ import annotations

from collections.abc import Mapping

from fxgate.domain.market import MarketTrade, Quote, SymbolSpec


class TapeMaker:
    __slots__ = ("_last_bid", "_seq", "_steps")

    def __init__(self, specs: Mapping[str, SymbolSpec]) -> None:
        self._steps = {name: float(spec.volume_step) for name, spec in specs.items()}
        self._last_bid: dict[str, float] = {}
        self._seq: dict[str, int] = {}

    def on_quote(self, quote: Quote) -> MarketTrade | None:
        symbol = quote.symbol
        previous = self._last_bid.get(symbol)
        self._last_bid[symbol] = quote.bid
        step = self._steps.get(symbol)
        if step is None or quote.volume <= 0 or quote.stale:
            return None
        buy = previous is not None and quote.bid > previous
        seq = self._seq.get(symbol, 0) + 1
        self._seq[symbol] = seq
        return MarketTrade(
            symbol,
            quote.ask if buy else quote.bid,
            round(quote.volume * step, 8),
            "buy" if buy else "sell",
            quote.ts,
            f"{symbol}-{seq}",
        )
