"""A commit that fails: the store locked by another process past the writer's bound, a full disk.

The promise under test: an ack means committed. When a transaction holding frames of a connection
fails, that connection is told which frames were not stored, its acks stop before them (even when a
later frame commits), it is closed with 1011, and the collector keeps serving everyone else. A lock
held for less than the bound costs only time: nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from eventtui.collector import Collector
from tests.conftest import make_config, recv_until_ack, until

# Holds the store's write lock in a process of its own until its stdin closes.
_HOLD_LOCK = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.read()
conn.execute("ROLLBACK")
"""


class LockHolder:
    """Another process holding the store's write lock (BEGIN IMMEDIATE) until `release`."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD_LOCK, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "locked\n"

    def release(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(10)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@contextlib.contextmanager
def lock_held(db: Path) -> Iterator[LockHolder]:
    holder = LockHolder(db)
    try:
        yield holder
    finally:
        holder.release()


async def started(db: Path, *, lock_wait: float | None = None, batch_rows: int = 0) -> Collector:
    c = Collector(make_config(), db)
    if lock_wait is not None:
        c.writer.lock_wait = lock_wait
    if batch_rows:
        c.writer.max_batch_rows = batch_rows
    await c.start(port=0, http_port=0)
    return c


@pytest.fixture
async def stopping() -> AsyncIterator[list[Collector]]:
    """Collectors to stop at teardown (bounded: a stop that hangs fails the test)."""
    collectors: list[Collector] = []
    yield collectors
    async with asyncio.timeout(30):
        for c in collectors:
            await c.stop()


def frame(n: int, events: int = 1, pad: int = 0) -> str:
    return json.dumps(
        [
            {"event": "e", "messageId": f"{n}-{k}", "properties": {"pad": "x" * pad}}
            for k in range(events)
        ]
    )


def stored_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT message_id FROM events ORDER BY id")]


async def replies_until_closed(ws: ClientConnection, timeout: float = 30.0) -> list[dict[str, Any]]:
    replies = []
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionClosed):
            while True:
                replies.append(json.loads(await ws.recv()))
    return replies


def acks(replies: list[dict[str, Any]]) -> list[int]:
    return [r["ack"] for r in replies if "ack" in r]


async def assert_serving(c: Collector, db: Path, tag: str) -> None:
    """A new websocket client and an HTTP client are both answered, acked and stored."""
    async with connect(c.ws_url) as ws:
        await ws.send(json.dumps({"event": "later", "messageId": f"ws-{tag}"}))
        assert await recv_until_ack(ws, 1) == [{"ack": 1}]
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{c.http_url}/events", json={"event": "later", "messageId": f"http-{tag}"}
        ) as answer,
    ):
        assert answer.status == 200, await answer.text()
    assert {f"ws-{tag}", f"http-{tag}"} <= set(stored_ids(db))


# --- the store locked by another process ---------------------------------------------------------


async def test_a_lock_held_past_the_bound_loses_frame_2_and_no_ack_covers_it(
    db: Path, stopping: list[Collector]
) -> None:
    """Frame 2's transaction fails ("database is locked"); frame 3, read meanwhile, commits once
    the lock is gone. The client hears that frame 2 was not stored, never gets an ack covering it
    (frame 3 is stored but not acked: resent, it is a duplicate), and the connection closes 1011.
    """
    # Ten rows per transaction: frame 2 (ten events) is a transaction of its own, whatever the timing.
    c = await started(db, lock_wait=1.0, batch_rows=10)
    stopping.append(c)
    ws = await connect(c.ws_url)
    await ws.send(frame(1))
    assert await recv_until_ack(ws, 1) == [{"ack": 1}]
    (client,) = c.websocket.clients  # type: ignore[union-attr]
    with lock_held(db) as holder:
        await ws.send(frame(2, events=10))
        await until(lambda: client.frames == 2, 20.0)
        await ws.send(frame(3))
        await until(lambda: client.frames == 3, 20.0)
        replies = []
        async with asyncio.timeout(20):
            while not any("error" in r for r in replies):
                replies.append(json.loads(await ws.recv()))
        holder.release()  # frame 3's transaction, waiting for the lock, now commits
    replies += await replies_until_closed(ws)
    await until(lambda: "3-0" in stored_ids(db), 20.0)

    assert ws.close_code == 1011
    assert all(ack < 2 for ack in acks(replies)), replies
    (error,) = [r for r in replies if "error" in r]
    assert error["frame"] == 2 and error["last_frame"] == 2, error
    assert "database is locked" in error["error"] and "frame 2 not stored" in error["error"]
    ids = stored_ids(db)
    assert not [i for i in ids if i.startswith("2-")]
    assert ids == ["1-0", "3-0"]  # every acked frame stored; frame 3 stored, never acked
    await assert_serving(c, db, "after-lock")


async def test_a_lock_held_briefly_costs_time_not_events(
    db: Path, stopping: list[Collector]
) -> None:
    """Shorter than the writer's bound: the commit waits for the lock, then everything is acked."""
    c = await started(db)
    stopping.append(c)
    async with connect(c.ws_url) as ws:
        (client,) = c.websocket.clients  # type: ignore[union-attr]
        with lock_held(db):
            for n in range(1, 4):
                await ws.send(frame(n, events=5))
            await until(lambda: client.frames == 3, 20.0)
            await asyncio.sleep(0.5)  # the hold itself: the writer retries meanwhile
            assert client.acked == 0
        replies = await recv_until_ack(ws, 3, timeout=20)
    assert not [r for r in replies if "error" in r], replies
    assert stored_ids(db) == [f"{n}-{k}" for n in range(1, 4) for k in range(5)]


async def test_http_answers_500_with_the_reason_when_the_commit_fails(
    db: Path, stopping: list[Collector]
) -> None:
    c = await started(db, lock_wait=0.5)
    stopping.append(c)
    async with aiohttp.ClientSession() as http:
        with lock_held(db):
            async with http.post(
                f"{c.http_url}/events", json={"event": "e", "messageId": "h1"}
            ) as r:
                assert r.status == 500
                body = await r.json()
        assert "store write failed: database is locked" in body["error"], body
        assert stored_ids(db) == []
        async with http.post(f"{c.http_url}/events", json={"event": "e", "messageId": "h1"}) as r:
            assert r.status == 200  # the SDK's retry
    assert stored_ids(db) == ["h1"]


# --- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MB tmpfs: a disk that fills up (mounting needs root, as in CI and here)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here to fill up: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int) -> Path:
    """A file taking all but `leave` bytes of the disk."""
    stat = os.statvfs(disk)
    filler = disk / "filler"
    size = stat.f_bavail * stat.f_frsize - leave
    with filler.open("wb") as f:
        for _ in range(size // (1 << 20)):
            f.write(b"\0" * (1 << 20))
        f.write(b"\0" * (size % (1 << 20)))
    return filler


async def test_a_full_disk_loses_no_acked_frame_and_the_collector_keeps_serving(
    small_disk: Path, stopping: list[Collector]
) -> None:
    db = small_disk / "events.db"
    c = await started(db)
    stopping.append(c)
    filler = fill(small_disk, leave=1 << 20)
    ws = await connect(c.ws_url, max_size=None)
    sent = 0
    with contextlib.suppress(ConnectionClosed):
        async with asyncio.timeout(30):
            while True:  # 100 KB frames until the disk is full and the collector closes us
                sent += 1
                await ws.send(frame(sent, events=10, pad=10_000))
                if sent > 1000:
                    pytest.fail("1,000 frames of 100 KB fitted on a 1 MB disk")
    replies = await replies_until_closed(ws)
    assert ws.close_code == 1011

    (error,) = [r for r in replies if "error" in r]
    last_ack = max(acks(replies), default=0)
    assert error["frame"] == last_ack + 1, replies
    assert "database or disk is full" in error["error"], error
    assert "not stored" in error["error"]
    ids = set(stored_ids(db))
    assert {f"{n}-{k}" for n in range(1, last_ack + 1) for k in range(10)} <= ids
    assert not {
        i for i in ids if int(i.split("-")[0]) in range(error["frame"], error["last_frame"] + 1)
    }

    # Still full: /health answers; an HTTP body too big for what is left is answered 500 with
    # the reason (a small one might fit in the space the failed transaction left in the log).
    big = [
        {"event": "e", "messageId": f"full-{k}", "properties": {"pad": "x" * 100_000}}
        for k in range(30)
    ]
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{c.http_url}/health") as answer:
            assert answer.status == 200
        body = io.BytesIO(json.dumps(big).encode())  # aiohttp wants a large body as a stream
        async with http.post(f"{c.http_url}/events", data=body) as r:
            assert r.status == 500
            assert "database or disk is full" in (await r.json())["error"]
    assert not [i for i in stored_ids(db) if i.startswith("full-")]
    filler.unlink()
    await assert_serving(c, db, "after-full")
