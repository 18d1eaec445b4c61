"""A websocket client that sends frames to a collector and waits for every ack.

Used by `eventtui send` and by `eventtui replay --to-url`. Frames are pipelined (up to `window`
unacknowledged) and every `{"error"}` reply is matched back to its frame.

May import: websockets, msgspec.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

_decode = msgspec.json.Decoder().decode


class SendError(Exception):
    """The collector could not be reached or closed the connection; the message says which."""


@dataclass
class SendResult:
    frames: int = 0
    acked: int = 0
    # (frame number, index inside the frame or None, reason)
    errors: list[tuple[int, int | None, str]] = field(default_factory=list)


def with_token(url: str, token: str | None) -> str:
    if not token:
        return url
    parts = urlsplit(url)
    query = (parts.query + "&" if parts.query else "") + urlencode({"token": token})
    return urlunsplit(parts._replace(query=query))


async def send_frames(
    url: str,
    frames: Iterable[bytes] | AsyncIterator[bytes],
    *,
    window: int = 1000,
    on_ack: Callable[[int], None] | None = None,
) -> SendResult:
    """Send each frame as a text message; return once every frame is acked (or refused)."""
    result = SendResult()
    try:
        ws = await connect(url, max_size=None, compression=None, open_timeout=10)
    except (OSError, TimeoutError) as exc:
        raise SendError(
            f"cannot connect to {url}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
    except InvalidStatus as exc:
        body = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
        raise SendError(
            f"{url} refused the connection: HTTP {exc.response.status_code} {body}"
        ) from None
    except (InvalidURI, InvalidHandshake) as exc:
        raise SendError(f"cannot connect to {url}: {exc}") from None
    async with ws:
        space = asyncio.Semaphore(window)
        done_sending = asyncio.Event()
        reader = asyncio.create_task(_read_acks(ws, result, space, done_sending, on_ack))
        try:
            if isinstance(frames, AsyncIterator):
                async for frame in frames:
                    await _send_one(ws, frame, result, space, reader)
            else:
                for frame in frames:
                    await _send_one(ws, frame, result, space, reader)
            done_sending.set()
            if result.acked < result.frames:
                await reader
        except ConnectionClosed as exc:
            raise SendError(_closed_reason(url, exc, result)) from None
        finally:
            reader.cancel()
    return result


async def _send_one(
    ws: ClientConnection,
    frame: bytes,
    result: SendResult,
    space: asyncio.Semaphore,
    reader: asyncio.Task[None],
) -> None:
    if reader.done():
        reader.result()  # re-raise the reader's ConnectionClosed
    await space.acquire()
    result.frames += 1
    await ws.send(frame, text=True)


async def _read_acks(
    ws: ClientConnection,
    result: SendResult,
    space: asyncio.Semaphore,
    done_sending: asyncio.Event,
    on_ack: Callable[[int], None] | None,
) -> None:
    async for message in ws:
        reply: Any = _decode(message)
        if "ack" in reply:
            newly = reply["ack"] - result.acked
            result.acked = reply["ack"]
            for _ in range(newly):
                space.release()
            if on_ack:
                on_ack(result.acked)
            if done_sending.is_set() and result.acked >= result.frames:
                return
        elif "error" in reply:
            result.errors.append((reply.get("frame", 0), reply.get("index"), reply["error"]))


def _closed_reason(url: str, exc: ConnectionClosed, result: SendResult) -> str:
    code = exc.rcvd.code if exc.rcvd else None
    why = exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else ""
    text = {1009: "a frame was over the collector's size limit"}.get(
        code or 0, why or "no reason given"
    )
    return (
        f"{url} closed the connection after {result.acked} of {result.frames} frames were acked "
        f"(code {code}: {text})"
    )
