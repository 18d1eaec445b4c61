"""The live TUI driven by Pilot, in both modes, against real things.

- open: a store written by a `Writer` in the test; the app polls it.
- watch: a real collector on port 0 in a `CollectorThread`; events arrive over a real websocket
  and the writer's commit signal wakes the app.

Every wait is on a condition with a timeout (`until`), never a bare sleep.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from eventtui.collector import Collector
from eventtui.collector.thread import CollectorThread
from eventtui.config import CollectorConfig, Config
from eventtui.model import normalise
from eventtui.store import Commit, Reader, Submission, Writer
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from eventtui.tui.screens.help import HelpScreen
from eventtui.tui.widgets.payload import copy_text
from tests.conftest import recv_until_ack, until

SIZE = (160, 45)


def event(name: str, **properties: Any) -> dict[str, Any]:
    return {"event": name, "properties": properties, "userId": "u1"}


Emit = Callable[[list[dict[str, Any]]], Awaitable[None]]


@dataclass
class Harness:
    mode: str
    app: EventApp
    emit: Emit  # store the events; returns once they are committed
    path: Path


async def _open_harness(path: Path) -> AsyncIterator[Harness]:
    writer = Writer(path, source="test")
    # Tickets come back with the commit; calling them is the listener's job (as Ingest does).
    writer.add_listener(lambda commit: [t(commit) for t in commit.tickets if t is not None])
    await asyncio.to_thread(writer.start)
    loop = asyncio.get_running_loop()

    async def emit(events: list[dict[str, Any]]) -> None:
        done: asyncio.Future[Commit] = loop.create_future()
        rows = [normalise(e, client="test", received_at=time.time()) for e in events]
        writer.submit(
            Submission(rows, ticket=lambda c: loop.call_soon_threadsafe(done.set_result, c))
        )
        await asyncio.wait_for(done, 5)

    # A real commit listener only exists in-process; here the feed must find rows by polling.
    app = EventApp(StoreFeed(path, mode="open", poll_interval=0.05))
    try:
        yield Harness("open", app, emit, path)
    finally:
        await asyncio.to_thread(writer.close)


async def _watch_harness(path: Path) -> AsyncIterator[Harness]:
    collector = Collector(
        Config(collector=CollectorConfig()), path, source="watch", with_http=False
    )
    # A long poll: in watch mode rows must arrive because the commit signal woke the feed.
    feed = StoreFeed(path, mode="watch", live=collector.health, poll_interval=10.0)
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

    app = EventApp(feed)
    try:
        yield Harness("watch", app, emit, path)
    finally:
        await ws.close()
        await asyncio.to_thread(thread.stop)


@pytest.fixture(params=["open", "watch"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    make = _open_harness if request.param == "open" else _watch_harness
    async for h in make(tmp_path / "events.db"):
        yield h


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[Harness]:
    """The app on a store (`open`): for what does not depend on the mode (painting, sizing)."""
    async for h in _open_harness(tmp_path / "events.db"):
        yield h


def subtitle(widget: Any) -> str:
    return str(widget.border_subtitle or "")


# --- every key, in both modes -------------------------------------------------------------------


async def test_rows_arrive_and_counters_move(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE):
        await until(lambda: app.feed_status is not None, what="a status")
        await harness.emit([event("signup", plan="pro"), event("page_view", path="/")])
        await until(lambda: len(app.stream.rows) == 2, what="two rows")
        assert [r.name for r in app.stream.rows] == ["signup", "page_view"]
        await until(lambda: set(app.counters_panel.names) >= {"signup", "page_view"})
        assert app.counters.by_name["signup"].total == 1
        await until(lambda: app.status_bar.status and app.status_bar.status.stored == 2)
        collecting = app.status_bar.status.collecting  # type: ignore[union-attr]
        assert collecting is (harness.mode == "watch")
        # Following: the payload pane shows the newest event.
        await until(lambda: app.payload.row is not None and app.payload.row.name == "page_view")


async def test_space_pauses_and_counts_new_events(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE) as pilot:
        await harness.emit([event("a")])
        await until(lambda: len(app.stream.rows) == 1)
        await pilot.press("space")
        assert app.stream.paused
        await harness.emit([event("b"), event("c")])
        await until(lambda: app.stream.unseen == 2, what="2 new while paused")
        assert len(app.stream.rows) == 1
        assert "paused" in subtitle(app.stream) and "2 new" in subtitle(app.stream)
        # Counters keep counting while the stream is paused.
        assert app.counters.by_name["c"].total == 1
        await pilot.press("space")
        await until(lambda: len(app.stream.rows) == 3)
        assert not app.stream.paused and app.stream.following
        assert "following" in subtitle(app.stream)


async def test_arrows_select_enter_opens_and_f_follows(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE) as pilot:
        await harness.emit([event(f"e{i}", i=i) for i in range(5)])
        await until(lambda: len(app.stream.rows) == 5)
        await pilot.press("up")
        assert app.stream.selected is not None and app.stream.selected.name == "e4"
        await pilot.press("up", "up")
        assert app.stream.selected.name == "e2"
        assert app.payload.row is not None and app.payload.row.name == "e2"
        assert not app.stream.following
        # New events do not move the view of a user who is reading; they are counted.
        await harness.emit([event("late")])
        await until(lambda: app.stream.unseen == 1, what="1 new")
        assert "1 new" in subtitle(app.stream)
        assert app.stream.selected.name == "e2"
        await pilot.press("down")
        assert app.stream.selected.name == "e3"
        await pilot.press("enter")
        assert app.focused is app.payload
        await pilot.press("f")
        assert app.stream.following and app.stream.cursor is None and app.stream.unseen == 0
        assert app.payload.row is not None and app.payload.row.name == "late"
        await pilot.press("escape")
        assert app.focused is app.stream
        await pilot.press("home")
        assert app.stream.selected.name == "e0"
        await pilot.press("end")
        assert app.stream.following


async def test_c_copies_the_payload(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE) as pilot:
        await harness.emit([event("checkout_completed", plan="team", cart_total=49.5)])
        await until(lambda: len(app.stream.rows) == 1)
        await pilot.press("up", "c")
        row = app.stream.selected
        assert row is not None
        assert app.clipboard == copy_text(row)
        assert json.loads(app.clipboard)["properties"] == {"plan": "team", "cart_total": 49.5}
        await until(lambda: any("Copied event" in n.message for n in app._notifications))


async def test_s_cycles_counter_sort(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE) as pilot:
        await harness.emit([event("zeta") for _ in range(3)] + [event("alpha")])
        await until(lambda: set(app.counters_panel.names) == {"zeta", "alpha"})
        assert app.sort_key == "rate" and app.counters_panel.names == ["zeta", "alpha"]
        seen = []
        for _ in range(4):
            await pilot.press("s")
            seen.append(app.sort_key)
        assert seen == ["total", "last seen", "name", "rate"]
        await pilot.press("s", "s", "s")
        assert app.sort_key == "name" and app.counters_panel.names == ["alpha", "zeta"]
        assert "by name" in str(app.counters_panel.border_title)


async def test_filter_rereads_history_and_tails_matching_events(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE) as pilot:
        await harness.emit(
            [event("checkout", plan="pro"), event("page_view"), event("checkout", plan="free")]
        )
        await until(lambda: len(app.stream.rows) == 3)
        await pilot.press("slash")
        assert app.filter_bar.is_open and app.focused is app.filter_bar.input
        await pilot.press(*"plan=pro", "enter")
        await until(lambda: [r.name for r in app.stream.rows] == ["checkout"], what="filtered")
        assert not app.filter_bar.is_open
        assert "plan=pro" in str(app.stream.border_title)
        await harness.emit([event("checkout", plan="pro"), event("checkout", plan="free")])
        await until(lambda: len(app.stream.rows) == 2, what="a matching new event")
        assert all(json.loads(r.properties)["plan"] == "pro" for r in app.stream.rows)
        # Counters still count everything.
        await until(lambda: app.counters.by_name["checkout"].total == 4)

        # A bad filter: the error shows inline, the bar stays open, the old filter stays.
        # (Typing is shown above; here the value is set, as Pilot spends ~70 ms on each key.)
        await pilot.press("slash")
        app.filter_bar.input.value = "plan>"
        await pilot.press("enter")
        assert app.filter_bar.is_open
        error = str(app.filter_bar.error.render())
        assert error.startswith("✗") and "plan" in error
        assert app.filter_text == "plan=pro"
        await pilot.press("escape")
        assert not app.filter_bar.is_open and app.focused is app.stream

        # ↑ recalls the last filter; an empty filter shows everything again.
        await pilot.press("slash", "up")
        assert app.filter_bar.input.value == "plan=pro"
        app.filter_bar.input.value = ""
        await pilot.press("enter")
        await until(lambda: len(app.stream.rows) == 5, what="every event again")
        assert app.filter_text == ""


async def test_enter_on_a_counter_filters_by_name(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE) as pilot:
        await harness.emit([event("a"), event("b"), event("a")])
        await until(lambda: set(app.counters_panel.names) == {"a", "b"})
        app.counters_panel.focus()
        await pilot.press("down", "enter")
        await until(lambda: app.filter_text == "name:a")
        await until(lambda: [r.name for r in app.stream.rows] == ["a", "a"])


async def test_help_and_command_palette(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("ctrl+p")
        await pilot.press(*"pause")
        await pilot.press("enter")
        await until(lambda: app.stream.paused, what="paused from the palette")


async def test_q_quits(harness: Harness) -> None:
    app = harness.app
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await until(lambda: not app.is_running, what="the app to exit")


# --- end to end -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_watch_quit_stops_the_collector_cleanly(tmp_path: Path) -> None:
    """`run_watch` end to end: a websocket client's event shows, q quits, the session is closed."""
    from eventtui.tui.launch import run_watch

    path = tmp_path / "events.db"
    seen: dict[str, Any] = {}

    async def drive(pilot: Any) -> None:
        app = pilot.app
        await until(lambda: app.feed_status is not None and app.feed_status.addresses)
        url = app.feed_status.addresses[0]
        async with connect(url) as ws:
            await ws.send(json.dumps(event("from_client", n=1)))
            seen["ack"] = json.loads(await asyncio.wait_for(ws.recv(), 5))
            await until(lambda: [r.name for r in app.stream.rows] == ["from_client"])
            await until(lambda: app.status_bar.status.clients == 1, what="1 client shown")
        await pilot.press("q")

    config = Config(collector=CollectorConfig(port=0))
    ran = run_watch(
        config,
        path,
        run_app=lambda app: app.run(headless=True, auto_pilot=drive),
        tune_gc=False,  # process-wide: not for a test process
    )
    assert seen["ack"] == {"ack": 1}
    assert ran.events == 1 and ran.return_code == 0
    with Reader(path) as reader:
        (session,) = reader.sessions()
        assert session.ended_at is not None and session.events == 1


def test_watch_reports_a_taken_port_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "eventtui",
                "watch",
                "--db",
                str(tmp_path / "e.db"),
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"eventtui: error: port {port} on 127.0.0.1 is already in use; pick another with --port (0 picks a free one)"
    ]


def test_open_on_a_missing_store_says_so(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eventtui", "open", "--db", str(tmp_path / "nope.db")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "nope.db" in result.stderr


def test_demo_traffic_shows_every_kind_of_event(tmp_path: Path) -> None:
    """The demo app through a real collector: valid, invalid, refused, and a heartbeat that stops."""
    from eventtui.demo import DemoTraffic, demo_config

    config = demo_config(Config(collector=CollectorConfig(port=0)))
    path = tmp_path / "demo.db"
    collector = Collector(config, path, source="demo", with_http=False)  # checks the demo plan
    thread = CollectorThread(collector)
    thread.start(0)
    heartbeat_stopped = threading.Event()
    traffic = DemoTraffic(collector.ws_url, seed=7, pace=0.02, heartbeat_for=0.5)
    try:
        traffic.start()
        deadline = time.monotonic() + 20
        names: set[str] = set()
        while time.monotonic() < deadline:
            with Reader(path) as reader:
                rows = reader.query()
                rejects = reader.rejects()
            names = {r.name for r in rows}
            invalid = [r for r in rows if not r.valid]
            if (
                {"page_view", "checkout_completed", "sign_up", "heartbeat"} <= names
                and len({r.name for r in invalid}) >= 2
                and len(rejects) >= 2
            ):
                break
            threading.Event().wait(0.1)
        else:
            raise AssertionError(f"demo traffic incomplete: {names}")
        heartbeat_stopped.set()
    finally:
        traffic.stop()
        thread.stop()
    assert traffic.error is None
    beats = [r for r in rows if r.name == "heartbeat"]
    assert beats and max(r.received_at for r in beats) - min(r.received_at for r in rows) < 5
    assert any("cart_total" in e for r in invalid for e in r.error_list())
    assert {"the event name" in r["reason"] or "properties" in r["reason"] for r in rejects} == {
        True
    }


# --- with a fixed feed: the UI alone --------------------------------------------------------------


def _row(id: int, name: str, properties: str = "{}", **fields: Any) -> Any:
    from eventtui.store import EventRow

    values: dict[str, Any] = {
        "id": id,
        "session_id": 1,
        "received_at": time.time(),
        "sent_at": None,
        "name": name,
        "type": "track",
        "user_id": "u1",
        "anonymous_id": None,
        "message_id": None,
        "client": "test",
        "properties": properties,
        "context": "{}",
        "valid": True,
        "errors": None,
        "extra": None,
    }
    values.update(fields)
    return EventRow(**values)


async def test_keys_typed_in_one_burst_all_reach_the_filter() -> None:
    """A fast typist (or a paste) sends "/plan=pro⏎" before any repaint: no key may go astray."""
    from textual import events

    from eventtui.tui.feeds import StaticFeed

    feed = StaticFeed([_row(1, "a", '{"plan":"pro"}')])
    app = EventApp(feed)
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: len(app.stream.rows) == 1)
        driver = app._driver
        assert driver is not None
        for key, char in [("slash", "/"), *((c, c) for c in "plan"), ("equals_sign", "=")]:
            driver.send_message(events.Key(key, char))
        for c in "pro":
            driver.send_message(events.Key(c, c))
        driver.send_message(events.Key("enter", "\r"))
        await until(lambda: feed.requests, what="the filter to be applied")
        assert feed.requests[-1][2] == 1
        assert app.filter_text == "plan=pro"
        # Inside the filter, "/" is text, not the filter key.
        await pilot.press("slash", "ctrl+u", "slash", "a")
        assert app.filter_bar.input.value == "/a"


async def test_hostile_names_cannot_run_actions_or_break_the_layout() -> None:
    from eventtui.tui.feeds import StaticFeed

    rows = [
        _row(1, "[@click=app.quit]click me[/]", '{"[b]k":"[@click=app.quit]v"}'),
        _row(2, "\x1b]52;c;aGk=\x07\x1b[2J" + "n" * 10_000, '{"x":"\\u202eevil\\u0000"}'),
        _row(3, "deep", '{"d":' * 1000 + "1" + "}" * 1000),
    ]
    app = EventApp(StaticFeed(rows))
    async with app.run_test(size=(100, 30)) as pilot:
        await until(lambda: len(app.stream.rows) == 3)
        await pilot.click("#stream", offset=(20, 1))  # on the "[@click=...]" name
        assert app.is_running and app.stream.selected is not None
        assert app.stream.selected.id == 1
        await pilot.click("#counters", offset=(10, 2))
        assert app.is_running
        await pilot.click("#stream", offset=(5, 3))
        assert app.stream.selected.name == "deep"
        assert "too deeply nested" in app.payload.rendered_text
        lines = ["".join(seg.text for seg in app.stream.render_line(y)) for y in range(3)]
        assert all("\x1b" not in line and "\x00" not in line for line in lines)
        counter_lines = [
            "".join(seg.text for seg in app.counters_panel.render_line(y)) for y in range(1, 4)
        ]
        # Every name, however long, leaves room for its total, rate and age.
        assert all(re.search(r" 1 +\d+ +\d+s", line) for line in counter_lines), counter_lines
        assert any("…" in line for line in counter_lines)


async def test_large_payloads_are_read_when_shown(tmp_path: Path) -> None:
    """A 100 KB event reaches the stream without its payload; the pane reads it from the store."""
    path = tmp_path / "events.db"
    writer = Writer(path, source="test")
    writer.add_listener(lambda commit: [t(commit) for t in commit.tickets if t is not None])
    await asyncio.to_thread(writer.start)
    done = threading.Event()
    big = normalise(event("big", blob="x" * 100_000), client="test", received_at=time.time())
    writer.submit(Submission([big], ticket=lambda c: done.set()))
    await asyncio.to_thread(done.wait, 5)
    app = EventApp(StoreFeed(path, mode="open", poll_interval=0.05))
    try:
        async with app.run_test(size=SIZE) as pilot:
            await until(lambda: len(app.stream.rows) == 1)
            assert app.stream.rows[0].omitted > 100_000  # the payload stayed in the store
            await pilot.press("up")
            await until(
                lambda: app.payload.row is not None and not app.payload.row.omitted,
                what="the full event",
            )
            assert '"blob"' in app.payload.rendered_text
            await pilot.press("c")
            assert len(app.clipboard) > 100_000
    finally:
        await asyncio.to_thread(writer.close)


async def test_a_store_that_cannot_be_read_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "not-a-store.db"
    path.write_text("hello")
    app = EventApp(StoreFeed(path, mode="open"))
    async with app.run_test(size=SIZE):
        await until(lambda: app.feed_error is not None, what="the error")
        assert str(path) in app.feed_error  # type: ignore[operator]
        assert "✖" in str(app.status_bar.render())


# --- replay: the same app on a virtual clock ------------------------------------------------------


def test_replay_plays_a_session_on_its_recorded_clock(tmp_path: Path) -> None:
    """Counters and ages follow recorded time; space, +/-, ←/→ and n drive the playback."""
    from eventtui.config import Duration, Expectation
    from eventtui.tui.launch import run_replay

    path = tmp_path / "events.db"
    start = 1_700_000_000.0
    writer = Writer(path, source="watch")
    writer.start()
    done = threading.Event()
    writer.add_listener(lambda commit: done.set())
    # A heartbeat every 2 s for 10 s, then silence; page views throughout: 40 recorded seconds.
    rows = [
        normalise(event("heartbeat"), client="t", received_at=start + t) for t in range(0, 10, 2)
    ]
    rows += [normalise(event("page_view"), client="t", received_at=start + t) for t in range(0, 40)]
    rows.sort(key=lambda r: r.received_at)
    writer.submit(Submission(rows))
    done.wait(5)
    writer.close()
    config = Config(expect=(Expectation(event="heartbeat", every=Duration(4), grace=Duration(4)),))
    seen: dict[str, Any] = {}

    async def drive(pilot: Any) -> None:
        app = pilot.app
        await until(lambda: len(app.stream.rows) >= 3, what="replayed rows")
        assert app.clock() < start + 40  # virtual time, not the wall clock
        await pilot.press("space")  # pause playback: time stands still
        paused_at = app.clock()
        await pilot.pause(0.3)
        assert app.clock() == paused_at
        assert "‖ replay" in str(app.status_bar.render()) or app.feed.clock.paused
        await pilot.press("plus", "plus")
        assert app.feed.clock.speed == 10.0
        await pilot.press("minus")
        assert app.feed.clock.speed == 5.0
        await pilot.press("space", "n")  # resume, then jump to the heartbeat's anomaly
        await until(lambda: app.clock() >= start + 13, what="the jump to the anomaly")
        await until(
            lambda: (
                app.counters_panel.rows
                and app.counters_panel.rows[0][1].label in ("late", "missing")
            ),
            what="heartbeat flagged",
        )
        seen["top"] = app.counters_panel.names[0]
        before = app.counters.by_name["page_view"].total
        await pilot.press("left", "left")  # back 20 s: counters start over from the beginning
        await until(
            lambda: (
                app.counters.by_name.get("page_view") is None
                or app.counters.by_name["page_view"].total < before
            ),
            what="a restart",
        )
        await pilot.press("q")

    code = run_replay(
        config,
        path,
        speed=2.0,
        run_app=lambda app: app.run(headless=True, auto_pilot=drive, size=(160, 45)),
        tune_gc=False,
    )
    assert code == 0
    assert seen["top"] == "heartbeat"


def test_demo_on_a_taken_port_takes_free_ones_and_says_so(tmp_path: Path) -> None:
    from eventtui.config import CollectorConfig, Config
    from eventtui.tui.launch import run_watch

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        notices: list[str] = []
        ran = run_watch(
            Config(collector=CollectorConfig(port=port)),
            tmp_path / "demo.db",
            demo=True,
            run_app=lambda app: notices.append(app.notice or ""),
            tune_gc=False,
        )
    (notice,) = notices
    assert notice.startswith(
        f"port {port} on 127.0.0.1 is already in use, so the demo took free ones."
    )
    assert "Demo app sending to ws://127.0.0.1:" in notice and f":{port} " not in notice
    assert ran.return_code == 0


def test_nothing_is_written_to_the_terminal_while_the_tui_runs(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Stderr is the screen Textual draws on: a log record, a warning, a thread's exception all
    wait until the app has given the screen back."""
    import logging
    import threading
    import warnings

    from eventtui.tui.launch import run_watch

    during: list[str] = []

    def run_app(app: Any) -> None:
        capfd.readouterr()
        logging.getLogger("eventtui.somewhere").error("a record")
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # the suite turns warnings into errors
            warnings.warn("a warning", UserWarning, stacklevel=1)
        thread = threading.Thread(target=lambda: 1 / 0, name="a-worker")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pytest's own thread-exception warning
            thread.start()
        thread.join()
        during.append(capfd.readouterr().err)

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    run_watch(
        Config(collector=CollectorConfig(port=0)), tmp_path / "e.db", run_app=run_app, tune_gc=False
    )
    assert during == [""]
    after = capfd.readouterr().err
    assert "a record" in after and "a warning" in after and "a-worker failed" in after


async def test_new_rows_are_painted_when_they_arrive_not_at_the_next_tick(opened: Harness) -> None:
    """Commit to screen is bounded by the feed's wake-up and a short paint gap, not the tick."""
    app = opened.app
    app.paint_interval = 60.0  # a tick that never comes within the test
    async with app.run_test(size=SIZE):
        await until(lambda: app.feed_status is not None, what="the feed attached")
        committed = time.monotonic()
        await opened.emit([event("arrives")])
        await until(lambda: [r.name for r in app.stream.rows] == ["arrives"], timeout=5)
        assert time.monotonic() - committed < 2.0


async def test_a_new_name_reaches_the_counters_with_its_rows(
    opened: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 1k events/s a row scrolls out of the stream within one paint; a name never seen before
    shows in the counters with the paint that brings its rows, not at the counters' own pace."""
    from eventtui.tui import app as app_module

    monkeypatch.setattr(app_module, "COUNTERS_INTERVAL", 60.0)  # the pace: never within the test
    app = opened.app
    app.paint_interval = 60.0  # no tick either: only arriving rows paint
    async with app.run_test(size=SIZE):
        await until(lambda: app.feed_status is not None, what="the feed attached")
        await opened.emit([event("first")])
        await until(lambda: "first" in app.counters_panel.names, what="the first name")
        await opened.emit([event("first"), event("newcomer")])
        await until(lambda: "newcomer" in [r.name for r in app.stream.rows], what="the row")
        await until(lambda: "newcomer" in app.counters_panel.names, timeout=2, what="its name")


async def test_a_filling_stream_follows_its_newest_row_and_sizes_its_scrollbar(
    opened: Harness,
) -> None:
    """The stream grows without a layout of the whole screen once its scrollbar shows: the
    scrollbar, the scroll position and the rows on screen must still keep up."""
    app = opened.app
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.feed_status is not None, what="the feed attached")
        for batch in range(3):
            await opened.emit([event(f"e{batch}_{i}") for i in range(60)])
            last = f"e{batch}_59"
            await until(lambda: app.stream.rows and app.stream.rows[-1].name == last)  # noqa: B023
            await pilot.pause()
            stream = app.stream
            assert stream.virtual_size.height == len(stream.rows) == 60 * (batch + 1)
            assert stream.vertical_scrollbar.window_virtual_size == len(stream.rows)
            assert stream.scroll_y == stream.max_scroll_y > 0
            bottom = stream.scrollable_content_region.height - 1
            await until(
                lambda: last in "".join(s.text for s in stream.render_line(bottom)),  # noqa: B023
                what=f"{last} on the last line",
            )


async def test_the_counters_panel_grows_with_new_names_and_sizes_its_scrollbar(
    opened: Harness,
) -> None:
    """New names resize the counters panel without a layout of the whole screen: its rows, and
    its scrollbar once they outgrow it, must still be right."""
    app = opened.app
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.feed_status is not None, what="the feed attached")
        panel = app.counters_panel
        for count in (3, 6, 40, 45):
            await opened.emit([event(f"name_{i:02}") for i in range(count)])
            await until(lambda: len(panel.names) == count, what=f"{count} names")  # noqa: B023
            await pilot.pause()
            assert panel.virtual_size.height == count + 1
            if count + 1 > panel.scrollable_content_region.height:
                assert panel.show_vertical_scrollbar
                assert panel.vertical_scrollbar.window_virtual_size == count + 1
            else:
                assert not panel.show_vertical_scrollbar
            shown = "".join(s.text for s in panel.render_line(1))
            assert panel.names[0] in shown


async def test_the_payload_pane_is_as_tall_as_each_event_it_follows(opened: Harness) -> None:
    """The payload pane skips the screen's layout when the next event has as many lines as the
    last: its body must be as tall, event after event, as a full layout makes it."""
    app = opened.app
    async with app.run_test(size=SIZE) as pilot:
        await until(lambda: app.feed_status is not None, what="the feed attached")
        body = app.payload._body
        heights = []
        for i, size in enumerate((2, 2, 30, 30, 1, 3)):
            await opened.emit([event(f"e{i}", **{f"p{k}": k for k in range(size)})])
            await until(lambda: f"e{i}" in app.payload.rendered_text, what=f"e{i}")  # noqa: B023
            await pilot.pause()
            shown = body.size.height
            app.screen.refresh(layout=True)
            await pilot.pause()
            assert body.size.height == shown, (i, size)
            heights.append(shown)
        assert heights[0] == heights[1] < heights[2] == heights[3] > heights[4] < heights[5]


async def test_an_empty_watch_says_where_to_send(tmp_path: Path) -> None:
    harness = _watch_harness(tmp_path / "events.db")
    h = await anext(harness)
    app = h.app
    try:
        async with app.run_test(size=SIZE):

            def shown() -> str:
                return "\n".join(
                    "".join(s.text for s in app.stream.render_line(y)) for y in range(5)
                )

            await until(lambda: "No events yet" in shown(), what="the hint")
            assert "ws://127.0.0.1:" in shown()
            await h.emit([event("hello")])
            await until(lambda: "No events yet" not in shown(), what="the event instead")
    finally:
        await harness.aclose()


async def test_r_shows_what_the_collector_refused_as_text(db: Path, collector: Collector) -> None:
    """Refusals could only be read with sqlite3 or `eventtui rejects`: `r` shows them, the
    reason and the first bytes sent, escapes and markup kept as text."""
    from eventtui.tui.screens.rejects import RejectsScreen

    async with connect(collector.ws_url) as ws:
        await ws.send('{"event": "[bold]x[/bold]", "properties": 7}\x1b[31m')  # not JSON
        await ws.send('{"event": "fine"}')
        await recv_until_ack(ws, 2)
    app = EventApp(StoreFeed(db, mode="open", poll_interval=0.05))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("r")
        assert isinstance(app.screen, RejectsScreen)
        body = app.screen.query_one("#rejects-body")
        await until(lambda: "refused" in str(body.render()), what="the rejects read")
        shown = str(body.render())
        assert "1 refused" in shown and "not valid JSON" in shown, shown
        assert "\\x1b[31m" in shown and "[bold]x[/bold]" in shown, shown
        await pilot.press("escape")
        assert not isinstance(app.screen, RejectsScreen)
