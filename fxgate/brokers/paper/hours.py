"""When the paper market trades, and which trading session a moment belongs to.

Two schedules, chosen by name in the config (``market_hours``):

``"24x7"`` (the default)
    Always open, so a demo or a test never meets a closed market at the weekend.

``"forex"``
    The real retail FX week: open from Sunday 22:00 UTC to Friday 22:00 UTC, which is
    5 p.m. New York, the FX convention for the end of the trading day. Precious metals
    (symbols whose base is XAU, XAG, XPT or XPD) also stop for the one-hour daily break
    that brokers inherit from the CME: 22:00-23:00 UTC from Monday to Thursday. Sunday
    22:00 opens them together with currencies, and Friday 22:00 closes everything but
    the instruments whose spec says ``trading_hours = "24x7"`` (the crypto CFDs), which
    trade around the clock, weekends included, as crypto CFDs do at MT5 brokers.

All times are fixed UTC, ignoring daylight saving: real sessions shift by an hour twice a
year, and a simulator that moved its week with the New York clock would make tests depend
on the date they pick. The hours above are the northern-winter ones.

Session names (for seed 000's ``market_session`` and for the feed's liquidity profile),
by UTC hour on a trading day:

- ``sydney``, 22:00-00:00: the trading day opens in Wellington and Sydney;
- ``tokyo``, 00:00-08:00: Tokyo (overlapping Sydney) carries the flow;
- ``london``, 08:00-13:00: from the London open;
- ``london_new_york_overlap``, 13:00-17:00: New York open until the London close, the
  busiest hours;
- ``new_york``, 17:00-22:00: New York alone, until the 22:00 rollover;
- ``closed``: only under ``forex``, at the weekend.

Seed 000's ``london_open``-style names are a dialect's business: it maps these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Final, Protocol

from fxgate.domain.market import SymbolSpec

DAY: Final = 86_400
WEEK: Final = 7 * DAY
_SUNDAY_2200: Final = 3 * DAY + 22 * 3_600  # 1970-01-04, a Sunday, at 22:00 UTC
_TRADING_WEEK: Final = 5 * DAY
_DAILY_BREAK: Final = 3_600
_LAST_BREAK_DAY: Final = 4  # Thursday 22:00 is the fourth break after Sunday 22:00

#: Base assets that pause for the daily break under the ``forex`` schedule.
METAL_BASES: Final = frozenset({"XAU", "XAG", "XPT", "XPD"})

#: Every name ``session_name`` can return.
SESSION_NAMES: Final = (
    "sydney",
    "tokyo",
    "london",
    "london_new_york_overlap",
    "new_york",
    "closed",
)

_SESSION_BY_HOUR: Final = (
    ("tokyo",) * 8
    + ("london",) * 5
    + ("london_new_york_overlap",) * 4
    + ("new_york",) * 5
    + ("sydney",) * 2
)


def session_of_day(ts: float) -> str:
    """The session that the UTC time of day of ``ts`` falls in, ignoring weekends."""
    return _SESSION_BY_HOUR[int(ts % DAY) // 3_600]


class MarketHours(Protocol):
    """A trading schedule: the feed asks it when to tick, the broker when to refuse orders.

    ``next_open`` and ``next_close`` let a caller cache "open until" instead of asking on
    every tick. Both take the symbol, because metals keep a daily break that currencies
    do not.
    """

    @property
    def name(self) -> str: ...

    def is_open(self, symbol: str, ts: float) -> bool: ...

    def next_open(self, symbol: str, ts: float) -> float:
        """The first moment at or after ``ts`` when ``symbol`` trades (``ts`` if open)."""
        ...

    def next_close(self, symbol: str, ts: float) -> float:
        """The first moment after ``ts`` when ``symbol`` stops (``ts`` if already closed,
        ``math.inf`` if never)."""
        ...

    def session_name(self, ts: float) -> str:
        """One of ``SESSION_NAMES``."""
        ...


class AlwaysOpen:
    """The ``24x7`` schedule: the paper market never closes."""

    name: Final = "24x7"

    def is_open(self, symbol: str, ts: float) -> bool:
        return True

    def next_open(self, symbol: str, ts: float) -> float:
        return ts

    def next_close(self, symbol: str, ts: float) -> float:
        return math.inf

    def session_name(self, ts: float) -> str:
        return session_of_day(ts)


class ForexHours:
    """The ``forex`` schedule: the weekly FX session, with the metals' daily break."""

    name: Final = "forex"

    def __init__(
        self, break_bases: frozenset[str] = METAL_BASES, always_open: Iterable[str] = ()
    ) -> None:
        self._break_bases = break_bases
        #: Symbols that trade around the clock (crypto CFDs), whatever the week says.
        self._always = frozenset(always_open)

    @staticmethod
    def _week_start(ts: float) -> float:
        """The Sunday 22:00 UTC at or before ``ts``, an exact integer so that boundaries
        computed from it compare equal to timestamps a caller built the same way."""
        return float(_SUNDAY_2200 + math.floor((ts - _SUNDAY_2200) / WEEK) * WEEK)

    def _has_break(self, symbol: str) -> bool:
        return symbol[:3] in self._break_bases

    def is_open(self, symbol: str, ts: float) -> bool:
        if symbol in self._always:
            return True
        w = ts - self._week_start(ts)
        if w >= _TRADING_WEEK:
            return False
        return not (self._has_break(symbol) and w >= DAY and w % DAY < _DAILY_BREAK)

    def next_open(self, symbol: str, ts: float) -> float:
        if self.is_open(symbol, ts):
            return ts
        start = self._week_start(ts)
        w = ts - start
        if w >= _TRADING_WEEK:
            return start + WEEK
        return start + (w // DAY) * DAY + _DAILY_BREAK

    def next_close(self, symbol: str, ts: float) -> float:
        if symbol in self._always:
            return math.inf
        if not self.is_open(symbol, ts):
            return ts
        start = self._week_start(ts)
        if self._has_break(symbol):
            day = (ts - start) // DAY + 1
            if day <= _LAST_BREAK_DAY:
                return start + day * DAY
        return start + _TRADING_WEEK

    def session_name(self, ts: float) -> str:
        if ts - self._week_start(ts) >= _TRADING_WEEK:
            return "closed"
        return session_of_day(ts)


#: The schedules ``make_hours`` knows, by config name.
HOURS_CHOICES: Final = ("24x7", "forex")


def make_hours(name: str, specs: Iterable[SymbolSpec] = ()) -> MarketHours:
    """Build the schedule the config names, refusing a typo instead of trading 24x7.
    Under ``forex``, the ``specs`` whose ``trading_hours`` is ``"24x7"`` stay open."""
    if name == "24x7":
        return AlwaysOpen()
    if name == "forex":
        return ForexHours(always_open=(s.symbol for s in specs if s.trading_hours == "24x7"))
    choices = ", ".join(HOURS_CHOICES)
    raise ValueError(f"unknown market hours {name!r}: choose one of {choices}")
