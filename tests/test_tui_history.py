"""The live view starts from the store's history, as `check` does (issue: a restart reset it).

A real store with an earlier session, then the TUI attached as `watch` (a real collector, a new
empty session) or `open` (the newest session empty): counters, states and the stream continue
from what is stored, and a `session:` filter finds an older session.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from eventtui.collector import Collector
from eventtui.collector.thread import CollectorThread
from eventtui.config import CollectorConfig, Config, Expectation
from eventtui.model import normalise
from eventtui.store import Writer
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from eventtui.tui.launch import monitor_states
from tests.conftest import until, write_session

SIZE = (160, 45)
CONFIG = Config(collector=CollectorConfig(port=0), expect=(Expectation(event="hb", every=60.0),))


def history(path: Path, now: float) -> None:
    """Session 1: nine heartbeats a minute apart, the last nine minutes ago, and a bad order."""
    rows = [
        normalise({"event": "hb", "messageId": f"hb-{i}"}, client="t", received_at=now - 60 * i)
        for i in range(17, 8, -1)
    ]
    order = normalise({"event": "order"}, client="t", received_at=now - 120)._replace(
        valid=False, errors='["amount: required"]'
    )
    write_session(path, [*rows, order])


@pytest.fixture
async def watching(tmp_path: Path) -> AsyncIterator[EventApp]:
    path = tmp_path / "events.db"
    history(path, time.time())
    collector = Collector(CONFIG, path, source="watch", with_http=False)
    feed = StoreFeed(path, mode="watch", live=collector.health, poll_interval=10.0)
    collector.writer.add_listener(feed.on_commit)
    thread = CollectorThread(collector)
    await asyncio.to_thread(thread.start, 0)
    feed.session = collector.session_id
    try:
        yield EventApp(feed, states=monitor_states(CONFIG, time.time()))
    finally:
        await asyncio.to_thread(thread.stop)


async def test_watch_continues_counters_and_states_from_the_store(watching: EventApp) -> None:
    app = watching
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: len(app.stream.rows) == 10, what="the stored events in the stream")
        await until(lambda: app.counters.get("hb") is not None, what="hb counted")
        hb = app.counters.get("hb")
        assert hb is not None and hb.total == 9
        assert app.states is not None
        now = time.time()
        # Missing since its last stored beat, not "never seen" from the restart.
        assert app.states.state_of("hb", now).label == "missing"
        assert app.states.state_of("order", now).label == "invalid"
        await pilot.pause()


async def test_a_session_filter_finds_an_older_session(watching: EventApp) -> None:
    app = watching
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: len(app.stream.rows) == 10, what="the stored events")
        await pilot.press("slash", *"session:1", "enter")
        await until(lambda: app.filter_text == "session:1", what="the filter applied")
        await until(lambda: len(app.stream.rows) == 10, what="session 1's events")


async def test_open_on_an_empty_newest_session_shows_the_history(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    history(path, time.time())
    empty = Writer(path, source="watch")
    await asyncio.to_thread(empty.start)
    await asyncio.to_thread(empty.close)
    app = EventApp(StoreFeed(path, mode="open"), states=monitor_states(CONFIG, time.time()))
    async with app.run_test(size=SIZE):
        await until(lambda: len(app.stream.rows) == 10, what="the stored events")
        hb = app.counters.get("hb")
        assert hb is not None and hb.total == 9


def test_watch_says_which_sessions_retention_deleted(tmp_path: Path) -> None:
    import sqlite3

    import msgspec

    from eventtui.config import Duration, StoreConfig
    from eventtui.tui.launch import run_watch

    path = tmp_path / "events.db"
    history(path, time.time())
    with sqlite3.connect(path) as conn:  # that session ended 30 days ago
        conn.execute("UPDATE sessions SET started_at = ?, ended_at = ?", (1.0, 2.0))
    conn.close()
    config = msgspec.structs.replace(CONFIG, store=StoreConfig(retention=Duration(14 * 86400)))
    seen: list[str] = []

    async def drive(pilot: Any) -> None:
        app = pilot.app

        def toast() -> bool:
            seen[:] = [str(n.message) for n in app._notifications]
            return any("retention deleted" in m for m in seen)

        await until(toast, what="the retention toast")
        await pilot.press("q")

    run_watch(
        config, path, run_app=lambda app: app.run(headless=True, auto_pilot=drive), tune_gc=False
    )
    assert any(m.startswith("retention deleted 1 session (1) with 10 events") for m in seen), seen


async def test_open_has_the_newest_rows_counts_and_status_before_its_first_frame(
    tmp_path: Path,
) -> None:
    """`open` read the store only once the app ran: its first frame was empty, and rows, counts
    and the status line followed ~0.1-0.3 s later. The feed reads them while the app starts; the
    app takes them in `on_mount`, and the feed does not post them again (counted once)."""
    from eventtui.tui.messages import CountsSeeded, FeedStatusRead, HistoryLoaded

    path = tmp_path / "events.db"
    history(path, time.time())
    feed = StoreFeed(path, mode="open")
    feed.prefetch()
    taken = feed.first_screen(timeout=10)
    assert [type(m) for m in taken] == [HistoryLoaded, CountsSeeded, FeedStatusRead]
    assert feed.first_screen(timeout=0) == []  # taken once

    feed = StoreFeed(path, mode="open")
    feed.prefetch()
    app = EventApp(feed, states=monitor_states(CONFIG, time.time()))
    async with app.run_test(size=SIZE):
        assert feed.first_screen(timeout=0) == []  # the app took them while mounting
        assert [r.name for r in app.stream.rows] == ["hb"] * 9 + ["order"]
        assert app.status_bar.status is not None and app.status_bar.status.stored == 10
        await until(lambda: app.feed_status is not None and app.feed_status.mode == "open")
        await asyncio.sleep(0.3)  # the feed thread has run its first rounds
        assert app.counters.by_name["hb"].total == 9  # not posted a second time
        assert len(app.stream.rows) == 10
