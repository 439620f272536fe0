"""``/ws``: seed 003's protocol over the shared socket base (``fxgate.web.ws.canonical``).

Seed 003's front end opens the socket and authenticates with its first message; a token
in the query or header is taken too, as on every endpoint. Either way the user's own
streams are subscribed once authenticated, before the next client message is read
(Tornado awaits ``open`` and each ``on_message`` in turn).
"""

from __future__ import annotations

import asyncio
from typing import Any

from fxgate.node import Node
from fxgate.protocol.seed003.events import Seed003Dialect
from fxgate.protocol.seed003.session import Seed003Session
from fxgate.web.ws.canonical import SocketBase
from fxgate.web.ws.writer import Flusher, FrameWriter


class Seed003Socket(SocketBase):
    """Seed 003's ``/ws``."""

    def initialize(  # type: ignore[override]
        self, node: Node, flusher: Flusher, dialect: Seed003Dialect
    ) -> None:
        super().initialize(node, flusher)
        #: One per process (built with the market's quotes in ``make_app``), so the
        #: hub's frame cache shares each event's frame among every ``/ws`` client.
        self.dialect = dialect

    async def open(self, *args: str, **kwargs: str) -> None:  # type: ignore[override]
        # SocketBase.open, with the dialect's session; ``open`` may be a coroutine
        # (Tornado reads no message until it returns), so the welcome comes first.
        super().open(*args, **kwargs)
        if self.session is not None and self.session.principal is not None:
            assert isinstance(self.session, Seed003Session)
            await self.session.welcome()

    def make_session(self, writer: FrameWriter) -> Seed003Session:
        return Seed003Session(
            hub=self.node.hub,
            tokens=self.node.tokens,
            limits=self.node.settings.ws,
            conn=writer,
            dialect=self.dialect,
            connection_rate=self.node.connection_rate,
            timers=asyncio.get_running_loop(),
            # Seed 003's client cannot send an offset: the node remembers (issue 8).
            resume=self.node.resume,
        )


def seed003_route(node: Node, flusher: Flusher) -> tuple[str, type[Seed003Socket], dict[str, Any]]:
    dialect = Seed003Dialect(node.market)
    return (r"/ws/?", Seed003Socket, {"node": node, "flusher": flusher, "dialect": dialect})
