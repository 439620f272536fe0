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
    #: Engine.IO framing (Socket.IO): ``hello[0]`` (the Socket.IO connect) goes out on the
    #: Engine.IO open packet, the other frames on the connect's ack ``40``; every ``2`` ping
    #: is answered with ``3``; events are ``42[...]``.
    engineio: bool = False
    #: The frames are the canonical envelope: the load generator's own parser reads them
    #: (the markers are then not passed) - the reference every dialect is compared with.
    canonical_envelope: bool = False
    #: Offer permessage-deflate and inflate frames with RSV1 set (``dashboard-deflate``).
    deflate: bool = False
    #: ``FXGATE_…`` settings the daemon needs for this row (``bench/fanout.py`` sets them).
    daemon_env: tuple[tuple[str, str], ...] = ()


CANONICAL = BenchDialect(
    name="canonical",
    path="/api/ws?token={token}",
    hello=('{"type":"subscribe","channels":["market-data"]}',),
    subscribed='"type":"subscription"',
    market='"channel":"market-data"',
    canonical_envelope=True,
)

#: Seed 002 (issue 8): Socket.IO v5 over Engine.IO v4 on the websocket transport; the
#: token in the CONNECT packet, as the seed's ``io(url, {auth: {token}})`` sends it, and in
#: the query, as its Flask example reads it.
SOCKETIO = BenchDialect(
    name="socketio",
    path="/socket.io/?EIO=4&transport=websocket&token={token}",
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

# Seed 000 (issue 9): ``/ws/dashboard``. Market data comes batched: one ``market_data``
# frame carries every symbol of the tier that changed since the last batch, each with its
# own tick ``timestamp`` (ISO, milliseconds) inside ``data.symbols``; there is no offset.
# Subscribing narrows the push to market data only. The load generator must measure every
# ``{"symbol":…,"timestamp":…}`` of a frame, not one per frame. A batch goes out at most
# ``market_data_per_second`` times a second per tier, and a user's connections together
# get at most ``dashboard.max_messages_per_second``: the row's settings give the bench
# tokens' tier (``free`` unless issued otherwise) every symbol at up to 200 batches a
# second (a batch every 5 ms) and lift the per-user cap, which 1,000 connections of one
# bench user would hit.
_DASHBOARD_ENV = (
    (
        "FXGATE_TIERS",
        '{"free": {"types": ["market_data"], "symbols": ["*"], "market_data_per_second": 200}}',
    ),
    ("FXGATE_DASHBOARD_MAX_MESSAGES_PER_SECOND", "1000000"),
)
DASHBOARD = BenchDialect(
    name="dashboard",
    path="/ws/dashboard?token={token}",
    hello=('{"type":"subscribe","types":["market_data"]}',),
    subscribed='"type":"subscribed"',
    market='"type":"market_data"',
    daemon_env=_DASHBOARD_ENV,
)

#: The same with permessage-deflate: the load generator offers
#: ``permessage-deflate; client_max_window_bits`` and inflates each frame with RSV1 set
#: on its own (raw deflate, ``00 00 ff ff`` appended; the server answers
#: ``server_no_context_takeover``); frames without RSV1 are plain.
DASHBOARD_DEFLATE = BenchDialect(
    name="dashboard-deflate",
    path=DASHBOARD.path,
    hello=DASHBOARD.hello,
    subscribed=DASHBOARD.subscribed,
    market=DASHBOARD.market,
    deflate=True,
    daemon_env=_DASHBOARD_ENV,
)

DIALECTS.update({d.name: d for d in (DASHBOARD, DASHBOARD_DEFLATE)})
