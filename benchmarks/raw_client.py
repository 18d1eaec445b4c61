"""A minimal RFC 6455 client whose frames are built (and masked) before the clock starts.

The websockets client tops out near 90-140k frames/s on these machines, on both sides of a
comparison, which hides a server's ceiling. This one writes pre-framed, pre-masked bytes straight
to the socket, so the server being measured is the bottleneck. It reads the server's frames only
to find the end: eventtui's cumulative `{"ack": N}` reaching the last frame, or the bare count
server's one reply to a final "done" frame.

Used by benchmarks/ingest.py (`raw_throughput`); runs in its own process, like the other load.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One final, masked client frame (RFC 6455 section 5.2)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes([0x80 | opcode, 0x80 | n])
    elif n < 1 << 16:
        header = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return header + mask + masked


def blob(messages: list[str]) -> bytes:
    return b"".join(frame(m.encode()) for m in messages)


async def _handshake(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {parts.path or '/'} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = await reader.readuntil(b"\r\n\r\n")
    if not response.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake refused: {response[:80]!r}")
    return reader, writer


async def _frames(reader: asyncio.StreamReader) -> Any:
    """The server's frames' payloads (servers do not mask)."""
    while True:
        head = await reader.readexactly(2)
        n = head[1] & 0x7F
        if n == 126:
            n = int.from_bytes(await reader.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(n)
        if head[0] & 0x0F == 0x8:
            raise RuntimeError(f"closed by the server: {payload[2:]!r}")
        yield head[0] & 0x0F, payload


async def _client(
    url: str, data: bytes, frames: int, bare: bool, connected: asyncio.Event, go: asyncio.Event
) -> None:
    reader, writer = await _handshake(url)
    connected.set()
    await go.wait()
    writer.write(data)
    if bare:
        writer.write(frame(b"done"))
    async for opcode, payload in _frames(reader):
        if opcode != 0x1:
            continue  # a ping or pong
        if bare:
            break  # the count server's one reply
        message = json.loads(payload)
        if "error" in message:
            raise RuntimeError(f"refused: {message}")
        if message.get("ack", 0) >= frames:
            break
    await writer.drain()
    writer.close()


def run(url: str, per_client: list[bytes], frames: list[int], bare: bool) -> float:
    """Seconds from the first byte sent to the last frame acknowledged (or counted)."""

    async def main() -> float:
        go = asyncio.Event()
        connected = [asyncio.Event() for _ in per_client]
        tasks = [
            asyncio.create_task(_client(url, data, n, bare, up, go))
            for data, n, up in zip(per_client, frames, connected, strict=True)
        ]
        await asyncio.gather(*(up.wait() for up in connected))  # every handshake done
        start = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        return time.perf_counter() - start

    return asyncio.run(main())
