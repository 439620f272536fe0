"""Seed 001's own Python client class, unchanged, against ``/api/ws``."""

from __future__ import annotations

import json
import threading
from typing import Any

import websocket

from tests.conftest import Daemon, until_sync

# -- seed 001, "Python Example", verbatim except for the handlers' bodies ----------------


class FXPlatformWebSocket:
    def __init__(self, token, url):  # type: ignore[no-untyped-def]
        self.token = token
        self.url = f"{url}?token={token}"
        self.ws = None
        self.subscriptions = set()
        self.reconnect_attempts = 0
        self.max_reconnect_attempts = 5
        self.reconnect_delay = 1

    def connect(self):  # type: ignore[no-untyped-def]
        self.ws = websocket.WebSocketApp(
            self.url,
            on_open=self.on_open,
            on_message=self.on_message,
            on_close=self.on_close,
            on_error=self.on_error,
        )

        # Run in a separate thread
        wst = threading.Thread(target=self.ws.run_forever)
        wst.daemon = True
        wst.start()

    def on_open(self, ws):  # type: ignore[no-untyped-def]
        print("WebSocket connected")
        self.reconnect_attempts = 0

    def on_message(self, ws, message):  # type: ignore[no-untyped-def]
        data = json.loads(message)
        self.handle_message(data)

    def on_close(self, ws, close_status_code, close_msg):  # type: ignore[no-untyped-def]
        print("WebSocket disconnected")

    def on_error(self, ws, error):  # type: ignore[no-untyped-def]
        print(f"WebSocket error: {error}")

    def subscribe(self, channels, filters=None):  # type: ignore[no-untyped-def]
        if isinstance(channels, str):
            channels = [channels]

        for channel in channels:
            self.subscriptions.add(channel)

        message = {
            "type": "subscribe",
            "channels": [{"name": channel, "filters": filters or {}} for channel in channels],
        }

        self.send(message)

    def unsubscribe(self, channels):  # type: ignore[no-untyped-def]
        if isinstance(channels, str):
            channels = [channels]
        for channel in channels:
            self.subscriptions.discard(channel)
        self.send({"type": "unsubscribe", "channels": channels})

    def send(self, message):  # type: ignore[no-untyped-def]
        if self.ws and self.ws.sock and self.ws.sock.connected:
            self.ws.send(json.dumps(message))

    def handle_message(self, message):  # type: ignore[no-untyped-def]
        msg_type = message.get("type")
        data = message.get("data")
        if msg_type == "trade":
            self.on_trade(data)
        elif msg_type == "position":
            self.on_position(data)
        elif msg_type == "order":
            self.on_order(data)
        elif msg_type == "market_data":
            self.on_market_data(data)
        elif msg_type == "alert":
            self.on_alert(data)
        elif msg_type == "analytics":
            self.on_analytics(data)
        elif msg_type == "system":
            self.on_system(data)
        else:
            print(f"Unknown message type: {msg_type}")

    def on_trade(self, data): ...  # type: ignore[no-untyped-def]
    def on_position(self, data): ...  # type: ignore[no-untyped-def]
    def on_order(self, data): ...  # type: ignore[no-untyped-def]
    def on_market_data(self, data): ...  # type: ignore[no-untyped-def]
    def on_alert(self, data): ...  # type: ignore[no-untyped-def]
    def on_analytics(self, data): ...  # type: ignore[no-untyped-def]
    def on_system(self, data): ...  # type: ignore[no-untyped-def]

    def disconnect(self):  # type: ignore[no-untyped-def]
        if self.ws:
            self.ws.close()


SEED_MARKET_FIELDS = {
    "symbol", "bid", "ask", "last", "volume", "spread", "timestamp", "change",
    "changePercent", "dayHigh", "dayLow", "open", "close",
}  # fmt: skip


class Recorder(FXPlatformWebSocket):
    def __init__(self, token: str, url: str) -> None:
        super().__init__(token, url)
        self.market: list[dict[str, Any]] = []
        self.system: list[dict[str, Any]] = []
        self.opened = threading.Event()

    def on_open(self, ws: Any) -> None:
        super().on_open(ws)  # type: ignore[no-untyped-call]
        self.opened.set()

    def on_market_data(self, data: dict[str, Any]) -> None:
        self.market.append(data)

    def on_system(self, data: dict[str, Any]) -> None:
        self.system.append(data)


def test_seed_python_client_receives_market_data(daemon: Daemon, user: str) -> None:
    client = Recorder(daemon.token(user), daemon.ws_url())
    client.connect()
    # The seed's usage sleeps a second here ("Wait for connection"); its send() drops
    # what it is given before the socket is open, so wait for that, no longer.
    assert client.opened.wait(10), "the seed client never connected"
    # The seed's own usage line, then market data and system status the same way.
    client.subscribe(["trades", "positions", "orders"], {"symbol": "EURUSD"})
    client.subscribe(["market-data", "system"])
    until_sync(lambda: len(client.market) >= 15, timeout=10, what="15 market data messages")
    client.disconnect()
    for data in client.market:
        assert set(data) >= SEED_MARKET_FIELDS
        assert isinstance(data["bid"], float)
        assert isinstance(data["ask"], float)
        assert data["bid"] < data["ask"]
        assert isinstance(data["volume"], int)
        assert isinstance(data["spread"], int)
        assert data["timestamp"].endswith("Z")
    assert {d["symbol"] for d in client.market} >= {"EURUSD", "USDJPY", "XAUUSD"}
    assert client.system[0]["status"] == "HEALTHY"
