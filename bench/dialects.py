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


CANONICAL = BenchDialect(
    name="canonical",
    path="/api/ws?token={token}",
    hello=('{"type":"subscribe","channels":["market-data"]}',),
    subscribed='"type":"subscription"',
    market='"channel":"market-data"',
    canonical_envelope=True,
)

# Seed 002 (issue 8): Socket.IO v5 over Engine.IO v4, websocket transport, auth as the
# seed's ``io(url, {auth: {token}})`` does it (and the ``?token=`` of its Flask example).
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

DIALECTS: dict[str, BenchDialect] = {d.name: d for d in (CANONICAL, SOCKETIO, SEED003)}
