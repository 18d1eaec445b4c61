"""Frames the decoder or the tracking plan cannot take: refused with a reason, never leaked.

Each such frame used to escape as an exception: the connection closed with 1011 and no reject,
its frame number waited forever for a commit, so the client's slot was never freed (past
`max_connections`, every client got 503) and SIGTERM hung. Now each is a refusal like any other:
an error reply naming the frame (and the index inside an array), a row in `rejects`, the rest of
the frame stored, the connection kept open.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from websockets.asyncio.client import connect

from eventtui.collector import Collector
from eventtui.config import CollectorConfig, Config, PlanConfig, PlanEvent
from tests.conftest import msgpack, recv_until_ack, rejects, stored

# A tracking plan whose checks raise inside jsonschema for some events.
PLAN = PlanConfig(
    events={
        "priced": PlanEvent(schema={"properties": {"amount": {"multipleOf": 0.01}}}),
        "looped": PlanEvent(schema={"$ref": "#"}),
    }
)
HUGE = int("9" * 400)


def _msgpack_event_with(properties: bytes) -> bytes:
    """A MessagePack event {"event": "odd", "properties": <properties, already encoded>}."""
    return b"\x82" + msgpack("event") + msgpack("odd") + msgpack("properties") + properties


# (case, frame, is_text, what the reason says)
UNUSABLE: list[tuple[str, bytes, bool, str]] = [
    (
        "msgpack ext value",
        msgpack({"event": "odd", "properties": {"x": msgspec.msgpack.Ext(5, b"ab")}}),
        False,
        "MessagePack extension value (type 5)",
    ),
    (
        "msgpack nil key",
        _msgpack_event_with(b"\x81\xc0\x01"),  # {nil: 1}
        False,
        "a map key that is not a string or a number",
    ),
    (
        "msgpack array key",
        _msgpack_event_with(b"\x81\x91\x01\x01"),  # {[1]: 1}
        False,
        "a map key that is not a string or a number",
    ),
    (
        "huge integer under multipleOf",
        b'{"event": "priced", "properties": {"amount": %d}}' % HUGE,
        True,
        'the tracking-plan check of "priced" failed',
    ),
    (
        "schema that recurses",
        b'{"event": "looped", "properties": {"a": 1}}',
        True,
        'the tracking-plan check of "looped" failed',
    ),
    (
        "type that is an array",
        b'{"event": "odd", "type": [1]}',
        True,
        "type must be one of",
    ),
]
IDS = [case[0] for case in UNUSABLE]


def _config(**collector: Any) -> Config:
    return Config(collector=CollectorConfig(**collector), plan=PLAN)


@pytest.fixture
async def planned(db: Path) -> AsyncIterator[Collector]:
    c = Collector(_config(), db, with_http=False)
    await c.start(port=0)
    yield c
    async with asyncio.timeout(30):  # it used to hang here, waiting for frames never submitted
        await c.stop()


@pytest.mark.parametrize(("case", "frame", "is_text", "reason"), UNUSABLE, ids=IDS)
async def test_unusable_event_is_refused_and_the_connection_kept(
    planned: Collector, db: Path, case: str, frame: bytes, is_text: bool, reason: str
) -> None:
    async with asyncio.timeout(20), connect(planned.ws_url) as ws:
        await ws.send(json.dumps({"event": "before", "messageId": "before"}))
        assert await recv_until_ack(ws, 1) == [{"ack": 1}]
        await ws.send(frame, text=is_text)
        replies = await recv_until_ack(ws, 2)
        (error,) = [r for r in replies if "error" in r]
        assert reason in error["error"] and error["frame"] == 2, replies
        assert replies[-1] == {"ack": 2}
        await ws.send(json.dumps({"event": "after", "messageId": "after"}))
        assert await recv_until_ack(ws, 3) == [{"ack": 3}]
    assert [e.message_id for e in stored(db)] == ["before", "after"]
    (kept,) = rejects(db)
    assert reason in kept["reason"] and kept["raw"]


@pytest.mark.parametrize(("case", "frame", "is_text", "reason"), UNUSABLE, ids=IDS)
async def test_inside_an_array_only_that_event_is_refused(
    planned: Collector, db: Path, case: str, frame: bytes, is_text: bool, reason: str
) -> None:
    """The unusable event is refused with its index; its neighbours are stored."""
    good = json.dumps({"event": "good"}).encode()
    if is_text:
        data: bytes = b"[%s, %s, %s]" % (good, frame, good)
    else:
        data = b"\x93" + msgpack({"event": "good"}) + frame + msgpack({"event": "good"})
    async with asyncio.timeout(20), connect(planned.ws_url) as ws:
        await ws.send(data, text=is_text)
        replies = await recv_until_ack(ws, 1)
    assert [(r["frame"], r["index"]) for r in replies if "error" in r] == [(1, 1)], replies
    assert reason in replies[0]["error"]
    assert [e.name for e in stored(db)] == ["good", "good"]
    assert len(rejects(db)) == 1


async def test_unusable_frames_free_their_slots(db: Path) -> None:
    """With max_connections = 4, clients that each sent one such frame and left do not lock the
    next ones out (their slots used to stay taken for good: 503 for everyone)."""
    c = Collector(_config(max_connections=4), db, with_http=False)
    await c.start(port=0)
    try:
        for round_ in range(3):
            for case, frame, is_text, reason in UNUSABLE[:4]:
                async with asyncio.timeout(20), connect(c.ws_url) as ws:
                    await ws.send(frame, text=is_text)
                    replies = await recv_until_ack(ws, 1)
                    assert reason in replies[0]["error"], (round_, case, replies)
            async with asyncio.timeout(20):
                while c.clients:  # each handler finishes once its client has closed
                    await asyncio.sleep(0.01)
        async with asyncio.timeout(20), connect(c.ws_url) as ws:
            await ws.send(json.dumps({"event": "last"}))
            assert await recv_until_ack(ws, 1) == [{"ack": 1}]
    finally:
        async with asyncio.timeout(30):
            await c.stop()
    assert len(rejects(db)) == 12


def test_sigterm_after_unusable_frames_exits_promptly(tmp_path: Path) -> None:
    """`eventtui collect` stops on SIGTERM (exit 0) after such frames, instead of waiting forever
    for a commit of frames that were never submitted."""
    (tmp_path / "eventtui.toml").write_text(
        "[plan.events.priced]\n"
        "schema = { properties = { amount = { multipleOf = 0.01 } } }\n"
        "[plan.events.looped]\n"
        'schema = { "$ref" = "#" }\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventtui", "collect", "--port", "0", "--http-port", "0",
         "--db", str(tmp_path / "events.db")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().split()
        assert first[:2] == ["listening", "on"], first
        url = first[2]

        async def send_them_then_stop() -> list[dict[str, Any]]:
            replies: list[dict[str, Any]] = []
            async with asyncio.timeout(20):
                clients = [await connect(url) for _ in UNUSABLE]
                for ws, (_, frame, is_text, _) in zip(clients, UNUSABLE, strict=True):
                    await ws.send(frame, text=is_text)
                for ws in clients:
                    replies.extend(await recv_until_ack(ws, 1))
                # Still connected when SIGTERM comes: each is closed with 1001.
                proc.send_signal(signal.SIGTERM)
                for ws in clients:
                    await ws.wait_closed()
                    assert ws.close_code == 1001
            return replies

        replies = asyncio.run(send_them_then_stop())
        assert sum("error" in r for r in replies) == len(UNUSABLE), replies
        _, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/track", b'{"event": "caf\xed\xa0\x80"}'),  # a raw surrogate: invalid UTF-8
        ("/events", b'{"event": "caf\xc3\x28"}\n{"event": "two"}\n'),
    ],
    ids=["segment call", "json lines"],
)
async def test_http_body_with_invalid_utf8_is_refused(db: Path, path: str, body: bytes) -> None:
    """The HTTP routes look into a body before decoding it (the call's default type, JSON Lines
    or not); invalid UTF-8 there used to be a 500 and a traceback, not a refusal."""
    import aiohttp

    c = Collector(Config(), db)
    await c.start(port=0, http_port=0)
    try:
        async with aiohttp.ClientSession() as http, http.post(c.http_url + path, data=body) as r:
            reply = await r.json()
        assert r.status in (200, 400), reply
        assert "invalid UTF-8" in reply["refused"][0]["error"], reply
    finally:
        await c.stop()
    assert "invalid UTF-8" in rejects(db)[0]["reason"]
