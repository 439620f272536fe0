"""Seed 004's ``/ws/market-data`` wire format: client frames to commands, events to bytes.

Client frames: ``{"type":"subscribe"|"unsubscribe","channel":"quotes"|"trades"|"orderbook",
"symbol":"BTC/USD","id"?}`` and ``{"type":"ping"}``. The seed's channels are the hub's
``market-data``, ``market-trades`` and ``orderbook``. A symbol may be written
``BASE/QUOTE``; the encoder comes in two forms (:class:`MarketDataDialect` with
``slashed`` true or false), so each event is encoded once per form and each
subscription gets the form it asked for. Docs: docs/dialects.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fxgate.domain.errors import ValidationError
from fxgate.domain.timefmt import iso_ms
from fxgate.plugins.channel import Channel
from fxgate.protocol.canonical import encode
from fxgate.protocol.seed004.common import unknown_type, with_id

#: The seed's channel names -> the hub's.
CHANNELS: Mapping[str, str] = {
    "quotes": "market-data",
    "trades": "market-trades",
    "orderbook": "orderbook",
}
SEED_NAMES: Mapping[str, str] = {hub: seed for seed, hub in CHANNELS.items()}
KNOWN_TYPES = ("subscribe", "unsubscribe", "ping")


@dataclass(frozen=True, slots=True)
class Subscribe:
    channel: str  # the seed's name
    symbol: str  # as the client wrote it
    rid: str | None = None


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    channel: str
    symbol: str
    rid: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    rid: str | None = None


Command = Subscribe | Unsubscribe | Ping


def parse(msg: Mapping[str, Any], rid: str | None = None) -> Command:
    """A loaded client frame (``fxgate.protocol.canonical.load_object``) to a command."""
    kind = msg.get("type")
    if kind == "ping":
        return Ping(rid)
    if kind != "subscribe" and kind != "unsubscribe":
        raise unknown_type(kind, KNOWN_TYPES)
    channel = msg.get("channel")
    if not isinstance(channel, str) or channel not in CHANNELS:
        raise ValidationError(
            "Invalid channel",
            field="channel",
            reason="unknown",
            details={"channel": channel, "accepted": list(CHANNELS)},
        )
    symbol = msg.get("symbol")
    if not isinstance(symbol, str) or not symbol.strip() or len(symbol) > 32:
        raise ValidationError(
            f"{kind} needs a symbol, e.g. BTC/USD", field="symbol", reason="missing"
        )
    return (Subscribe if kind == "subscribe" else Unsubscribe)(channel, symbol, rid)


# -- replies -------------------------------------------------------------------------


def connected(session_id: str, user_id: str | None) -> bytes:
    return encode(
        with_id(
            {
                "type": "connected",
                "sessionId": session_id,
                "authenticated": user_id is not None,
                "channels": list(CHANNELS),
            },
            None,
        )
    )


def subscribed(kind: str, channel: str, symbol: str, rid: str | None) -> bytes:
    return encode(with_id({"type": kind, "channel": channel, "symbol": symbol}, rid))


# -- events --------------------------------------------------------------------------


def _book_side(levels: Any) -> list[list[float]]:
    return [[float(p), float(q)] for p, q in levels]


class MarketDataDialect:
    """Events of the three market channels as seed 004's messages; ``slashed`` writes
    symbols ``BASE/QUOTE`` (from ``names``, broker symbol -> slashed name)."""

    def __init__(self, *, slashed: bool, names: Mapping[str, str]) -> None:
        self.slashed = slashed
        self.name = "seed004-market" + ("-slashed" if slashed else "")
        self._names = dict(names) if slashed else {}

    def symbol(self, broker_symbol: str) -> str:
        return self._names.get(broker_symbol, broker_symbol)

    def encode_event(self, channel: Channel, envelope: Mapping[str, Any]) -> bytes | None:
        data = envelope["data"]
        name = channel.name
        symbol = self.symbol(str(data.get("symbol", "")))
        body: dict[str, Any]
        if name == "market-data":
            kind = "quote"
            body = {
                "symbol": symbol,
                "price": data["last"],
                "bid": data["bid"],
                "ask": data["ask"],
                "change": data["change"],
                "changePercent": data["changePercent"],
                "volume": data["volume"],
                "high": data.get("dayHigh"),
                "low": data.get("dayLow"),
                "open": data.get("open"),
                "close": data.get("close"),
                "timestamp": data["timestamp"],
            }
            if data.get("stale"):
                body["stale"] = True
        elif name == "market-trades":
            kind = "trade"
            body = {
                "id": data["id"],
                "symbol": symbol,
                "price": data["price"],
                "quantity": data["volume"],
                "side": data["side"],
                "timestamp": data["timestamp"],
            }
        elif name == "orderbook":
            kind = "orderbook"
            ts = data.get("ts")
            body = {
                "symbol": symbol,
                "bids": _book_side(data["bids"]),
                "asks": _book_side(data["asks"]),
                "timestamp": iso_ms(ts) if isinstance(ts, int | float) else envelope["timestamp"],
            }
        else:
            return None
        message: dict[str, Any] = {
            "type": kind,
            "channel": SEED_NAMES[name],
            "symbol": symbol,
            "data": body,
            "timestamp": envelope["timestamp"],
        }
        if kind == "orderbook":
            message["action"] = "snapshot" if data.get("snapshot") else "update"
        elif data.get("snapshot"):
            message["snapshot"] = True
        return encode(message)
