"""The TUI with a baseline (`b`, `--baseline`), learned type drift and personal data, driven with
Pilot over a real collector."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from eventtui.collector import Collector
from eventtui.collector.thread import CollectorThread
from eventtui.config import Config
from eventtui.store import Reader
from eventtui.tracking import snapshot
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from eventtui.tui.launch import monitor_states
from eventtui.tui.states import BASELINE_CHANGED, BASELINE_MISSING
from tests.conftest import eventtui, until
from tests.test_snapshots_and_diff import record, track

SIZE = (120, 36)
Emit = Callable[[list[dict[str, Any]]], Awaitable[None]]


@pytest.fixture
async def watched(db: Path) -> AsyncIterator[tuple[EventApp, Emit]]:
    """A watch-mode app over a real collector in its thread, and a websocket to send with."""
    collector = Collector(Config(), db, source="watch", with_http=False)
    feed = StoreFeed(db, mode="watch", live=collector.health, poll_interval=10.0)
    collector.writer.add_listener(feed.on_commit)
    thread = CollectorThread(collector)
    await asyncio.to_thread(thread.start, 0)
    feed.session = collector.session_id
    ws = await connect(collector.ws_url)
    frames = 0

    async def emit(events: list[dict[str, Any]]) -> None:
        nonlocal frames
        await ws.send(json.dumps(events))
        frames += 1
        async with asyncio.timeout(5):
            while json.loads(await ws.recv()).get("ack", 0) < frames:
                pass

    app = EventApp(feed, states=monitor_states(Config(), time.time()))
    try:
        yield app, emit
    finally:
        await ws.close()
        await asyncio.to_thread(thread.stop)


def marks(app: EventApp) -> dict[str, str]:
    return {stats.name: mark.symbol for stats, mark in app.counters_panel.rows}


async def test_b_picks_a_baseline_and_regressed_names_are_marked(
    tmp_path: Path, watched: tuple[EventApp, Emit]
) -> None:
    base_db = tmp_path / "base.db"
    await record(
        base_db,
        [track("search", q="x"), track("checkout", total=3), track("page", path="/")],
    )
    with Reader(base_db) as reader:
        snap = snapshot.from_session(reader, 1)
    snap_file = tmp_path / "tracking.snap.json"
    snap_file.write_bytes(snapshot.dumps(snap))
    app, emit = watched
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.feed_status is not None, what="a status")
        await emit([track("checkout", total="3"), track("page", path="/")])
        await until(lambda: len(app.stream.rows) == 2, what="two rows")
        await pilot.press("b")
        await pilot.press("ctrl+a", "ctrl+k")  # clear the suggested name (Input's own keys)
        for ch in str(snap_file):
            await pilot.press(ch if ch != "/" else "slash")
        await pilot.press("enter")
        await until(
            lambda: marks(app).get("search") == "∅" and marks(app).get("checkout") == "≠",
            what="search missing and checkout changed vs the baseline",
        )
        assert marks(app).get("page") != "≠"
        rows = {stats.name: mark for stats, mark in app.counters_panel.rows}
        assert rows["search"] is BASELINE_MISSING and rows["checkout"] is BASELINE_CHANGED
        # The missing name comes back: no longer marked.
        await emit([track("search", q="y")])
        await until(lambda: marks(app).get("search") != "∅", what="search seen again")


async def test_a_bad_baseline_is_said_in_one_toast(
    tmp_path: Path, watched: tuple[EventApp, Emit]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("hello\n")
    app, _ = watched
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("b", "ctrl+a", "ctrl+k")
        for ch in str(bad):
            await pilot.press(ch if ch != "/" else "slash")
        await pilot.press("enter")
        await until(lambda: any("not a tracking snapshot" in n.message for n in app._notifications))
        assert app.states is not None and app.states.baseline is None  # type: ignore[attr-defined]


async def test_type_drift_and_personal_data_show_in_counters_and_payload(
    watched: tuple[EventApp, Emit],
) -> None:
    app, emit = watched
    async with app.run_test(size=SIZE):
        await until(lambda: app.feed_status is not None, what="a status")
        await emit([track("checkout", total=3, cart={"id": "a"})])
        await emit([track("checkout", total="3", cart=None)])
        await emit([track("signup", contact="ada@example.com")])
        await until(lambda: len(app.stream.rows) == 3, what="three rows")
        await until(lambda: marks(app).get("checkout") == "⇄", what="checkout retyped")
        await until(lambda: marks(app).get("signup") == "⚠", what="signup with personal data")
        label = {s.name: m.label for s, m in app.counters_panel.rows}["checkout"]
        assert label == "retyped"
        app.payload.show(app.stream.rows[1])
        text = app.payload.rendered_text
        assert "⇄ type changed: properties.total: number → string since " in text
        assert "⇄ type changed: properties.cart: object → null since " in text
        app.payload.show(app.stream.rows[2])
        assert "⚠ pii: properties.contact: email address" in app.payload.rendered_text


def test_baseline_option_refuses_a_bad_file_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "eventtui-snapshot", "version": 7}')
    done = eventtui("open", "--db", str(tmp_path / "x.db"), "--baseline", str(bad))
    assert done.returncode == 2
    assert "--baseline:" in done.stderr and "written by a newer eventtui" in done.stderr
    assert len(done.stderr.splitlines()) == 1
