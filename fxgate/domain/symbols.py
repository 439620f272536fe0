"""Symbol names as clients write them: ``BTCUSD`` or ``BTC/USD`` (seed 004).

A broker names an instrument its own way (``BTCUSD``, ``EURUSD.r`` on some MT5
servers); a front end may write it ``BASE/QUOTE``. :class:`SymbolNames` maps one onto
the other from the instruments' specifications, so a dialect accepts either form and
answers in the form it was asked.
"""

from __future__ import annotations

from collections.abc import Iterable

from fxgate.domain.market import SymbolSpec


class SymbolNames:
    def __init__(self, specs: Iterable[SymbolSpec]) -> None:
        self._slashed: dict[str, str] = {}
        self._by_slash: dict[str, str] = {}
        for spec in specs:
            if spec.base and spec.quote:
                name = f"{spec.base}/{spec.quote}".upper()
                self._slashed[spec.symbol] = name
                self._by_slash.setdefault(name, spec.symbol)

    def resolve(self, name: str) -> tuple[str, bool]:
        """The broker's symbol for ``name``, and whether it was written ``BASE/QUOTE``.
        An unknown ``A/B`` becomes ``AB`` (and is refused downstream as unknown)."""
        upper = name.strip().upper()
        if "/" not in upper:
            return upper, False
        return self._by_slash.get(upper, upper.replace("/", "")), True

    def slashed(self, symbol: str) -> str:
        """``BASE/QUOTE`` for a broker symbol (itself when its parts are unknown)."""
        return self._slashed.get(symbol, symbol)

    def table(self) -> dict[str, str]:
        """Broker symbol -> ``BASE/QUOTE``, for an encoder that renames many at once."""
        return dict(self._slashed)
