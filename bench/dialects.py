"""How the load generator speaks each endpoint (``bench/fanout.py --dialect NAME``).

One row per endpoint, so a new dialect becomes benchmarkable with data, not code: the
C load generator opens ``path``, sends the ``hello`` frames, counts a connection as
subscribed when a frame containing ``subscribed`` arrives, and measures every frame
containing ``market`` (its ``timestamp`` against the clock; ``symbol`` and, where the
dialect has one, ``offset`` for gaps and duplicates).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BenchDialect:
    name: str
    #: Path and query of the WebSocket URL; ``{token}`` is replaced by a bearer token.
    path: str
    #: Text frames sent once the socket is open, in order; ``{token}`` and ``{symbols}``
    #: (a JSON list of the symbols) are filled in.
    hello: tuple[str, ...]
    #: A substring of the server frame that confirms the subscription.
    subscribed: str
    #: A substring every market-data frame contains.
    market: str
    #: Engine.IO framing (Socket.IO): answer ``2`` pings with ``3``, events are ``42[...]``.
    engineio: bool = False


CANONICAL = BenchDialect(
    name="canonical",
    path="/api/ws?token={token}",
    hello=('{"type":"subscribe","channels":["market-data"]}',),
    subscribed='"type":"subscription"',
    market='"channel":"market-data"',
)

#: Seed 002's Socket.IO on the websocket transport: the token in the CONNECT packet.
SOCKETIO = BenchDialect(
    name="socketio",
    path="/socket.io/?EIO=4&transport=websocket",
    hello=('40{"token":"{token}"}', '42["subscribe",{"channels":["quotes"]}]'),
    subscribed='42["subscribed"',
    market='42["quotes"',
    engineio=True,
)

#: Seed 003's ``/ws``: first-message auth, then every symbol's ``price_update``.
SEED003 = BenchDialect(
    name="seed003",
    path="/ws",
    hello=(
        '{"type":"auth","token":"{token}"}',
        '{"type":"subscribe","channel":"price_updates"}',
    ),
    subscribed='"type":"subscribed"',
    market='"type":"price_update"',
)


#: The paper market's default symbols, as seed 004 writes them: its client subscribes
#: one symbol per message.
_SEED004_SYMBOLS = ("EUR/USD", "GBP/USD", "USD/JPY", "USD/CHF", "AUD/USD", "USD/CAD",
                    "NZD/USD", "EUR/GBP", "EUR/JPY", "XAU/USD", "BTC/USD", "ETH/USD")  # fmt: skip

SEED004_MARKET_DATA = BenchDialect(
    name="seed004-market-data",
    path="/ws/market-data?token={token}",
    hello=tuple(
        f'{{"type":"subscribe","channel":"quotes","symbol":"{s}"}}' for s in _SEED004_SYMBOLS
    ),
    subscribed='"type":"subscribed"',
    market='"type":"quote"',
)


DIALECTS: dict[str, BenchDialect] = {
    d.name: d for d in (CANONICAL, SOCKETIO, SEED003, SEED004_MARKET_DATA)
}
