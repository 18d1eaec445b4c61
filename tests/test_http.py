"""HTTP ingestion against a real collector on port 0: real HTTP clients, Segment's own Python
library, and a real headless Chromium sending over WebSocket, fetch and sendBeacon."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import io
import json
import os
import shutil
import signal
import tracemalloc
import urllib.request
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from eventtui.collector import Collector
from eventtui.config import Config
from eventtui.store import EventRow, Reader
from tests.conftest import started_collector, until

# Every test here runs in one event loop, so that most can share one collector: starting one
# starts a writer process, and each test sees only its own rows anyway (`Listening`).
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Listening:
    """A collector as one test sees it: only the rows stored since the test began."""

    collector: Listening
    after_event: int = 0
    after_reject: int = 0

    @classmethod
    def from_now(cls, collector: Listening) -> Listening:
        with Reader(collector.db_path) as reader:
            newest = reader.rejects(limit=1)
            return cls(collector, reader.last_event_id(), newest[0]["id"] if newest else 0)

    @property
    def url(self) -> str:
        return self.collector.http_url or ""

    @property
    def port(self) -> int:
        return self.collector.http_port or 0

    def events(self) -> list[EventRow]:
        """What a separate viewer sees now: committed rows, through a fresh connection."""
        with Reader(self.collector.db_path) as reader:
            return reader.query("id > ?", [self.after_event])

    def rejects(self) -> list[dict[str, Any]]:
        with Reader(self.collector.db_path) as reader:
            return [r for r in reversed(reader.rejects(limit=1000)) if r["id"] > self.after_reject]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Collector]:
    c = await started_collector(tmp_path_factory.mktemp("http") / "events.db", http=True)
    yield c
    await c.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_with_token(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Collector]:
    c = await started_collector(
        tmp_path_factory.mktemp("http") / "events.db", http=True, token="s3cret"
    )
    yield c
    await c.stop()


@pytest.fixture
def collector(shared: Collector) -> Listening:
    return Listening.from_now(shared)


@pytest.fixture
def with_token(shared_with_token: Collector) -> Listening:
    return Listening.from_now(shared_with_token)


StartCollector = Callable[..., Awaitable[Listening]]


@pytest_asyncio.fixture(loop_scope="module")
async def start_collector(db: Path) -> AsyncIterator[StartCollector]:
    """A collector of the test's own, with custom [collector] settings (conftest's, plus HTTP)."""
    started: list[Collector] = []

    async def start(**collector_options: Any) -> Listening:
        started.append(await started_collector(db, http=True, **collector_options))
        return Listening(started[-1])

    yield start
    for c in started:
        await c.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: Any,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """POST bytes, text or a JSON-able object; the status and the decoded JSON answer."""
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    if isinstance(data, bytes) and len(data) > 1 << 20:
        data = io.BytesIO(data)  # aiohttp warns that a large bytes body could block the loop
    async with session.post(url, data=data, headers=headers or {}) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


# --- Segment-compatible endpoints -----------------------------------------------------------------

SEGMENT_CALLS = [
    ("track", {"event": "Signed Up", "userId": "u1", "properties": {"plan": "pro"}}, "Signed Up"),
    ("page", {"name": "Home", "anonymousId": "a1"}, "Home"),
    ("screen", {"name": "Main", "userId": "u1"}, "Main"),
    ("identify", {"userId": "u1", "traits": {"email": "a@b.c"}}, "identify"),
    ("group", {"userId": "u1", "groupId": "g1"}, "group"),
    ("alias", {"previousId": "a1", "userId": "u1"}, "alias"),
]


@pytest.mark.parametrize("short", [False, True], ids=["full path", "analytics.js short path"])
@pytest.mark.parametrize(("call", "body", "name"), SEGMENT_CALLS, ids=[c[0] for c in SEGMENT_CALLS])
async def test_each_segment_call_is_stored_with_the_type_of_its_path(
    collector: Listening,
    http: aiohttp.ClientSession,
    call: str,
    body: dict[str, Any],
    name: str,
    short: bool,
) -> None:
    # analytics.js posts text/plain (no CORS preflight) to /v1/t, /v1/p, ...
    headers = {"Content-Type": "text/plain" if short else "application/json"}

    status, answer = await post(
        http, f"{collector.url}/v1/{call[0] if short else call}", body, headers
    )

    assert (status, answer) == (200, {"ok": True, "accepted": 1, "refused": []})
    # Answered only after the commit: a viewer that opens the store now sees the row.
    [row] = collector.events()
    assert (row.type, row.name) == (call, name)
    assert row.client is not None and row.client.startswith("http:127.0.0.1:")


async def test_a_type_in_the_body_wins_over_the_path(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    status, _ = await post(http, f"{collector.url}/v1/track", {"type": "page", "name": "Pricing"})

    assert status == 200
    assert [(r.type, r.name) for r in collector.events()] == [("page", "Pricing")]


async def test_a_gzipped_segment_batch_with_a_write_key_is_stored(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    body = {
        "batch": [
            {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "m1"},
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}, "messageId": "m2"},
            {"type": "page", "name": "Checkout", "userId": "u1", "messageId": "m3"},
        ],
        "context": {"library": {"name": "analytics-python"}},
        "sentAt": "2025-01-01T00:00:00.000Z",
        "writeKey": "any-key",
    }
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "Authorization": "Basic " + base64.b64encode(b"any-key:").decode(),
    }

    status, answer = await post(
        http, f"{collector.url}/v1/b", gzip.compress(json.dumps(body).encode()), headers
    )

    assert (status, answer) == (200, {"ok": True, "accepted": 3, "refused": []})
    rows = collector.events()
    assert [(r.type, r.name, r.message_id) for r in rows] == [
        ("track", "Order Completed", "m1"),
        ("identify", "identify", "m2"),
        ("page", "Checkout", "m3"),
    ]
    # The batch's shared context reaches every event.
    assert all(json.loads(r.context)["library"]["name"] == "analytics-python" for r in rows)


# --- POST /events ---------------------------------------------------------------------------------

EVENTS_BODIES = [
    ("object", b'{"event": "a"}', "application/json", ["a"]),
    ("sendBeacon's text/plain", b'{"event": "a"}', "text/plain;charset=UTF-8", ["a"]),
    ("array", b'[{"event": "a"}, {"event": "b"}]', "application/json", ["a", "b"]),
    ("batch", b'{"batch": [{"event": "a"}]}', "application/json", ["a"]),
    ("ndjson type", b'{"event": "a"}\n{"event": "b"}', "application/x-ndjson", ["a", "b"]),
    ("jsonl type, one line", b'{"event": "a"}', "application/jsonl", ["a"]),
    ("lines, text/plain", b'{"event": "a"}\r\n\n{"event": "b"}\n', "text/plain", ["a", "b"]),
    (
        "pretty object",
        b'{\n  "event": "a",\n  "properties": {"x": 1}\n}\n',
        "application/json",
        ["a"],
    ),
    ("pretty array", b'[\n  {"event": "a"},\n  {"event": "b"}\n]', "application/json", ["a", "b"]),
]


@pytest.mark.parametrize(
    ("body", "content_type", "names"),
    [b[1:] for b in EVENTS_BODIES],
    ids=[b[0] for b in EVENTS_BODIES],
)
async def test_events_takes_an_object_an_array_or_json_lines(
    collector: Listening,
    http: aiohttp.ClientSession,
    body: bytes,
    content_type: str,
    names: list[str],
) -> None:
    status, answer = await post(
        http, f"{collector.url}/events", body, {"Content-Type": content_type}
    )

    assert (status, answer) == (200, {"ok": True, "accepted": len(names), "refused": []})
    assert [r.name for r in collector.events()] == names


async def test_refused_events_in_a_body_are_named_by_index_and_the_rest_stored(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    body = b'{"event": "a"}\n{"properties": {}}\n{"event": "c", "properties": []}\n{"event": "d"}\n'

    status, answer = await post(http, f"{collector.url}/events", body)

    assert status == 200
    assert answer["accepted"] == 2
    assert [
        (r["index"], "event" in r["error"], "properties" in r["error"]) for r in answer["refused"]
    ] == [
        (1, True, False),
        (2, False, True),
    ]
    assert [r.name for r in collector.events()] == ["a", "d"]
    assert len(collector.rejects()) == 2


BAD_BODIES = [
    ("malformed JSON", "/events", b'{"event": "a"', "not valid JSON"),
    ("NaN", "/events", b'{"event": "a", "properties": {"x": NaN}}', "not valid JSON"),
    ("no name", "/v1/track", b'{"userId": "u1"}', '"event") is missing'),
    ("name not a string", "/events", b'{"event": 42}', "must be a string"),
    (
        "properties not an object",
        "/v1/track",
        b'{"event": "a", "properties": "x"}',
        '"properties" must be an object',
    ),
    (
        "unknown type",
        "/v1/batch",
        b'{"batch": [{"type": "click", "event": "a"}]}',
        "type must be one of",
    ),
    ("not an object", "/events", b'"hello"', "not a string"),
    ("empty body", "/v1/track", b"", "the body is empty"),
    ("empty batch", "/v1/batch", b'{"batch": []}', "holds no events"),
    ("blank body", "/events", b" \n\n", "the body is empty"),
    ("bad gzip", "/v1/track", b"\x1f\x8b not really gzip", "not valid gzip"),
]


@pytest.mark.parametrize(
    ("path", "body", "problem"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
async def test_a_body_with_nothing_accepted_is_a_400_naming_the_problem_and_recorded(
    collector: Listening, http: aiohttp.ClientSession, path: str, body: bytes, problem: str
) -> None:
    headers = {"Content-Encoding": "gzip"} if body.startswith(b"\x1f\x8b") else {}

    status, answer = await post(http, f"{collector.url}{path}", body, headers)

    assert status == 400
    assert answer["ok"] is False
    assert problem in answer["error"]
    assert collector.events() == []
    [reject] = collector.rejects()
    assert problem in reject["reason"]
    assert reject["client"].startswith("http:127.0.0.1:")


async def test_all_refused_batch_says_how_many(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    status, answer = await post(http, f"{collector.url}/events", [{"x": 1}, {"event": ""}])

    assert status == 400
    assert answer["error"].startswith("all 2 events were refused; the first: ")
    assert [r["index"] for r in answer["refused"]] == [0, 1]
    assert len(collector.rejects()) == 2


async def test_an_unknown_content_encoding_is_refused(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    status, answer = await post(
        http, f"{collector.url}/events", b'{"event": "a"}', {"Content-Encoding": "br"}
    )

    assert status == 415
    assert "'br' is not supported" in answer["error"]


# --- size limits ----------------------------------------------------------------------------------


async def test_a_body_over_the_limit_is_413_and_recorded(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    c = await start_collector(max_message_bytes=10_000)
    body = json.dumps({"event": "big", "properties": {"blob": "x" * 20_000}})

    status, answer = await post(http, f"{c.url}/events", body)

    assert status == 413
    assert "10,000-byte limit" in answer["error"]
    assert c.events() == []
    assert "limit" in c.rejects()[0]["reason"]
    # The first 4 KiB are kept, as for every reject, though the body was refused by its length.
    assert c.rejects()[0]["raw"] == body.encode()[:4096]
    # The connection stays usable: aiohttp read and dropped the rest of the body.
    assert (await post(http, f"{c.url}/events", {"event": "small"}))[0] == 200


async def test_a_chunked_body_over_the_limit_keeps_its_first_4_kib(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    c = await start_collector(max_message_bytes=10_000)
    body = json.dumps({"event": "big", "properties": {"blob": "y" * 20_000}}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 3000):
            yield body[i : i + 3000]

    async with http.post(f"{c.url}/events", data=chunks()) as response:
        assert response.status == 413
    (reject,) = c.rejects()
    assert reject["raw"] == body[:4096]


def one_member_bomb() -> bytes:
    """128 MiB of zeros in one gzip member: ~0.6 MB on the wire."""
    deflate = zlib.compressobj(1, zlib.DEFLATED, 31)
    zeros = bytes(16 << 20)
    return b"".join(deflate.compress(zeros) for _ in range(8)) + deflate.flush()


def many_member_bomb() -> bytes:
    """About 1,500 concatenated gzip members of 1 MiB of zeros: ~1.5 GiB inflated."""
    member = gzip.compress(bytes(1 << 20))
    return member * (1_500_000 // len(member))


@pytest.mark.parametrize("make_bomb", [one_member_bomb, many_member_bomb])
async def test_a_gzip_bomb_stops_at_the_limit(
    start_collector: StartCollector, http: aiohttp.ClientSession, make_bomb: Callable[[], bytes]
) -> None:
    c = await start_collector(max_message_bytes=2_000_000)
    bomb = make_bomb()
    assert len(bomb) < 2_000_000

    already_tracing = tracemalloc.is_tracing()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        status, answer = await post(http, f"{c.url}/events", bomb, {"Content-Encoding": "gzip"})
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        if not already_tracing:
            tracemalloc.stop()

    assert status == 413
    assert answer["error"].startswith("decompressed body over the 2,000,000-byte limit")
    assert peak < 40_000_000, f"inflating the bomb peaked at {peak:,} bytes"
    [reject] = c.rejects()
    assert reject["raw"] == bytes(4096)  # a bounded copy of what it inflated to


# --- who may send ---------------------------------------------------------------------------------


async def test_a_foreign_origin_is_403_and_nothing_is_stored(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    status, answer = await post(
        http, f"{collector.url}/v1/track", {"event": "a"}, {"Origin": "https://evil.example"}
    )

    assert status == 403
    assert "allowed_origins" in answer["error"]
    assert collector.events() == []


async def test_an_allowed_origin_may_send(
    start_collector: StartCollector, http: aiohttp.ClientSession
) -> None:
    c = await start_collector(allowed_origins=("https://app.example",))
    async with http.post(
        f"{c.url}/events", json={"event": "a"}, headers={"Origin": "https://app.example"}
    ) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "https://app.example"
        assert response.headers["Vary"] == "Origin"


async def test_a_foreign_host_is_403(collector: Listening, http: aiohttp.ClientSession) -> None:
    # DNS rebinding: a foreign name resolving to 127.0.0.1 arrives with its own Host header.
    status, answer = await post(
        http,
        f"{collector.url}/events",
        {"event": "a"},
        {"Host": f"rebind.example:{collector.port}"},
    )

    assert status == 403
    assert "allowed_hosts" in answer["error"]
    assert collector.events() == []


async def test_two_origin_headers_are_403(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    headers = [("Origin", "http://localhost:3000"), ("Origin", "https://evil.example")]
    async with http.post(f"{collector.url}/events", json={"event": "a"}, headers=headers) as r:
        assert r.status == 403
        assert (await r.json())["error"] == "more than one Origin header"


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ("", {}, 403),
        ("", {"Authorization": "Bearer wrong"}, 403),
        ("", {"Authorization": "Bearer s3cret"}, 200),
        ("?token=s3cret", {}, 200),
        ("?token=nope", {}, 403),
        # A Segment SDK sends its write key as the Basic-auth user: the token can be the write key.
        ("", {"Authorization": "Basic " + base64.b64encode(b"s3cret:").decode()}, 200),
        ("", {"Authorization": "Basic " + base64.b64encode(b"other:").decode()}, 403),
        ("?token=s3cret", {"Authorization": "Basic " + base64.b64encode(b"other:").decode()}, 200),
    ],
)
async def test_a_configured_token_is_required(
    with_token: Listening,
    http: aiohttp.ClientSession,
    query: str,
    headers: dict[str, str],
    status: int,
) -> None:
    got, answer = await post(http, f"{with_token.url}/v1/track{query}", {"event": "a"}, headers)

    assert got == status, answer
    assert len(with_token.events()) == (1 if status == 200 else 0)
    if status == 403:
        assert "token" in answer["error"]


async def test_a_cors_preflight_from_a_local_page_is_answered(
    with_token: Listening, http: aiohttp.ClientSession
) -> None:
    origin = "http://localhost:3000"
    async with http.options(
        f"{with_token.url}/v1/batch",  # a preflight never carries the token
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    ) as response:
        assert response.status == 204
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Vary"] == "Origin"
        assert response.headers["Access-Control-Allow-Methods"] == "POST, GET, OPTIONS"
        allowed = {
            h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert {"content-type", "authorization"} <= allowed


async def test_a_cors_preflight_from_a_foreign_page_is_403(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    async with http.options(
        f"{collector.url}/events",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    ) as response:
        assert response.status == 403
        assert "Access-Control-Allow-Origin" not in response.headers


# --- other routes, health, shutdown ---------------------------------------------------------------


async def test_health_is_json_from_the_collector(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    async def health() -> dict[str, Any]:
        async with http.get(f"{collector.url}/health") as response:
            assert response.status == 200
            assert response.content_type == "application/json"
            return dict(await response.json())

    before = await health()
    await post(http, f"{collector.url}/events", [{"event": "a"}, {"event": "b"}])
    after = await health()

    assert after["status"] == "ok"
    assert after["session"] == collector.collector.session_id
    assert after["events"] == before["events"] + 2
    assert (after["http"], after["websocket"]) == (collector.url, collector.collector.ws_url)


async def test_unknown_routes_and_methods_are_json_errors(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    status, answer = await post(http, f"{collector.url}/v2/track", {"event": "a"})
    assert status == 404
    assert "/v1/{track" in answer["error"]

    async with http.get(f"{collector.url}/events") as response:
        assert response.status == 405
        assert "POST" in response.headers["Allow"]
        assert (await response.json())["error"] == "GET is not allowed on /events"


async def test_many_concurrent_posts_each_answered_after_their_commit(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    async def send(i: int) -> None:
        status, _ = await post(
            http, f"{collector.url}/v1/track", {"event": "e", "messageId": f"concurrent-{i}"}
        )
        assert status == 200
        with Reader(collector.collector.db_path) as reader:
            assert reader.query("message_id = ?", [f"concurrent-{i}"]), (
                f"{i} answered before its commit"
            )

    await asyncio.gather(*(send(i) for i in range(40)))
    assert len(collector.events()) == 40


async def open_request(port: int, body: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A POST /events whose handler is running and waiting for `body`, which is not yet sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    # The 100 Continue comes from the handler's side: it is running and reading the body.
    assert (await reader.readline()).startswith(b"HTTP/1.1 100")
    await reader.readline()
    return reader, writer


async def test_stop_lets_a_request_in_flight_finish_with_its_commit(db: Path) -> None:
    collector = Listening(await started_collector(db, http=True))
    body = b'{"event": "in flight"}'
    reader, writer = await open_request(collector.port, body)

    stopping = asyncio.create_task(collector.collector.stop())
    writer.write(body)
    status_line = await asyncio.wait_for(reader.readline(), 5)
    await stopping
    writer.close()
    await writer.wait_closed()

    assert status_line.startswith(b"HTTP/1.1 200")
    assert [r.name for r in collector.events()] == ["in flight"]
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", collector.port)


async def test_a_taken_port_raises_oserror(collector: Listening, tmp_path: Path) -> None:
    other = Collector(Config(), tmp_path / "other.db")
    with pytest.raises(OSError, match="already in use"):
        await other.start(port=0, http_port=collector.port)


# --- Segment's own Python library -----------------------------------------------------------------


def _segment_sends(host: str) -> list[Exception]:
    from segment.analytics import Client

    errors: list[Exception] = []

    def on_error(error: Exception, _items: Any) -> None:
        errors.append(error)

    # sync_mode posts each call at once and raises on a non-2xx answer.
    client = Client("any-write-key", host=host, sync_mode=True, on_error=on_error)
    client.track("u1", "Order Completed", {"revenue": 42})
    client.identify("u1", {"email": "u1@example.com"})
    client.page("u1", "Docs", "Install")
    client.screen("u1", "App", "Home")
    client.group("u1", "g1", {"name": "Acme"})
    client.alias("anon-1", "u1")
    # The default (queued) mode: a consumer thread posts gzipped /v1/batch bodies of events.
    batching = Client(
        "any-write-key", host=host, gzip=True, on_error=on_error, upload_size=5, upload_interval=0.1
    )
    for i in range(5):
        batching.track("u2", "Batched", {"i": i})
    batching.shutdown()
    return errors


async def test_segment_python_library_calls_are_stored_with_their_types(
    collector: Listening,
) -> None:
    errors = await asyncio.to_thread(_segment_sends, collector.url)

    assert errors == []
    rows = collector.events()
    assert [(r.type, r.name, r.user_id) for r in rows] == [
        ("track", "Order Completed", "u1"),
        ("identify", "identify", "u1"),
        ("page", "Install", "u1"),
        ("screen", "Home", "u1"),
        ("group", "group", "u1"),
        ("alias", "alias", "u1"),
        *[("track", "Batched", "u2")] * 5,
    ]
    assert json.loads(rows[0].properties) == {"revenue": 42}
    assert all(json.loads(r.context)["library"]["name"] == "analytics-python" for r in rows)
    assert sorted(json.loads(r.properties)["i"] for r in rows[6:]) == list(range(5))


async def test_the_readme_python_snippet_works_as_written(collector: Listening) -> None:
    await asyncio.to_thread(_readme_snippet, collector.url)

    assert [(r.type, r.name) for r in collector.events()] == [("track", "Signed Up")]


def _readme_snippet(host: str) -> None:
    """Runs the README's analytics-python block itself, pointed at this test's collector."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("**analytics-python**\n```python\n", 1)[1].split("```", 1)[0]
    assert 'analytics.host = "http://127.0.0.1:8766"' in block
    code = block.replace('"http://127.0.0.1:8766"', repr(host))
    namespace: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), namespace)
    import segment.analytics as analytics

    analytics.shutdown()
    analytics.default_client = None


# --- a real browser -------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>eventtui browser test</title>
<script>
const params = new URLSearchParams(location.search);
const wsUrl = params.get("ws"), httpUrl = params.get("http");
const say = (m) => console.log("eventtui-test: " + m);

async function main() {
  const ws = new WebSocket(wsUrl);
  await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("websocket failed")); });
  const acked = new Promise((ok) => { ws.onmessage = (m) => { if (JSON.parse(m.data).ack) ok(); }; });
  ws.send(JSON.stringify({event: "browser_ws", properties: {via: "websocket"}}));
  await acked;

  // application/json makes this a CORS request with a preflight; reading the answer needs
  // Access-Control-Allow-Origin on it.
  const response = await fetch(httpUrl + "/events", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({event: "browser_fetch", properties: {via: "fetch"}}),
  });
  const answer = await response.json();
  say("fetch answered " + response.status + " " + JSON.stringify(answer));

  // sendBeacon posts text/plain and cannot set headers.
  const queued = navigator.sendBeacon(
    httpUrl + "/v1/track",
    JSON.stringify({event: "browser_beacon", properties: {fetch_status: response.status, fetch_accepted: answer.accepted}}),
  );
  say("beacon queued: " + queued);
}
main().catch((e) => say("failed: " + e));
</script>
"""


async def _serve_page() -> tuple[web.AppRunner, int]:
    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_a_browser_sends_over_websocket_fetch_and_beacon(
    collector: Listening, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    site, port = await _serve_page()
    # localhost vs 127.0.0.1: the page is cross-origin to the collector, as a dev server would be.
    url = f"http://localhost:{port}/?ws={collector.collector.ws_url}&http={collector.url}"
    log_path = tmp_path / "chromium.log"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    with log_path.open("wb") as log:
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM, *flags, url, stdout=log, stderr=log, start_new_session=True
        )
    try:
        names = {"browser_ws", "browser_fetch", "browser_beacon"}
        try:
            await until(
                lambda: (
                    browser.returncode is not None or {r.name for r in collector.events()} >= names
                ),
                timeout=30,
                what="the browser's three events",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_console(log_path)}") from None
        rows = {r.name: r for r in collector.events()}
        assert set(rows) == names, _console(log_path)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(browser.wait(), 10)
        except TimeoutError:
            os.killpg(browser.pid, signal.SIGKILL)
            await browser.wait()
        await site.cleanup()

    assert rows["browser_ws"].client is not None and rows["browser_ws"].client.startswith("ws:")
    assert rows["browser_fetch"].client is not None and rows["browser_fetch"].client.startswith(
        "http:"
    )
    # The page could read the fetch answer (CORS works) and told us what it said.
    assert json.loads(rows["browser_beacon"].properties) == {
        "fetch_status": 200,
        "fetch_accepted": 1,
    }
    assert rows["browser_beacon"].type == "track"


def _console(log_path: Path) -> str:
    lines = log_path.read_text(errors="replace").splitlines()
    return "chromium console:\n" + "\n".join(line for line in lines if ":CONSOLE" in line)


# --- a plain blocking client, as a script would send ----------------------------------------------


async def test_urllib_in_a_thread_gets_the_answer(collector: Listening) -> None:
    def send() -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{collector.url}/events",
            data=b'{"event": "from urllib"}',
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)

    assert await asyncio.to_thread(send) == (200, {"ok": True, "accepted": 1, "refused": []})
    assert [r.name for r in collector.events()] == ["from urllib"]
