"""A seed 000 dashboard client on ``websockets``, and a raw one that reads frame bits.

The dashboard front end of seed 000 connects with its token in the URL (or a header),
reads what is pushed, and may send ``{"type":"subscribe","types":[…]}``. ``barrier``
sends a ping and returns what came before the pong, like ``tests.wsclient.Client``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import zlib
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from tests.conftest import Daemon
from tests.wsclient import Client

#: The fields seed 000 shows for each message type.
SEED_FIELDS = {
    "trading_status": {
        "active_signals",
        "open_positions",
        "account_balance",
        "account_equity",
        "margin_used",
        "margin_free",
    },
    "system_metrics": {"connection_status", "performance", "usage"},
    "market_data": {"symbols", "market_session", "volatility"},
    "notification": {
        "id",
        "type",
        "priority",
        "title",
        "message",
        "action_required",
        "action_url",
        "expires_at",
    },
    "analytics": {"performance_summary", "recent_activity"},
}
POSITION_FIELDS = {
    "ticket", "symbol", "type", "volume", "open_price", "current_price", "profit", "status",
}  # fmt: skip
SYMBOL_FIELDS = {"symbol", "bid", "ask", "spread", "change", "change_percent", "timestamp"}
SUMMARY_FIELDS = {
    "win_rate", "profit_factor", "total_trades", "profitable_trades", "average_profit",
    "max_drawdown",
}  # fmt: skip
ACTIVITY_FIELDS = {"time", "action", "symbol", "result"}


def check_seed_fields(msg: dict[str, Any]) -> None:
    kind = msg["type"]
    assert set(msg["data"]) >= SEED_FIELDS[kind], msg
    assert msg["timestamp"].endswith("Z"), msg
    data = msg["data"]
    if kind == "trading_status":
        for p in data["open_positions"]:
            assert set(p) >= POSITION_FIELDS, p
    elif kind == "system_metrics":
        assert set(data["connection_status"]) == {
            "mt5",
            "api_gateway",
            "trading_engine",
            "notification_hub",
        }
        assert set(data["performance"]) == {
            "data_latency_ms",
            "signal_generation_ms",
            "execution_success_rate",
            "uptime_percentage",
        }
        assert set(data["usage"]) == {
            "signals_today",
            "executions_today",
            "api_calls_remaining",
            "subscription_tier",
        }
    elif kind == "market_data":
        assert data["symbols"], msg
        for s in data["symbols"]:
            assert set(s) == SYMBOL_FIELDS, s
        assert data["volatility"] in ("low", "medium", "high")
    elif kind == "analytics":
        assert set(data["performance_summary"]) == SUMMARY_FIELDS
        for a in data["recent_activity"]:
            assert set(a) == ACTIVITY_FIELDS, a


async def dashboard(d: Daemon, token: str, *, header: bool = False, **kw: Any) -> Client:
    """Connected, past the ``connection`` message."""
    url = d.ws_url("/ws/dashboard")
    if header:
        kw["additional_headers"] = {"Authorization": f"Bearer {token}"}
    else:
        url += f"?token={token}"
    c = await Client.connect(url, **kw)
    hello = await c.recv()
    assert hello["type"] == "connection", hello
    return c


async def first_of_each(c: Client, kinds: set[str], timeout: float = 5) -> dict[str, Any]:
    """The first message of each of ``kinds``, by type."""
    msgs = await c.read_until(lambda ms: kinds <= {m["type"] for m in ms}, timeout)
    got: dict[str, Any] = {}
    for m in msgs:
        got.setdefault(m["type"], m)
    return got


def ws(c: Client) -> ClientConnection:
    return c.ws


class RawSocket:
    """A bare RFC 6455 client that offers permessage-deflate and keeps each frame's
    first byte, to see which frames the server compressed (RSV1)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.response = b""
        #: The last frame's payload as it came (compressed or not).
        self.last_payload = b""

    @classmethod
    async def connect(cls, d: Daemon, token: str, offer: str | None) -> RawSocket:
        reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET /ws/dashboard?token={token} HTTP/1.1",
            f"Host: 127.0.0.1:{d.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if offer:
            lines.append(f"Sec-WebSocket-Extensions: {offer}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = cls(reader, writer)
        raw.response = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert raw.response.startswith(b"HTTP/1.1 101"), raw.response
        return raw

    def header(self, name: str) -> str | None:
        for line in self.response.decode().split("\r\n")[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == name.lower():
                return v.strip()
        return None

    async def frame(self, timeout: float = 5) -> tuple[int, bytes]:
        """(first byte, payload) of the next frame."""
        head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return head[0], await self.reader.readexactly(n)

    async def message(self, timeout: float = 5) -> tuple[bool, dict[str, Any], int]:
        """(compressed?, the JSON message, bytes on the wire) of the next text frame;
        each compressed message is inflated on its own (no context takeover)."""
        first, payload = await self.frame(timeout)
        self.last_payload = payload
        compressed = bool(first & 0x40)
        text = (
            zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
            if compressed
            else payload
        )
        return compressed, json.loads(text), len(payload)

    def close(self) -> None:
        self.writer.close()


__all__ = ["websockets"]
