"""The one place that reads Tornado's private ``IOStream`` write state.

The frame writer bypasses ``IOStream.write`` while the socket takes everything (one
``send`` per flush pass, no Future per frame), which needs two facts Tornado keeps
private: whether a stream write is still pending (its frames, or Tornado's own pings
and close frames, must go out before ours), and how many bytes the stream still holds
(they count against ``ws.queue_max_bytes``). Both are read here and nowhere else, and
``tests/test_iostream_adapter.py`` pins them, so a Tornado upgrade that changes them
breaks that one test rather than the hot path.
"""

from __future__ import annotations

import socket
from collections.abc import Sized

from tornado.iostream import IOStream


def pending_writes(stream: IOStream) -> Sized:
    """A live view that is non-empty exactly while a stream write is pending.

    It is Tornado's own queue of write futures, fetched once per connection: testing
    its truth costs the writer's flush no call.
    """
    queue: Sized = stream._write_futures
    return queue


def buffered_bytes(stream: IOStream) -> int:
    """Bytes handed to ``stream.write`` and not yet written to the socket."""
    return stream._total_write_index - stream._total_write_done_index


def raw_socket(stream: IOStream) -> socket.socket:
    """The stream's socket, for the writer's direct non-blocking ``send``."""
    sock: socket.socket = stream.socket
    return sock
