"""Anomalies in the live TUI: when states change on screen, the anomalies view, and the bell.

The app runs against a real store (a `Writer` in the test, a polling `StoreFeed`) and a real
monitor built from a TOML config, as `eventtui open` builds it. Time is a `FakeClock` the test moves
(events are stamped with it too), except in one test that holds the app to its promise on the
wall clock. Every wait is on a condition with a timeout, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.widgets import Static

from eventtui.config import CollectorConfig, Config, Duration, Expectation, UIConfig, load_config
from eventtui.model import normalise
from eventtui.monitor import Episode, Monitor
from eventtui.monitor.factory import build_monitor
from eventtui.store import Commit, Submission, Writer
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from eventtui.tui.screens.anomalies import AnomaliesScreen, episode_keys
from eventtui.tui.states import MonitorStates
from tests.conftest import until

SIZE = (140, 40)
START = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC

HEARTBEAT = """
[[expect]]
event = "heartbeat"
every = "30s"
grace = "30s"
"""


pytestmark = pytest.mark.usefixtures("utc")


class FakeClock:
    """Epoch seconds that move only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class BellCountingApp(EventApp):
    """The app with its own `bell` counted instead of sent to the terminal."""

    rings = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Every toast raised, including those that have since given way to newer ones.
        self.raised: list[str] = []

    def bell(self) -> None:
        self.rings += 1

    def notify(self, message: str, *args: Any, **kwargs: Any) -> None:
        self.raised.append(str(message))
        super().notify(message, *args, **kwargs)


Emit = Callable[..., Awaitable[None]]


@asynccontextmanager
async def store_writer(path: Path, clock: Callable[[], float]) -> AsyncIterator[Emit]:
    """`emit(*names)` stores one event per name stamped `clock()`; returns once committed."""
    writer = Writer(path, source="test")

    def hand_back(commit: Commit) -> None:
        # Tickets come back with the commit; calling them is the listener's job (as Ingest does).
        for ticket in commit.tickets:
            if ticket is not None:
                ticket(commit)

    writer.add_listener(hand_back)
    await asyncio.to_thread(writer.start)
    loop = asyncio.get_running_loop()

    async def emit(*names: str) -> None:
        done: asyncio.Future[Commit] = loop.create_future()
        events = [{"event": name, "properties": {}, "userId": "u1"} for name in names]
        rows = [normalise(e, client="test", received_at=clock()) for e in events]
        writer.submit(
            Submission(rows, ticket=lambda c: loop.call_soon_threadsafe(done.set_result, c))
        )
        await asyncio.wait_for(done, 5)

    try:
        yield emit
    finally:
        await asyncio.to_thread(writer.close)


def make_app(
    tmp_path: Path, toml: str, clock: Callable[[], float], *, app_class: type[EventApp] = EventApp
) -> EventApp:
    """The app as `eventtui open` builds it, from a config file, on `clock`."""
    config_path = tmp_path / "eventtui.toml"
    config_path.write_text(toml)
    config = load_config(config_path)
    states = MonitorStates(build_monitor(config, started_at=clock()))
    feed = StoreFeed(tmp_path / "events.db", mode="open", poll_interval=0.05, clock=clock)
    return app_class(feed, clock=clock, states=states, bell=config.ui.bell)


def state_shown(app: EventApp, name: str) -> str:
    """The state word the counters panel holds for `name` ("" when not listed)."""
    for stats, mark in app.counters_panel.rows:
        if stats.name == name:
            return mark.label
    return ""


def line_shown(app: EventApp, name: str) -> str:
    """The counters panel's rendered line for `name`."""
    panel = app.counters_panel
    for index, (stats, _) in enumerate(panel.rows):
        if stats.name == name:
            return "".join(seg.text for seg in panel.render_line(index + 1 - int(panel.scroll_y)))
    return ""


def toasts(app: EventApp, prefix: str) -> int:
    return sum(1 for n in app._notifications if str(n.message).startswith(prefix))


def table_rows(app: EventApp) -> list[list[str]]:
    screen = app.screen
    assert isinstance(screen, AnomaliesScreen)
    table = screen.table
    return [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]


# --- when states change on screen ---------------------------------------------------------------


async def test_a_heartbeat_goes_missing_within_a_second_of_its_deadline_and_recovers(
    tmp_path: Path,
) -> None:
    clock = FakeClock(START)
    app = make_app(tmp_path, HEARTBEAT, clock)
    async with store_writer(tmp_path / "events.db", clock) as emit, app.run_test(size=SIZE):
        clock.now = START + 1
        await emit("heartbeat")
        await until(lambda: len(app.stream.rows) == 1, what="the heartbeat")
        deadline = START + 1 + 30 + 30  # every + grace after it was seen

        clock.now = deadline - 0.5
        await until(lambda: state_shown(app, "heartbeat") == "late", what="late")
        # Judged at this time (the late toast came from the same check): not missing yet.
        await until(lambda: toasts(app, "heartbeat: late") == 1, what="the late toast")
        assert "missing" not in line_shown(app, "heartbeat")
        assert toasts(app, "heartbeat: missing") == 0

        clock.now = deadline + 0.9
        moved = time.monotonic()
        await until(lambda: state_shown(app, "heartbeat") == "missing", what="missing")
        took = time.monotonic() - moved
        line = line_shown(app, "heartbeat")
        assert "✖" in line and line.rstrip().endswith("missing"), line
        await until(lambda: toasts(app, "heartbeat: missing") == 1, what="the toast")
        # The states check runs twice a second: the clock's move shows within one.
        assert took < 1.0, f"missing showed {took:.2f} s after the clock passed the deadline"

        await emit("heartbeat")
        await until(lambda: state_shown(app, "heartbeat") == "recovered", what="recovered")
        assert "✓" in line_shown(app, "heartbeat")
        assert toasts(app, "heartbeat: missing") == 1


async def test_on_the_wall_clock_missing_shows_within_a_second_of_the_deadline(
    tmp_path: Path,
) -> None:
    toml = '[[expect]]\nevent = "heartbeat"\nevery = "1s"\ngrace = "1s"\n'
    app = make_app(tmp_path, toml, time.time)
    async with store_writer(tmp_path / "events.db", time.time) as emit, app.run_test(size=SIZE):
        await emit("heartbeat")
        await until(lambda: len(app.stream.rows) == 1, what="the heartbeat")
        # The panel has taken the heartbeat in (ok, or recovered if the app was slow to start).
        await until(lambda: app.counters.by_name.get("heartbeat") is not None)
        await until(lambda: state_shown(app, "heartbeat") in ("ok", "recovered"), what="ok")
        deadline = app.stream.rows[0].received_at + 1 + 1
        await until(lambda: state_shown(app, "heartbeat") == "missing", timeout=4)
        shown_at = time.time()
        assert "missing" in line_shown(app, "heartbeat")
    late_by = shown_at - deadline
    print(f"missing shown {late_by:.3f} s after the deadline")
    assert 0 < late_by < 1.0


# --- the anomalies view -----------------------------------------------------------------------


async def test_the_anomalies_view_lists_episodes_with_start_end_and_duration(
    tmp_path: Path,
) -> None:
    hostile = "[@click=app.quit]x\\u001b[2J"  # TOML escapes: markup, then ESC
    toml = HEARTBEAT + f'\n[[expect]]\nevent = "{hostile}"\nevery = "30s"\n'
    clock = FakeClock(START)
    app = make_app(tmp_path, toml, clock)
    writing = store_writer(tmp_path / "events.db", clock)
    async with writing as emit, app.run_test(size=SIZE) as pilot:
        clock.now = START + 1
        await emit("heartbeat")
        await until(lambda: len(app.stream.rows) == 1, what="the heartbeat")
        clock.now = START + 66
        await until(lambda: state_shown(app, "heartbeat") == "missing", what="missing")

        await pilot.press("a")
        assert isinstance(app.screen, AnomaliesScreen)
        await until(lambda: len(table_rows(app)) == 4, what="four episodes")
        rows = table_rows(app)
        # Ongoing first (the never-seen one has been missing longest), then ended, latest first.
        assert rows[0][0] == "✖ missing" and rows[0][3:6] == ["12:01:00", "ongoing", "6s"]
        assert rows[0][1] == "[@click=app.quit]x\\x1b[2J"  # escaped, shown as text
        assert rows[1] == [
            "✖ missing",
            "heartbeat",
            "declared",
            "12:01:01",
            "ongoing",
            "5s",
            "expected every 30s; missing after 1m",
        ]
        assert [row[0] for row in rows[2:]] == ["◷ late", "◷ late"]
        assert rows[2][1:6] == ["heartbeat", "declared", "12:00:31", "12:01:01", "30s"]
        event_cell = app.screen.table.get_row_at(0)[1]
        assert isinstance(event_cell, Text) and not any(
            span.style and not isinstance(span.style, str) and span.style.meta
            for span in event_cell.spans
        )
        # Under the table, the highlighted episode in full (the columns may cut it).
        await pilot.press("down")
        selected = app.screen.query_one("#anomalies-selected", Static)
        await until(lambda: str(selected.content).startswith("heartbeat"), what="the line")
        assert str(selected.content) == (
            "heartbeat · declared · missing · expected every 30s; missing after 1m"
        )

        table = app.screen.table
        laid_out = list(table.rows.values())
        clock.now = START + 72  # the open durations tick, on the app's clock
        await until(lambda: table_rows(app)[1][5] == "11s", what="the duration to tick")
        assert table_rows(app)[0][5] == "12s"
        # Updated in place: the same rows, not a rebuilt table.
        assert all(a is b for a, b in zip(laid_out, table.rows.values(), strict=True))

        await emit("heartbeat")  # at START + 72: the heartbeat recovers
        await until(lambda: table_rows(app)[1][4] != "ongoing", what="the episode to end")
        rows = table_rows(app)
        assert rows[0][4] == "ongoing"  # the other one is still missing
        assert rows[1][:6] == ["✖ missing", "heartbeat", "declared", "12:01:01", "12:01:12", "11s"]

        clock.now = START + 90  # an ended episode's duration stays put
        await until(lambda: table_rows(app)[0][5] == "30s", what="a refresh")
        assert table_rows(app)[1][5] == "11s"

        await pilot.press("escape")
        assert not isinstance(app.screen, AnomaliesScreen)


async def test_the_anomalies_view_opens_from_the_palette_and_says_when_there_are_none(
    tmp_path: Path,
) -> None:
    clock = FakeClock(START)
    app = make_app(tmp_path, HEARTBEAT, clock)
    async with store_writer(tmp_path / "events.db", clock), app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+p", *"anomalies", "enter")
        await until(lambda: isinstance(app.screen, AnomaliesScreen), what="the view")
        empty = app.screen.query_one("#anomalies-empty")
        await until(lambda: "No anomalies" in str(empty.render()), what="the empty note")
        await pilot.press("a")
        assert not isinstance(app.screen, AnomaliesScreen)


# --- the bell ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bell", [True, False])
async def test_the_bell_rings_once_per_firing_episode_when_enabled(
    tmp_path: Path, bell: bool
) -> None:
    toml = (
        f"[ui]\nbell = {str(bell).lower()}\n"
        + HEARTBEAT
        + '\n[[expect]]\nevent = "checkout"\nevery = "100s"\n'
    )
    clock = FakeClock(START)
    app = make_app(tmp_path, toml, clock, app_class=BellCountingApp)
    assert isinstance(app, BellCountingApp)
    rang = 1 if bell else 0

    async def at(now: float, toast: str, count: int = 1) -> None:
        clock.now = now
        # The toast and the bell come from the same check.
        await until(lambda: sum(1 for m in app.raised if m.startswith(toast)) == count, what=toast)

    async with store_writer(tmp_path / "events.db", clock) as emit, app.run_test(size=SIZE):
        clock.now = START + 1
        await emit("heartbeat", "checkout")
        await until(lambda: len(app.stream.rows) == 2, what="the events")
        await at(START + 40, "heartbeat: late")
        assert app.rings == 0  # a warning: no bell
        await at(START + 62, "heartbeat: missing")
        assert app.rings == rang
        await at(START + 110, "checkout: late")
        assert app.rings == rang  # still the same missing episode: no second ring
        await emit("heartbeat")
        await at(START + 110, "heartbeat: recovered")
        await at(START + 171, "heartbeat: missing", count=2)
        assert app.rings == 2 * rang  # a new episode rings again
        await at(START + 202, "checkout: missing")
        assert app.rings == 3 * rang


def test_watch_and_open_pass_the_bell_setting_to_the_app(tmp_path: Path) -> None:
    from eventtui.tui.launch import run_watch

    seen: list[bool] = []
    for bell in (True, False):
        config = Config(collector=CollectorConfig(port=0), ui=UIConfig(bell=bell))
        run_watch(
            config,
            tmp_path / f"events-{bell}.db",
            run_app=lambda app: seen.append(app.bell_on_firing),
            tune_gc=False,
        )
    assert seen == [True, False]


# --- the order the view lists episodes in (pure) ------------------------------------------------


class _Event:
    def __init__(self, name: str, at: float) -> None:
        self.name = name
        self.received_at = at
        self.valid = True


def test_episodes_list_open_ones_by_urgency_then_ended_ones_latest_first() -> None:
    expect = [
        Expectation(event="a", every=Duration(10)),  # late at 10, missing at 20
        Expectation(event="b", every=Duration(10), grace=Duration(100)),  # late at 10
        # Late at 5, missing at 10, back at 12; late again at 17, missing at 22.
        Expectation(event="c", every=Duration(5)),
    ]
    states = MonitorStates(Monitor(expect, started_at=0.0))
    states.monitor.evaluate(11)
    states.observe_many([_Event("c", 12)])
    listed = states.episodes(25)
    assert [(e.event, e.state, e.started_at, e.ended_at) for e in listed] == [
        ("a", "missing", 20, None),  # open: missing outranks late, then the longest running
        ("c", "missing", 22, None),
        ("b", "late", 10, None),
        ("c", "late", 17, 22),  # ended: the latest end first
        ("a", "late", 10, 20),
        ("c", "missing", 10, 12),
        ("c", "late", 5, 10),
    ]
    assert states.episodes(25, limit=2) == listed[:2]


def test_row_keys_stay_unique_when_two_rules_share_an_episode() -> None:
    twin = Episode("declared", "heartbeat", "missing", 60.0, None, "expected every 30s")
    other = Episode("declared", "heartbeat", "late", 30.0, 60.0, "expected every 30s")
    keys = episode_keys([twin, other, twin])
    assert len(set(keys)) == 3
    assert episode_keys([twin, other]) == keys[:2]  # stable while listed


async def test_anomaly_toasts_are_coalesced_and_do_not_pile_up(tmp_path: Path) -> None:
    """A fast replay raised six "Tracking" toasts over the payload: one check raises one toast,
    and at most two stay on screen."""
    toml = "".join(f'\n[[expect]]\nevent = "e{i}"\nevery = "10s"\n' for i in range(5))
    clock = FakeClock(START)
    app = make_app(tmp_path, toml, clock)
    async with store_writer(tmp_path / "events.db", clock) as emit, app.run_test(size=SIZE):
        clock.now = START + 1
        await emit(*(f"e{i}" for i in range(5)))
        await until(lambda: len(app.stream.rows) == 5, what="the events")
        clock.now = START + 15  # all five late in the same check
        await until(lambda: toasts(app, "e") >= 1, what="a toast")
        (toast,) = [n for n in app._notifications if n.title == "Tracking"]
        assert toast.message.count("late") == 3 and "… and 2 more" in toast.message

        def tracking(word: str) -> bool:
            return any(n.title == "Tracking" and word in n.message for n in app._notifications)

        clock.now = START + 100
        await until(lambda: tracking("missing"), what="the missing toast")
        await emit(*(f"e{i}" for i in range(5)))
        await until(lambda: tracking("recovered"), what="the recovered toast")
        # Three toasts were raised (late, missing, recovered): the oldest gave way.
        assert sum(1 for n in app._notifications if n.title == "Tracking") == 2
