"""Transport-level behaviour, seen from a raw socket: pings, slow consumers."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time

import httpx

from tests.conftest import Daemon


def raw_connect(daemon: Daemon, token: str, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", daemon.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/ws?token={token} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def send_text(sock: socket.socket, obj: object) -> None:
    payload = json.dumps(obj).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    assert len(payload) < 126
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)


def read_frames(sock: socket.socket, timeout: float) -> list[tuple[int, bytes]]:
    """Every frame until the peer closes the TCP connection (or ``timeout``)."""
    sock.settimeout(timeout)
    data = b""
    try:
        while chunk := sock.recv(1 << 16):
            data += chunk
    except TimeoutError:
        pass
    frames = []
    while len(data) >= 2:
        opcode, n = data[0] & 0x0F, data[1] & 0x7F
        i = 2
        if n == 126:
            (n,) = struct.unpack("!H", data[2:4])
            i = 4
        elif n == 127:
            (n,) = struct.unpack("!Q", data[2:10])
            i = 10
        if len(data) < i + n:
            break
        frames.append((opcode, data[i : i + n]))
        data = data[i + n :]
    return frames


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    for opcode, payload in frames:
        if opcode == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])
    return None


def test_a_client_that_never_answers_pings_is_dropped(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = Daemon(
        tmp_path / "s", env={"FXGATE_WS_PING_INTERVAL": "0.3", "FXGATE_WS_PING_TIMEOUT": "0.3"}
    )
    d.start()
    try:
        sock = raw_connect(d, d.token("quiet"))
        # Within a second or two: a ping, no pong from us, then the server's close frame
        # (Tornado then waits for our close reply before dropping the TCP connection).
        frames = read_frames(sock, timeout=2)
        assert any(op == 0x9 for op, _ in frames), "the server pings"
        assert close_code(frames) == 1000, "and closes when no pong comes"
        assert b"ping timed out" in next(p for op, p in frames if op == 0x8)
    finally:
        d.stop()


def test_a_client_that_stops_reading_a_trading_channel_gets_4008(tmp_path) -> None:  # type: ignore[no-untyped-def]
    d = Daemon(
        tmp_path / "s",
        env={"FXGATE_WS_QUEUE_MAX_BYTES": "65536", "FXGATE_PLUGINS": '["tests.plugins.ticker"]'},
    )
    d.start()
    try:
        slow = raw_connect(d, d.token("slowpoke"), rcvbuf=4096)
        send_text(slow, {"type": "subscribe", "channels": ["test-vip"]})
        time.sleep(0.3)
        with httpx.Client() as http:
            for i in range(400):  # ~16 MB of per-user events to a reader that sleeps
                http.post(
                    d.url("/test/vip"), params={"user": "slowpoke", "text": f"{i:04d}" * 10000}
                )
        frames = read_frames(slow, timeout=3)
        assert close_code(frames) == 4008
        texts = [json.loads(p) for op, p in frames if op == 0x1]
        vip = [m for m in texts if m.get("type") == "vip"]
        # What arrived before the cut arrived whole and in order: nothing was dropped
        # silently in the middle.
        assert [m["offset"] for m in vip] == list(
            range(vip[0]["offset"], vip[0]["offset"] + len(vip))
        )
        # The daemon and other users are fine.
        assert httpx.get(d.url("/health")).status_code == 200
    finally:
        d.stop()
