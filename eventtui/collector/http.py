"""The HTTP listener: Segment-compatible endpoints for existing SDKs (README.md, "From an analytics SDK").

Owns the HTTP side of the collector: routes, body limits (including gzip), timeouts, CORS for
allowed origins, and turning each body into one `Ingest` frame whose commit it waits for before
answering. It shares the websocket path's checks (`security`) and its one ingest path, so an
event sent over HTTP is decoded, refused and stored exactly as one sent over a websocket.

| route | body |
|---|---|
| `POST /v1/{track,page,identify,screen,group,alias}` | one Segment call; `type` from the path if absent |
| `POST /v1/{t,p,i,s,g,a}` | the same: analytics.js (analytics-next) posts to these short paths |
| `POST /v1/batch`, `/v1/b` | `{"batch": [...]}` |
| `POST /events` | an event object, an array of them, or JSON Lines |
| `protocols.ROUTES` | PostHog, Snowplow, Amplitude, Mixpanel: each decoded by its module |
| `GET /health` | — (the collector's health as JSON; 503 while events cannot be stored) |
| `GET /api/{cursor,events,wait,summary}` | — (the test API, `collector.api`) |
| `GET /metrics` | — (Prometheus metrics: a route the collector's extensions add, `eventtui.oncall`) |

Every answer is JSON: `{"ok": true, "accepted": N, "refused": [{"error", "index"}]}` after the
commit; 400 when nothing was accepted, 403 for a foreign Host or Origin or a wrong token, 408 for
a body that does not arrive within `BODY_SECONDS`, 413 over `max_message_bytes` (before or after
gzip), 503 with `Retry-After` past `max_connections` requests in flight or while the writer is
too far behind, 404/405 for other routes.

What one client can take is bounded, so that no client can stall the others:
- time: a connection still sending its headers, or idle between requests, is closed after
  `IDLE_SECONDS`; a body must arrive within `BODY_SECONDS` of its headers.
- the event loop: large or compressed bodies are inflated and decoded in a worker thread, one at a
  time (inflating is linear, with at most `MAX_GZIP_MEMBERS` gzip members).
- memory: bodies held undecoded total at most `max_connections` x `max_message_bytes`; one large
  body is decoded at a time; and nothing is submitted while the writer's backlog is over
  `ingest.MAX_WRITER_BACKLOG` (a body waits up to `BACKLOG_WAIT_SECONDS` for it, then gets 503).
  A request counts as in flight (`max_connections`) only once its body is in: stalled bodies
  cannot lock the others out, and `/health` is never refused.
- the log: malformed, aborted and refused requests are one line each, `LOG_BURST` lines at most
  every `LOG_WINDOW_SECONDS` (then one line counting the rest); never a traceback.

May import: aiohttp, msgspec, model, protocols, config, collector.ingest, collector.security,
collector.api.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import re
import sys
import zlib
from collections.abc import AsyncIterator, Iterable
from typing import Any, Final, Protocol

import msgspec
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

from eventtui.collector.api import ApiStore, TestApi
from eventtui.collector.ingest import MAX_WRITER_BACKLOG, Ingest
from eventtui.collector.security import check_host, check_origin, check_single, check_token
from eventtui.config import CollectorConfig
from eventtui.model import RAW_COPY_BYTES, DecodedFrame, Refusal
from eventtui.protocols import CANNED, ROUTES, Request
from eventtui.protocols import Protocol as Vendor
from eventtui.store import Commit

log = logging.getLogger(__name__)

SEGMENT_CALLS: Final = ("track", "page", "identify", "screen", "group", "alias")
# The path names each call; analytics.js uses its first letter ("/v1/t"), server SDKs the whole word.
_CALL_TYPES: Final = {path: call for call in (*SEGMENT_CALLS, "batch") for path in (call, call[0])}
JSON_LINES_TYPES: Final = frozenset(
    {
        "application/x-ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
    }
)
# How long `stop` lets in-flight requests finish (their commit is usually milliseconds away).
SHUTDOWN_SECONDS: Final = 10.0
# A connection idle between requests, or still sending its request line and headers, is closed
# after this long (aiohttp's keep-alive timer also runs while headers trickle in): the order of
# the websocket listener's opening-handshake timeout. SDKs reopen an idle connection as needed.
IDLE_SECONDS: Final = 10.0
# A body must arrive within this long of its headers (a SDK batch is at most a few hundred KB: on a
# LAN that is milliseconds); a stalled or trickling body is answered 408 and its connection closed.
BODY_SECONDS: Final = 10.0
# How long a body refused by its Content-Length may take to give its first 4 KiB for `rejects`.
RAW_WAIT_SECONDS: Final = 1.0
# How long a body waits for the writer's backlog to drain (and for the decoder) before 503. The
# bound's 16 MB take the writer about half a second; SDKs time out after 10-15 s.
BACKLOG_WAIT_SECONDS: Final = 5.0
# Bodies (as received) larger than this, and every compressed one, are decoded in a worker thread.
# Measured: 290k small events (4 MB) take ~0.7 s to decode, all of it a stall in the event loop;
# in a thread the loop's worst stall is ~0.15 s (msgspec holds the GIL for one C call and garbage
# collection runs in whichever thread allocates). A small body decodes faster than a thread hop.
THREAD_DECODE_BYTES: Final = 64 * 1024
# Concatenated gzip members are legal and rare (one per writer of a stream); 4 MB of empty ones is
# 209,715 members, each costing a zlib stream setup.
MAX_GZIP_MEMBERS: Final = 1000
# Compressed input is fed to zlib this much at a time: at the end of a member zlib copies the rest
# of what it was given into `unused_data`, so feeding it the whole remaining body would copy the
# body once per member (quadratic: 4 MB of empty members took 32 s). A step bounds each copy.
_INFLATE_STEP: Final = 16 * 1024
# One line per malformed, aborted or refused request, at most LOG_BURST per window.
LOG_BURST: Final = 10
LOG_WINDOW_SECONDS: Final = 10.0

_CORS_HEADERS: Final = {
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    # Content-Encoding lets a page gzip its body with CompressionStream.
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding",
    "Access-Control-Max-Age": "600",
    # Snowplow's browser tracker sends with credentials (its own cookies); the origin has been
    # checked by then, and eventtui reads no cookie.
    "Access-Control-Allow-Credentials": "true",
}
_ROUTES_HELP: Final = (
    "POST /v1/{track,page,identify,screen,group,alias,batch} (or their first letter),"
    " POST /events, GET /health, GET /api/{cursor,events,wait,summary}; and the SDK endpoints of"
    " PostHog, Snowplow, Amplitude and Mixpanel (README.md)"
)
_RETRY: Final = {"Retry-After": "1"}
_IDENTITY: Final = ("identity", "")
_COMPRESSED: Final = ("gzip", "x-gzip", "deflate")

_decode: Final = msgspec.json.Decoder().decode
_encode: Final = msgspec.json.Encoder().encode


class HealthSource(Protocol):
    def health(self) -> dict[str, Any]: ...


async def _first_bytes(request: web.Request) -> bytes:
    """Up to RAW_COPY_BYTES of a body refused by its length, for `rejects.raw`: what was sent
    is kept for every refusal. Waits at most RAW_WAIT_SECONDS: a client that sends nothing more
    costs no longer than that."""
    head = bytearray()
    with contextlib.suppress(TimeoutError, OSError, HttpProcessingError):
        async with asyncio.timeout(RAW_WAIT_SECONDS):
            while len(head) < RAW_COPY_BYTES:
                chunk = await request.content.read(RAW_COPY_BYTES - len(head))
                if not chunk:
                    break
                head += chunk
    return bytes(head)


class _BodyRefused(Exception):
    """A body refused before decoding: too large, too slow, bad gzip, unknown encoding, busy.

    `record`: kept in `rejects` (a refusal of what the client sent, not a "retry later").
    `close`: close the connection after answering (what is left of the body will not come).
    """

    def __init__(
        self,
        status: int,
        reason: str,
        raw: bytes = b"",
        *,
        record: bool = True,
        close: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.raw = raw
        self.record = record
        self.close = close
        self.headers = headers


class _ClientGone(Exception):
    """The client closed the connection before its body was in: nobody is left to answer."""


class HttpListener:
    def __init__(
        self,
        ingest: Ingest,
        config: CollectorConfig,
        collector: HealthSource,
        routes: Iterable[tuple[str, Handler]] = (),
        api_store: ApiStore | None = None,
    ) -> None:
        """`api_store`: what the test API reads (default: the collector's store; with
        `--stream`, the stream mirrored, `api_stream.MirroredStore`)."""
        self.ingest = ingest
        self.api_store = api_store
        # GET routes of the collector's extensions (`GET /metrics`, eventtui.oncall).
        self.extra_routes = list(routes)
        self.config = config
        self.collector = collector
        self._runner: web.AppRunner | None = None
        # Requests whose body is in and not yet answered (`max_connections` caps them).
        self.in_flight = 0
        # Bytes of bodies received or being received and not yet decoded.
        self.held_bytes = 0
        # One large body is decoded at a time: decoding holds the GIL, so a second decoding
        # thread would not finish sooner, only hold a second decoded body in memory.
        self._decoder = asyncio.Lock()
        # Set while the writer's backlog is under its bound (`Ingest.congested` is False).
        self._drained = asyncio.Event()
        if not ingest.congested:
            self._drained.set()
        ingest.congestion_listeners.append(self._on_congestion)
        self._problems: _ProblemLog | None = None
        self.api = TestApi(api_store or ingest.writer, ingest.loop, config.max_connections)

    async def start(self, host: str, port: int) -> int:
        """Bind and listen; returns the bound port. Raises OSError if the port is taken."""
        app = web.Application(middlewares=[self._guard()])
        calls = "|".join(_CALL_TYPES)
        for path, method, handler in (
            (f"/v1/{{call:(?:{calls})}}", "POST", self._segment),
            ("/events", "POST", self._events),
            ("/health", "GET", self._health),
            *((path, "GET", handler) for path, handler in self.api.routes()),
            *((path, "GET", handler) for path, handler in self.extra_routes),
        ):
            app.router.add_route(method, path, handler)
            app.router.add_route("OPTIONS", path, _preflight)
        # The vendor SDKs' endpoints: one table, one handler (eventtui/protocols).
        for route in ROUTES:
            for method in route.methods:
                vendor = functools.partial(self._ingest_body, protocol=route.protocol)
                app.router.add_route(method, route.path, vendor)
            app.router.add_route("OPTIONS", route.path, _preflight)
        for path, content_type, answer in CANNED:
            canned = functools.partial(_canned, content_type, answer)
            for method in ("GET", "POST"):
                app.router.add_route(method, path, canned)
            app.router.add_route("OPTIONS", path, _preflight)
        self._problems = _ProblemLog(asyncio.get_running_loop())
        # Bodies are inflated here, with a cap, rather than by aiohttp (see `_inflate`).
        runner = web.AppRunner(
            app,
            auto_decompress=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_SECONDS,
            keepalive_timeout=IDLE_SECONDS,
            logger=_ServerLog(self._problems),
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        """Stop accepting; requests already in flight get their commit and their answer."""
        await self.api.close()  # open waits are answered now, not at their timeout
        close_store = getattr(self.api_store, "close", None)
        if close_store is not None:
            await asyncio.to_thread(close_store)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._problems is not None:
            self._problems.flush()

    def _on_congestion(self, congested: bool) -> None:
        if congested:
            self._drained.clear()
        else:
            self._drained.set()

    # --- admission, CORS, JSON errors for every route ----------------------------------------------

    def _guard(self) -> Middleware:
        config = self.config

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            headers = request.headers
            refusal = (
                check_single(headers.getall("Host", []), headers.getall("Origin", []))
                or check_host(headers.get("Host"), config)
                or check_origin(headers.get("Origin"), config)
            )
            if not refusal and request.method != "OPTIONS":  # a preflight never carries the token
                refusal = _token_refusal(request, config)
            if refusal:
                self._warn(
                    "refused HTTP request from %s: %s", _peer(_client_name(request)), refusal
                )
                return _error(403, refusal)
            response: web.StreamResponse
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = _route_error(request, exc)
            if not response.prepared:
                _allow_origin(request, response)
            return response

        return guard

    def _warn(self, message: str, *args: object) -> None:
        assert self._problems is not None
        self._problems.log(logging.WARNING, _one_line(message % args))

    # --- routes --------------------------------------------------------------------------------------

    async def _segment(self, request: web.Request) -> web.StreamResponse:
        call = _CALL_TYPES[request.match_info["call"]]
        return await self._ingest_body(
            request, default_type=None if call == "batch" else call, source="segment"
        )

    async def _events(self, request: web.Request) -> web.StreamResponse:
        return await self._ingest_body(request, lines=None)

    async def _health(self, request: web.Request) -> web.Response:
        health = self.collector.health()
        return _json(200 if health["status"] == "ok" else 503, health)

    async def _ingest_body(
        self,
        request: web.Request,
        *,
        default_type: str | None = None,
        lines: bool | None = False,
        source: str = "eventtui",
        protocol: Vendor | None = None,
    ) -> web.StreamResponse:
        """Receive the body, decode it as one frame, wait for its commit, answer what was accepted.

        `lines=None` means: JSON Lines if the content type says so or the body looks like it.
        `protocol`: a vendor SDK's request, decoded and answered by its module.
        """
        client = _client_name(request)
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        reply = None
        if protocol is not None:
            about = Request(request.method, request.path, request.query, request.content_type, b"")
            reply = functools.partial(protocol.reply, about)
        try:
            if encoding not in _IDENTITY + _COMPRESSED:
                raise _BodyRefused(
                    415, f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding"
                )
            body = await self._receive(request)
            if protocol is not None and encoding in _IDENTITY:
                encoding = protocol.encoding(request.query, body) or encoding
        except _BodyRefused as exc:
            return await self._refuse(request, client, exc, reply)
        except _ClientGone as exc:
            self._warn("HTTP request from %s aborted: %s", _peer(client), exc)
            return web.Response(status=400)  # nobody reads it; aiohttp drops it quietly
        if self.in_flight >= self.config.max_connections:
            self.held_bytes -= len(body)
            busy = (
                f"too many requests in flight (the limit is {self.config.max_connections}; "
                "[collector] max_connections); retry shortly"
            )
            return _error(503, busy, _RETRY)
        self.in_flight += 1
        held = len(body)
        large = held > THREAD_DECODE_BYTES or encoding in _COMPRESSED
        try:
            async with self._admitted(large):
                args = (body, client, encoding, request, default_type, lines, source, protocol)
                if large:
                    frame = await asyncio.to_thread(self._decode, *args)
                else:
                    frame = self._decode(*args)
                del body, args  # the raw body is not held while the commit is awaited
                self.held_bytes -= held
                held = 0
                accepted, refusals = len(frame.events), frame.refusals
                committed = self._submit(frame, client)
                # The writer has its own copy of the rows now: the decoded events are not held
                # while the commit is awaited (16 large bodies held that way took 1.3 GB).
                del frame
            return _answer(await committed, accepted, refusals, reply)
        except _BodyRefused as exc:
            return await self._refuse(request, client, exc, reply)
        finally:
            self.held_bytes -= held
            self.in_flight -= 1

    @contextlib.asynccontextmanager
    async def _admitted(self, large: bool) -> AsyncIterator[None]:
        """Wait until the writer's backlog is under its bound and, for a large body, the decoder
        is ours (until the body is submitted). Raises _BodyRefused (503) after
        BACKLOG_WAIT_SECONDS. Releasing the decoder only after the submission lets the next
        large body see the congestion that this one caused."""
        locked = False
        try:
            async with asyncio.timeout(BACKLOG_WAIT_SECONDS):
                if large:
                    await self._decoder.acquire()
                    locked = True
                await self._drained.wait()
        except TimeoutError:
            if locked:
                self._decoder.release()
            raise _BodyRefused(
                503,
                f"the store is behind (over {MAX_WRITER_BACKLOG // 2**20} MB waiting to be "
                "written, its backlog bound); retry shortly",
                record=False,
                headers=_RETRY,
            ) from None
        try:
            yield
        finally:
            if locked:
                self._decoder.release()

    def _submit(self, frame: DecodedFrame, client: str) -> asyncio.Future[Commit]:
        committed: asyncio.Future[Commit] = asyncio.get_running_loop().create_future()
        self.ingest.submit(frame, client=client, on_commit=_resolve, arg=committed)
        return committed

    async def _receive(self, request: web.Request) -> bytes:
        """The whole body, counted in `held_bytes` (the caller gives it back); raises
        _BodyRefused (too large, too slow, too much held at once) or _ClientGone."""
        limit = self.config.max_message_bytes
        too_large = f"body over the {limit:,}-byte limit ([collector] max_message_bytes)"
        expected = request.content_length
        if expected is not None and expected > limit:
            raise _BodyRefused(413, too_large, await _first_bytes(request))
        budget = self.config.max_connections * limit
        body = bytearray()
        received = False
        of = "" if expected is None else f" of {expected:,}"
        try:
            async with asyncio.timeout(BODY_SECONDS):
                while chunk := await request.content.readany():
                    body += chunk
                    self.held_bytes += len(chunk)
                    if len(body) > limit:
                        raise _BodyRefused(413, too_large, bytes(body[:RAW_COPY_BYTES]))
                    if self.held_bytes > budget:
                        raise _BodyRefused(
                            503,
                            f"bodies received and not yet stored exceed {budget:,} bytes "
                            "([collector] max_connections x max_message_bytes); retry shortly",
                            record=False,
                            headers=_RETRY,
                        )
            received = True
        except TimeoutError:
            raise _BodyRefused(
                408,
                f"the body did not arrive within {BODY_SECONDS:g} s ({len(body):,}{of} bytes)",
                bytes(body[:RAW_COPY_BYTES]),
                close=True,
            ) from None
        except ConnectionError:
            raise _ClientGone(f"the connection closed after {len(body):,}{of} body bytes") from None
        except (web.RequestPayloadError, HttpProcessingError) as exc:
            raise _BodyRefused(
                400,
                f"the body's HTTP framing is broken: {_one_line(_problem(exc))}",
                bytes(body[:RAW_COPY_BYTES]),
                close=True,
            ) from None
        finally:
            if not received:
                self.held_bytes -= len(body)
        return bytes(body)

    def _decode(
        self,
        body: bytes,
        client: str,
        encoding: str,
        request: web.Request,
        default_type: str | None,
        lines: bool | None,
        source: str,
        protocol: Vendor | None,
    ) -> DecodedFrame:
        """Inflate and decode one body (in a worker thread when it is large); raises _BodyRefused."""
        limit = self.config.max_message_bytes
        if encoding in _COMPRESSED:
            try:
                body = _inflate(body, limit)
            except ValueError as exc:
                detail = f": {exc}" if str(exc) else ""
                raise _BodyRefused(
                    400, f"the body is not valid {encoding} data{detail}", body[:RAW_COPY_BYTES]
                ) from None
            if len(body) > limit:
                too_large = f"body over the {limit:,}-byte limit ([collector] max_message_bytes)"
                raise _BodyRefused(413, f"decompressed {too_large}", body[:RAW_COPY_BYTES])
        content_type = request.content_type
        if protocol is not None:  # a GET's events are in its query: its module judges
            about = Request(request.method, request.path, request.query, content_type, body)
            return self.ingest.decode_request(protocol, about, client=client)
        if not body or body.isspace():
            return DecodedFrame([], [Refusal("the body is empty", None, b"")])
        if lines is None:
            lines = content_type in JSON_LINES_TYPES or _looks_like_json_lines(body)
        if default_type is not None:
            body = _with_default_type(body, default_type)
        frame = self.ingest.decode(body, binary=False, client=client, lines=lines, source=source)
        if not frame.events and not frame.refusals:
            frame.refusals.append(Refusal("the body holds no events", None, body[:RAW_COPY_BYTES]))
        return frame

    async def _refuse(
        self, request: web.Request, client: str, exc: _BodyRefused, reply: _Reply | None = None
    ) -> web.StreamResponse:
        if exc.record:
            # Recorded like any refused input, and answered only once the reject is committed.
            await self.ingest.store(
                DecodedFrame([], [Refusal(exc.reason, None, exc.raw)]), client=client
            )
        response = _error(exc.status, exc.reason, exc.headers, reply)
        if not exc.close:
            return response
        # The rest of the body is not coming: answer, then close at once (aiohttp would
        # otherwise keep reading the connection, for the body's rest, for another 10 s).
        self._warn("HTTP request from %s refused: %s", _peer(client), exc.reason)
        response.force_close()
        _allow_origin(request, response)
        await response.prepare(request)
        await response.write_eof()
        if request.transport is not None:
            request.transport.close()
        return response


# A vendor protocol's answer: (our JSON object, its status) -> the answer its SDK reads.
_Reply = functools.partial[Any]


def _answer(
    commit: Commit, accepted: int, refusals: list[Refusal], reply: _Reply | None = None
) -> web.Response:
    if commit.error:
        return _error(500, commit.error, None, reply)  # nothing was stored: SDKs retry a 5xx
    refused = [
        {"error": r.reason} if r.index is None else {"error": r.reason, "index": r.index}
        for r in refusals
    ]
    if not accepted:
        first = refusals[0].reason
        problem = (
            first
            if len(refused) == 1
            else f"all {len(refused)} events were refused; the first: {first}"
        )
        return _json(
            400, {"ok": False, "error": problem, "accepted": 0, "refused": refused}, None, reply
        )
    return _json(200, {"ok": True, "accepted": accepted, "refused": refused}, None, reply)


def _resolve(future: asyncio.Future[Commit], commit: Commit) -> None:
    if not future.done():  # a cancelled waiter (shutdown): the rows are stored anyway
        future.set_result(commit)


class _ProblemLog:
    """Warnings about requests that went wrong on the client's side: one line each, at most
    LOG_BURST per LOG_WINDOW_SECONDS, then one line counting the rest when the window ends, so
    that a flood of bad requests cannot flood the log (or the terminal the log goes to)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._window_ends = 0.0
        self._logged = 0
        self._dropped = 0
        self._summary: asyncio.TimerHandle | None = None

    def log(self, level: int, line: str, exc: BaseException | None = None) -> None:
        now = self._loop.time()
        if now >= self._window_ends:
            self.flush()
            self._window_ends = now + LOG_WINDOW_SECONDS
            self._logged = 0
        if self._logged < LOG_BURST:
            self._logged += 1
            log.log(level, "%s", line, exc_info=exc)
            return
        self._dropped += 1
        if self._summary is None:
            self._summary = self._loop.call_at(self._window_ends, self.flush)

    def flush(self) -> None:
        """Log the count of lines left out, if any."""
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        if self._dropped:
            log.warning(
                "... and %d more malformed, aborted or refused HTTP requests (%d lines at most"
                " every %g s)",
                self._dropped,
                LOG_BURST,
                LOG_WINDOW_SECONDS,
            )
            self._dropped = 0


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server log (a malformed request, a connection lost mid-request) as one line on
    our logger, rate-limited. A client's garbage is not our bug: no traceback for it. An exception
    of ours in a handler keeps its traceback (through the same rate limit)."""

    def __init__(self, problems: _ProblemLog) -> None:
        super().__init__(log)
        self._problems = problems

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc_info = kwargs.get("exc_info")
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if exc is None and exc_info:
            exc = sys.exc_info()[1]
        line = _one_line(str(msg) % args if args else str(msg))
        if level < logging.WARNING:  # aiohttp's debug notes (a first request that is not HTTP)
            if exc is not None:
                line = f"{line}: {_one_line(_problem(exc))}"
            self.logger.log(level, "%s", line)
        elif exc is None or isinstance(exc, HttpProcessingError | ConnectionError):
            detail = "" if exc is None else f": {_one_line(_problem(exc))}"
            self._problems.log(logging.WARNING, line + detail)
        else:
            self._problems.log(logging.ERROR, line, exc)


def _problem(exc: BaseException) -> str:
    message = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    return str(message) or type(exc).__name__


_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _one_line(text: str, limit: int = 300) -> str:
    """Whitespace collapsed, control characters escaped, at most `limit` characters: what a
    client sent may end up in a log line, and must not reach a terminal as control sequences."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


async def _preflight(request: web.Request) -> web.Response:
    """CORS preflight; the guard has already checked Host and Origin, and adds Allow-Origin."""
    response = web.Response(status=204, headers=_CORS_HEADERS)
    # Chrome's Private Network Access asks before a public site may reach localhost.
    if request.headers.get("Access-Control-Request-Private-Network") == "true":
        response.headers["Access-Control-Allow-Private-Network"] = "true"
    return response


def _inflate(data: bytes, limit: int) -> bytes:
    """gzip or zlib data, inflated to at most `limit` + 1 bytes (a bomb stops there).

    A result longer than `limit` means "too large". Concatenated gzip members are all read, up to
    MAX_GZIP_MEMBERS, in time linear in the input (see `_INFLATE_STEP`). Raises ValueError for
    data that is not gzip or zlib (its message, if any, says what is wrong).
    """
    view = memoryview(data)
    out = bytearray()
    at = 0
    members = 0
    try:
        while at < len(data):
            members += 1
            if members > MAX_GZIP_MEMBERS:
                raise ValueError(f"more than {MAX_GZIP_MEMBERS:,} gzip members")
            inflater = zlib.decompressobj(wbits=32 + zlib.MAX_WBITS)  # gzip or zlib header
            while not inflater.eof:
                if at >= len(data):
                    raise ValueError("it ends in the middle of a compressed stream")
                step = view[at : at + _INFLATE_STEP]
                out += inflater.decompress(step, limit + 1 - len(out))
                if len(out) > limit:
                    return bytes(out)
                at += len(step) - len(inflater.unused_data)
    except zlib.error:
        raise ValueError() from None
    return bytes(out)


def _looks_like_json_lines(body: bytes) -> bool:
    """Several lines, the first a whole JSON value: a pretty-printed document never passes that,
    since its first line alone is incomplete (or the document has trailing garbage anyway)."""
    first, newline, rest = body.strip().partition(b"\n")
    if not newline or not rest.strip():
        return False
    try:
        _decode(first)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return False
    return True


def _with_default_type(body: bytes, type_: str) -> bytes:
    """The body with `"type": type_` added to each event that lacks one (Segment's per-call routes).

    A body that does not decode is passed on unchanged, for `Ingest` to refuse with its reason.
    """
    try:
        doc = _decode(body)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return body
    events = doc if isinstance(doc, list) else [doc]
    missing = [e for e in events if isinstance(e, dict) and "type" not in e and "batch" not in e]
    for event in missing:
        event["type"] = type_
    return _encode(doc) if missing else body


def _token_refusal(request: web.Request, config: CollectorConfig) -> str | None:
    """`check_token`, also taking the token as a Basic-auth user name: how SDKs send a write key."""
    authorization = request.headers.get("Authorization")
    user = _basic_user(authorization)
    if user is None:
        return check_token(request.path_qs, authorization, config)
    if check_token(request.path_qs, None, config) is None:
        return None
    return check_token(request.path, f"Bearer {user}", config)


def _basic_user(authorization: str | None) -> str | None:
    if authorization is None or not authorization.lower().startswith("basic "):
        return None
    try:
        credentials = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return credentials.partition(":")[0]


def _peer(client: str) -> str:
    """ "http:127.0.0.1:5000" -> "127.0.0.1:5000", for log lines."""
    return client.removeprefix("http:")


def _allow_origin(request: web.Request, response: web.StreamResponse) -> None:
    """CORS: let the page that sent the request read the answer (the guard checked its Origin)."""
    origin = request.headers.get("Origin")
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"  # see _CORS_HEADERS
        response.headers["Vary"] = "Origin"


def _client_name(request: web.Request) -> str:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return f"http:{peer[0]}:{peer[1]}" if peer else "http"


def _route_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    if exc.status == 404:
        return _error(404, f"no endpoint at {request.path}; eventtui takes {_ROUTES_HELP}")
    if exc.status == 405:
        allow = {"Allow": exc.headers.get("Allow", "")}
        return _error(405, f"{request.method} is not allowed on {request.path}", allow)
    return _error(exc.status, exc.reason)


def _error(
    status: int,
    message: str,
    headers: dict[str, str] | None = None,
    reply: _Reply | None = None,
) -> web.Response:
    return _json(status, {"ok": False, "error": message}, headers, reply)


def _json(
    status: int, obj: Any, headers: dict[str, str] | None = None, reply: _Reply | None = None
) -> web.Response:
    if reply is not None:
        answer = reply(obj, status)
        return web.Response(
            status=answer.status,
            body=answer.body,
            content_type=answer.content_type,
            headers=headers,
        )
    return web.Response(
        status=status, body=_encode(obj), content_type="application/json", headers=headers
    )


async def _canned(content_type: str, answer: bytes, request: web.Request) -> web.Response:
    """An SDK's request that carries no events (PostHog's feature flags): a fixed answer."""
    return web.Response(body=answer, content_type=content_type)
