"""The HTTP listener: Segment-compatible endpoints for existing SDKs (DESIGN.md, "HTTP ingestion").

Owns the HTTP side of the collector: routes, body limits (including gzip), CORS for allowed
origins, and turning each body into one `Ingest` frame whose commit it waits for before answering.
It shares the websocket path's checks (`security`) and its one ingest path, so an event sent over
HTTP is decoded, refused and stored exactly as one sent over a websocket.

| route | body |
|---|---|
| `POST /v1/{track,page,identify,screen,group,alias}` | one Segment call; `type` from the path if absent |
| `POST /v1/{t,p,i,s,g,a}` | the same: analytics.js (analytics-next) posts to these short paths |
| `POST /v1/batch`, `/v1/b` | `{"batch": [...]}` |
| `POST /events` | an event object, an array of them, or JSON Lines |
| `GET /health` | — (answers the collector's health as JSON) |

Every answer is JSON: `{"ok": true, "accepted": N, "refused": [{"error", "index"}]}` after the
commit; 400 when nothing was accepted, 403 for a foreign Host or Origin or a wrong token, 413 over
`max_message_bytes` (before or after gzip), 503 past `max_connections` requests in flight,
404/405 for other routes.

May import: aiohttp, msgspec, model, config, collector.ingest, collector.security.
"""

from __future__ import annotations

import base64
import binascii
import logging
import zlib
from typing import Any, Final, Protocol

import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from eventtui.collector.ingest import Ingest
from eventtui.collector.security import check_host, check_origin, check_single, check_token
from eventtui.config import CollectorConfig
from eventtui.model import RAW_COPY_BYTES, DecodedFrame, Refusal

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

_CORS_HEADERS: Final = {
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
    # Content-Encoding lets a page gzip its body with CompressionStream.
    "Access-Control-Allow-Headers": "Content-Type, Authorization, Content-Encoding",
    "Access-Control-Max-Age": "600",
}
_ROUTES_HELP: Final = (
    "POST /v1/{track,page,identify,screen,group,alias,batch} (or their first letter),"
    " POST /events, GET /health"
)

_decode: Final = msgspec.json.Decoder().decode
_encode: Final = msgspec.json.Encoder().encode


class HealthSource(Protocol):
    def health(self) -> dict[str, Any]: ...


class _BodyRefused(Exception):
    """A body refused before decoding: over the size limit, bad gzip, unknown encoding."""

    def __init__(self, status: int, reason: str, raw: bytes = b"") -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.raw = raw


class HttpListener:
    def __init__(self, ingest: Ingest, config: CollectorConfig, collector: HealthSource) -> None:
        self.ingest = ingest
        self.config = config
        self.collector = collector
        self._runner: web.AppRunner | None = None
        # Requests being handled: each may hold a body of up to max_message_bytes (twice, inflated).
        self.in_flight = 0

    async def start(self, host: str, port: int) -> int:
        """Bind and listen; returns the bound port. Raises OSError if the port is taken."""
        app = web.Application(
            client_max_size=self.config.max_message_bytes, middlewares=[self._guard()]
        )
        calls = "|".join(_CALL_TYPES)
        for path, method, handler in (
            (f"/v1/{{call:(?:{calls})}}", "POST", self._segment),
            ("/events", "POST", self._events),
            ("/health", "GET", self._health),
        ):
            app.router.add_route(method, path, handler)
            app.router.add_route("OPTIONS", path, _preflight)
        # Bodies are inflated here, with a cap, rather than by aiohttp (see `_inflate`).
        runner = web.AppRunner(
            app, auto_decompress=False, access_log=None, shutdown_timeout=SHUTDOWN_SECONDS
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
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- admission, CORS, JSON errors for every route ----------------------------------------------

    def _guard(self) -> Middleware:
        config = self.config
        busy = (
            f"too many requests in flight (the limit is {config.max_connections}; "
            "[collector] max_connections); retry shortly"
        )

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            headers = request.headers
            origin = headers.get("Origin")
            refusal = (
                check_single(headers.getall("Host", []), headers.getall("Origin", []))
                or check_host(headers.get("Host"), config)
                or check_origin(origin, config)
            )
            if not refusal and request.method != "OPTIONS":  # a preflight never carries the token
                refusal = _token_refusal(request, config)
            if refusal:
                log.warning("refused HTTP request from %s: %s", request.remote, refusal)
                return _error(403, refusal)
            if self.in_flight >= config.max_connections:
                return _error(503, busy, {"Retry-After": "1"})
            self.in_flight += 1
            response: web.StreamResponse
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                response = _route_error(request, exc)
            finally:
                self.in_flight -= 1
            if origin is not None:
                response.headers["Access-Control-Allow-Origin"] = origin
                response.headers["Vary"] = "Origin"
            return response

        return guard

    # --- routes --------------------------------------------------------------------------------------

    async def _segment(self, request: web.Request) -> web.Response:
        call = _CALL_TYPES[request.match_info["call"]]
        return await self._ingest_body(request, default_type=None if call == "batch" else call)

    async def _events(self, request: web.Request) -> web.Response:
        return await self._ingest_body(request, lines=None)

    async def _health(self, request: web.Request) -> web.Response:
        return _json(200, self.collector.health())

    async def _ingest_body(
        self, request: web.Request, *, default_type: str | None = None, lines: bool | None = False
    ) -> web.Response:
        """Decode the body as one frame, wait for its commit, answer with what was accepted.

        `lines=None` means: JSON Lines if the content type says so or the body looks like it.
        """
        client = _client_name(request)
        try:
            body = await self._read_body(request)
        except _BodyRefused as exc:
            # Recorded like any refused input, and answered only once the reject is committed.
            await self.ingest.store(
                DecodedFrame([], [Refusal(exc.reason, None, exc.raw)]), client=client
            )
            return _error(exc.status, exc.reason)
        if not body or body.isspace():
            frame = DecodedFrame([], [Refusal("the body is empty", None, b"")])
        else:
            if lines is None:
                lines = request.content_type in JSON_LINES_TYPES or _looks_like_json_lines(body)
            if default_type is not None:
                body = _with_default_type(body, default_type)
            frame = self.ingest.decode(body, binary=False, client=client, lines=lines)
            if not frame.events and not frame.refusals:
                frame.refusals.append(
                    Refusal("the body holds no events", None, body[:RAW_COPY_BYTES])
                )
        commit = await self.ingest.store(frame, client=client)
        if commit.error:
            return _error(500, commit.error)  # nothing was stored: SDKs retry a 5xx
        refused = [
            {"error": r.reason} if r.index is None else {"error": r.reason, "index": r.index}
            for r in frame.refusals
        ]
        if not frame.events:
            first = frame.refusals[0].reason
            problem = (
                first
                if len(refused) == 1
                else f"all {len(refused)} events were refused; the first: {first}"
            )
            return _json(400, {"ok": False, "error": problem, "accepted": 0, "refused": refused})
        return _json(200, {"ok": True, "accepted": len(frame.events), "refused": refused})

    async def _read_body(self, request: web.Request) -> bytes:
        limit = self.config.max_message_bytes
        too_large = f"body over the {limit:,}-byte limit ([collector] max_message_bytes)"
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _BodyRefused(413, too_large) from None
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding in ("identity", ""):
            return body
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise _BodyRefused(
                415, f"Content-Encoding {encoding!r} is not supported; send gzip or no encoding"
            )
        out = _inflate(body, limit)
        if out is None:
            raise _BodyRefused(400, f"the body is not valid {encoding} data", body[:RAW_COPY_BYTES])
        if len(out) > limit:
            raise _BodyRefused(413, f"decompressed {too_large}", out[:RAW_COPY_BYTES])
        return out


async def _preflight(request: web.Request) -> web.Response:
    """CORS preflight; the guard has already checked Host and Origin, and adds Allow-Origin."""
    response = web.Response(status=204, headers=_CORS_HEADERS)
    # Chrome's Private Network Access asks before a public site may reach localhost.
    if request.headers.get("Access-Control-Request-Private-Network") == "true":
        response.headers["Access-Control-Allow-Private-Network"] = "true"
    return response


def _inflate(data: bytes, limit: int) -> bytes | None:
    """gzip or zlib data, inflated to at most `limit` + 1 bytes (a bomb stops there); None if bad.

    A result longer than `limit` means "too large". Concatenated gzip members are all read.
    """
    out = bytearray()
    try:
        while data:
            inflater = zlib.decompressobj(wbits=32 + zlib.MAX_WBITS)  # gzip or zlib header
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit:
                return bytes(out)
            if not inflater.eof:
                return None  # truncated
            data = inflater.unused_data
    except zlib.error:
        return None
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


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"ok": False, "error": message}, headers)


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_encode(obj), content_type="application/json", headers=headers
    )
