"""Shared fixtures and helpers: real collectors on port 0, real stores in tmp_path, waiting on a
condition (never a sleep), local time pinned to UTC."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventtui.collector import Collector
from eventtui.config import CollectorConfig, Config
from eventtui.model import StoredEvent
from eventtui.store import Reader, Reject, Submission, Writer


def make_config(**collector: Any) -> Config:
    return Config(collector=CollectorConfig(**collector))


# --- waiting ---------------------------------------------------------------------------------------


async def until(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    """Wait until `condition()` is true, yielding to the event loop (and an app) meanwhile; fail
    after `timeout` seconds, naming `what` was awaited."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        await asyncio.sleep(0.01)


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local time is UTC for the test (clock times on screen, in snapshots and in reports)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


# --- stores ----------------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


def write_session(
    path: Path,
    rows: Sequence[StoredEvent],
    *,
    source: str = "test",
    label: str | None = None,
    rejects: Sequence[Reject] = (),
) -> int:
    """Store `rows` (and `rejects`) as one finished session of the store at `path`; its id."""
    writer = Writer(path, source=source, label=label)
    session = writer.start()
    writer.submit(Submission(rows, rejects))
    writer.close()
    return session


def stored(db: Path) -> list[Any]:
    with Reader(db) as reader:
        return reader.query()


def rejects(db: Path) -> list[dict[str, Any]]:
    with Reader(db) as reader:
        return reader.rejects()


# --- collectors ------------------------------------------------------------------------------------


async def started_collector(db: Path, *, http: bool = False, **collector: Any) -> Collector:
    """A real collector writing to `db`, listening on free ports, with custom [collector] settings."""
    c = Collector(make_config(**collector), db, with_http=http)
    await c.start(port=0, http_port=0 if http else None)
    return c


StartCollector = Callable[..., Awaitable[Collector]]


@pytest.fixture
async def collector(db: Path) -> AsyncIterator[Collector]:
    c = await started_collector(db)
    yield c
    await c.stop()


@pytest.fixture
async def start_collector(db: Path) -> AsyncIterator[StartCollector]:
    """Start collectors with custom [collector] settings (`http=True` for the HTTP listener too);
    stopped at teardown."""
    started: list[Collector] = []

    async def start(*, http: bool = False, **collector: Any) -> Collector:
        started.append(await started_collector(db, http=http, **collector))
        return started[-1]

    yield start
    for c in started:
        await c.stop()


async def recv_until_ack(ws: Any, frame: int, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Replies up to and including the ack covering `frame`."""
    replies: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            reply = json.loads(await ws.recv())
            replies.append(reply)
            if reply.get("ack", 0) >= frame:
                return replies


def msgpack(obj: Any) -> bytes:
    return msgspec.msgpack.encode(obj)


# --- the command line, as a user runs it ---------------------------------------------------------

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def eventtui(
    *args: str,
    input: bytes | None = None,
    stdin: int | None = None,
    cwd: Path | None = None,
    memory: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """The CLI in a subprocess. stdin is empty (not a terminal) unless `input` or `stdin` says
    otherwise; `memory` caps the address space (a runaway read fails, not the host)."""

    def limit() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    return subprocess.run(
        [sys.executable, "-m", "eventtui", *args],
        input=None if input is None else input.decode(),
        stdin=subprocess.DEVNULL if input is None and stdin is None else stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        cwd=cwd,
        preexec_fn=limit if memory is not None else None,
    )


class Collect:
    """`eventtui collect` in a subprocess, with its advertised URLs."""

    def __init__(self, db: Path, *extra: str) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "eventtui",
                "collect",
                "--port",
                "0",
                "--http-port",
                "0",
                "--db",
                str(db),
                *extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline().strip()
        words = self.first_line.split()
        if words[:2] != ["listening", "on"]:
            # Waited for, so no process (nor a warning about one) outlives the test.
            if self.proc.poll() is None:
                self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"collect did not start: {self.first_line} {err}")
        self.ws_url = words[2]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=30)  # also closes the pipes

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        self.proc.send_signal(sig)
        _, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, err


@pytest.fixture
def collect(tmp_path: Path) -> Iterator[Collect]:
    c = Collect(tmp_path / "events.db")
    yield c
    c.close()
