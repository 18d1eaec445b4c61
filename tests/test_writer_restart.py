"""A store writer killed with kill -9: restarted into the same session, or, past the restart
policy, an unhealthy collector that says so — in /health, in the TUI's status line, and in
`collect`'s exit code — and never acknowledges what it did not store.

Real collectors, real writer processes killed with SIGKILL, real websocket and HTTP clients, the
CLI as a subprocess, the TUI under Pilot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from eventtui.collector import Collector
from eventtui.collector.thread import CollectorThread
from eventtui.store import Reader
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from tests.conftest import Collect, make_config, recv_until_ack, until


def wait_for(condition: Callable[[], object], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    c = Collector(make_config(), tmp_path / "events.db", label="kept")
    await c.start(port=0, http_port=0)
    yield c
    await c.stop()


async def health(url: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as response:
        return response.status, dict(await response.json())


async def post(url: str, events: list[dict[str, Any]]) -> int:
    async with aiohttp.ClientSession() as http, http.post(f"{url}/events", json=events) as response:
        return response.status


def kill_writer(writer_pid: int | None) -> int:
    assert writer_pid is not None
    os.kill(writer_pid, signal.SIGKILL)
    return writer_pid


async def test_a_killed_writer_is_restarted_into_the_same_session(
    collector: Collector, tmp_path: Path
) -> None:
    db = tmp_path / "events.db"
    session = collector.session_id
    url = collector.http_url or ""
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps({"event": "before", "messageId": "before"}))
        assert await recv_until_ack(ws, 1) == [{"ack": 1}]
        killed = kill_writer(collector.writer.pid)
        await until(lambda: collector.writer.restarts == 1, what="the restart")
        assert collector.writer.pid not in (None, killed)
        # The same connection goes on: its frames reach the new writer and are acknowledged.
        await ws.send(json.dumps({"event": "after", "messageId": "after"}))
        assert await recv_until_ack(ws, 2) == [{"ack": 2}]
    assert await post(url, [{"event": "over http", "messageId": "http"}]) == 200
    status, said = await health(url)
    assert (status, said["status"], said["writer_restarts"], said["session"]) == (
        200,
        "ok",
        1,
        session,
    )
    assert said["events"] == 3
    await collector.stop()
    with Reader(db) as reader:
        (kept,) = reader.sessions()
        names = [(e.session_id, e.name) for e in reader.query()]
    assert names == [(session, "before"), (session, "after"), (session, "over http")]
    assert (kept.id, kept.label, kept.events) == (session, "kept", 3)
    assert kept.ended_at is not None
    assert kept.meta["writer_restarts"] == 1


async def test_nothing_acknowledged_is_lost_when_the_writer_dies_under_load(
    collector: Collector, tmp_path: Path
) -> None:
    acked: set[str] = set()
    refused_frames = 0
    lost_replies: list[str] = []

    async def client(n: int) -> None:
        nonlocal refused_frames
        frames: dict[int, list[str]] = {}
        sent = 0
        try:
            async with connect(collector.ws_url) as ws:

                async def reader() -> None:
                    async for message in ws:
                        reply = json.loads(message)
                        if "last_frame" in reply:
                            lost_replies.append(reply["error"])
                        for k in [k for k in frames if k <= reply.get("ack", 0)]:
                            acked.update(frames.pop(k))

                task = asyncio.create_task(reader())
                while sent < 400 and not task.done():
                    sent += 1
                    ids = [f"{n}-{sent}-{i}" for i in range(20)]
                    frames[sent] = ids
                    await ws.send(json.dumps([{"event": "load", "messageId": m} for m in ids]))
                    if sent % 20 == 0:
                        await asyncio.sleep(0.005)
                await asyncio.wait_for(task, 10)
        except (ConnectionClosed, TimeoutError):
            pass
        refused_frames += len(frames)

    clients = [asyncio.create_task(client(n)) for n in range(3)]
    await until(lambda: collector.writer.stats.events > 2000, what="some load")
    kill_writer(collector.writer.pid)
    await asyncio.gather(*clients)
    await until(lambda: collector.writer.restarts == 1, what="the restart")
    await collector.stop()
    with Reader(tmp_path / "events.db") as reader:
        stored = {e.message_id for e in reader.query()}
        sessions = reader.sessions()
    assert acked and acked <= stored
    assert refused_frames > 0  # the kill landed while frames were in flight
    # The dead writer may have committed its last batch before reporting it: the client is told
    # those frames were not acknowledged, never that they were not stored.
    assert lost_replies
    assert all(
        "died (signal 9)" in r and "not acknowledged (they may be stored; resend them)" in r
        for r in lost_replies
    ), lost_replies
    assert [s.id for s in sessions] == [collector.session_id]


async def test_health_tells_the_truth_in_each_phase(collector: Collector) -> None:
    url = collector.http_url or ""
    writer = collector.writer
    assert await health(url) == (200, (await health(url))[1])
    assert (await health(url))[1]["status"] == "ok"
    # Down, and waiting to restart (a long first delay makes the phase last).
    writer.restart_delays = (1.0, 0.05, 0.05)
    kill_writer(writer.pid)
    await until(lambda: writer.problem is not None, what="the death noticed")
    status, said = await health(url)
    assert status == 503 and said["status"] == "error"
    assert re.fullmatch(
        r"the store writer for .*events\.db died \(signal 9\); restarting it", said["error"]
    )
    assert await post(url, [{"event": "while down"}]) == 500
    # Restarted.
    await until(lambda: writer.restarts == 1, what="the restart")
    status, said = await health(url)
    assert (status, said["status"], "error" in said) == (200, "ok", False)
    assert await post(url, [{"event": "restarted"}]) == 200
    # Past the policy: three restarts in the last minute, then no more.
    for n in (2, 3):
        kill_writer(writer.pid)
        await until(lambda n=n: writer.restarts == n, what=f"restart {n}")  # type: ignore[misc]
    kill_writer(writer.pid)
    await until(lambda: writer.failure is not None, what="giving up")
    status, said = await health(url)
    assert status == 503 and said["status"] == "error"
    assert said["error"] == (
        f"the store writer for {collector.db_path} died (signal 9) and was not restarted"
        f" (3 restarts in the last 60 s): nothing more can be stored in session"
        f" {collector.session_id}"
    )
    assert await post(url, [{"event": "lost"}]) == 500
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps({"event": "lost too"}))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                while True:
                    assert "ack" not in json.loads(await ws.recv())
        assert ws.close_code == 1011
    await collector.stop()
    with Reader(collector.db_path) as reader:
        (session,) = reader.sessions()
        names = [e.name for e in reader.query()]
    assert names == ["restarted"]
    assert session.ended_at is not None  # ended by the collector itself, with no writer left


async def test_a_writer_that_cannot_be_restarted_leaves_the_collector_saying_so(
    collector: Collector,
) -> None:
    """The store file is gone (deleted under the running writer): no new writer can continue the
    session, and none creates a new store in its place."""
    url = collector.http_url or ""
    writer = collector.writer
    writer.restart_delays = (0.01,)
    db = collector.db_path
    for name in (db.name, f"{db.name}-wal", f"{db.name}-shm"):
        (db.parent / name).unlink()
    kill_writer(writer.pid)
    await until(lambda: writer.failure is not None, what="giving up")
    status, said = await health(url)
    assert status == 503
    assert said["error"] == (
        f"the store writer for {db} died (signal 9) and could not be restarted ({db}: no such"
        " store (start `eventtui collect` or pass --db)): nothing more can be stored in session 1"
    )
    assert writer.restarts == 0
    assert await post(url, [{"event": "lost"}]) == 500
    await collector.stop()  # the session cannot be ended either: said in the log, no crash
    assert not db.exists()


async def test_the_status_line_shows_a_dead_writer(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    collector = Collector(make_config(), path, source="watch", with_http=False)
    collector.writer.restart_limit = 0  # the first death is final
    feed = StoreFeed(path, mode="watch", live=collector.health, poll_interval=0.05)
    thread = CollectorThread(collector)
    await asyncio.to_thread(thread.start, 0)
    feed.session = collector.session_id
    app = EventApp(feed)
    try:
        async with app.run_test(size=(160, 45)):
            await until(lambda: "● collecting" in app.status_bar.line(app.feed_status, 0).plain)
            kill_writer(collector.writer.pid)

            def said() -> str:
                return app.status_bar.line(app.feed_status, 0, width=400).plain

            await until(lambda: "✖" in said(), what="the status line")
            assert "● collecting" not in said()
            assert "died (signal 9) and was not restarted" in said()
            assert "ws://127.0.0.1:" in said()  # still listening: clients hear errors
    finally:
        await asyncio.to_thread(thread.stop)


def test_watch_writes_no_log_line_over_the_screen(tmp_path: Path, capfd: Any) -> None:
    """The restart's log line waits until the TUI has given the terminal back."""
    from eventtui.config import CollectorConfig, Config
    from eventtui.tui.launch import run_watch

    stderr = logging.StreamHandler(sys.stderr)  # as `eventtui` sets it up (logging.basicConfig)
    logging.getLogger().addHandler(stderr)
    during: list[str] = []

    async def drive(pilot: Any) -> None:
        app = pilot.app
        await until(lambda: app.feed_status is not None and app.feed_status.addresses)
        kill_writer(writer_pid_of(os.getpid()))
        await until(lambda: app.feed.live()["writer_restarts"] == 1, what="the restart")
        during.append(capfd.readouterr().err)
        await pilot.press("q")

    try:
        ran = run_watch(
            Config(collector=CollectorConfig(port=0)),
            tmp_path / "events.db",
            run_app=lambda app: app.run(headless=True, auto_pilot=drive),
            tune_gc=False,
        )
    finally:
        logging.getLogger().removeHandler(stderr)
    assert ran.writer.restarts == 1
    assert "died (signal 9)" not in during[0]
    assert "died (signal 9); restarted, session 1 continues" in capfd.readouterr().err


# --- `eventtui collect`, as a user runs it -------------------------------------------------------


def writer_pid_of(parent: int) -> int | None:
    """The live store-writer child of process `parent` (a killed one is a zombie: no cmdline)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == parent and b"writer_process" in cmdline:
            return int(entry.name)
    return None


def http_url(collect: Collect) -> str:
    return collect.first_line.split(" and ")[1]


def get_health(collect: Collect) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{http_url(collect)}/health", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def post_events(collect: Collect, events: list[dict[str, Any]]) -> int:
    request = urllib.request.Request(
        f"{http_url(collect)}/events",
        data=json.dumps(events).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def kill_and_wait_for_restart(collect: Collect, restarts: int) -> None:
    killed = writer_pid_of(collect.proc.pid)
    assert killed is not None
    os.kill(killed, signal.SIGKILL)
    wait_for(
        lambda: get_health(collect)[1].get("writer_restarts") == restarts,
        what=f"restart {restarts}",
    )
    assert writer_pid_of(collect.proc.pid) not in (None, killed)


def test_collect_restarts_a_killed_writer_and_says_so(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    collect = Collect(db)
    try:
        assert post_events(collect, [{"event": "a"}]) == 200
        kill_and_wait_for_restart(collect, 1)
        assert post_events(collect, [{"event": "b"}]) == 200
        code, err = collect.stop()
    finally:
        collect.close()
    assert code == 0, err
    lines = err.strip().splitlines()
    assert re.fullmatch(
        r"eventtui: WARNING: the store writer for .*events\.db died \(signal 9\); restarted,"
        r" session 1 continues",
        lines[0],
    ), err
    assert lines[-1] == (
        "stopped: stored 2 events (0 duplicates, 0 refused) in session 1; the store writer was"
        " restarted once"
    )
    assert len(lines) == 2, err


def test_collect_exits_3_when_the_writer_cannot_be_restarted(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    collect = Collect(db)
    try:
        assert post_events(collect, [{"event": "kept"}]) == 200
        for n in (1, 2, 3):
            kill_and_wait_for_restart(collect, n)
        pid = writer_pid_of(collect.proc.pid)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: get_health(collect)[0] == 503, what="the collector to say it")
        status, said = get_health(collect)
        assert status == 503 and said["status"] == "error" and "was not restarted" in said["error"]
        assert post_events(collect, [{"event": "lost"}, {"event": "lost too"}]) == 500
        code, err = collect.stop()
    finally:
        collect.close()
    assert code == 3, err
    last = err.strip().splitlines()[-1]
    assert last == (
        f"eventtui: error: the store writer for {db} died (signal 9) and was not restarted"
        " (3 restarts in the last 60 s): 2 events were refused, never stored or acknowledged;"
        " session 1 holds the 1 event committed before"
    )
    assert "stopped: stored" not in err
    with sqlite3.connect(db) as conn:
        (ended,) = conn.execute("SELECT ended_at FROM sessions WHERE id = 1").fetchone()
        names = [r[0] for r in conn.execute("SELECT name FROM events")]
    assert ended is not None
    assert names == ["kept"]
