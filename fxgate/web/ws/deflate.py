"""permessage-deflate (RFC 7692) for server frames built once and shared.

The frame writer bypasses Tornado's ``write_message``, and with it Tornado's
per-connection compressor: a compressed frame that depends on a connection's history
(context takeover) could not be shared. So the server always answers an offer with
``server_no_context_takeover``: every message is compressed on its own, and the bytes
depend only on the payload and the negotiated ``server_max_window_bits``. One
:class:`DeflateFramer` exists per window size (and level and threshold) in the process,
and the dashboard's messages cache their frames per framer, so a market-data batch is
compressed once per parameter set however many connections receive it. Messages under
``dashboard.compression_threshold`` go out uncompressed (RSV1 clear), which RFC 7692
allows message by message. What the client sends is Tornado's to decompress.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from fxgate.web.ws.framing import deflated_text_frame, text_frame

_TAIL = b"\x00\x00\xff\xff"
_OFFER_KEYS = {
    "server_no_context_takeover",
    "client_no_context_takeover",
    "server_max_window_bits",
    "client_max_window_bits",
}


class PlainFramer:
    """Uncompressed text frames."""

    __slots__ = ()

    def frame(self, payload: bytes) -> bytes:
        return text_frame(payload)


PLAIN = PlainFramer()


class DeflateFramer:
    __slots__ = ("compressed", "level", "threshold", "wbits")

    #: Messages compressed by every framer of the process (``/metrics``).
    total = 0

    def __init__(self, wbits: int, level: int, threshold: int) -> None:
        self.wbits = wbits
        self.level = level
        self.threshold = threshold
        #: Messages compressed so far (shared frames are compressed once).
        self.compressed = 0

    def frame(self, payload: bytes) -> bytes:
        if len(payload) < self.threshold:
            return text_frame(payload)
        c = zlib.compressobj(self.level, zlib.DEFLATED, -self.wbits)
        data = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
        if data.endswith(_TAIL):
            data = data[:-4]
        self.compressed += 1
        DeflateFramer.total += 1
        return deflated_text_frame(data)


_FRAMERS: dict[tuple[int, int, int], DeflateFramer] = {}


def compressed_total() -> int:
    """Messages compressed in this process (``/metrics``): once per message per
    parameter set when frames are shared, not once per connection."""
    return DeflateFramer.total


def deflate_framer(wbits: int, level: int, threshold: int) -> DeflateFramer:
    """The one framer of this parameter set."""
    key = (wbits, level, threshold)
    found = _FRAMERS.get(key)
    if found is None:
        found = _FRAMERS[key] = DeflateFramer(wbits, level, threshold)
    return found


@dataclass(frozen=True, slots=True)
class Offer:
    """The client's first permessage-deflate offer, as the server will accept it."""

    params: dict[str, str | None]

    @property
    def server_wbits(self) -> int:
        value = self.params.get("server_max_window_bits")
        return 15 if value is None else int(value)

    def header(self) -> str:
        """The offer for Tornado to accept (it takes the first one it sees), with
        ``server_no_context_takeover`` added as ``=1``: Tornado's header parser drops
        parameters without a value, and with this one it keeps no compressor of its own
        per connection (about 256 KiB each, never used: our frames are compressed by
        the shared framers). :func:`response_header` puts the RFC's form back."""
        parts = ["permessage-deflate"]
        for key, value in self.params.items():
            if key != "server_no_context_takeover":
                parts.append(key if value is None else f"{key}={value}")
        parts.append("server_no_context_takeover=1")
        return "; ".join(parts)


def response_header(value: str) -> str:
    """Tornado's echo of :meth:`Offer.header`, in RFC 7692's form."""
    return value.replace("server_no_context_takeover=1", "server_no_context_takeover")


def first_offer(header: str) -> Offer | None:
    """The first permessage-deflate offer of a ``Sec-WebSocket-Extensions`` header, or
    None (none offered, or one with parameters the server cannot take: no compression,
    rather than Tornado refusing the handshake)."""
    for ext in header.split(","):
        name, *raw = (p.strip() for p in ext.split(";"))
        if name.lower() != "permessage-deflate":
            continue
        params: dict[str, str | None] = {}
        for item in raw:
            if not item:
                continue
            key, eq, value = item.partition("=")
            key = key.strip().lower()
            params[key] = value.strip().strip('"') if eq else None
        if set(params) - _OFFER_KEYS:
            return None
        wbits = params.get("server_max_window_bits")
        if wbits is not None and not (wbits.isdigit() and 8 <= int(wbits) <= 15):
            return None
        cwbits = params.get("client_max_window_bits")
        if cwbits is not None and not (cwbits.isdigit() and 8 <= int(cwbits) <= 15):
            return None
        return Offer(params)
    return None
