"""The broker port's reads over the terminal: symbols, quotes, the order book, candles,
the account and its records, margin and profit previews (see :mod:`.broker`)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from fxgate.brokers.mt5 import convert
from fxgate.brokers.mt5.requests import terminal_down
from fxgate.brokers.mt5.session import Mt5Session
from fxgate.brokers.mt5.terminal import TerminalError
from fxgate.brokers.paper.margin import BidAsk
from fxgate.domain.errors import AuthorizationError, NotFoundError, invalid_field, refused
from fxgate.domain.market import Quote, SymbolSpec
from fxgate.domain.money import ZERO, round_money
from fxgate.domain.trading import (
    Account,
    AccountTerms,
    Deal,
    Order,
    OrderBook,
    Position,
    Side,
)
from fxgate.services.ports.store.records import Candle

ORDER_CALC = {Side.BUY: 0, Side.SELL: 1}  # ORDER_TYPE_BUY / SELL
#: fxgate's candle intervals → the package's TIMEFRAME_* values.
TIMEFRAMES = {"1m": 1, "5m": 5, "15m": 15, "1h": 16385, "4h": 16388, "1d": 16408}


class Mt5Reads(Mt5Session):
    """The port's reads; the account's owner sees the account, anyone else an empty one."""

    async def symbols(self) -> Sequence[SymbolSpec]:
        return list(self._specs.values())

    async def symbol(self, name: str) -> SymbolSpec:
        spec = self._specs.get(name)
        if spec is not None:
            return spec
        if not self.connected:
            raise terminal_down(self.last_error or "not connected")

        info = await self._run("select", name)
        if info is None:
            raise invalid_field("symbol", f"Unknown symbol {name}", "unknown_symbol", symbol=name)
        return self._remember_symbol(info)

    async def quote(self, symbol: str) -> Quote:
        await self.symbol(symbol)
        q = self.feed.latest(symbol)
        if q is None:
            raise refused(f"No price for {symbol} yet", "no_price", symbol=symbol)
        return q

    async def _prices(self, symbol: str) -> BidAsk:
        """The current bid/ask, from the terminal (not the last poll)."""

        row = await self._run("maybe", "symbol_info_tick", symbol)
        if not row or not row.get("bid") or not row.get("ask"):
            raise refused(f"No price for {symbol} yet", "no_price", symbol=symbol)
        d = self._digits(symbol)
        return BidAsk(convert.price(row["bid"], d), convert.price(row["ask"], d))

    async def _run(self, job: str, *args: Any) -> Any:
        """A call on behalf of a request: a lost terminal, or a call the package
        refused (``last_error()`` -2 invalid arguments, ...), is a TRADING_ERROR with the
        terminal's words, never an internal error."""
        if not self.connected:
            raise terminal_down(self.last_error or "not connected")
        try:
            return await self.terminal.run(job, *args)
        except TerminalError as exc:
            if exc.lost:
                self._lost(exc)
                raise terminal_down(exc.message) from None
            raise refused(
                f"The terminal refused the request: {exc.message}",
                "terminal_error",
                code=exc.code,
                terminal=exc.message,
            ) from None

    async def order_book(self, symbol: str, depth: int = 10) -> OrderBook:
        await self.symbol(symbol)

        rows = await self._run("book", symbol)
        return convert.order_book(symbol, rows, self._digits(symbol), depth, self._clock())

    async def candles(
        self,
        symbol: str,
        interval: str,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> Sequence[Candle]:
        """The terminal's own bars (bid prices, tick volume), for every interval."""
        await self.symbol(symbol)
        tf = TIMEFRAMES[interval]
        if not limit:
            return []

        rows = await self._run("rates", symbol, tf, start, end, limit)
        bars = convert.candles(symbol, interval, rows, self._digits(symbol))
        if end is not None:
            bars = [b for b in bars if b.open_time < end]
        return bars[-limit:]

    def _mine(self, user_id: str) -> bool:
        return user_id == self.owner

    async def account(self, user_id: str) -> Account:
        acc = self.ledger.account
        if self._mine(user_id) and acc is not None:
            return acc
        now = self._clock()
        currency = acc.currency if acc is not None else self.ledger.currency
        # Not this terminal's owner (or nothing read yet): an empty account.
        return Account(
            user_id=user_id,
            currency=currency,
            leverage=acc.leverage if acc is not None else 1,
            mode=self.ledger.mode,
            balance=ZERO,
            equity=ZERO,
            created_at=now,
            updated_at=now,
            day_start=time.strftime("%Y-%m-%d", time.gmtime(now)),
            day_start_equity=ZERO,
        )

    async def account_terms(self, user_id: str) -> AccountTerms:
        acc = await self._run("call", "account_info")
        return convert.terms(acc)

    async def positions(self, user_id: str, symbol: str | None = None) -> Sequence[Position]:
        if not self._mine(user_id):
            return []
        items = sorted(self.ledger.positions.values(), key=lambda p: (p.opened_at, p.ticket))
        return [p for p in items if symbol is None or p.symbol == symbol]

    async def position(self, user_id: str, ticket: int) -> Position:
        pos = self.open_position(user_id, ticket)
        if pos is None:
            raise NotFoundError("Position not found")
        return pos

    def open_position(self, user_id: str, ticket: int) -> Position | None:
        return self.ledger.positions.get(ticket) if self._mine(user_id) else None

    async def orders(self, user_id: str, symbol: str | None = None) -> Sequence[Order]:
        if not self._mine(user_id):
            return []
        items = sorted(self.ledger.orders.values(), key=lambda o: (o.created_at, o.ticket))
        return [o for o in items if symbol is None or o.symbol == symbol]

    async def deals(
        self, user_id: str, start: datetime | None = None, end: datetime | None = None
    ) -> Sequence[Deal]:
        if not self._mine(user_id):
            return []
        items, _ = await self.store.list_deals(user_id, start=start, end=end, limit=100_000)
        return sorted(items, key=lambda d: (d.time, d.ticket))

    async def order_calc_margin(
        self, user_id: str, side: Side, symbol: str, volume: Decimal, price: Decimal | None = None
    ) -> Decimal:
        self._may_see(user_id)
        await self.symbol(symbol)
        px = price if price is not None else entry_price(side, await self._prices(symbol))
        args = (ORDER_CALC[side], symbol, float(volume), float(px))
        value = await self._calc("order_calc_margin", args)
        return round_money(convert.dec(value), self.ledger.currency)

    async def order_calc_profit(
        self,
        user_id: str,
        side: Side,
        symbol: str,
        volume: Decimal,
        price_open: Decimal,
        price_close: Decimal,
    ) -> Decimal:
        self._may_see(user_id)
        await self.symbol(symbol)
        args = (ORDER_CALC[side], symbol, float(volume), float(price_open), float(price_close))
        value = await self._calc("order_calc_profit", args)
        return round_money(convert.dec(value), self.ledger.currency)

    async def _calc(self, name: str, args: tuple[Any, ...]) -> Any:
        answer = await self._run("calc", name, args)
        if "error" in answer:
            raise refused(f"The terminal cannot compute it: {answer['error']}", "no_price")
        return answer["value"]

    def _may_see(self, user_id: str) -> None:
        """Previews are the account's (its currency, leverage): the owner's only."""
        if not self._mine(user_id):
            raise AuthorizationError(
                "Only the owner of this MetaTrader 5 account may trade it",
                details={"reason": "not_account_owner"},
            )


def entry_price(side: Side, prices: BidAsk) -> Decimal:
    """A buy executes at the Ask, a sell at the Bid."""
    return prices.ask if side is Side.BUY else prices.bid
