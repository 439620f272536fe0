"""permessage-deflate framing of ``/ws/dashboard``: frames compressed on their own
(so they can be shared), small ones plain, and the offer the server accepts."""

from __future__ import annotations

import json
import zlib

import pytest

from fxgate.protocol.dashboard.outgoing import Outgoing
from fxgate.web.ws.deflate import DeflateFramer, first_offer


def test_deflate_frames_inflate_on_their_own_and_small_ones_stay_plain() -> None:
    framer = DeflateFramer(15, 6, threshold=100)
    big = json.dumps({"symbols": [{"symbol": "EURUSD", "bid": 1.1}] * 50}).encode()
    frame = framer.frame(big)
    assert frame[0] == 0xC1  # FIN, RSV1, text
    body = frame[4:] if frame[1] == 126 else frame[2:]
    assert zlib.decompressobj(-15).decompress(body + b"\x00\x00\xff\xff") == big
    assert framer.frame(b'{"a":1}')[0] == 0x81
    out = Outgoing("market_data", big)
    assert out.frame(framer) is out.frame(framer)
    assert framer.compressed == 2
    assert out.framings == 1


@pytest.mark.parametrize(
    ("header", "wbits"),
    [
        ("permessage-deflate", 15),
        ("permessage-deflate; client_max_window_bits", 15),
        ("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=10", 10),
        ("permessage-deflate; server_max_window_bits=99", None),
        ("permessage-deflate; mystery", None),
        ("", None),
    ],
)
def test_the_first_usable_offer(header: str, wbits: int | None) -> None:
    offer = first_offer(header)
    assert (offer.server_wbits if offer else None) == wbits
