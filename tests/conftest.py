"""Shared fixtures: real collectors on port 0, real stores in tmp_path."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventtui.collector import Collector
from eventtui.config import CollectorConfig, Config
from eventtui.store import Reader


def make_config(**collector: Any) -> Config:
    return Config(collector=CollectorConfig(**collector))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
async def collector(db: Path) -> AsyncIterator[Collector]:
    c = Collector(make_config(), db, with_http=False)
    await c.start(port=0)
    yield c
    await c.stop()


@pytest.fixture
async def start_collector(db: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start a collector with custom [collector] settings; stopped at teardown."""
    started: list[Collector] = []

    async def start(**collector: Any) -> Collector:
        c = Collector(make_config(**collector), db, with_http=False)
        await c.start(port=0)
        started.append(c)
        return c

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


def stored(db: Path) -> list[Any]:
    with Reader(db) as reader:
        return reader.query()


def rejects(db: Path) -> list[dict[str, Any]]:
    with Reader(db) as reader:
        return reader.rejects()


def msgpack(obj: Any) -> bytes:
    return msgspec.msgpack.encode(obj)
