"""The websocket listener: frames in, `{"error"}` and `{"ack": N}` out (README.md, "Wire protocol").

Each complete message is decoded and handed to `Ingest` as websockets parses it, inside the
connection's `data_received` (see `_Connection`); an acker task per connection sends, after each
commit, the errors of the committed frames and then one ack covering all of them. Acks are
coalesced per commit: a busy connection gets one ack per transaction, not one per frame. An ack
covers only the frames committed without a gap: once a transaction holding some of a connection's
frames fails, its acks stop before them, it is told which frames were lost, and it is closed (1011).

Memory is bounded: a message is at most `max_message_bytes` (closed with 1009 otherwise); a client
that stops reading its acks stops being read once it has `MAX_UNACKED_FRAMES` frames (or
`MAX_PENDING_ERRORS` errors) waiting, so TCP pushes back on it; and no client is read while the
writer is more than `ingest.MAX_WRITER_BACKLOG` bytes behind. What is held meanwhile is the rest of
one read per connection (asyncio reads at most 256 KiB at a time).

May import: websockets, model, config, collector.frames, collector.ingest, collector.security.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final

import msgspec
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import Event, State

from eventtui.collector.frames import DirectFrames
from eventtui.collector.ingest import Ingest
from eventtui.collector.security import check_host, check_origin, check_single, check_token
from eventtui.config import CollectorConfig
from eventtui.store import Commit, Reject, Submission

log = logging.getLogger(__name__)

MAX_UNACKED_FRAMES: Final = 10_000
MAX_PENDING_ERRORS: Final = 10_000
# A fragmented message may have at most this many fragments (websockets' own default limit).
MAX_FRAGMENTS: Final = 4096

_encode = msgspec.json.Encoder().encode
# How the error names frames whose transaction failed: a writer that died may have committed them.
_LOST: Final = {False: "not stored", True: "not acknowledged (they may be stored; resend them)"}

# (message, is_text): called for each complete message, in order.
OnMessage = Callable[[bytes, bool], None]


class _Connection(ServerConnection):
    """Hands each complete message to a callback as soon as it is parsed: plain data frames by
    `DirectFrames` (collector/frames.py), fragments by websockets (`process_event`).

    websockets' own path queues every frame for a `recv()` coroutine; at one event per frame that
    queue, its flow control and the task switch cost as much as decoding the event (measured with
    benchmarks/ingest.py). Here `process_event` runs inside `data_received`, so every message of
    one TCP read is decoded and submitted in the same turn of the event loop, and goes to the
    writer as one batch. Text frames stay bytes, so invalid UTF-8 is refused as one bad frame
    instead of failing the connection with 1007.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_message: OnMessage | None = None
        self.on_too_big: Callable[[], None] | None = None
        self._too_big_seen = False
        self.reading_paused = False
        # Messages parsed but not handed over yet: before `attach` (the handshake may yield
        # after sending its response), or while paused (the rest of the read that paused us).
        self._held: deque[tuple[bytes, bool]] = deque()
        self._fragments: list[bytes] = []
        self._message_is_text = False
        self.failure: str | None = None  # why we closed the connection, when it was us
        # Plain data frames are read there, the rest by websockets (collector/frames.py).
        self.frames = DirectFrames(self.protocol, self._deliver, self._to_websockets)

    def attach(self, on_message: OnMessage, on_too_big: Callable[[], None]) -> None:
        """From now on, and for anything that arrived already, call `on_message`; call
        `on_too_big` once if the connection is closed with 1009 (a message over the limit)."""
        self.on_message = on_message
        self.on_too_big = on_too_big
        if self._too_big_seen:
            on_too_big()
        self.resume()

    def data_received(self, data: bytes) -> None:
        self.frames.receive(data)

    def _to_websockets(self, data: bytes) -> None:
        super().data_received(data)
        # websockets closes with 1009 while parsing; say so before the client can hear it, so
        # that the refusal is stored before anything the client sends next.
        sent = self.protocol.close_sent
        if sent is not None and sent.code == CloseCode.MESSAGE_TOO_BIG and not self._too_big_seen:
            self._too_big_seen = True
            if self.on_too_big is not None:
                self.on_too_big()

    def pause(self) -> None:
        """Stop reading: TCP pushes back on the client; what is parsed already is held."""
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """Hand over what was held (unless that pauses again), then read again."""
        self.reading_paused = False
        while self._held and not self.reading_paused:
            self._call(*self._held.popleft())
        if not self.reading_paused:
            self.transport.resume_reading()

    def release_held(self) -> None:
        """The connection is closed: hand over every complete message it sent, paused or not."""
        while self._held:
            self._call(*self._held.popleft())

    def process_event(self, event: Event) -> None:
        if not isinstance(event, Frame) or event.opcode not in _DATA:
            super().process_event(event)  # the handshake request, pings, pongs, close
            return
        if event.opcode is not Opcode.CONT:
            self._message_is_text = event.opcode is Opcode.TEXT
            if event.fin:
                self._deliver(bytes(event.data), self._message_is_text)
                return
            self._fragments = [bytes(event.data)]
            return
        self._fragments.append(bytes(event.data))
        if event.fin:
            data, self._fragments = b"".join(self._fragments), []
            self._deliver(data, self._message_is_text)
        elif len(self._fragments) > MAX_FRAGMENTS:
            # websockets has already checked the total size against max_size as it parsed.
            self._fragments = []
            self._fail(
                CloseCode.MESSAGE_TOO_BIG, f"a message in more than {MAX_FRAGMENTS:,} fragments"
            )

    def _deliver(self, data: bytes, is_text: bool) -> None:
        if self.failure:  # messages parsed in the same read as the one that failed us
            return
        if self.on_message is None or self.reading_paused or self._held:
            self._held.append((data, is_text))
            return
        self._call(data, is_text)

    def _call(self, data: bytes, is_text: bool) -> None:
        assert self.on_message is not None
        try:
            self.on_message(data, is_text)
        except Exception:  # our bug must not take data_received (and the event loop) down
            log.exception("handling a websocket message failed")
            self._fail(CloseCode.INTERNAL_ERROR, "internal error")

    def _fail(self, code: int, reason: str) -> None:
        self.failure = reason
        self.protocol.fail(code, reason)
        self.send_data()


_DATA: Final = frozenset((Opcode.TEXT, Opcode.BINARY, Opcode.CONT))


@dataclass(eq=False)
class _Client:
    ws: _Connection
    name: str
    frames: int = 0  # frames received and submitted so far; frame numbers are 1..frames
    # Frames 1..committed are committed: a contiguous prefix, which never passes a failed frame.
    committed: int = 0
    acked: int = 0
    # Once a transaction holding some of its frames failed: the reply naming them. Nothing after
    # the last frame before them is acknowledged from then on, and the connection is closed.
    lost: bytes | None = None
    errors: deque[tuple[int, bytes]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    def on_commit(self, frame_no: int, commit: Commit) -> None:
        """The transaction holding frames up to `frame_no` (those after the previous call's) is
        done. Transactions finish in the order their frames were submitted."""
        if commit.error:
            if self.lost is None:
                first = self.committed + 1
                last = max(frame_no, first)
                frames = f"frame {first}" if first == last else f"frames {first}..{last}"
                self.lost = _encode(
                    {
                        "error": f"{commit.error}; {frames} {_LOST[commit.unconfirmed]}",
                        "frame": first,
                        "last_frame": last,
                    }
                )
        elif self.lost is None:
            self.committed = frame_no
        self.wake.set()
        self.progress.set()

    def backlogged(self) -> bool:
        return (
            self.frames - self.acked > MAX_UNACKED_FRAMES or len(self.errors) > MAX_PENDING_ERRORS
        )


class WebsocketListener:
    def __init__(self, ingest: Ingest, config: CollectorConfig) -> None:
        self.ingest = ingest
        self.config = config
        self.clients: set[_Client] = set()
        self.server: Server | None = None
        self._stopping = False
        self._stopped = asyncio.Event()
        ingest.congestion_listeners.append(self._on_congestion)

    async def start(self, host: str, port: int) -> int:
        """Bind and listen; returns the bound port. Raises OSError if the port is taken."""
        self.server = await serve(
            self._handle,
            host,
            port,
            process_request=self._admit,
            create_connection=_Connection,
            max_size=self.config.max_message_bytes,
            # permessage-deflate halves the message rate (measured); a local collector has
            # bandwidth to spare, so it is declined even when a browser offers it.
            compression=None,
            server_header=None,
        )
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, stop reading, commit what was read, send final acks, close (1001)."""
        self._stopping = True
        self._stopped.set()
        if self.server is None:
            return
        self.server.close(close_connections=False)
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
        ws.attach(
            lambda data, is_text: self._on_message(client, data, is_text),
            lambda: self._record_oversize(client),
        )
        closed = asyncio.ensure_future(ws.wait_closed())
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait((closed, stopped), return_when=asyncio.FIRST_COMPLETED)
            if not self._stopping:
                ws.release_held()
            # Everything read is submitted; wait for its commit so the last ack goes out.
            while client.committed < client.frames and client.lost is None:
                client.progress.clear()
                client.wake.set()
                await client.progress.wait()
            client.wake.set()
            await self._settle(client)
        finally:
            closed.cancel()
            stopped.cancel()
            acker.cancel()
            self.clients.discard(client)
            if self._stopping:
                ws.resume()  # to read the close handshake (what else it reads is dropped)
                await ws.close(1001, "collector shutting down")

    def _on_message(self, client: _Client, data: bytes, is_text: bool) -> None:
        """Decode one message and queue its events; runs inside the connection's data_received."""
        if self._stopping or client.lost is not None:
            return  # never acknowledged, so the client knows to send it again
        frame = self.ingest.decode(data, binary=not is_text, client=client.name)
        frame_no = client.frames + 1
        self.ingest.submit(
            frame, client=client.name, on_commit=client.on_commit, arg=frame_no, latest_only=True
        )
        # Counted once submitted, never before: the handler (and `stop`) waits for the commit of
        # every counted frame, and a frame that never reached the writer would never commit.
        client.frames = frame_no
        for refusal in frame.refusals:
            message = {"error": refusal.reason, "frame": frame_no}
            if refusal.index is not None:
                message["index"] = refusal.index
            client.errors.append((frame_no, _encode(message)))
        # Backpressure: a client that does not read its acks is not read either, and no client is
        # read while the writer is behind.
        if client.backlogged() or self.ingest.congested:
            client.ws.pause()

    def _on_congestion(self, congested: bool) -> None:
        for client in self.clients:
            if congested:
                client.ws.pause()
            elif not client.backlogged():
                client.ws.resume()

    async def _settle(self, client: _Client) -> None:
        """Wait until the acker has sent everything committed (or the connection is gone)."""
        while client.acked < client.committed and client.ws.state is State.OPEN:
            client.progress.clear()
            client.wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.progress.wait(), 5.0)

    def _record_oversize(self, client: _Client) -> None:
        limit = self.config.max_message_bytes
        what = client.ws.failure or f"frame over the {limit:,}-byte limit"
        reason = f"{what}; connection closed with 1009"
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
                if client.lost is not None:
                    # After the ack of every frame before the lost ones, never one past them.
                    await ws.send(client.lost, text=True)
                    await ws.close(1011, "store write failed")
                    return
                if ws.reading_paused and not client.backlogged() and not self.ingest.congested:
                    ws.resume()
                client.progress.set()
        except ConnectionClosed:
            client.progress.set()
