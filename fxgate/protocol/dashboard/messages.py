"""The ``data`` of seed 000's messages, built from canonical payloads (the hub's).

Pure functions: the feed keeps a user's latest canonical positions, account and signals
and calls these when a message is due. Seed 000's names are snake_case and its tickets
strings; statuses are lower case; ``spread`` is in price units (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from fxgate.protocol.dashboard.wire import stamp


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def position_entry(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "ticket": str(p.get("ticket")),
        "symbol": p.get("symbol"),
        "type": p.get("type"),
        "volume": _f(p.get("volume")),
        "open_price": _f(p.get("openPrice")),
        "current_price": _f(p.get("currentPrice")),
        "profit": _f(p.get("profit")),
        "status": str(p.get("status", "OPEN")).lower(),
    }


#: Signal statuses that take a signal off ``active_signals``.
INACTIVE = frozenset({"rejected", "expired", "cancelled", "canceled", "closed", "inactive"})


def signal_key(s: Mapping[str, Any]) -> str:
    return str(s.get("uuid") or s.get("id") or s.get("signalId") or s.get("symbol"))


def signal_active(s: Mapping[str, Any]) -> bool:
    return str(s.get("status") or "active").lower() not in INACTIVE


def _pick(s: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if s.get(name) is not None:
            return s[name]
    return None


def signal_entry(s: Mapping[str, Any]) -> dict[str, Any]:
    """A signal of the ``signals`` channel as seed 000's ``active_signals`` item. The
    channel carries seed 002's fields (``uuid side tp sl confidence status``, status
    pending/approved/rejected); seed 000's and camelCase names are read too. A signal
    still in play (pending or approved) is ``active``, as seed 000 shows it."""
    side = _pick(s, "signal", "action", "side", "type")
    return {
        "symbol": s.get("symbol"),
        "signal": None if side is None else str(side).upper(),
        "confidence": _f(s.get("confidence")),
        "entry_price": _f(_pick(s, "entry_price", "entryPrice", "price")),
        "stop_loss": _f(_pick(s, "stop_loss", "stopLoss", "sl")),
        "take_profit": _f(_pick(s, "take_profit", "takeProfit", "tp")),
        "timestamp": _pick(s, "timestamp", "generatedAt", "createdAt"),
        "status": "active" if signal_active(s) else str(s.get("status")).lower(),
    }


def trading_status(
    signals: Iterable[Mapping[str, Any]],
    positions: Iterable[Mapping[str, Any]],
    account: Mapping[str, Any] | None,
) -> dict[str, Any]:
    a = account or {}
    return {
        "active_signals": [signal_entry(s) for s in signals],
        "open_positions": [position_entry(p) for p in positions],
        "account_balance": _f(a.get("balance")),
        "account_equity": _f(a.get("equity")),
        "margin_used": _f(a.get("margin")),
        "margin_free": _f(a.get("free_margin")),
    }


def market_entry(q: Mapping[str, Any]) -> dict[str, Any]:
    bid, ask = float(q["bid"]), float(q["ask"])
    return {
        "symbol": q["symbol"],
        "bid": bid,
        "ask": ask,
        "spread": round(ask - bid, 8),
        "change": _f(q.get("change")),
        "change_percent": _f(q.get("changePercent")),
        "timestamp": q.get("timestamp"),
    }


_PRIORITY = {"CRITICAL": "high", "WARNING": "medium", "INFO": "low"}


def from_alert(alert: Mapping[str, Any], ts: float, ttl: int) -> dict[str, Any]:
    aid = alert.get("alertId") or alert.get("id") or int(ts * 1000)
    return {
        "id": f"notif_{aid}",
        "type": str(alert.get("type", "alert")).lower(),
        "priority": _PRIORITY.get(str(alert.get("severity", "")).upper(), "medium"),
        "title": alert.get("title") or "Alert",
        "message": alert.get("message") or "",
        "action_required": str(alert.get("severity", "")).upper() == "CRITICAL",
        "action_url": f"/dashboard/alerts/{aid}",
        "expires_at": stamp(ts + ttl),
    }


def from_trade(trade: Mapping[str, Any], ts: float, ttl: int) -> dict[str, Any]:
    closing = str(trade.get("entry", "IN")).upper() != "IN"
    side, symbol = trade.get("action"), trade.get("symbol")
    volume, price = trade.get("volume"), trade.get("openPrice")
    text = f"{side} {volume} {symbol} filled at {price}"
    if closing:
        text += f", profit {trade.get('profit')}"
    return {
        "id": f"notif_fill_{trade.get('executionId')}",
        "type": "position_closed" if closing else "order_filled",
        "priority": "medium",
        "title": "Position closed" if closing else "Order filled",
        "message": text,
        "action_required": False,
        "action_url": f"/dashboard/positions/{trade.get('ticket')}",
        "expires_at": stamp(ts + ttl),
    }


#: The channels each of whose events may be a ``notification`` (:func:`note_of`).
NOTIFIED = ("trades", "orders", "alerts")


def note_of(channel: str, data: Mapping[str, Any], ts: float, ttl: int) -> dict[str, Any] | None:
    """The notification an event of ``channel`` is, if any. Its ``id`` comes from the
    event (the execution, order or alert id), so the same event is the same note."""
    if channel == "trades":
        return from_trade(data, ts, ttl)
    if channel == "orders":
        return from_order(data, ts, ttl)
    if channel == "alerts":
        return from_alert(data, ts, ttl)
    return None


def from_order(order: Mapping[str, Any], ts: float, ttl: int) -> dict[str, Any] | None:
    """A rejected order is worth telling; the other order states show in trading_status."""
    if str(order.get("status", "")).upper() != "REJECTED":
        return None
    return {
        "id": f"notif_order_{order.get('orderId')}",
        "type": "order_rejected",
        "priority": "high",
        "title": "Order rejected",
        "message": f"{order.get('symbol')} order rejected: {order.get('rejectReason') or ''}",
        "action_required": True,
        "action_url": f"/dashboard/orders/{order.get('orderId')}",
        "expires_at": stamp(ts + ttl),
    }


def from_signal(signal: Mapping[str, Any], ts: float, ttl: int) -> dict[str, Any]:
    s = signal_entry(signal)
    confidence = s["confidence"]
    pct = "" if confidence is None else f" with {round(confidence * 100)}% confidence"
    key = signal_key(signal)
    return {
        "id": f"notif_signal_{key}_{int(ts * 1000)}",
        "type": "trading_signal",
        "priority": "high" if (confidence or 0) >= 0.8 else "medium",
        "title": "New Trading Signal",
        "message": f"{s['signal']} {s['symbol']} signal generated{pct}",
        "action_required": True,
        "action_url": f"/dashboard/signals/{key}",
        "expires_at": stamp(ts + ttl),
    }


def hhmm(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M")


def activity_of_trade(trade: Mapping[str, Any], ts: float) -> dict[str, Any]:
    closing = str(trade.get("entry", "IN")).upper() != "IN"
    return {
        "time": hhmm(ts),
        "action": "Position Closed" if closing else "Order Filled",
        "symbol": trade.get("symbol"),
        "result": f"{trade.get('profit')}" if closing else f"{trade.get('action')}",
    }


def activity_of_signal(signal: Mapping[str, Any], ts: float) -> dict[str, Any]:
    s = signal_entry(signal)
    return {
        "time": hhmm(ts),
        "action": "Signal Generated",
        "symbol": s["symbol"],
        "result": s["signal"],
    }


def analytics(
    summary: Mapping[str, Any] | None, activity: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    return {
        "performance_summary": dict(summary) if summary is not None else empty_summary(),
        "recent_activity": list(activity),
    }


def empty_summary() -> dict[str, Any]:
    return {
        "win_rate": 0.0,
        "profit_factor": None,
        "total_trades": 0,
        "profitable_trades": 0,
        "average_profit": 0.0,
        "max_drawdown": 0.0,
    }
