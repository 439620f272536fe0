"""MT5 records (as the worker's plain dicts) → fxgate's domain records.

The field names are the package's (MT5.md, "Record fields"); the meanings are the ones
``fxgate.domain.trading`` already borrows from MT5, so this is mostly renaming and
rounding: prices to the symbol's digits, money to the account currency's, volumes as
exact decimals. Times are the record's ``*_msc`` fields as epoch seconds (the terminal
reports them in the trade server's clock: see docs/mt5.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from fxgate.domain.market import MarketTrade, Quote, SymbolSpec
from fxgate.domain.money import ZERO, round_money, round_price
from fxgate.domain.trading import (
    AccountMode,
    AccountTerms,
    BookLevel,
    Deal,
    DealEntry,
    Order,
    OrderBook,
    OrderReason,
    OrderStatus,
    OrderType,
    Position,
    Side,
    TimeInForce,
    order_id_for,
)
from fxgate.services.ports.store.records import Candle

Row = dict[str, Any]

#: ORDER_TYPE_* → (type, side); 8 (CLOSE_BY) is never produced by fxgate.
ORDER_TYPES: dict[int, tuple[OrderType, Side]] = {
    0: (OrderType.MARKET, Side.BUY),
    1: (OrderType.MARKET, Side.SELL),
    2: (OrderType.LIMIT, Side.BUY),
    3: (OrderType.LIMIT, Side.SELL),
    4: (OrderType.STOP, Side.BUY),
    5: (OrderType.STOP, Side.SELL),
    6: (OrderType.STOP_LIMIT, Side.BUY),
    7: (OrderType.STOP_LIMIT, Side.SELL),
}
#: ORDER_STATE_*: 0 started, 1 placed, 2 canceled, 3 partial, 4 filled, 5 rejected,
#: 6 expired, 7-9 requests in flight.
ORDER_STATES: dict[int, OrderStatus] = {
    0: OrderStatus.PENDING,
    1: OrderStatus.PENDING,
    2: OrderStatus.CANCELLED,
    3: OrderStatus.PENDING,
    4: OrderStatus.FILLED,
    5: OrderStatus.REJECTED,
    6: OrderStatus.EXPIRED,
    7: OrderStatus.PENDING,
    8: OrderStatus.PENDING,
    9: OrderStatus.PENDING,
}
FILLINGS = {0: TimeInForce.FOK, 1: TimeInForce.IOC, 2: TimeInForce.GTC}
#: ORDER_REASON/DEAL_REASON: 3/4/5 (order) or 4/5/6 (deal) are SL, TP, stop out.
ORDER_REASONS = {3: OrderReason.STOP_LOSS, 4: OrderReason.TAKE_PROFIT, 5: OrderReason.STOP_OUT}
DEAL_REASONS = {4: OrderReason.STOP_LOSS, 5: OrderReason.TAKE_PROFIT, 6: OrderReason.STOP_OUT}
#: ACCOUNT_MARGIN_MODE: 0 retail netting, 1 exchange, 2 retail hedging.
ACCOUNT_MODES = {0: AccountMode.NETTING, 1: AccountMode.NETTING, 2: AccountMode.HEDGING}


@dataclass(frozen=True, slots=True)
class Meta:
    """What fxgate knows of an order that the terminal does not keep (the comment is
    short): the request's ids and the user's own comment."""

    client_order_id: str | None = None
    strategy_id: str | None = None
    connection_id: str | None = None
    comment: str | None = None
    time_in_force: TimeInForce | None = None


def dec(value: Any) -> Decimal:
    """A float from the terminal as the decimal it was meant to be (``repr`` is the
    shortest string that round-trips, so 0.1 stays 0.1)."""
    return Decimal(repr(float(value))).normalize() if value else ZERO


def price(value: Any, digits: int) -> Decimal:
    return round_price(Decimal(repr(float(value))), digits)


def level(value: Any, digits: int) -> Decimal | None:
    """A stop loss / take profit: 0 means none."""
    return price(value, digits) if value else None


def secs(msc: Any) -> float:
    return int(msc) / 1000.0


#: ``MqlTick.flags`` bits (the package's ``TICK_FLAG_*``): a trade tick has ``LAST``
#: (the last price changed) or ``VOLUME`` (another trade at the same price), and the
#: aggressor's side when the exchange reports it.
TICK_FLAG_LAST = 0x08
TICK_FLAG_VOLUME = 0x10
TICK_FLAG_BUY = 0x20
TICK_FLAG_SELL = 0x40
TRADE_TICK = TICK_FLAG_LAST | TICK_FLAG_VOLUME


def market_trade(symbol: str, tick: Row, digits: int, trade_id: str) -> MarketTrade | None:
    """A trade tick as a print on the market's tape, or ``None`` for a tick that is
    no execution (bid/ask only, or no price or volume). The side is the flags'; an
    exchange that does not say is read from where the price stands against the quote
    (at or above the ask, or above the mid, is a buyer)."""
    flags = int(tick.get("flags") or 0)
    if not flags & TRADE_TICK:
        return None
    last = float(tick.get("last") or 0.0)
    volume = float(tick.get("volume_real") or 0.0) or float(tick.get("volume") or 0)
    if last <= 0 or volume <= 0:
        return None
    if flags & TICK_FLAG_BUY:
        buy = True
    elif flags & TICK_FLAG_SELL:
        buy = False
    else:
        bid, ask = float(tick.get("bid") or 0.0), float(tick.get("ask") or 0.0)
        buy = last >= ask > 0 or (bid > 0 and ask > 0 and last > (bid + ask) / 2)
    return MarketTrade(
        symbol,
        round(last, digits),
        round(volume, 8),
        "buy" if buy else "sell",
        secs(tick["time_msc"]),
        trade_id,
    )


def symbol_spec(info: Row) -> SymbolSpec:
    calc = int(info.get("trade_calc_mode", 0))
    path = str(info.get("path", "")).lower()
    name = str(info["name"])
    if calc in (0, 5):
        kind = "forex"
    elif "crypto" in path:
        kind = "crypto"
    elif calc >= 32 or "stock" in path or "share" in path:
        kind = "stock"
    else:
        kind = "commodity"
    hedged = info.get("margin_hedged") or 0
    bid = info.get("bid") or 0
    return SymbolSpec(
        symbol=name,
        description=str(info.get("description", "")),
        kind=kind,
        base=str(info.get("currency_base", "") or name[:3]),
        quote=str(info.get("currency_profit", "") or name[3:]),
        digits=int(info["digits"]),
        contract_size=dec(info.get("trade_contract_size", 1)),
        volume_min=dec(info.get("volume_min", 0.01)),
        volume_max=dec(info.get("volume_max", 100)),
        volume_step=dec(info.get("volume_step", 0.01)),
        typical_spread_points=int(info.get("spread", 0) or 0),
        start_price=dec(bid) if bid else Decimal(1),
        trading_hours="terminal",
        stops_level_points=int(info.get("trade_stops_level", 0) or 0),
        margin_hedged=dec(hedged) if hedged else None,
    )


def quote(symbol: str, tick: Row, digits: int, day: tuple[float, float, float, float]) -> Quote:
    """A tick with the day's open/high/low and the previous close (``day``)."""
    bid, ask = float(tick["bid"]), float(tick["ask"])
    open_, high, low, close = day
    change = bid - close if close else 0.0
    return Quote(
        symbol,
        bid,
        ask,
        float(tick.get("last") or bid),
        int(tick.get("volume") or 0),
        round((ask - bid) * 10**digits),
        secs(tick["time_msc"]) if tick.get("time_msc") else float(tick.get("time", 0)),
        open_,
        high,
        low,
        close,
        round(change, digits),
        round(change / close * 100, 4) if close else 0.0,
        digits,
    )


def terms(acc: Row) -> AccountTerms:
    return AccountTerms(
        currency=str(acc["currency"]),
        leverage=int(acc.get("leverage") or 1),
        mode=ACCOUNT_MODES.get(int(acc.get("margin_mode", 2)), AccountMode.HEDGING),
        stop_out_level=dec(acc.get("margin_so_so", 0)),
        margin_call_level=dec(acc.get("margin_so_call", 0)),
        initial_balance=None,
    )


def position(
    row: Row,
    user_id: str,
    digits: int,
    currency: str,
    meta: Meta | None,
    commission: Decimal,
    realized: Decimal,
) -> Position:
    side = Side.BUY if int(row["type"]) == 0 else Side.SELL
    m = meta or Meta()
    return Position(
        ticket=int(row["ticket"]),
        user_id=user_id,
        symbol=str(row["symbol"]),
        side=side,
        volume=dec(row["volume"]),
        open_price=price(row["price_open"], digits),
        current_price=price(row["price_current"], digits),
        opened_at=secs(row["time_msc"]),
        updated_at=secs(row["time_update_msc"]),
        stop_loss=level(row.get("sl"), digits),
        take_profit=level(row.get("tp"), digits),
        profit=round_money(dec(row.get("profit", 0)), currency),
        swap=round_money(dec(row.get("swap", 0)), currency),
        commission=commission,
        realized_pnl=realized,
        strategy_id=m.strategy_id,
        connection_id=m.connection_id,
        comment=m.comment if meta is not None else (str(row.get("comment") or "") or None),
    )


def order(
    row: Row,
    user_id: str,
    digits: int,
    meta: Meta | None,
    *,
    filled: Decimal | None = None,
    average: Decimal | None = None,
) -> Order:
    """A pending (``orders_get``) or historical (``history_orders_get``) order.

    MT5 keeps a stop-limit's trigger in ``price_open`` and its limit in
    ``price_stoplimit``; fxgate's ``price`` is the limit and ``stop_price`` the trigger.
    """
    kind, side = ORDER_TYPES.get(int(row["type"]), (OrderType.MARKET, Side.BUY))
    status = ORDER_STATES.get(int(row.get("state", 1)), OrderStatus.PENDING)
    open_ = level(row.get("price_open"), digits)
    p: Decimal | None
    stop: Decimal | None
    if kind is OrderType.MARKET:
        p = stop = None
    elif kind is OrderType.LIMIT:
        p, stop = open_, None
    elif kind is OrderType.STOP:
        p = stop = open_
    else:
        p, stop = level(row.get("price_stoplimit"), digits), open_
    volume = dec(row["volume_initial"])
    if filled is None:
        filled = volume - dec(row.get("volume_current", 0))
        if status is OrderStatus.FILLED:
            filled = volume
    m = meta or Meta()
    setup = secs(row["time_setup_msc"])
    done = secs(row["time_done_msc"]) if row.get("time_done_msc") else None
    tif = m.time_in_force or FILLINGS.get(int(row.get("type_filling", 2)), TimeInForce.GTC)
    # ORDER_TIME_SPECIFIED (2) and _SPECIFIED_DAY (3) expire at ``time_expiration``;
    # ORDER_TIME_DAY's end of day is the server's, not known here: left GTC.
    timed = int(row.get("type_time", 0)) in (2, 3) and row.get("time_expiration")
    expires = float(row["time_expiration"]) if timed else None
    if expires is not None:
        tif = TimeInForce.GTD
    ticket = int(row["ticket"])
    return Order(
        id=order_id_for(ticket),
        ticket=ticket,
        user_id=user_id,
        symbol=str(row["symbol"]),
        type=kind,
        side=side,
        volume=volume,
        created_at=setup,
        updated_at=done or setup,
        price=p,
        stop_price=stop,
        stop_loss=level(row.get("sl"), digits),
        take_profit=level(row.get("tp"), digits),
        time_in_force=tif,
        status=status,
        filled_volume=filled,
        average_price=average,
        client_order_id=m.client_order_id,
        strategy_id=m.strategy_id,
        connection_id=m.connection_id,
        comment=m.comment if meta is not None else (str(row.get("comment") or "") or None),
        filled_at=done if status is OrderStatus.FILLED else None,
        cancelled_at=done if status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED) else None,
        expires_at=expires,
        position_ticket=int(row.get("position_id") or 0) or None,
        reason=ORDER_REASONS.get(int(row.get("reason", 0)), OrderReason.CLIENT),
    )


def deal(row: Row, user_id: str, digits: int, currency: str, meta: Meta | None) -> Deal:
    m = meta or Meta()
    entry = int(row.get("entry", 0))
    return Deal(
        ticket=int(row["ticket"]),
        order_ticket=int(row["order"]),
        position_ticket=int(row["position_id"]),
        user_id=user_id,
        symbol=str(row["symbol"]),
        side=Side.BUY if int(row["type"]) == 0 else Side.SELL,
        entry=DealEntry.IN if entry == 0 else DealEntry.OUT,
        volume=dec(row["volume"]),
        price=price(row["price"], digits),
        time=secs(row["time_msc"]),
        profit=round_money(dec(row.get("profit", 0)), currency),
        commission=round_money(dec(row.get("commission", 0)) + dec(row.get("fee", 0)), currency),
        swap=round_money(dec(row.get("swap", 0)), currency),
        strategy_id=m.strategy_id,
        connection_id=m.connection_id,
        reason=DEAL_REASONS.get(int(row.get("reason", 0)), OrderReason.CLIENT),
        comment=m.comment if meta is not None else (str(row.get("comment") or "") or None),
    )


def order_book(symbol: str, rows: list[Row], digits: int, depth: int, ts: float) -> OrderBook:
    """``market_book_get`` rows: BOOK_TYPE_SELL(_MARKET) 1/3 are asks, BUY(_MARKET) 2/4
    bids; best first on each side."""

    def level(r: Row) -> BookLevel:
        return BookLevel(price(r["price"], digits), dec(r.get("volume_dbl") or r["volume"]))

    asks = sorted((level(r) for r in rows if int(r["type"]) in (1, 3)), key=lambda b: b.price)
    bids = sorted(
        (level(r) for r in rows if int(r["type"]) in (2, 4)), key=lambda b: b.price, reverse=True
    )
    return OrderBook(symbol, tuple(bids[:depth]), tuple(asks[:depth]), ts)


def candles(symbol: str, interval: str, rows: list[Row], digits: int) -> list[Candle]:
    """``copy_rates_*`` rows (bid prices, tick volume) as fxgate's stored candles."""
    return [
        Candle(
            symbol,
            interval,
            datetime.fromtimestamp(int(r["time"]), UTC),
            f"{float(r['open']):.{digits}f}",
            f"{float(r['high']):.{digits}f}",
            f"{float(r['low']):.{digits}f}",
            f"{float(r['close']):.{digits}f}",
            str(int(r.get("tick_volume") or 0)),
        )
        for r in rows
    ]
