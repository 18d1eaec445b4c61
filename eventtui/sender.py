"""A websocket client that sends frames to a collector and waits for every ack.

Used by `eventtui send` and by `eventtui replay --to-url`. Frames are pipelined (up to `window`
unacknowledged) and every `{"error"}` reply is matched back to its frame.

The peer is not trusted to follow the protocol: a reply that is not `{"ack": N}` (an integer, no
lower than the last ack, no higher than the frames sent) or `{"error": "...", "frame": K}` (K a
frame that was sent; an optional `index` of 0 or more) ends the run with `SendError`, as does a
reply over `MAX_REPLY_BYTES` or a connection closed before every frame was acknowledged. Unknown
keys beside those are allowed, as the wire protocol may grow. Text from the peer is passed on as
received: whoever prints it sanitises it.

May import: websockets, msgspec.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

# The collector's replies are a few hundred bytes; a bigger one is not a collector talking.
MAX_REPLY_BYTES: Final = 1024 * 1024


class _Reply(msgspec.Struct):
    ack: int | None = None
    error: str | None = None
    frame: int | None = None
    index: int | None = None


_decode_reply = msgspec.json.Decoder(_Reply).decode


class SendError(Exception):
    """The collector could not be reached, closed the connection or broke the protocol; the
    message says which."""


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


class _ProtocolError(Exception):
    """A reply outside the wire protocol."""


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
        ws = await connect(url, max_size=MAX_REPLY_BYTES, compression=None, open_timeout=10)
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
        # Set by the reader on every ack and when it ends: the sender waits on it for room.
        progress = asyncio.Event()
        done_sending = asyncio.Event()
        reader = asyncio.create_task(_read_replies(ws, result, progress, done_sending, on_ack))
        try:
            if isinstance(frames, AsyncIterator):
                async for frame in frames:
                    await _send_one(ws, frame, result, window, progress, reader)
            else:
                for frame in frames:
                    await _send_one(ws, frame, result, window, progress, reader)
            done_sending.set()
            if result.acked < result.frames:
                await reader
        except ConnectionClosed as exc:
            raise SendError(_closed_reason(url, exc, result)) from None
        except _ProtocolError as exc:
            await ws.close(1002, "protocol error")
            raise SendError(
                f"{url} broke the protocol: {exc}; {result.acked} of {result.frames} frames"
                " were acknowledged"
            ) from None
        finally:
            reader.cancel()
    return result


async def _send_one(
    ws: ClientConnection,
    frame: bytes,
    result: SendResult,
    window: int,
    progress: asyncio.Event,
    reader: asyncio.Task[None],
) -> None:
    while True:
        if reader.done():
            reader.result()  # its ConnectionClosed or _ProtocolError; or it ended early
            raise _ProtocolError("replies ended before every frame was sent")
        if result.frames - result.acked < window:
            break
        progress.clear()
        await progress.wait()
    result.frames += 1
    await ws.send(frame, text=True)


async def _read_replies(
    ws: ClientConnection,
    result: SendResult,
    progress: asyncio.Event,
    done_sending: asyncio.Event,
    on_ack: Callable[[int], None] | None,
) -> None:
    try:
        while True:
            # recv, not `async for`: a normal close must raise too, or unacked frames look sent.
            message = await ws.recv()
            if isinstance(message, bytes):
                raise _ProtocolError("a binary message")
            reply = _check(message, result)
            if reply.ack is not None:
                result.acked = reply.ack
                progress.set()
                if on_ack:
                    on_ack(result.acked)
                if done_sending.is_set() and result.acked >= result.frames:
                    return
            elif reply.error is not None and reply.frame is not None:
                result.errors.append((reply.frame, reply.index, reply.error))
    finally:
        progress.set()


def _check(message: str, result: SendResult) -> _Reply:
    """The reply, if it is one the protocol allows now; else _ProtocolError naming the problem."""
    try:
        reply = _decode_reply(message)
    except msgspec.ValidationError as exc:
        raise _ProtocolError(str(exc)) from None
    except msgspec.DecodeError:
        raise _ProtocolError("a reply that is not JSON") from None
    sent = "1 frame was sent" if result.frames == 1 else f"{result.frames} frames were sent"
    if reply.ack is not None:
        if reply.ack < result.acked:
            raise _ProtocolError(
                f"an ack for frame {_number(reply.ack)} after an ack for frame {result.acked}"
            )
        if reply.ack > result.frames:
            raise _ProtocolError(f"an ack for frame {_number(reply.ack)}, but {sent}")
    elif reply.error is not None:
        if reply.frame is None:
            raise _ProtocolError("an error that names no frame")
        if not 1 <= reply.frame <= result.frames:
            raise _ProtocolError(f"an error for frame {_number(reply.frame)}, but {sent}")
        if reply.index is not None and reply.index < 0:
            raise _ProtocolError(f"an error for index {_number(reply.index)}")
    else:
        raise _ProtocolError("a reply that is neither an ack nor an error")
    return reply


def _number(n: int) -> str:
    # msgspec reads integers of up to 4,300 digits: a line names such a number, not prints it.
    text = str(n)
    return text if len(text) <= 20 else f"({len(text.lstrip('-'))}-digit number)"


def _closed_reason(url: str, exc: ConnectionClosed, result: SendResult) -> str:
    if exc.sent is not None and exc.sent.code == 1009 and not exc.rcvd_then_sent:
        # We closed it: websockets refuses a message over max_size with 1009.
        text = f"a reply was over the {MAX_REPLY_BYTES // 2**20} MiB limit"
        code: int | None = 1009
    else:
        code = exc.rcvd.code if exc.rcvd else None
        why = exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else ""
        text = {1009: "a frame was over the collector's size limit"}.get(
            code or 0, why or "no reason given"
        )
    return (
        f"{url} closed the connection after {result.acked} of {result.frames} frames were acked "
        f"(code {code}: {text})"
    )
