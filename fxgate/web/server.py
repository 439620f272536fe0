"""The HTTP server: Tornado's, with a 431 for oversized headers and start-up timeouts.

Tornado enforces ``max_header_size`` by closing the connection without a word (its
stream gives up on a read it cannot satisfy and closes itself), so a client with a
huge cookie sees a reset and cannot tell why. :class:`FxgateHTTPServer` watches each
connection's stream close for exactly that cause and writes a 431 first. It costs one
wrapper per connection at accept time, nothing per request or frame.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.iostream import IOStream, UnsatisfiableReadError
from tornado.netutil import bind_sockets

from fxgate.config.settings import ServerSettings, Settings
from fxgate.domain.errors import ErrorCode
from fxgate.node import StartupError
from fxgate.web.rest.base import error_body


def response_431() -> bytes:
    body = json.dumps(
        error_body(ErrorCode.VALIDATION_ERROR, "Request headers too large"),
        separators=(",", ":"),
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "Content-Type: application/json; charset=UTF-8\r\n"
        f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _cause(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1]  # type: ignore[no-any-return]
    if exc_info:
        return sys.exc_info()[1]
    return None


class FxgateHTTPServer(HTTPServer):
    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        close = stream.close

        def close_431(exc_info: Any = False) -> None:
            if isinstance(_cause(exc_info), UnsatisfiableReadError) and not stream.closed():
                # Headers beyond max_header_size (the only unbounded read before a
                # request is parsed): say so, best effort, without waiting.
                with contextlib.suppress(OSError):
                    stream.socket.send(response_431())
            close(exc_info)

        stream.close = close_431  # type: ignore[method-assign]
        super().handle_stream(stream, address)


def make_server(app: Any, server: ServerSettings) -> FxgateHTTPServer:
    """The server with the ``[server]`` limits: ``header_timeout`` bounds how long a
    connection may take to send its headers (a slowloris holds a socket no longer) and
    how long a kept-alive one may idle; a WebSocket, once upgraded, has its own
    ``ws.auth_timeout`` and pings."""
    return FxgateHTTPServer(
        app,
        xheaders=server.xheaders,
        idle_connection_timeout=server.header_timeout,
        body_timeout=server.body_timeout,
        max_header_size=server.max_header_size,
    )


def listen(settings: Settings) -> list[socket.socket]:
    """The listening sockets, bound before the node touches any state: a port in use
    must not leave a new master key or signing key behind."""
    host, port = settings.server.host, settings.server.port
    try:
        return bind_sockets(port, host, family=socket.AF_INET)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
