"""Transport-level behaviour, seen from a raw socket: pings, slow consumers."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from typing import Any

import httpx

from tests.conftest import TICKER_PLUGINS, Daemon, Daemons


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
    """Every frame up to and including the server's close frame (or until the peer
    drops the connection); fails if neither comes within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    frames: list[tuple[int, bytes]] = []
    while not frames or frames[-1][0] != 0x8:
        left = deadline - time.monotonic()
        assert left > 0, f"no close frame within {timeout}s; got opcodes {[f[0] for f in frames]}"
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 16)
        except TimeoutError:
            continue
        if not chunk:
            break
        data += chunk
        parsed, data = parse_frames(data)
        frames += parsed
    return frames


def parse_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """The whole frames at the start of ``data``, and the bytes after them."""
    frames = []
    while len(data) >= 2:
        opcode, n = data[0] & 0x0F, data[1] & 0x7F
        i = {126: 4, 127: 10}.get(n, 2)
        if len(data) < i:
            break
        if n == 126:
            (n,) = struct.unpack("!H", data[2:4])
        elif n == 127:
            (n,) = struct.unpack("!Q", data[2:10])
        if len(data) < i + n:
            break
        frames.append((opcode, data[i : i + n]))
        data = data[i + n :]
    return frames, data


def read_until_text(sock: socket.socket, kind: str, timeout: float = 5) -> list[dict[str, Any]]:
    """The text messages read until one of ``type`` ``kind``, one byte at a time so that
    nothing after it is consumed."""
    deadline = time.monotonic() + timeout
    data = b""
    got: list[dict[str, Any]] = []
    while not got or got[-1].get("type") != kind:
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        byte = sock.recv(1)
        assert byte, f"closed before a {kind}; got {got}"
        data += byte
        parsed, data = parse_frames(data)
        got += [json.loads(payload) for opcode, payload in parsed if opcode == 0x1]
    return got


def close_code(frames: list[tuple[int, bytes]]) -> int | None:
    for opcode, payload in frames:
        if opcode == 0x8:
            return int(struct.unpack("!H", payload[:2])[0])
    return None


def test_a_client_that_never_answers_pings_is_dropped(make_daemon: Daemons) -> None:
    d = make_daemon(FXGATE_WS_PING_INTERVAL="0.3", FXGATE_WS_PING_TIMEOUT="0.3")
    sock = raw_connect(d, d.token("quiet"))
    # Within a second or two: a ping, no pong from us, then the server's close frame
    # (Tornado then waits for our close reply before dropping the TCP connection).
    frames = read_frames(sock, timeout=3)
    assert any(op == 0x9 for op, _ in frames), "the server pings"
    assert close_code(frames) == 1000, "and closes when no pong comes"
    assert b"ping timed out" in next(p for op, p in frames if op == 0x8)


def test_a_client_that_stops_reading_a_trading_channel_gets_4008(make_daemon: Daemons) -> None:
    d = make_daemon(FXGATE_WS_QUEUE_MAX_BYTES="65536", FXGATE_PLUGINS=TICKER_PLUGINS)
    slow = raw_connect(d, d.token("slowpoke"), rcvbuf=4096)
    send_text(slow, {"type": "subscribe", "channels": ["test-vip"]})
    read_until_text(slow, "subscription")
    with httpx.Client() as http:
        for i in range(400):  # ~16 MB of per-user events to a reader that sleeps
            http.post(d.url("/test/vip"), params={"user": "slowpoke", "text": f"{i:04d}" * 10000})
    frames = read_frames(slow, timeout=3)
    assert close_code(frames) == 4008
    texts = [json.loads(p) for op, p in frames if op == 0x1]
    vip = [m for m in texts if m.get("type") == "vip"]
    # What arrived before the cut arrived whole and in order: nothing was dropped
    # silently in the middle.
    assert [m["offset"] for m in vip] == list(range(vip[0]["offset"], vip[0]["offset"] + len(vip)))
    # The daemon and other users are fine.
    assert httpx.get(d.url("/health")).status_code == 200
