"""Replay pacing on a fake clock, and re-sending a session to a real collector.

The pure part (Timeline, ReplayClock, Player, paced_frames, scan_anomalies) runs on a fake
monotonic clock the tests move by hand. The end-to-end part re-sends a stored session to a real
collector on port 0 and compares what the second store received with what the first one holds.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from eventtui.collector import Collector
from eventtui.collector.thread import CollectorThread
from eventtui.config import Config, Duration, Expectation
from eventtui.model import normalise
from eventtui.monitor import LATE, MISSING, Monitor
from eventtui.monitor.factory import build_monitor
from eventtui.replay import (
    MAX_SPEED,
    Player,
    ReplayClock,
    ReplayError,
    Timeline,
    fetch_rows,
    iter_light_rows,
    load_schedule,
    next_after,
    next_speed,
    paced_frames,
    parse_speed,
    resend,
    scan_anomalies,
)
from eventtui.store import EventRow, NoSuchSession, Reader, Submission, Writer
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from eventtui.tui.launch import run_replay
from eventtui.tui.states import MonitorStates
from tests.conftest import make_config, until, write_session

T0 = 1_714_000_000.0


class FakeClock:
    """A monotonic clock that moves only when told."""

    def __init__(self, start: float = 500.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def player(
    offsets: list[float], *, speed: float = 1.0, max_gap: float | None = None, **span: float
) -> tuple[Player, FakeClock]:
    times = [T0 + x for x in offsets]
    fake = FakeClock()
    timeline = Timeline(
        times,
        max_gap=max_gap,
        start=T0 + span["start"] if "start" in span else None,
        end=T0 + span["end"] if "end" in span else None,
    )
    return Player(times, ReplayClock(timeline, speed=speed, monotonic=fake)), fake


# --- timeline ------------------------------------------------------------------------------------


def test_timeline_without_max_gap_is_the_recorded_span() -> None:
    timeline = Timeline([T0, T0 + 1, T0 + 11])
    assert (timeline.start, timeline.end, timeline.length, timeline.skipped) == (T0, T0 + 11, 11, 0)
    for offset in (0, 0.5, 3, 11):
        assert timeline.position(T0 + offset) == offset
        assert timeline.time_at(offset) == T0 + offset
    assert timeline.position(T0 - 5) == 0 and timeline.position(T0 + 50) == 11
    assert timeline.cuts == []


def test_a_long_silence_plays_its_first_and_last_halves_of_max_gap() -> None:
    # 1 -> 11 is a 10 s silence; with max_gap 2 it plays 1..2, jumps to 10, plays 10..11.
    timeline = Timeline([T0, T0 + 1, T0 + 11, T0 + 12], max_gap=2)
    assert timeline.length == 4 and timeline.skipped == 8
    assert timeline.cuts == [(T0 + 2, T0 + 10)]
    assert timeline.time_at(1.5) == T0 + 1.5
    assert timeline.time_at(2.0) == T0 + 10  # at the jump: where it lands
    assert timeline.time_at(2.5) == T0 + 10.5  # displayed times stay the recorded ones
    assert timeline.time_at(4) == T0 + 12
    assert timeline.position(T0 + 5) == 2.0  # inside the skipped part: the jump
    assert timeline.position(T0 + 11) == 3.0
    for offset in (0, 0.7, 1.9, 10.2, 11.5, 12):
        assert timeline.time_at(timeline.position(T0 + offset)) == pytest.approx(T0 + offset)


def test_silences_before_the_first_and_after_the_last_event_count_too() -> None:
    timeline = Timeline([T0 + 10, T0 + 11], start=T0, end=T0 + 30, max_gap=4)
    # Plays 0..2, jumps to 8; plays 8..13, jumps to 28; plays 28..30.
    assert timeline.cuts == [(T0 + 2, T0 + 8), (T0 + 13, T0 + 28)]
    assert timeline.length == 2 + 5 + 2
    assert (timeline.start, timeline.end) == (T0, T0 + 30)
    assert Timeline([T0 + 10], start=T0 + 20).start == T0 + 10  # never after the first event


def test_short_gaps_are_left_alone_and_max_gap_must_be_positive() -> None:
    timeline = Timeline([T0, T0 + 1, T0 + 2.5], max_gap=2)
    assert timeline.length == 2.5 and timeline.cuts == []
    with pytest.raises(ReplayError, match="more than 0"):
        Timeline([T0], max_gap=0)
    empty = Timeline([])
    assert empty.length == 0 and empty.time_at(5) == empty.start


# --- clock -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("speed", [0.1, 0.5, 1.0, 2.0, 10.0, 100.0])
def test_virtual_time_runs_at_speed_times_real_time(speed: float) -> None:
    fake = FakeClock()
    clock = ReplayClock(Timeline([T0, T0 + 1000]), speed=speed, monotonic=fake)
    assert clock.now() == T0
    fake.advance(3)
    assert clock.now() == pytest.approx(T0 + min(3 * speed, 1000))
    fake.advance(100)
    assert clock.now() == pytest.approx(T0 + min(103 * speed, 1000))  # never past the end
    assert clock.finished == (103 * speed >= 1000)


def test_pause_resume_and_speed_changes_keep_the_position() -> None:
    fake = FakeClock()
    clock = ReplayClock(Timeline([T0, T0 + 100]), monotonic=fake)
    fake.advance(2)
    clock.pause()
    fake.advance(50)
    assert clock.now() == T0 + 2 and clock.paused
    clock.resume()
    fake.advance(1)
    assert clock.now() == T0 + 3
    clock.set_speed(10)
    fake.advance(1)
    assert clock.now() == T0 + 13
    clock.toggle_pause()
    clock.set_speed(0.5)  # while paused: stays still
    fake.advance(4)
    assert clock.now() == T0 + 13
    clock.toggle_pause()
    fake.advance(4)
    assert clock.now() == T0 + 15
    assert clock.fraction == pytest.approx(0.15)


def test_seek_moves_the_play_position_and_is_clamped() -> None:
    fake = FakeClock()
    clock = ReplayClock(Timeline([T0, T0 + 1, T0 + 11, T0 + 12], max_gap=2), monotonic=fake)
    fake.advance(1.5)
    clock.seek_by(1)  # across the shortened silence: lands past the jump, not inside it
    assert clock.now() == T0 + 10.5
    clock.seek_by(-10)
    assert clock.now() == T0
    clock.seek_by(+60)
    assert clock.now() == T0 + 12 and clock.finished
    clock.seek_to(T0 + 1.25)
    assert clock.now() == T0 + 1.25
    clock.seek_to(T0 + 6)  # a skipped time: where the clock lands after the jump
    assert clock.now() == T0 + 10
    assert clock.real_seconds_until(T0 + 11) == pytest.approx(1.0)
    clock.pause()
    assert clock.real_seconds_until(T0 + 11) is None
    assert clock.real_seconds_until(T0 + 9) == 0.0  # already past


# --- player ----------------------------------------------------------------------------------------


def test_events_come_due_at_their_recorded_offsets() -> None:
    play, fake = player([0, 0.5, 0.5, 2, 5], speed=2)
    assert play.due() == range(0, 1)
    assert play.wait() == pytest.approx(0.25)
    fake.advance(0.25)
    assert play.due() == range(1, 3)  # both events of the same instant
    assert play.due() == range(3, 3)
    fake.advance(0.74)
    assert play.due() == range(3, 3)
    fake.advance(0.02)
    assert play.due() == range(3, 4)
    assert play.wait() == pytest.approx(1.49)
    fake.advance(10)
    assert play.due(limit=5) == range(4, 5)
    assert play.done and play.wait() is None


def test_max_gap_shortens_the_wait_for_an_event_after_a_silence() -> None:
    play, fake = player([0, 100, 100.5], max_gap=2)
    assert play.due() == range(0, 1)
    assert play.wait() == pytest.approx(2.0)  # 100 s of silence plays as 2
    fake.advance(0.9)
    assert play.clock.now() == pytest.approx(T0 + 0.9)  # the first half of the silence plays
    fake.advance(0.6)
    assert play.clock.now() == pytest.approx(T0 + 99.5)  # then it has jumped: times stay true
    fake.advance(0.5)
    assert play.due() == range(1, 2)
    fake.advance(0.5)
    assert play.due() == range(2, 3)


def test_max_speed_hands_out_batches_and_pins_the_clock_to_the_last() -> None:
    play, fake = player([0, 1, 2, 3, 4, 5, 60], speed=MAX_SPEED)
    assert play.wait() == 0.0
    assert play.due(limit=3) == range(0, 3)
    assert play.clock.now() == T0 + 2
    assert play.caught_up_to() == T0 + 2
    fake.advance(1000)  # real time does not move a max-speed clock
    assert play.clock.now() == T0 + 2
    assert play.due(limit=3) == range(3, 6)
    assert play.due(limit=3) == range(6, 7)
    assert play.clock.now() == T0 + 60
    assert play.due() == range(7, 7) and play.done
    # Switching to a real speed carries on from where max speed got to.
    play2, fake2 = player([0, 10, 20], speed=MAX_SPEED)
    assert play2.due(limit=2) == range(0, 2)
    play2.clock.set_speed(1)
    fake2.advance(9.5)
    assert play2.due() == range(2, 2)
    fake2.advance(0.5)
    assert play2.due() == range(2, 3)


def test_seeking_back_starts_over_and_seeking_on_delivers_what_was_skipped() -> None:
    play, fake = player([0, 1, 2, 30, 31, 40])
    fake.advance(2)
    assert play.due() == range(0, 3)
    assert play.seek_by(+30) is False  # forward: nothing to forget
    assert play.clock.now() == T0 + 32
    assert play.due() == range(3, 5)  # skipped events arrive at once, in order
    assert play.seek_by(-10) is True  # back: the consumer starts over...
    assert play.cursor == 0
    assert play.due() == range(0, 3)  # ...and gets everything up to the new position again
    assert play.clock.now() == T0 + 22
    assert play.seek_to(T0 + 40) is False
    assert play.due() == range(3, 6)
    # Back into a silence: no event to undo, but the clock went back, so it starts over too.
    assert play.seek_to(T0 + 35) is True


def test_caught_up_to_lags_while_events_wait_to_be_handed_out() -> None:
    play, fake = player([0, 1, 2, 3], speed=1)
    fake.advance(2.5)
    assert play.caught_up_to() == T0  # three events are due and not handed out yet
    play.due(limit=2)
    assert play.caught_up_to() == T0 + 1
    play.due()
    assert play.caught_up_to() == T0 + 2.5


def test_pause_while_events_are_due_after_a_seek() -> None:
    play, fake = player([0, 5, 10])
    play.clock.pause()
    assert play.due() == range(0, 1)
    assert play.wait() is None
    play.seek_to(T0 + 6)
    assert play.wait() == 0.0
    assert play.due() == range(1, 2)
    assert play.wait() is None
    fake.advance(100)
    assert play.due() == range(2, 2)


def test_next_after_and_speed_steps() -> None:
    times = [T0 + 10, T0 + 20, T0 + 30]
    assert next_after(times, T0) == T0 + 10
    assert next_after(times, T0 + 10) == T0 + 20
    assert next_after(times, T0 + 7, lead=3) == T0 + 20  # at the lead before it: the next one
    assert next_after(times, T0 + 30) is None
    assert [next_speed(1, +1), next_speed(1, -1)] == [2, 0.5]
    assert next_speed(100, +1) == MAX_SPEED and next_speed(MAX_SPEED, +1) == MAX_SPEED
    assert next_speed(MAX_SPEED, -1) == 100 and next_speed(0.1, -1) == 0.1
    assert next_speed(3, +1) == 5 and next_speed(3, -1) == 2


@pytest.mark.parametrize(
    ("text", "speed"),
    [("1", 1.0), ("10x", 10.0), ("0.5", 0.5), ("MAX", MAX_SPEED), ("100", 100.0), (2, 2.0)],
)
def test_parse_speed(text: str, speed: float) -> None:
    assert parse_speed(text) == speed


@pytest.mark.parametrize("text", ["0.05", "101", "fast", "", "-1", "nan"])
def test_parse_speed_refuses(text: str) -> None:
    with pytest.raises(ReplayError, match="speed"):
        parse_speed(text)


# --- paced frames ----------------------------------------------------------------------------------


def _row(i: int, at: float, **payload: Any) -> EventRow:
    return EventRow(
        i, 1, at, None, f"e{i}", "track", None, None, f"m{i}", "test",
        json.dumps(payload), "{}", True, None, None,
    )  # fmt: skip


async def test_paced_frames_yield_each_event_at_its_time_on_the_clock() -> None:
    offsets = [0, 0.5, 0.5, 2, 5]
    play, fake = player(offsets, speed=2)
    rows = [_row(i, T0 + x, n=i) for i, x in enumerate(offsets)]
    reads: list[range] = []

    def read(indices: range) -> list[EventRow]:
        reads.append(indices)
        return [rows[i] for i in indices]

    async def sleep(seconds: float) -> None:
        fake.advance(seconds)

    sent: list[tuple[float, dict[str, Any]]] = []
    async for frame in paced_frames(play, read, sleep=sleep):
        sent.append((fake() - 500.0, json.loads(frame)))
    assert [at for at, _ in sent] == pytest.approx([0, 0.25, 0.25, 1.0, 2.5])
    assert [p["messageId"] for _, p in sent] == ["m0", "m1", "m2", "m3", "m4"]
    assert sent[3][1] == rows[3].payload()  # the original payload, messageId and all
    assert sorted(i for r in reads for i in r) == list(range(5))  # each row read once


# --- anomalies ahead -------------------------------------------------------------------------------


class _Event:
    def __init__(self, name: str, at: float) -> None:
        self.name, self.received_at, self.valid = name, at, True


def heartbeat_monitor() -> Monitor:
    return Monitor(
        [Expectation(event="heartbeat", every=Duration(2), grace=Duration(2))], started_at=T0
    )


def _heartbeats(offsets: Iterable[float]) -> list[_Event]:
    return [_Event("heartbeat", T0 + x) for x in offsets]


def test_scan_anomalies_finds_what_a_finely_evaluated_monitor_finds() -> None:
    events = _heartbeats([0.5, 1.5, 2.5, 12.0, 13.0, 14.0, 30.0])
    fine = heartbeat_monitor()
    pending = list(events)
    tick = T0
    while tick <= T0 + 40:  # evaluated every 100 ms, events observed as they come
        while pending and pending[0].received_at <= tick:
            fine.observe(pending.pop(0))
        fine.evaluate(tick)
        tick += 0.1
    scanned = scan_anomalies(heartbeat_monitor(), events, end=T0 + 40)
    assert scanned == fine.episodes()
    missing = [e for e in scanned if e.state == MISSING]
    assert [e.started_at for e in missing] == [T0 + 6.5, T0 + 18.0, T0 + 34.0]
    assert missing[-1].ended_at is None  # still missing at the end


# --- the store side --------------------------------------------------------------------------------


def _store(path: Path, offsets: list[float], *, names: list[str] | None = None) -> int:
    # Not conftest's write_session: the message ids name the session the writer opens.
    writer = Writer(path, source="test")
    session = writer.start()
    rows = [
        normalise(
            {
                "event": names[i] if names else f"e{i}",
                "messageId": f"{path.stem}-s{session}-{i}",
                "properties": {"i": i},
                "context": {"app": "test"},
                "traits": {"kept": True},
            },
            client="ws:test",
            received_at=T0 + x,
        )
        for i, x in enumerate(offsets)
    ]
    writer.submit(Submission(rows))
    writer.close()
    return session


def test_schedule_orders_by_time_and_reads_rows_in_that_order(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    _store(db, [0, 1, 2])  # another session first, so ids and session ids differ
    session = _store(db, [5, 1, 3, 3, 0])  # received out of id order (imported timestamps)
    with Reader(db) as reader:
        span = reader.session(reader.resolve_session(None))
        assert span.id == session
        schedule = load_schedule(reader, span)
        assert list(schedule.times) == [T0 + x for x in (0, 1, 3, 3, 5)]
        assert not schedule.contiguous
        rows = fetch_rows(reader, schedule, range(0, 5))
        assert [r.name for r in rows] == ["e4", "e1", "e2", "e3", "e0"]
        assert [r.id for r in rows] == list(schedule.ids)
        seen = list(iter_light_rows(reader, schedule))
        assert [(s.name, s.received_at, s.valid) for s in seen] == [
            (r.name, r.received_at, r.valid) for r in rows
        ]
        assert all(s.omitted == -1 and not s.properties for s in seen)
        first = load_schedule(reader, reader.session(1), "name = ?", ["e1"])
        assert first.contiguous and len(first) == 1
        assert [r.name for r in fetch_rows(reader, first, range(1))] == ["e1"]
        with pytest.raises(NoSuchSession, match="no session 9"):
            reader.session(9)


# --- re-send, end to end ---------------------------------------------------------------------------


async def test_resend_to_a_second_collector_keeps_order_payloads_and_pace(tmp_path: Path) -> None:
    source = tmp_path / "source.db"
    offsets = [i * 0.02 for i in range(40)] + [0.8 + 3.0, 0.8 + 3.05]  # a 3 s silence
    session = _store(source, offsets)
    target = tmp_path / "target.db"
    collector = Collector(make_config(), target, with_http=False)
    await collector.start(port=0)
    try:
        with Reader(source) as reader:
            schedule = load_schedule(reader, reader.session(session))
            started = time.monotonic()
            result = await resend(reader, schedule, collector.ws_url, speed=2.0, max_gap=1.0)
            elapsed = time.monotonic() - started
            originals = reader.query(session=session)
    finally:
        await collector.stop()
    assert (result.events, result.acked, result.errors) == (42, 42, [])
    # 0.78 s of events, a 3 s silence played as 1 s, 0.05 s: 1.83 s recorded, at 2x about 0.92 s.
    assert 0.85 <= elapsed < 2.0
    with Reader(target) as reader:
        copies = reader.query()
    assert [c.payload() for c in copies] == [o.payload() for o in originals]
    assert [c.message_id for c in copies] == [o.message_id for o in originals]
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(copies)]
    expected = [0.01] * 39 + [0.5, 0.025]  # halved by the speed; the silence clamped to 1 s
    errors = [abs(g - e) for g, e in zip(gaps, expected, strict=True)]
    assert statistics.median(errors) < 0.005
    assert max(errors) < 0.1


async def test_resend_into_the_store_it_came_from_dedupes_unless_new_ids(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    session = _store(db, [0, 0.01, 0.02])
    collector = Collector(make_config(), db, with_http=False)
    await collector.start(port=0)
    try:
        with Reader(db) as reader:
            schedule = load_schedule(reader, reader.session(session))
            same = await resend(reader, schedule, collector.ws_url, speed=MAX_SPEED)
            await until(lambda: collector.writer.stats.duplicates >= 3)
            fresh = await resend(reader, schedule, collector.ws_url, speed=MAX_SPEED, new_ids=True)
            await until(lambda: collector.writer.stats.events >= 3)
    finally:
        await collector.stop()
    assert same.acked == fresh.acked == 3
    assert (collector.writer.stats.duplicates, collector.writer.stats.events) == (3, 3)
    with Reader(db) as reader:
        copies = reader.query(session=collector.session_id)
    assert [c.message_id.split("~replay-")[0] for c in copies if c.message_id] == [
        f"events-s{session}-{i}" for i in range(3)
    ]


# --- the TUI on a virtual clock (phase 2) ----------------------------------------------------------

SIZE = (160, 45)
HEARTBEAT = Expectation(event="heartbeat", every=Duration(1), grace=Duration(1))


def replay_app(db: Path, config: Config, fake: FakeClock, **options: Any) -> EventApp:
    """`eventtui replay`'s app, built by `run_replay` exactly as the CLI builds it, on `fake`."""
    built: list[EventApp] = []
    run_replay(config, db, run_app=built.append, tune_gc=False, monotonic=fake, **options)
    return built[0]


async def _settle(app: EventApp, times: list[float]) -> float:
    """Wait until the app has caught up with the replay's clock (every event due by then shown);
    returns that virtual time."""
    clock = app.playback.clock  # type: ignore[union-attr]

    def settled() -> bool:
        now = app.clock()
        return now == clock.now() and app.counters.everything.total == sum(
            1 for t in times if t <= now
        )

    await until(settled, what="the app to catch up with the replay")
    return app.clock()


def declared(episodes: list[Any]) -> list[tuple[str, float, float | None]]:
    return [(e.state, e.started_at, e.ended_at) for e in episodes if e.kind == "declared"]


async def test_replay_at_10x_shows_the_live_anomalies_at_the_same_moments(tmp_path: Path) -> None:
    """Record live (a real collector, the live TUI, a heartbeat that goes missing), replay the
    session at 10x on a fake clock, and compare the monitor's episodes and when they showed."""
    db = tmp_path / "events.db"
    config = Config(expect=(HEARTBEAT,))
    collector = Collector(config, db, source="watch", with_http=False)
    live_feed = StoreFeed(db, mode="watch", live=collector.health, poll_interval=10.0)
    collector.writer.add_listener(live_feed.on_commit)
    thread = CollectorThread(collector)
    await asyncio.to_thread(thread.start, 0)
    live_feed.session = collector.session_id
    with Reader(db) as reader:
        (session,) = reader.sessions()
    live = MonitorStates(build_monitor(config, started_at=session.started_at))
    app = EventApp(live_feed, states=live)
    frames = 0
    try:
        async with app.run_test(size=SIZE), connect(collector.ws_url) as ws:

            async def beat(count: int) -> None:
                nonlocal frames
                for _ in range(count):
                    await ws.send(json.dumps({"event": "heartbeat"}))
                    frames += 1
                    async with asyncio.timeout(5):
                        while json.loads(await ws.recv()).get("ack", 0) < frames:
                            pass
                    await asyncio.sleep(0.3)  # the producer's own pace: this is the recording

            await beat(3)
            # The live app's own paint ticks evaluate the monitor: wait until they saw it missing.
            await until(lambda: any(e.state == MISSING for e in live.monitor.episodes()))
            # Missing for over a second: an episode shorter than that (MIN_EPISODE_SECONDS) is kept
            # only if an evaluation happened to fall inside it, live or in replay alike.
            await asyncio.sleep(1.2)
            await beat(2)
            await until(lambda: app.counters.everything.total == 5, what="5 heartbeats shown")
            await until(lambda: live.monitor.state_of("heartbeat", time.time()) == "recovered")
    finally:
        await asyncio.to_thread(thread.stop)
    live_episodes = declared(live.monitor.episodes())
    (missing,) = [e for e in live_episodes if e[0] == MISSING]
    assert missing[2] is not None  # it recovered
    with Reader(db) as reader:
        times = [r.received_at for r in reader.query()]

    fake = FakeClock()
    replay = replay_app(db, config, fake, speed=10.0)
    shown: list[tuple[float, str]] = []  # (virtual time, the state the panel showed)
    end = replay.playback.clock.timeline.end  # type: ignore[union-attr]
    assert end >= times[-1]
    async with replay.run_test(size=SIZE):
        for _ in range(10_000):
            now = await _settle(replay, times)
            states = replay.states
            assert isinstance(states, MonitorStates)
            shown.append((now, states.monitor.state_of("heartbeat", now)))
            if now >= end:
                break
            fake.advance(0.04)  # 0.4 s of recorded time at 10x
    # Every episode, with its start and end, is the live one.
    assert declared(states.monitor.episodes()) == live_episodes
    # And it showed when it did live: missing from its start to the heartbeat that ended it.
    for at, state in shown:
        assert (state == MISSING) == (missing[1] < at < missing[2]), (at, state)
    assert any(state == MISSING for _, state in shown), (shown, missing)


def _beats() -> list[tuple[str, float]]:
    """A heartbeat every 0.5 s that stops at 9.5 s and comes back at 20 s (missing from 11.5 s,
    late from 10.5 s), and a page_view every 0.25 s throughout."""
    beats = [("heartbeat", i * 0.5) for i in range(20)] + [
        ("heartbeat", 20 + i * 0.5) for i in range(20)
    ]
    views = [("page_view", 0.1 + i * 0.25) for i in range(120)]
    return sorted(beats + views, key=lambda pair: pair[1])


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, list[float]]:
    """The session above, as an import (its span is its events')."""
    db = tmp_path / "events.db"
    rows = [
        normalise({"event": name, "properties": {"n": i}}, client="test", received_at=T0 + at)
        for i, (name, at) in enumerate(_beats())
    ]
    write_session(db, rows, source="import", label="heartbeat gap")
    return db, [r.received_at for r in rows]


async def test_space_pauses_virtual_time_and_plus_minus_change_speed(
    recorded: tuple[Path, list[float]],
) -> None:
    db, times = recorded
    fake = FakeClock()
    app = replay_app(db, Config(expect=(HEARTBEAT,)), fake)
    feed = app.playback
    async with app.run_test(size=SIZE) as pilot:
        fake.advance(2)
        assert await _settle(app, times) == T0 + 2
        await pilot.press("space")
        fake.advance(5)
        assert await _settle(app, times) == T0 + 2  # time itself stopped: counters hold still
        shown = app.counters.everything.total
        await pilot.press("space")
        fake.advance(1)
        assert await _settle(app, times) == T0 + 3
        assert app.counters.everything.total > shown
        await pilot.press("plus")
        fake.advance(1)
        assert await _settle(app, times) == T0 + 5  # 2x
        await pilot.press("minus", "minus")
        fake.advance(1)
        assert await _settle(app, times) == T0 + 5.5  # 0.5x
        assert feed.clock.speed == 0.5  # type: ignore[union-attr]
        # Keys typed in the filter bar are the filter's, not the replay's.
        await pilot.press("slash", "p", "l", "u", "s", "minus")
        assert feed.clock.speed == 0.5  # type: ignore[union-attr]


async def test_arrows_seek_10s_and_going_back_rebuilds_counters_and_states(
    recorded: tuple[Path, list[float]],
) -> None:
    db, times = recorded
    fake = FakeClock()
    app = replay_app(db, Config(expect=(HEARTBEAT,)), fake)
    async with app.run_test(size=SIZE) as pilot:
        fake.advance(5)
        assert await _settle(app, times) == T0 + 5
        await pilot.press("right")
        assert await _settle(app, times) == T0 + 15  # everything in between, counted
        states = app.states
        assert isinstance(states, MonitorStates)
        assert states.monitor.state_of("heartbeat", app.clock()) == MISSING
        await pilot.press("left")
        assert await _settle(app, times) == T0 + 5
        counted = app.counters.everything.total
        assert counted == sum(1 for t in times if t <= T0 + 5)  # counters started over
        states = app.states
        assert isinstance(states, MonitorStates)
        assert states.monitor.state_of("heartbeat", app.clock()) == "ok"
        await pilot.press("left", "left")
        assert await _settle(app, times) == T0  # clamped at the start


async def test_going_back_never_invents_anomalies(recorded: tuple[Path, list[float]]) -> None:
    """After a seek back the monitor starts afresh; asked about the new moment before the events
    up to it came again, it would record late and missing episodes that never happened."""
    db, times = recorded
    fake = FakeClock()
    app = replay_app(db, Config(expect=(HEARTBEAT,)), fake)
    async with app.run_test(size=SIZE) as pilot:
        fake.advance(8)
        assert await _settle(app, times) == T0 + 8
        await pilot.press("left")  # from 8 s to 0 s, to 8 s again
        assert await _settle(app, times) == T0
        fake.advance(8)
        assert await _settle(app, times) == T0 + 8
        await pilot.press("right")
        assert await _settle(app, times) == T0 + 18  # missing since 11.5 s
        await pilot.press("left")
        assert await _settle(app, times) == T0 + 8
        states = app.states
        assert isinstance(states, MonitorStates)
        # Up to 8 s the heartbeat never missed a beat: no episode, live or replayed.
        assert declared(states.monitor.episodes()) == []


async def test_n_jumps_to_just_before_the_next_anomaly(recorded: tuple[Path, list[float]]) -> None:
    db, times = recorded
    fake = FakeClock()
    app = replay_app(db, Config(expect=(HEARTBEAT,)), fake)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, times)
        await pilot.press("n")
        # heartbeat is late at 10.5 s (last seen 9.5 s, every 1 s): lands 3 s before it.
        await until(lambda: app.clock() == T0 + 7.5, what="the jump to 7.5 s")
        await pilot.press("n")  # then missing, at 11.5 s
        await until(lambda: app.clock() == T0 + 8.5, what="the jump to 8.5 s")
        fake.advance(3.5)
        now = await _settle(app, times)
        states = app.states
        assert isinstance(states, MonitorStates)
        assert states.monitor.state_of("heartbeat", now) == MISSING
        await pilot.press("n")  # nothing after it
        await until(lambda: any("No anomaly ahead" in str(n.message) for n in app._notifications))
        assert app.clock() == now


@pytest.fixture
def recorded_where(tmp_path: Path) -> tuple[Path, list[float]]:
    """Heartbeats every 0.5 s for 20 s; only those up to 9.5 s say `ok=true`."""
    db = tmp_path / "events.db"
    rows = [
        normalise(
            {"event": "heartbeat", "properties": {"ok": i < 20}},
            client="test",
            received_at=T0 + i * 0.5,
        )
        for i in range(40)
    ]
    write_session(db, rows, source="import", label="heartbeats that stop being ok")
    return db, [r.received_at for r in rows]


HEALTHY_BEAT = Expectation(event="heartbeat", every=Duration(1), grace=Duration(1), where="ok=true")


async def test_replay_judges_an_expectations_where_as_live_does(
    recorded_where: tuple[Path, list[float]],
) -> None:
    """The heartbeats keep coming, but none matches `where` after 9.5 s: missing from 11.5 s."""
    db, times = recorded_where
    fake = FakeClock()
    app = replay_app(db, Config(expect=(HEALTHY_BEAT,)), fake)
    async with app.run_test(size=SIZE):
        fake.advance(15)
        now = await _settle(app, times)
        states = app.states
        assert isinstance(states, MonitorStates)
        assert states.monitor.state_of("heartbeat", now) == MISSING
        assert [e[:2] for e in declared(states.monitor.episodes())] == [
            (LATE, T0 + 10.5),
            (MISSING, T0 + 11.5),
        ]


async def test_next_anomaly_finds_an_expectation_whose_where_stopped_matching(
    recorded_where: tuple[Path, list[float]],
) -> None:
    db, times = recorded_where
    fake = FakeClock()
    app = replay_app(db, Config(expect=(HEALTHY_BEAT,)), fake)
    async with app.run_test(size=SIZE) as pilot:
        await _settle(app, times)
        await pilot.press("n")
        # Late at 10.5 s (the last matching beat at 9.5 s): lands 3 s before it.
        await until(lambda: app.clock() == T0 + 7.5, what="the jump to 7.5 s")
