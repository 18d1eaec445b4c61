"""The websocket collector against real clients: every bad input has a defined outcome.

Each bad-input test checks three things: the reply the client gets, that the connection still works
(a good event sent after it is acked), and that every event acked before it is still stored.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from eventtui.collector import Collector
from tests.conftest import msgpack, recv_until_ack, rejects, stored


async def assert_still_usable(ws: Any, frame: int, db: Path) -> None:
    """A good event after the bad one is acked and stored."""
    await ws.send(json.dumps({"event": "after", "messageId": f"after-{frame}"}))
    await recv_until_ack(ws, frame)
    assert any(e.message_id == f"after-{frame}" for e in stored(db))


async def send_good_first(ws: Any) -> None:
    await ws.send(json.dumps({"event": "before", "messageId": "before-1"}))
    replies = await recv_until_ack(ws, 1)
    assert replies == [{"ack": 1}]


# --- accepted envelopes ------------------------------------------------------------------------


async def test_object_array_batch_and_msgpack_frames_are_stored(
    collector: Collector, db: Path
) -> None:
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps({"event": "one", "properties": {"plan": "pro"}, "userId": 42}))
        await ws.send(json.dumps([{"event": "two"}, {"event": "three", "anonymousId": "a1"}]))
        await ws.send(
            json.dumps(
                {
                    "batch": [
                        {"type": "page", "name": "Home"},
                        {"type": "identify", "userId": "u1", "traits": {"email": "x@example.com"}},
                    ],
                    "context": {"library": {"name": "test"}},
                }
            )
        )
        await ws.send(msgpack({"event": "four", "properties": {"n": 1}}))
        replies = await recv_until_ack(ws, 4)
    assert replies[-1] == {"ack": 4}
    assert not [r for r in replies if "error" in r]
    events = {e.name: e for e in stored(db)}
    assert set(events) == {"one", "two", "three", "Home", "identify", "four"}
    assert events["one"].user_id == "42"
    assert json.loads(events["one"].properties) == {"plan": "pro"}
    assert events["Home"].type == "page"
    assert json.loads(events["Home"].context) == {"library": {"name": "test"}}
    assert json.loads(events["identify"].extra) == {"traits": {"email": "x@example.com"}}
    assert events["identify"].payload()["traits"] == {"email": "x@example.com"}
    assert events["three"].anonymous_id == "a1"


async def test_fragmented_messages_are_stored_in_order(collector: Collector, db: Path) -> None:
    """A message sent in fragments is one frame, numbered in order with the frames around it."""
    packed = msgpack({"event": "three", "properties": {"pad": "x" * 300}})
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps({"event": "one", "messageId": "1"}))
        await ws.send(iter(['[{"event": "two", ', '"messageId": "2"},', ' {"event": "2b"}]']))
        await ws.send(iter([packed[:7], packed[7:100], packed[100:]]))
        await ws.send(iter(['{"event": ', "42}"]))  # refused: the error names frame 4
        await ws.send(json.dumps({"event": "four"}))
        replies = await recv_until_ack(ws, 5)
    assert [r for r in replies if "error" in r] == [
        {"error": 'the event name ("event") must be a string, not a number', "frame": 4}
    ]
    assert [e.name for e in stored(db)] == ["one", "two", "2b", "three", "four"]


async def test_a_client_that_reads_again_gets_every_ack(collector: Collector, db: Path) -> None:
    """Paused for not reading its replies, then reading again: nothing lost, doubled or reordered.

    Acks are coalesced and tiny, so it is the error replies (one per refused event) that fill TCP
    here; every other frame is refused.
    """
    from eventtui.collector import websocket

    client = await connect(collector.ws_url, max_queue=1)
    client.transport.pause_reading()  # reads no replies for now
    (state,) = collector.websocket.clients  # type: ignore[union-attr]
    _send_buffer(state.ws, 4096)
    total = 2 * (websocket.MAX_PENDING_ERRORS + 10_000)
    frames = [
        json.dumps({"event": "e", "messageId": str(i)}) if i % 2 == 0 else '{"event": 42}'
        for i in range(total)
    ]

    async def flood() -> None:
        for frame in frames:
            await client.send(frame)

    task = asyncio.create_task(flood())
    async with asyncio.timeout(30):
        while not state.ws.reading_paused:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    # The collector stopped reading it (what it sent waits in TCP's buffers).
    assert state.frames - state.acked <= websocket.MAX_UNACKED_FRAMES + 1 < total // 2
    _send_buffer(state.ws, 1 << 20)
    client.transport.resume_reading()
    errors = 0
    async with asyncio.timeout(60):
        await task
        while (reply := json.loads(await client.recv())).get("ack", 0) < total:
            errors += "error" in reply
    await client.close()
    assert errors == total // 2
    with sqlite3.connect(db) as conn:
        ids = [int(row[0]) for row in conn.execute("SELECT message_id FROM events ORDER BY id")]
    assert ids == list(range(0, total, 2))


async def test_ack_means_committed(collector: Collector, db: Path) -> None:
    """Once {"ack": N} arrives, a separate reader sees every event of frames 1..N."""
    async with connect(collector.ws_url) as ws:
        for i in range(200):
            await ws.send(json.dumps([{"event": "e", "messageId": f"m{i}-{j}"} for j in range(5)]))
        async with asyncio.timeout(10):
            while True:
                ack = json.loads(await ws.recv())["ack"]
                ids = {e.message_id for e in stored(db)}
                assert all(f"m{i}-{j}" in ids for i in range(ack) for j in range(5))
                if ack == 200:
                    break


async def test_repeated_message_id_is_acked_stored_once_and_counted(
    collector: Collector, db: Path
) -> None:
    async with connect(collector.ws_url) as ws:
        for _ in range(3):
            await ws.send(json.dumps({"event": "dup", "messageId": "same"}))
        assert (await recv_until_ack(ws, 3))[-1] == {"ack": 3}
        await ws.send('{"event": ""}')  # a refusal must not count as a duplicate
        await recv_until_ack(ws, 4)
    assert [e.name for e in stored(db)] == ["dup"]
    assert collector.writer.stats.duplicates == 2
    await collector.stop()
    assert collector.writer.stats.duplicates == 2
    with sqlite3.connect(db) as conn:
        (meta,) = conn.execute("SELECT meta FROM sessions").fetchone()
    assert json.loads(meta)["duplicates"] == 2


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        ("2026-11-26T04:00:00Z", 1795665600.0),
        (1795665600, 1795665600.0),
        (1795665600123, 1795665600.123),
        ("2026-11-26T05:00:00+01:00", 1795665600.0),
        ("1795665600", 1795665600.0),
    ],
)
async def test_timestamps_iso_seconds_and_milliseconds(
    collector: Collector, db: Path, timestamp: Any, expected: float
) -> None:
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps({"event": "t", "timestamp": timestamp}))
        await recv_until_ack(ws, 1)
    (event,) = stored(db)
    assert event.sent_at == pytest.approx(expected)
    assert event.valid


# --- refused input: one error reply, connection kept, nothing earlier lost ---------------------

REFUSED: list[tuple[str, bytes | str, str]] = [
    ("not json", "{not json", "not valid JSON"),
    ("json scalar", "42", "a frame must be an event object or an array of them, not a number"),
    ("array of scalars", "[1, 2]", "an event must be a JSON object, not a number"),
    ("no name", '{"properties": {}}', 'the event name ("event") is missing'),
    ("name not a string", '{"event": 5}', "must be a string, not a number"),
    ("empty name", '{"event": ""}', 'the event name ("event") is empty'),
    ("10k-char name", json.dumps({"event": "x" * 10_000}), "10000 characters, over the 256 limit"),
    (
        "properties not an object",
        '{"event": "a", "properties": [1]}',
        '"properties" must be an object',
    ),
    ("context not an object", '{"event": "a", "context": "x"}', '"context" must be an object'),
    (
        "5000 levels of nesting",
        '{"event": "a", "properties": ' + '{"a":' * 5000 + "1" + "}" * 5001,
        "nesting is deeper than 64 levels",
    ),
    (
        "65 levels of nesting",
        '{"event": "a", "properties": ' + '{"a":' * 64 + "1" + "}" * 65,
        "nesting is deeper than 64 levels",
    ),
    ("NaN", '{"event": "a", "properties": {"x": NaN}}', "not valid JSON"),
    ("Infinity", '{"event": "a", "properties": {"x": Infinity}}', "not valid JSON"),
    ("unknown type", '{"event": "a", "type": "bogus"}', "type must be one of"),
    (
        "userId an object",
        '{"event": "a", "userId": {"id": 1}}',
        '"userId" must be a string or a number',
    ),
    ("invalid utf-8 in a text frame", b'{"event": "caf\xc3\x28"}', "invalid UTF-8"),
    ("empty array", "[]", "the array holds no events"),
]


@pytest.mark.parametrize(("case", "frame", "reason"), REFUSED, ids=[c[0] for c in REFUSED])
async def test_refused_input(
    collector: Collector, db: Path, case: str, frame: bytes | str, reason: str
) -> None:
    async with connect(collector.ws_url) as ws:
        await send_good_first(ws)
        await ws.send(frame, text=True)
        replies = await recv_until_ack(ws, 2)
        errors = [r for r in replies if "error" in r]
        # One error per refused event ("[1, 2]" refuses two), each before the ack that covers it.
        assert errors and all(reason in e["error"] and e["frame"] == 2 for e in errors), replies
        assert replies[-1] == {"ack": 2}
        await assert_still_usable(ws, 3, db)
    assert [e.name for e in stored(db)] == ["before", "after"]
    kept = rejects(db)
    assert len(kept) == len(errors)
    assert all(reason in r["reason"] and 0 < len(r["raw"]) <= 4096 for r in kept)


async def test_refused_event_inside_a_batch_names_its_index(collector: Collector, db: Path) -> None:
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps({"batch": [{"event": "ok1"}, {"event": ""}, {"event": "ok2"}, 7]}))
        replies = await recv_until_ack(ws, 1)
    assert [(r["frame"], r["index"]) for r in replies if "error" in r] == [(1, 1), (1, 3)]
    assert [e.name for e in stored(db)] == ["ok1", "ok2"]


async def test_lone_surrogate_escapes_become_replacement_characters(
    collector: Collector, db: Path
) -> None:
    async with connect(collector.ws_url) as ws:
        # A lone high, a lone low, a valid pair, and an escaped backslash followed by "ud800" text.
        await ws.send(
            '{"event": "s\\ud800", "properties": {"a": "\\udc00x", "b": "\\ud83d\\ude00", "c": "\\\\ud800"}}'
        )
        replies = await recv_until_ack(ws, 1)
    assert replies == [{"ack": 1}]
    (event,) = stored(db)
    assert event.name == "s\ufffd"
    assert json.loads(event.properties) == {"a": "\ufffdx", "b": "😀", "c": "\\ud800"}


async def test_duplicate_keys_last_value_wins(collector: Collector, db: Path) -> None:
    async with connect(collector.ws_url) as ws:
        await ws.send('{"event": "first", "event": "second", "properties": {"x": 1, "x": 2}}')
        await recv_until_ack(ws, 1)
    (event,) = stored(db)
    assert (event.name, json.loads(event.properties)) == ("second", {"x": 2})


async def test_unparseable_timestamp_is_kept_and_marked_invalid(
    collector: Collector, db: Path
) -> None:
    async with connect(collector.ws_url) as ws:
        await ws.send('{"event": "late", "timestamp": "yesterday-ish"}')
        assert await recv_until_ack(ws, 1) == [{"ack": 1}]
    (event,) = stored(db)
    assert event.sent_at is None and not event.valid
    assert "timestamp: cannot read 'yesterday-ish'" in event.error_list()[0]


async def test_ten_megabyte_property_over_the_event_limit(start_collector: Any, db: Path) -> None:
    c = await start_collector(max_message_bytes=16 * 1024 * 1024)
    async with connect(c.ws_url, max_size=None) as ws:
        await send_good_first(ws)
        await ws.send(json.dumps({"event": "big", "properties": {"blob": "x" * 10_000_000}}))
        replies = await recv_until_ack(ws, 2)
        assert "over the 524,288-byte limit" in replies[0]["error"]
        await assert_still_usable(ws, 3, db)
    assert len(rejects(db)[0]["raw"]) == 4096


async def test_frame_over_the_size_limit_closes_with_1009(collector: Collector, db: Path) -> None:
    # No `async with`: closing again a socket the server already dropped trips asyncio's transport.
    ws = await connect(collector.ws_url, max_size=None)
    await send_good_first(ws)
    await ws.send(json.dumps({"event": "big", "properties": {"blob": "x" * 10_000_000}}))
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    # The collector is still running, earlier acked events are stored, and the refusal is recorded.
    async with connect(collector.ws_url) as ws:
        await assert_still_usable(ws, 1, db)
    assert [e.name for e in stored(db)] == ["before", "after"]
    assert "over the 4,194,304-byte limit" in rejects(db)[0]["reason"]


async def test_message_in_too_many_fragments_closes_with_1009(
    collector: Collector, db: Path
) -> None:
    from eventtui.collector.websocket import MAX_FRAGMENTS

    ws = await connect(collector.ws_url)
    await send_good_first(ws)
    with pytest.raises(ConnectionClosed) as closed:
        await ws.send(iter(["[" if i == 0 else " " for i in range(MAX_FRAGMENTS + 10)]))
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    async with connect(collector.ws_url) as other:
        await assert_still_usable(other, 1, db)
    assert [e.name for e in stored(db)] == ["before", "after"]
    assert rejects(db)[0]["reason"] == (
        f"a message in more than {MAX_FRAGMENTS:,} fragments; connection closed with 1009"
    )


async def test_binary_frame_that_is_not_msgpack(collector: Collector, db: Path) -> None:
    async with connect(collector.ws_url) as ws:
        await send_good_first(ws)
        await ws.send(b"\xc1\xc1\xc1")
        replies = await recv_until_ack(ws, 2)
        assert "not valid MessagePack" in replies[0]["error"]
        await assert_still_usable(ws, 3, db)


# --- connection-level limits and checks ------------------------------------------------------


async def test_more_connections_than_the_cap_are_refused(start_collector: Any, db: Path) -> None:
    c = await start_collector(max_connections=2)
    async with connect(c.ws_url) as a, connect(c.ws_url) as b:
        with pytest.raises(InvalidStatus) as refused:
            await connect(c.ws_url)
        assert refused.value.response.status_code == 503
        assert b"too many connections" in refused.value.response.body
        await send_good_first(a)
        await assert_still_usable(b, 1, db)
    async with connect(c.ws_url) as again:  # slots free again once clients leave
        await assert_still_usable(again, 1, db)


@pytest.mark.parametrize(
    ("headers", "allowed"),
    [
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": "http://localhost:3000"}, True),
        ({"Origin": "http://127.0.0.1:5173"}, True),
        ({"Origin": "https://[::1]:8443"}, True),
    ],
)
async def test_origin_and_host_checks(
    collector: Collector, db: Path, headers: dict[str, str], allowed: bool
) -> None:
    if allowed:
        async with connect(collector.ws_url, additional_headers=headers) as ws:
            await assert_still_usable(ws, 1, db)
        return
    with pytest.raises(InvalidStatus) as refused:
        await connect(collector.ws_url, additional_headers=headers)
    assert refused.value.response.status_code == 403
    assert (
        b"not allowed" in refused.value.response.body
        or b"not this collector" in refused.value.response.body
    )


async def raw_handshake(url: str, host: str, extra: str = "") -> bytes:
    """The opening handshake written by hand, to send a Host header no client library would."""
    port = int(url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n".encode()
    )
    await writer.drain()
    response = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    return response


@pytest.mark.parametrize(
    ("host", "extra", "status"),
    [
        ("attacker.example:8765", "", b"403"),  # DNS rebinding: a foreign name resolving to us
        ("localhost", "Host: attacker.example\r\n", b"403"),  # two Host headers
        ("localhost:8765", "", b"101"),
        ("127.0.0.1:8765", "", b"101"),
        ("[::1]:8765", "", b"101"),
    ],
)
async def test_host_check(
    collector: Collector, db: Path, host: str, extra: str, status: bytes
) -> None:
    response = await raw_handshake(collector.ws_url, host, extra)
    assert response.split(b" ", 2)[1] == status, response
    async with connect(collector.ws_url) as ws:
        await assert_still_usable(ws, 1, db)


async def test_allowed_origins_lets_a_named_site_in(start_collector: Any, db: Path) -> None:
    c = await start_collector(allowed_origins=("https://app.example",))
    async with connect(c.ws_url, origin="https://app.example") as ws:  # type: ignore[arg-type]
        await assert_still_usable(ws, 1, db)


async def test_token(start_collector: Any, db: Path) -> None:
    c = await start_collector(token="s3cret")
    with pytest.raises(InvalidStatus) as refused:
        await connect(c.ws_url)
    assert refused.value.response.status_code == 403
    async with connect(c.ws_url + "/?token=s3cret") as ws:
        await assert_still_usable(ws, 1, db)
    async with connect(c.ws_url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
        await assert_still_usable(ws, 1, db)


async def test_client_that_never_reads_is_not_read_either(collector: Collector, db: Path) -> None:
    """Its replies pile up in TCP; the collector stops reading it instead of buffering without bound.

    Acks are coalesced and tiny, so it is error replies (one per refused event) that fill TCP.
    """
    from eventtui.collector import websocket

    greedy = await connect(collector.ws_url)
    greedy.transport.pause_reading()  # the client library reads nothing off the socket
    (client,) = collector.websocket.clients  # type: ignore[union-attr]
    _send_buffer(client.ws, 4096)

    async def flood() -> None:
        while True:
            await greedy.send('{"event": 42, "properties": {"pad": "%s"}}' % ("x" * 200))

    task = asyncio.create_task(flood())
    async with asyncio.timeout(30):
        while not client.ws.reading_paused:
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    assert client.frames - client.acked <= websocket.MAX_UNACKED_FRAMES + 1
    assert len(client.errors) <= websocket.MAX_PENDING_ERRORS + 1
    # Meanwhile another client is served normally.
    async with connect(collector.ws_url) as ws:
        await assert_still_usable(ws, 1, db)
    task.cancel()
    greedy.transport.abort()


def _send_buffer(server_side: Any, size: int) -> None:
    """A small one: replies fill TCP after kilobytes instead of the megabytes loopback allows."""
    sock = server_side.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def test_no_client_is_read_while_the_writer_is_behind(collector: Collector, db: Path) -> None:
    """The store is locked for a while (another process writing): the collector stops reading at
    MAX_WRITER_BACKLOG bytes instead of queueing rows without bound, then catches up, losing nothing.
    """
    from eventtui.collector.ingest import MAX_WRITER_BACKLOG

    pad = "x" * 50_000
    frames = [
        json.dumps(
            [
                {"event": "big", "messageId": f"{i}-{k}", "properties": {"pad": pad}}
                for k in range(10)
            ]
        )
        for i in range(2 * MAX_WRITER_BACKLOG // 500_000)
    ]
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # the writer process now waits for the lock
    try:
        clients = [await connect(collector.ws_url, max_size=None) for _ in range(2)]
        senders = [asyncio.create_task(_send_all(ws, frames[i::2])) for i, ws in enumerate(clients)]
        async with asyncio.timeout(20):
            while not collector.ingest.congested:
                await asyncio.sleep(0.05)
        states = list(collector.websocket.clients)  # type: ignore[union-attr]
        assert all(state.ws.reading_paused for state in states)
        read = sum(state.frames for state in states)
        await asyncio.sleep(0.5)
        assert sum(state.frames for state in states) == read < len(frames)
        assert collector.writer.pending_bytes < MAX_WRITER_BACKLOG + 2 * 256 * 1024 + 600_000
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    async with asyncio.timeout(30):
        await asyncio.gather(*senders)
        for i, ws in enumerate(clients):
            while json.loads(await ws.recv()).get("ack", 0) < len(frames[i::2]):
                pass
            await ws.close()
    assert not collector.ingest.congested
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 10 * len(frames)


async def _send_all(ws: Any, frames: list[str]) -> None:
    for frame in frames:
        await ws.send(frame)


async def test_client_that_disconnects_mid_batch(collector: Collector, db: Path) -> None:
    """Complete frames are stored; the half-sent fragmented frame is not; the collector carries on."""
    ws = await connect(collector.ws_url)
    await send_good_first(ws)
    fragments_sent = asyncio.Event()

    async def fragments() -> Any:
        yield '[{"event": "partial-1"},'
        fragments_sent.set()
        await asyncio.Event().wait()  # never finishes the message

    sender = asyncio.create_task(ws.send(fragments()))
    await fragments_sent.wait()
    ws.transport.abort()
    sender.cancel()
    async with connect(collector.ws_url) as other:
        await assert_still_usable(other, 1, db)
    assert [e.name for e in stored(db)] == ["before", "after"]


async def test_stop_acks_everything_read_and_ends_the_session(db: Path) -> None:
    from tests.conftest import make_config

    c = Collector(make_config(), db, with_http=False)
    await c.start(port=0)
    ws = await connect(c.ws_url)
    for i in range(500):
        await ws.send(json.dumps({"event": "e", "messageId": str(i)}))
    await c.stop()
    acked = 0
    closed: ConnectionClosed | None = None
    try:
        async for message in ws:
            acked = max(acked, json.loads(message).get("ack", 0))
    except ConnectionClosed as exc:
        closed = exc
    assert closed is None or (closed.rcvd and closed.rcvd.code == 1001)
    assert ws.close_code == 1001
    ids = {e.message_id for e in stored(db)}
    assert {str(i) for i in range(acked)} <= ids
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT ended_at FROM sessions").fetchone()[0] is not None


async def test_writer_process_dying_is_an_error_not_a_hang(collector: Collector, db: Path) -> None:
    """If the store's writer is killed, clients hear so and are closed (1011); nothing is acked.

    (It is then restarted: tests/test_writer_restart.py. Here its restart waits long enough for
    a frame to arrive while it is down.)"""
    collector.writer.restart_delays = (30.0,)
    async with connect(collector.ws_url) as ws:
        await send_good_first(ws)
        pid = collector.writer.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            while collector.writer.problem is None:
                await asyncio.sleep(0.01)
        await ws.send(json.dumps({"event": "lost"}))
        replies = []
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    replies.append(json.loads(await ws.recv()))
        assert ws.close_code == 1011
    assert any("died (signal 9)" in r.get("error", "") for r in replies)
    assert all(r.get("ack", 1) <= 1 for r in replies)
    assert [e.name for e in stored(db)] == ["before"]


async def test_tracking_plan_is_checked_at_ingest(db: Path) -> None:
    from eventtui.config import PlanConfig, PlanEvent
    from tests.conftest import make_config

    schema = {
        "type": "object",
        "required": ["plan"],
        "properties": {"plan": {"enum": ["free", "pro"]}},
    }
    config = make_config()
    import msgspec

    config = msgspec.structs.replace(
        config, plan=PlanConfig(events={"signup": PlanEvent(schema=schema)})
    )
    c = Collector(config, db, with_http=False)
    await c.start(port=0)
    try:
        async with connect(c.ws_url) as ws:
            await ws.send(
                json.dumps(
                    [
                        {"event": "signup", "properties": {"plan": "pro"}},
                        {"event": "signup", "properties": {"plan": "gold"}},
                        {"event": "signup", "timestamp": "soon"},
                        {"event": "page_view"},
                    ]
                )
            )
            assert await recv_until_ack(ws, 1) == [{"ack": 1}]  # invalid is stored, not refused
    finally:
        await c.stop()
    events = stored(db)
    assert [e.valid for e in events] == [True, False, False, True]
    assert "'gold' is not one of ['free', 'pro']" in events[1].error_list()[0]
    assert events[2].error_list()[0].startswith("timestamp: cannot read")
    assert any("'plan' is a required property" in err for err in events[2].error_list())


async def test_retention_prunes_old_sessions_when_a_collector_starts(db: Path) -> None:
    import msgspec

    from eventtui.config import Duration, StoreConfig
    from tests.conftest import make_config

    old = Collector(make_config(), db, with_http=False)
    await old.start(port=0)
    async with connect(old.ws_url) as ws:
        await ws.send(json.dumps({"event": "ancient"}))
        await recv_until_ack(ws, 1)
    await old.stop()
    with sqlite3.connect(db) as conn:  # make that session 30 days old
        conn.execute(
            "UPDATE sessions SET started_at = started_at - 2592000, ended_at = ended_at - 2592000"
        )
    config = msgspec.structs.replace(
        make_config(), store=StoreConfig(retention=Duration(14 * 86400))
    )
    c = Collector(config, db, with_http=False)
    await c.start(port=0)
    await c.stop()  # waits for the prune
    assert stored(db) == []
    # Said, naming the session: it was silent.
    assert c.notices == [
        "retention deleted 1 session (1) with 1 event: they ended over 14d ago ([store] retention)"
    ]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (1,)
