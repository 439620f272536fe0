"""Seed 003's events, made from the hub's canonical envelopes (event -> payload bytes).

The hub calls :meth:`Seed003Dialect.encode_event` once per event for every ``/ws``
connection together (its frame cache), so each function here runs once per event, and
reads nothing but the envelope, except ``ai_signal``'s price when the signal carries
none: that is the latest quote, an in-memory read, taken once per event as well.

Ids are the REST ids of seed 003's ``/trading/*`` (``ord_…`` for orders, ``pos_…`` for
positions), statuses are REST's (lower case), quantities are lots as over REST.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from fxgate.domain.market import Quote
from fxgate.domain.timefmt import iso_ms
from fxgate.domain.trading import position_id_for
from fxgate.plugins.channel import Channel
from fxgate.protocol.canonical import encode
from fxgate.protocol.seed003.wire import SEED_NAME

Data = Mapping[str, Any]


class Quotes(Protocol):
    """Where ``ai_signal`` finds the current price (the market service)."""

    def latest(self, symbols: Iterable[str] | None = None) -> list[Quote]: ...


def price_update(d: Data, ts: str) -> dict[str, Any]:
    return {
        "symbol": d.get("symbol"),
        "bid": d.get("bid"),
        "ask": d.get("ask"),
        "last": d.get("last"),
        "change": d.get("change"),
        "changePercent": d.get("changePercent"),
        "volume": d.get("volume"),
        "timestamp": d.get("timestamp") or ts,
    }


def order_update(d: Data, ts: str) -> dict[str, Any]:
    status = d.get("status")
    return {
        "id": d.get("orderId"),
        "symbol": d.get("symbol"),
        "status": status.lower() if isinstance(status, str) else status,
        "filledQuantity": d.get("filledVolume"),
        "averagePrice": d.get("fillPrice"),
        "updatedAt": d.get("updatedAt") or ts,
    }


def position_update(d: Data, ts: str) -> dict[str, Any]:
    """A closed position is announced with quantity 0 (its last update)."""
    ticket = d.get("ticket")
    closed = d.get("status") == "CLOSED"
    return {
        "id": position_id_for(ticket) if isinstance(ticket, int) else ticket,
        "symbol": d.get("symbol"),
        "quantity": 0.0 if closed else d.get("volume"),
        "currentPrice": d.get("currentPrice"),
        "unrealizedPnL": 0.0 if closed else d.get("unrealizedPnL"),
        "updatedAt": d.get("lastUpdate") or ts,
    }


def portfolio_update(d: Data, ts: str) -> dict[str, Any]:
    """The account as ``GET /trading/portfolio`` shows it: equity, free margin,
    floating profit and the day's P&L."""
    return {
        "totalValue": d.get("equity"),
        "availableBalance": d.get("free_margin"),
        "unrealizedPnL": d.get("profit"),
        "dayPnL": d.get("day_pnl"),
        "updatedAt": d.get("timestamp") or ts,
    }


def market_news(d: Data, ts: str) -> dict[str, Any]:
    return {
        "id": d.get("id"),
        "title": d.get("title"),
        "content": d.get("content"),
        "source": d.get("source"),
        "impact": d.get("impact"),
        "symbols": list(d.get("symbols") or ()),
        "publishedAt": d.get("publishedAt") or ts,
    }


def signal_side(d: Data) -> str:
    """``buy``/``sell`` from seed 002's ``side`` (``buy``/``sell``, any case, or MT5's
    0/1); a signal its validators ``rejected`` says "do not trade it": ``hold``, as is
    anything else."""
    if d.get("status") == "rejected":
        return "hold"
    side = d.get("side", d.get("signal"))
    if isinstance(side, str):
        side = side.strip().lower()
    return {"buy": "buy", "sell": "sell", 0: "buy", 1: "sell"}.get(side, "hold")


def signal_reasoning(d: Data) -> str:
    """The validators' reasons, joined; else the signal's own ``reasoning``/``reason``;
    else where it came from (``source``)."""
    validators = d.get("validators")
    reasons: list[str] = []
    items: Iterable[Any] = ()
    if isinstance(validators, Mapping):
        items = (
            {"name": k, **v} if isinstance(v, Mapping) else {"name": k, "reason": v}
            for k, v in validators.items()
        )
    elif isinstance(validators, list):
        items = validators
    for v in items:
        if isinstance(v, Mapping):
            text = v.get("reason") or v.get("message") or v.get("details")
            name = v.get("name") or v.get("validator")
            if isinstance(text, str) and text:
                if v.get("approved") is False:
                    text += " (rejected)"
                reasons.append(f"{name}: {text}" if isinstance(name, str) and name else text)
        elif isinstance(v, str) and v:
            reasons.append(v)
    if reasons:
        return "; ".join(reasons)
    for key in ("reasoning", "reason"):
        text = d.get(key)
        if isinstance(text, str) and text:
            return text
    source = d.get("source")
    return f"Signal from {source}" if isinstance(source, str) and source else ""


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _time(value: Any, fallback: str) -> str:
    """Seed 002's ``timestamp`` (epoch seconds or milliseconds, or ISO text) as ISO."""
    if isinstance(value, str) and value:
        return value
    n = _number(value)
    if n is None:
        return fallback
    return iso_ms(n / 1000 if n > 1e11 else n)


class Seed003Dialect:
    """``/ws``: canonical envelopes to seed 003's events; one instance per process (the
    hub caches a frame per event per encoder object)."""

    name = "seed003"

    def __init__(self, quotes: Quotes | None = None) -> None:
        self.quotes = quotes
        self._encoders: dict[str, tuple[str, Callable[[Data, str], dict[str, Any]]]] = {
            "market-data": ("price_update", price_update),
            "orders": ("order_update", order_update),
            "positions": ("position_update", position_update),
            "account": ("portfolio_update", portfolio_update),
            "news": ("market_news", market_news),
            "signals": ("ai_signal", self.ai_signal),
        }

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        found = self._encoders.get(channel.name)
        if found is None:
            return None  # a channel seed 003 has no event for
        kind, make = found
        ts = envelope["timestamp"]
        msg: dict[str, Any] = {"type": kind, "data": make(envelope["data"], ts), "timestamp": ts}
        seed_channel = SEED_NAME.get(channel.name)
        if seed_channel is not None:
            msg["channel"] = seed_channel
        return encode(msg)

    def ai_signal(self, d: Data, ts: str) -> dict[str, Any]:
        """Seed 002's signal as seed 003's ``ai_signal``. ``price``: the signal's own
        (``price``/``entry``) if it has one, else the current quote's side the signal
        would trade at (ask to buy, bid to sell, mid to hold); null without a quote."""
        signal = signal_side(d)
        price = _number(d.get("price", d.get("entry")))
        if price is None:
            price = self.current_price(d.get("symbol"), signal)
        confidence = _number(d.get("confidence"))
        return {
            "symbol": d.get("symbol"),
            "signal": signal,
            "confidence": confidence,
            "reasoning": signal_reasoning(d),
            "price": price,
            "generatedAt": _time(d.get("generatedAt", d.get("timestamp")), ts),
        }

    def current_price(self, symbol: Any, signal: str) -> float | None:
        if self.quotes is None or not isinstance(symbol, str):
            return None
        found = self.quotes.latest([symbol])
        if not found:
            return None
        q = found[0]
        if signal == "buy":
            return q.ask
        if signal == "sell":
            return q.bid
        return round((q.bid + q.ask) / 2, q.digits + 1)
