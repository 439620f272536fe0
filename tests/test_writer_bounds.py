"""Every byte held for a connection counts against ``ws.queue_max_bytes``: what the
IOStream holds, the backlog and the frames held back during a snapshot."""

from __future__ import annotations

import asyncio

from fxgate.web.ws.framing import text_frame
from tests.conftest import until
from tests.test_writer import drain, make_writer


async def test_bytes_sitting_in_the_iostream_count_against_the_bound() -> None:
    writer, _peer, kicked = make_writer(256 * 1024)
    frame = text_frame(b"t" * 1000)
    for _ in range(400):  # 400 KB of trading events in one pass, to a client not reading
        writer.deliver(frame)
    for _ in range(20):
        await asyncio.sleep(0)
    assert kicked == [4008]


async def test_the_stream_and_the_backlog_share_one_bound() -> None:
    writer, _peer, kicked = make_writer(256 * 1024)
    frame = text_frame(b"t" * 1000)
    for _ in range(200):  # 200 KB: under the bound, most of it left in the IOStream
        writer.deliver(frame)
    await asyncio.sleep(0)  # one loop turn: the flush hands it all to the IOStream
    assert kicked == []
    for _ in range(100):  # 100 KB more in the backlog: 300 KB held in all
        writer.deliver(frame)
        await asyncio.sleep(0)
        if kicked:
            break
    assert kicked == [4008]


async def test_market_data_held_during_a_snapshot_is_conflated_and_bounded() -> None:
    writer, peer, kicked = make_writer(64 * 1024)
    writer.hold()  # a long snapshot
    writer.send(b"snapshot")
    for i in range(10_000):
        writer.deliver(text_frame(f"EURUSD {i}".encode()), ("market-data", "EURUSD"))
        writer.deliver(text_frame(f"GBPUSD {i}".encode()), ("market-data", "GBPUSD"))
    assert writer.backlog_bytes < 100  # two frames held, not twenty thousand
    assert kicked == []
    writer.release()
    expected = text_frame(b"snapshot") + text_frame(b"EURUSD 9999") + text_frame(b"GBPUSD 9999")
    data = bytearray()
    await until(lambda: len(drain(peer, data)) >= len(expected))
    assert data == expected


async def test_trading_events_held_during_a_snapshot_are_bounded() -> None:
    writer, _peer, kicked = make_writer(64 * 1024)
    writer.hold()
    frame = text_frame(b"t" * 1000)
    for _ in range(100):  # 100 KB of trading events: none may be dropped, so 4008
        writer.deliver(frame)
        if kicked:
            break
    assert kicked == [4008]
