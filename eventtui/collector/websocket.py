"""The websocket listener: frames in, `{"error"}` and `{"ack": N}` out (DESIGN.md, "Wire protocol").

Each connection has a reader (receive a frame, decode it, hand it to `Ingest`) and an acker (after
each commit, send the errors of the committed frames, then one ack covering all of them). Acks are
coalesced per commit: a busy connection gets one ack per transaction, not one per frame.

Memory per connection is bounded: websockets buffers at most `max_queue` frames of at most
`max_message_bytes`; a client that stops reading its acks stops being read once it has
`MAX_UNACKED_FRAMES` frames (or `MAX_PENDING_ERRORS` errors) waiting, so TCP pushes back on it.

May import: websockets, model, config, collector.ingest, collector.security.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event

from eventtui.collector.ingest import Ingest
from eventtui.collector.security import check_host, check_origin, check_single, check_token
from eventtui.config import CollectorConfig
from eventtui.store import Commit, Reject, Submission

log = logging.getLogger(__name__)

MAX_UNACKED_FRAMES: Final = 10_000
MAX_PENDING_ERRORS: Final = 10_000
# Frames buffered inside websockets per connection (each at most max_message_bytes).
MAX_QUEUED_FRAMES: Final = 4

_encode = msgspec.json.Encoder().encode


class _Connection(ServerConnection):
    """Remembers whether each message began as a text or a binary frame.

    Text frames are read as bytes (`recv(decode=False)`) so that invalid UTF-8 is refused as one
    bad frame with an error reply, instead of websockets failing the whole connection with 1007.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.message_is_text: deque[bool] = deque()

    def process_event(self, event: Event) -> None:
        if isinstance(event, Frame) and event.opcode in (Opcode.TEXT, Opcode.BINARY):
            self.message_is_text.append(event.opcode is Opcode.TEXT)
        super().process_event(event)


@dataclass(eq=False)
class _Client:
    ws: _Connection
    name: str
    frames: int = 0  # frames received so far; frame numbers are 1..frames
    committed: int = 0
    acked: int = 0
    failed: str | None = None
    errors: deque[tuple[int, bytes]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def on_commit(self, frame_no: int, commit: Commit) -> None:
        if commit.error:
            self.failed = commit.error
        else:
            self.committed = max(self.committed, frame_no)
        self.wake.set()
        self.progress.set()


class WebsocketListener:
    def __init__(self, ingest: Ingest, config: CollectorConfig) -> None:
        self.ingest = ingest
        self.config = config
        self.clients: set[_Client] = set()
        self.server: Server | None = None
        self._stopping = False
        self._readers: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> int:
        """Bind and listen; returns the bound port. Raises OSError if the port is taken."""
        self.server = await serve(
            self._handle,
            host,
            port,
            process_request=self._admit,
            create_connection=_Connection,
            max_size=self.config.max_message_bytes,
            max_queue=MAX_QUEUED_FRAMES,
            # permessage-deflate halves the message rate (measured); a local collector has
            # bandwidth to spare, so it is declined even when a browser offers it.
            compression=None,
            server_header=None,
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, stop reading, commit what was read, send final acks, close (1001)."""
        self._stopping = True
        if self.server is None:
            return
        self.server.close(close_connections=False)
        for task in list(self._readers):
            task.cancel()
        await self.server.wait_closed()

    # --- handshake -------------------------------------------------------------------------------

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers
        refusal = check_single(headers.get_all("Host"), headers.get_all("Origin"))
        refusal = refusal or (
            check_host(headers.get("Host"), self.config)
            or check_origin(headers.get("Origin"), self.config)
            or check_token(request.path, headers.get("Authorization"), self.config)
        )
        if refusal:
            log.warning("refused websocket from %s: %s", connection.remote_address, refusal)
            return connection.respond(HTTPStatus.FORBIDDEN, refusal + "\n")
        if self._stopping:
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE, "collector is shutting down\n"
            )
        if len(self.clients) >= self.config.max_connections:
            return connection.respond(
                HTTPStatus.SERVICE_UNAVAILABLE,
                f"too many connections (the limit is {self.config.max_connections}; "
                "[collector] max_connections)\n",
            )
        return None

    # --- one connection --------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        assert isinstance(ws, _Connection)
        peer = ws.remote_address
        client = _Client(ws, f"ws:{peer[0]}:{peer[1]}" if peer else "ws")
        self.clients.add(client)
        acker = asyncio.create_task(self._ack_loop(client))
        reader = asyncio.create_task(self._read(client))
        self._readers.add(reader)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            # Everything read is submitted; wait for its commit so the last ack goes out.
            while client.committed < client.frames and client.failed is None:
                client.progress.clear()
                client.wake.set()
                await client.progress.wait()
            client.wake.set()
            await self._settle(client)
        finally:
            self._readers.discard(reader)
            acker.cancel()
            self.clients.discard(client)
            if self._stopping:
                await ws.close(1001, "collector shutting down")

    async def _settle(self, client: _Client) -> None:
        """Wait until the acker has sent everything committed (or the connection is gone)."""
        while client.acked < client.committed and client.ws.state.name == "OPEN":
            client.progress.clear()
            client.wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.progress.wait(), 5.0)

    async def _read(self, client: _Client) -> None:
        ws = client.ws
        ingest = self.ingest
        try:
            while True:
                data = await ws.recv(decode=False)
                is_text = ws.message_is_text.popleft()
                client.frames += 1
                frame_no = client.frames
                frame = ingest.decode(data, binary=not is_text, client=client.name)
                for refusal in frame.refusals:
                    message = {"error": refusal.reason, "frame": frame_no}
                    if refusal.index is not None:
                        message["index"] = refusal.index
                    client.errors.append((frame_no, _encode(message)))
                ingest.submit(
                    frame,
                    client=client.name,
                    on_commit=client.on_commit,
                    arg=frame_no,
                    latest_only=True,
                )
                # Backpressure: a client that does not read its acks is not read either.
                while (
                    client.frames - client.acked > MAX_UNACKED_FRAMES
                    or len(client.errors) > MAX_PENDING_ERRORS
                ):
                    client.progress.clear()
                    await client.progress.wait()
        except ConnectionClosed:
            sent = ws.protocol.close_sent
            if sent is not None and sent.code == 1009:
                self._record_oversize(client)

    def _record_oversize(self, client: _Client) -> None:
        limit = self.config.max_message_bytes
        reason = f"frame over the {limit:,}-byte limit; connection closed with 1009"
        log.warning("%s: %s", client.name, reason)
        self.ingest.writer.submit(Submission([], [Reject(time.time(), client.name, reason, b"")]))

    async def _ack_loop(self, client: _Client) -> None:
        ws = client.ws
        try:
            while True:
                await client.wake.wait()
                client.wake.clear()
                upto = client.committed
                while client.errors and client.errors[0][0] <= upto:
                    await ws.send(client.errors.popleft()[1], text=True)
                if upto > client.acked:
                    await ws.send(b'{"ack":%d}' % upto, text=True)
                    client.acked = upto
                if client.failed:
                    await ws.send(
                        _encode({"error": client.failed, "frame": client.frames}), text=True
                    )
                    await ws.close(1011, "store write failed")
                    return
                client.progress.set()
        except ConnectionClosed:
            client.progress.set()
