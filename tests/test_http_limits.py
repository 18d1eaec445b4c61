"""The HTTP listener under abuse, against a real collector on port 0: gzip bombs, stalled bodies,
slow headers, a writer that falls behind, aborted and malformed requests (raw sockets where an
HTTP client would be too polite)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import io
import json
import logging
import sqlite3
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect

from eventtui.collector import http
from eventtui.collector.ingest import MAX_WRITER_BACKLOG
from eventtui.store import Reader
from tests.conftest import StartCollector, until


@pytest.fixture
def start_collector(start_collector: StartCollector) -> StartCollector:
    """conftest's, with the HTTP listener."""
    return functools.partial(start_collector, http=True)


async def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    # A stream: aiohttp warns that a large bytes body could block the loop.
    data = io.BytesIO(body) if len(body) > 1 << 20 else body
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=headers or {}) as response,
    ):
        return response.status, await response.json()


def names(db: Path) -> list[str]:
    with Reader(db) as reader:
        return [row.name for row in reader.query()]


def reject_reasons(db: Path) -> list[str]:
    with Reader(db) as reader:
        return [r["reason"] for r in reader.rejects(limit=1000)]


class LoopStalls:
    """The longest the event loop went without running a 5 ms timer; the collector runs in it."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, loop.time() - start - 0.005)

    def __enter__(self) -> LoopStalls:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()


@contextlib.contextmanager
def write_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the store's write lock: the writer's transactions wait for it
    (up to its 10 s busy timeout), so nothing commits until this ends."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def tiny_events(count: int) -> bytes:
    """The cheapest events to send and the dearest to decode and store: ~14 bytes each."""
    return b"[" + b",".join([b'{"event":"e"}'] * count) + b"]"


async def raw_request(port: int, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head)
    await writer.drain()
    return reader, writer


def stalled_post(body_sent: bytes, length: int) -> bytes:
    return (
        b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (length, body_sent)
    )


# --- one request cannot freeze the event loop -----------------------------------------------------


async def test_a_body_of_many_empty_gzip_members_is_refused_without_stalling(
    start_collector: StartCollector,
) -> None:
    c = await start_collector()
    bomb = gzip.compress(b"") * 52_428  # 1 MB: one empty member every 20 bytes

    with LoopStalls() as stalls:
        status, answer = await post(f"{c.http_url}/events", bomb, {"Content-Encoding": "gzip"})

    assert status == 400
    assert answer["error"] == "the body is not valid gzip data: more than 1,000 gzip members"
    assert stalls.worst < 0.3, f"the event loop stalled for {stalls.worst:.2f}s"
    assert "more than 1,000 gzip members" in reject_reasons(c.db_path)[0]


async def test_a_few_gzip_members_are_all_read(start_collector: StartCollector) -> None:
    c = await start_collector()
    members = [gzip.compress(json.dumps({"event": f"e{i}"}).encode() + b"\n") for i in range(3)]

    status, answer = await post(
        f"{c.http_url}/events",
        b"".join(members),
        {"Content-Encoding": "gzip", "Content-Type": "application/x-ndjson"},
    )

    assert (status, answer["accepted"]) == (200, 3)
    assert names(c.db_path) == ["e0", "e1", "e2"]


async def test_a_large_gzip_batch_is_decoded_without_stalling_the_loop(
    start_collector: StartCollector,
) -> None:
    c = await start_collector()
    body = gzip.compress(tiny_events(290_000))  # 4 MB inflated: about a second of decoding

    start = time.monotonic()
    with LoopStalls() as stalls:
        status, answer = await post(f"{c.http_url}/events", body, {"Content-Encoding": "gzip"})
    elapsed = time.monotonic() - start

    assert (status, answer["accepted"]) == (200, 290_000)
    # Decoded on the loop, the stall is nearly the whole request; in a thread it is the GIL's
    # share. Relative to the request's time, because a loaded machine stretches both.
    assert stalls.worst < max(0.5, 0.4 * elapsed), (
        f"the event loop stalled for {stalls.worst:.2f}s of {elapsed:.2f}s"
    )


# --- stalled bodies and slow headers cannot lock HTTP out -----------------------------------------


async def test_stalled_bodies_do_not_lock_out_other_requests_and_time_out(
    start_collector: StartCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "BODY_SECONDS", 1.0)
    c = await start_collector(max_connections=4)
    stalled = [
        await raw_request(c.http_port or 0, stalled_post(b'[{"event":', 1000)) for _ in range(8)
    ]
    start = time.monotonic()

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{c.http_url}/health") as response:
            assert response.status == 200
        async with session.post(f"{c.http_url}/events", data=b'{"event": "real"}') as response:
            assert response.status == 200
    assert time.monotonic() - start < 0.9, "answered only once the stalled bodies timed out"

    async def answer(reader: asyncio.StreamReader) -> bytes:
        return await asyncio.wait_for(reader.read(), 3)  # all of it: the server closes

    answers = await asyncio.gather(*(answer(reader) for reader, _ in stalled))
    for (_, writer), text in zip(stalled, answers, strict=True):
        writer.close()
        assert text.startswith(b"HTTP/1.1 408"), text
        assert b"did not arrive within 1 s (10 of 1,000 bytes)" in text
    assert names(c.db_path) == ["real"]
    assert sum("did not arrive within" in r for r in reject_reasons(c.db_path)) == 8
    assert (c.http.held_bytes, c.http.in_flight) == (0, 0)


async def test_a_slow_header_connection_is_closed(
    start_collector: StartCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "IDLE_SECONDS", 1.0)
    c = await start_collector()
    reader, writer = await raw_request(c.http_port or 0, b"GET /health HTTP/1.1\r\n")
    start = time.monotonic()

    async def trickle() -> None:
        for i in range(100):
            writer.write(b"X-Slow-%d: 1\r\n" % i)
            await asyncio.sleep(0.1)

    trickling = asyncio.create_task(trickle())
    try:
        assert await asyncio.wait_for(reader.read(), 5) == b""
    finally:
        trickling.cancel()
        writer.close()
    assert time.monotonic() - start < 2.5


async def test_requests_past_max_connections_with_their_body_in_get_503(
    start_collector: StartCollector,
) -> None:
    c = await start_collector(max_connections=1)
    async with aiohttp.ClientSession() as session:
        with write_lock(c.db_path):
            first = asyncio.create_task(
                session.post(f"{c.http_url}/events", data=b'{"event": "waits for its commit"}')
            )
            await until(lambda: c.http.in_flight == 1, 5, "the first request in flight")
            async with session.post(f"{c.http_url}/events", data=b'{"event": "no"}') as response:
                assert response.status == 503
                assert response.headers["Retry-After"] == "1"
                assert "max_connections" in (await response.json())["error"]
            async with session.get(f"{c.http_url}/health") as response:
                assert response.status == 200
        async with await first as response:
            assert response.status == 200
    assert names(c.db_path) == ["waits for its commit"]


async def test_bodies_being_received_hold_at_most_their_budget(
    start_collector: StartCollector,
) -> None:
    # max_connections x max_message_bytes: 2,000 bytes of bodies received and not yet stored.
    c = await start_collector(max_connections=2, max_message_bytes=1000)
    port = c.http_port or 0
    stalled = [await raw_request(port, stalled_post(b"[" + b" " * 998, 1000)) for _ in range(2)]
    await until(lambda: c.http.held_bytes == 1998, 5, "the stalled bodies' bytes")

    status, answer = await post(f"{c.http_url}/events", b'{"event": "over budget"}')

    assert status == 503
    assert "2,000 bytes" in answer["error"]
    for _, writer in stalled:
        writer.close()
    await until(lambda: c.http.held_bytes == 0, 5, "the stalled bodies to be given up")
    assert (await post(f"{c.http_url}/events", b'{"event": "fits"}'))[0] == 200
    assert names(c.db_path) == ["fits"]


# --- HTTP respects the writer's backlog bound -----------------------------------------------------


def bulky_body(tag: str, size: int = 3_500_000) -> bytes:
    """Few events with big properties: cheap to decode, `size` bytes for the writer's backlog."""
    blob = "x" * 3000
    count = size // 3050
    events = [
        {"event": tag, "messageId": f"{tag}-{i}", "properties": {"b": blob}} for i in range(count)
    ]
    return json.dumps(events).encode()


async def test_a_body_waits_while_the_writer_is_behind_then_gets_503(
    start_collector: StartCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http, "BACKLOG_WAIT_SECONDS", 0.5)
    c = await start_collector()
    assert c.ingest is not None
    with write_lock(c.db_path):
        ahead = [
            asyncio.create_task(post(f"{c.http_url}/events", bulky_body(f"ahead{i}")))
            for i in range(6)
        ]
        await until(lambda: c.ingest.congested, 5, "the writer's backlog bound")
        status, answer = await asyncio.wait_for(
            post(f"{c.http_url}/events", b'{"event": "late"}'), 3
        )
        assert status == 503, answer
        assert "backlog" in answer["error"]
        assert c.ingest.writer.pending_bytes < MAX_WRITER_BACKLOG + 5_000_000
    results = await asyncio.gather(*ahead)
    assert {status for status, _ in results} <= {200, 503}
    await until(lambda: not c.ingest.congested, 10, "the backlog to drain")
    assert (await post(f"{c.http_url}/events", b'{"event": "later"}'))[0] == 200
    stored = names(c.db_path)
    assert "late" not in stored
    assert stored[-1] == "later"
    assert (c.http.held_bytes, c.http.in_flight) == (0, 0)


async def test_many_large_bodies_hold_bounded_memory_and_websocket_clients_get_acks(
    start_collector: StartCollector,
) -> None:
    c = await start_collector(max_message_bytes=1 << 19)
    body = tiny_events(35_000)  # 490 KB
    worst_ack = 0.0
    acks = 0
    done = asyncio.Event()

    async def websocket_client() -> None:
        nonlocal worst_ack, acks
        async with connect(c.ws_url) as ws:
            while not done.is_set():
                sent = time.monotonic()
                await ws.send(json.dumps({"event": "ws"}))
                assert "ack" in json.loads(await asyncio.wait_for(ws.recv(), 10))
                worst_ack = max(worst_ack, time.monotonic() - sent)
                acks += 1
                await asyncio.sleep(0.05)

    async def send() -> int:
        for _ in range(50):
            status, _ = await post(f"{c.http_url}/events", body)
            if status != 503:
                return status
            await asyncio.sleep(0.2)
        return status

    already_tracing = tracemalloc.is_tracing()
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        client = asyncio.create_task(websocket_client())
        statuses = await asyncio.gather(*(send() for _ in range(8)))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        done.set()
        if not already_tracing:
            tracemalloc.stop()
    await client

    assert statuses == [200] * 8
    assert peak < 40_000_000, f"8 concurrent 490 KB bodies peaked at {peak:,} bytes"
    assert acks > 5 and worst_ack < 5, (acks, worst_ack)
    with Reader(c.db_path) as reader:
        assert reader.count_events() == 8 * 35_000 + acks


# --- one line per malformed or aborted request ----------------------------------------------------

MALFORMED = [
    b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nBad Header\x1b[31m: x\r\n\r\n",
    b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: abc\r\n\r\n",
    b"POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\x1b\r\n",
]


async def test_malformed_and_aborted_requests_log_one_line_each_rate_limited(
    start_collector: StartCollector,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http, "LOG_WINDOW_SECONDS", 1.0)
    caplog.set_level(logging.INFO)
    c = await start_collector()
    port = c.http_port or 0

    def problems() -> list[logging.LogRecord]:
        return [r for r in caplog.records if r.levelno >= logging.WARNING]

    for head in MALFORMED:
        reader, writer = await raw_request(port, head)
        assert (await asyncio.wait_for(reader.read(), 5)).split(b" ")[1] == b"400"
        writer.close()
    for _ in range(4):
        _, writer = await raw_request(port, stalled_post(b'[{"event":', 1000))
        await asyncio.sleep(0.05)
        writer.transport.abort()
    await until(lambda: len(problems()) >= 7, 5, "a line for each")

    records = problems()
    assert len(records) == 7, [r.getMessage() for r in records]
    for record in records:
        message = record.getMessage()
        assert record.exc_info is None and record.exc_text is None, message
        assert "\n" not in message and "\x1b" not in message, message
        assert "127.0.0.1" in message, message
    assert sum("aborted" in r.getMessage() for r in records) == 4

    # A flood: at most LOG_BURST lines a window, then one line counting the rest.
    caplog.clear()
    for _ in range(30):
        _, writer = await raw_request(port, stalled_post(b"[", 1000))
        await asyncio.sleep(0.01)
        writer.transport.abort()
    await until(lambda: any("more" in r.getMessage() for r in problems()), 5, "the summary line")
    lines = [r.getMessage() for r in problems()]
    assert len(lines) <= http.LOG_BURST + 2, lines
    assert all("Traceback" not in line for line in lines)
    assert (
        sum(line.count("aborted") for line in lines)
        + sum(int(line.split("and ")[1].split()[0]) for line in lines if "more" in line)
        >= 30 - http.LOG_BURST
    )
