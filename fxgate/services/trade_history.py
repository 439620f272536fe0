"""Each user's closed trades, kept in memory so that analytics does not re-read the history.

The portfolio endpoint and the analytics refresh after every closed trade used to read all
of a user's deals from the store on every call; with 2,000 past trades a user, that was two
thirds of the daemon's time (``bench/README.md``, "REST latency"). Now a user's deals are
read once, on first need, folded into what ``analytics`` needs (:class:`UserTrades`), and
kept current from the broker's deal events, which come after each deal is stored and in the
order the deals happened.

What is kept per user: the closed trades in time order (``ClosedTrade``, about 0.22 KB
each), the entry charges of the positions still open, and per period asked for, that
period's running figures (``analytics.Tally``), so that a new trade costs a few additions
and a portfolio call no pass over the history. Users are kept in an LRU of ``max_users``
(setting ``analytics.cache_users``); an evicted user is read again on next need, and a deal
event for a user not in memory is ignored, as the store already has it for that read.

Where events and the read can cross:

* Deal events for a user whose read is in flight are held, and once the read is back the
  ones it did not return are added (by ticket): a deal stored before the read and announced
  after it counts once, one stored after the read is not lost.
* A deal that does not come after the last one folded in (an event for a deal the read
  already returned, or a clock stepped back) cannot be folded in order: the user is dropped
  and read again on next need, rather than guessed at.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from decimal import Decimal

from fxgate.domain.trading import Deal
from fxgate.services.analytics import (
    PERIODS,
    ClosedTrade,
    Performance,
    Tally,
    deal_order,
    pair,
    period_start,
    tally,
)

log = logging.getLogger(__name__)

#: Reads all of a user's deals from the store (``TradingService.deals``).
ReadDeals = Callable[[str], Awaitable[Sequence[Deal]]]


class UserTrades:
    """One user's deals folded into closed trades, in :func:`analytics.deal_order`."""

    __slots__ = ("_tallies", "last", "pending", "trades")

    def __init__(self, deals: Iterable[Deal] = ()) -> None:
        self.trades: list[ClosedTrade] = []
        #: Entry charges of open positions, by position ticket (``analytics.pair``).
        self.pending: dict[int, Decimal] = {}
        #: The order key of the last deal folded in.
        self.last: tuple[float, int] = (float("-inf"), 0)
        # period -> (initial balance, start, figures), kept current by ``add``.
        self._tallies: dict[str, tuple[Decimal, float | None, Tally]] = {}
        for deal in sorted(deals, key=deal_order):
            self._fold(deal)

    def add(self, deal: Deal) -> bool:
        """Fold in a deal that comes after every deal so far; False, changing nothing, for
        one that does not: folding it in would pair deals in another order than
        ``analytics.closed_trades`` does."""
        if deal_order(deal) <= self.last:
            return False
        trade = self._fold(deal)
        if trade is not None:
            for period, (initial, since, figures) in list(self._tallies.items()):
                if since is None or trade.time >= since:
                    self._tallies[period] = (initial, since, figures.add(trade.net))
                else:  # a period that starts later: its opening moved, work it out again
                    del self._tallies[period]
        return True

    def _fold(self, deal: Deal) -> ClosedTrade | None:
        self.last = deal_order(deal)
        trade = pair(deal, self.pending)
        if trade is not None:
            self.trades.append(trade)
        return trade

    def performances(
        self, *, initial_balance: Decimal, now: float, periods: Sequence[str] = PERIODS
    ) -> dict[str, Performance]:
        """``analytics.performances`` of these trades. A period's figures are worked out
        from the trades once, then follow each new trade, until the period rolls over."""
        result = {}
        for period in periods:
            since = period_start(period, now)
            kept = self._tallies.get(period)
            if kept is None or kept[0] != initial_balance or kept[1] != since:
                kept = (initial_balance, since, tally(self.trades, initial_balance, since))
                self._tallies[period] = kept
            result[period] = kept[2].performance()
        return result


class _Loading:
    """A read in flight: the deal events that arrived meanwhile, and its end."""

    __slots__ = ("deals", "done")

    def __init__(self) -> None:
        self.deals: list[Deal] = []
        self.done = asyncio.Event()


class TradeHistory:
    """Users' :class:`UserTrades`, read from the store on first need and kept current by
    :meth:`on_deal`; at most ``max_users`` of them, the least recently used dropped."""

    def __init__(self, read: ReadDeals, *, max_users: int) -> None:
        if max_users < 1:
            raise ValueError("max_users must be at least 1")
        self._read = read
        self.max_users = max_users
        self._users: OrderedDict[str, UserTrades] = OrderedDict()
        self._loading: dict[str, _Loading] = {}
        #: Reads of a user's deals so far (how often the cache missed).
        self.reads = 0

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._users

    def on_deal(self, deal: Deal) -> None:
        """A stored deal, as the broker announces it (never blocks)."""
        loading = self._loading.get(deal.user_id)
        if loading is not None:
            loading.deals.append(deal)
            return
        user = self._users.get(deal.user_id)
        if user is not None and not user.add(deal):
            del self._users[deal.user_id]
            log.debug(
                "deal out of order, the user's trades will be read again",
                extra={"user_id": deal.user_id, "deal": deal.ticket},
            )

    async def performances(
        self,
        user_id: str,
        *,
        initial_balance: Decimal,
        now: float,
        periods: Sequence[str] = PERIODS,
    ) -> dict[str, Performance]:
        user = await self.user(user_id)
        return user.performances(initial_balance=initial_balance, now=now, periods=periods)

    async def user(self, user_id: str) -> UserTrades:
        """The user's trades, read from the store first if they are not in memory. Callers
        asking while a read is in flight wait for that read; if it fails, the next one
        tries its own."""
        while True:
            user = self._users.get(user_id)
            if user is not None:
                self._users.move_to_end(user_id)
                return user
            loading = self._loading.get(user_id)
            if loading is None:
                return await self._load(user_id)
            await loading.done.wait()

    async def _load(self, user_id: str) -> UserTrades:
        loading = self._loading[user_id] = _Loading()
        self.reads += 1
        try:
            deals = list(await self._read(user_id))
        finally:
            del self._loading[user_id]
            loading.done.set()  # the waiters run after this step, when the user is in
        if loading.deals:
            seen = {d.ticket for d in deals}
            for deal in loading.deals:
                if deal.ticket not in seen:
                    seen.add(deal.ticket)
                    deals.append(deal)
        user = self._users[user_id] = UserTrades(deals)
        while len(self._users) > self.max_users:
            self._users.popitem(last=False)
        return user
