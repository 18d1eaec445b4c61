"""The monitor: counters, declared expectations, learned cadence, the tracking plan, the facade.

Pure unit tests: events are plain objects, time is a number, nothing sleeps or runs a loop.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastjsonschema import JsonSchemaValueException
from jsonschema import Draft4Validator, Draft7Validator, Draft202012Validator
from jsonschema.validators import validator_for

from eventtui.config import Config, Duration, Expectation, PlanConfig, PlanEvent
from eventtui.monitor import (
    INVALID,
    LATE,
    LEARNING,
    LOW_RATE,
    MISSING,
    OK,
    QUIET,
    RATE_DROP,
    RATE_SPIKE,
    RECOVERED,
    UNPLANNED,
    Anomaly,
    Counters,
    Episode,
    ExpectationError,
    ExpectationTracker,
    LearnedCadence,
    LearnedSettings,
    Monitor,
    MonitorSettings,
    Plan,
    PlanError,
    PlanWatch,
    Severity,
    describe,
    format_duration,
)
from eventtui.plan import MAX_ERRORS

T0 = 1_700_000_040.0  # a whole minute, so minute arithmetic in the tests reads plainly


@dataclass(frozen=True, slots=True)
class Ev:
    name: str
    received_at: float
    valid: bool = True
    properties: dict[str, Any] | None = None


def expect(event: str, every: float | None = None, **kw: Any) -> Expectation:
    grace = kw.pop("grace", None)
    return Expectation(
        event=event,
        every=None if every is None else Duration(every),
        grace=None if grace is None else Duration(grace),
        **kw,
    )


def poisson(name: str, rate: float, start: float, end: float, rng: random.Random) -> list[Ev]:
    """Arrivals of a Poisson process of `rate` per second in [start, end)."""
    out = []
    t = start + rng.expovariate(rate)
    while t < end:
        out.append(Ev(name, t))
        t += rng.expovariate(rate)
    return out


def run(
    monitor: Monitor, events: Iterable[Ev], start: float, end: float, step: float = 1.0
) -> Iterator[tuple[float, list[Anomaly]]]:
    """Feed events in time order, evaluating every `step` seconds as the live view would."""
    pending = sorted(events, key=lambda e: e.received_at)
    i = 0
    now = start
    while now <= end:
        j = i
        while j < len(pending) and pending[j].received_at <= now:
            j += 1
        monitor.observe_many(pending[i:j])
        i = j
        yield now, monitor.evaluate(now)
        now += step


def drain(
    monitor: Monitor, events: Iterable[Ev], start: float, end: float, step: float = 1.0
) -> None:
    for _ in run(monitor, events, start, end, step):
        pass


def learned_states(anomalies: Sequence[Anomaly]) -> set[str]:
    return {a.state for a in anomalies if a.kind == "learned"}


# --- counters ----------------------------------------------------------------------------------


def test_counters_count_totals_invalid_rate_and_histogram() -> None:
    counters = Counters()
    counters.observe("a", T0 + 1, True)
    counters.observe_many([Ev("a", T0 + 2, valid=False), Ev("a", T0 + 70), Ev("b", T0 + 5)])
    a, b = counters.get("a"), counters.get("b")
    assert a is not None and b is not None
    assert (a.name, a.total, a.invalid, a.last_seen) == ("a", 3, 1, T0 + 70)
    # The last 60 s at T0+75 are (T0+15, T0+75]: only the event at T0+70.
    assert a.rate_per_minute(T0 + 75) == 1
    histogram = a.spark(T0 + 75)
    assert len(histogram) == 30
    assert histogram[-2:] == [2, 1]  # minute of T0 (two events), then this minute (one)
    assert sum(histogram) == 3
    assert (b.total, b.rate_per_minute(T0 + 75), b.spark(T0 + 75)[-2]) == (1, 0, 1)
    assert counters.everything.total == 4


@pytest.mark.parametrize(("now", "expected"), [(T0 + 59.5, 60), (T0 + 60, 59), (T0 + 119, 0)])
def test_counters_rate_is_a_sliding_minute(now: float, expected: int) -> None:
    counters = Counters()
    counters.observe_many(Ev("a", T0 + i) for i in range(60))  # one a second, T0..T0+59
    stats = counters.get("a")
    assert stats is not None
    assert stats.rate_per_minute(now) == expected


def test_counters_histogram_forgets_minutes_older_than_thirty() -> None:
    counters = Counters()
    counters.observe("a", T0, True)
    counters.observe("a", T0 + 31 * 60, True)  # same ring slot as T0's minute, 31 minutes later
    stats = counters.get("a")
    assert stats is not None
    assert sum(stats.spark(T0 + 31 * 60)) == 1
    # A straggler older than the ring still counts in the total.
    counters.observe("a", T0 - 3600, True)
    assert (stats.total, sum(stats.spark(T0 + 31 * 60)), stats.last_seen) == (3, 1, T0 + 31 * 60)


def test_the_monitor_counts_what_it_observes_in_bounded_counters() -> None:
    monitor = Monitor(started_at=T0, settings=MonitorSettings(max_names=2))
    monitor.observe_many([Ev("a", T0), Ev("b", T0 + 1), Ev("c", T0 + 2), Ev("d", T0 + 3)])
    assert sorted(monitor.counters.names()) == ["(other names)", "a", "b"]
    assert monitor.counters.everything.total == 4
    # Past the cap, a name is still judged on its own (learned cadence), only counted together.
    assert "d" in monitor.learned


# --- declared expectations ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grace", "late_at", "missing_at"),
    [(None, 30.0, 60.0), (10.0, 30.0, 40.0), (0.0, 30.0, 30.0)],
    ids=["default-grace-is-every", "grace-10s", "no-grace"],
)
def test_every_goes_ok_late_missing_recovered_ok(
    grace: float | None, late_at: float, missing_at: float
) -> None:
    tracker = ExpectationTracker(
        expect("hb", 30, grace=grace), started_at=T0 - 10, recovered_for=20
    )
    tracker.observe(T0)

    def state(offset: float) -> str:
        return tracker.state(T0 + offset)

    assert state(late_at) == OK  # exactly at the deadline: not yet past it
    if missing_at > late_at:
        assert state(late_at + 0.5) == LATE
        assert state(missing_at) == LATE
    assert state(missing_at + 0.5) == MISSING
    assert state(500) == MISSING
    tracker.observe(T0 + 501)
    assert state(501) == RECOVERED
    assert state(520.5) == RECOVERED
    assert state(521) == OK  # recovered shows for `recovered_for`
    episodes = [(e.state, e.started_at - T0, e.ended_at) for e in tracker.episodes()]
    expected = [(MISSING, missing_at, T0 + 501)]
    if missing_at > late_at:
        expected.insert(0, (LATE, late_at, T0 + missing_at))
    assert sorted(episodes, key=lambda e: e[1]) == expected
    # The next deadline runs from the event that came back.
    assert state(531) == OK
    assert state(531.5) == (LATE if missing_at > late_at else MISSING)


def test_an_expected_event_that_never_arrives_goes_missing_from_the_start() -> None:
    tracker = ExpectationTracker(expect("hb", 30), started_at=T0)
    assert tracker.state(T0 + 29) == OK
    assert tracker.state(T0 + 31) == LATE
    [anomaly] = tracker.evaluate(T0 + 61)
    assert (anomaly.state, anomaly.started_at, anomaly.firing) == (MISSING, T0 + 60, True)


def test_a_deadline_is_detected_within_a_second_when_evaluated_each_second() -> None:
    monitor = Monitor([expect("hb", 10, grace=5)], started_at=T0)
    seen: dict[str, float] = {}
    for now, anomalies in run(monitor, [Ev("hb", T0 + 3.3)], T0, T0 + 30):
        for anomaly in anomalies:
            seen.setdefault(anomaly.state, now)
    # Deadlines: late past T0+13.3, missing past T0+18.3.
    assert T0 + 13.3 < seen[LATE] <= T0 + 14.3
    assert T0 + 18.3 < seen[MISSING] <= T0 + 19.3


def test_jitter_below_a_second_is_not_an_episode() -> None:
    tracker = ExpectationTracker(expect("hb", 30), started_at=T0)
    for k in range(10):
        tracker.observe(T0 + k * 30.2)  # each 0.2 s past its deadline
    assert tracker.episodes() == []
    assert tracker.state(T0 + 9 * 30.2 + 1) == OK


@pytest.mark.parametrize(
    ("min_rate", "window", "need"), [(30.0, 60.0, 30), (2.5, 60.0, 3), (0.5, 120.0, 1)]
)
def test_min_rate_window_and_count(min_rate: float, window: float, need: int) -> None:
    tracker = ExpectationTracker(expect("buy", min_rate=min_rate), started_at=T0)
    assert (tracker.window, tracker.need) == (window, need)


def test_min_rate_goes_low_and_back() -> None:
    tracker = ExpectationTracker(expect("buy", min_rate=30), started_at=T0, recovered_for=5)
    # Not judged before a whole window has been watched.
    assert tracker.state(T0 + 59.5) == OK
    assert tracker.state(T0 + 60) == LOW_RATE
    for k in range(60):  # one a second: 60 a minute; the 30th (at T0+89) restores the rate
        tracker.observe(T0 + 60 + k)
    assert tracker.state(T0 + 90) == RECOVERED
    assert tracker.state(T0 + 119.5) == OK
    # Then one every 10 s from T0+129. The 30th newest event at T0+150 is the one at T0+93, so
    # the window runs short when that one leaves it, at T0+153.
    for k in range(1, 13):
        tracker.observe(T0 + 119 + 10 * k)
        if k == 3:
            assert tracker.state(T0 + 152.5) == OK
    [low] = tracker.evaluate(T0 + 200)
    assert (low.state, low.started_at, low.firing) == (LOW_RATE, T0 + 153, True)
    # A burst restores it: with six in the last minute, the 24th burst event makes thirty.
    burst = [T0 + 240 + k * 0.1 for k in range(30)]
    for at in burst:
        tracker.observe(at)
    assert tracker.state(T0 + 245) == RECOVERED
    episodes = [(e.state, e.started_at, e.ended_at) for e in tracker.episodes()]
    assert episodes == [(LOW_RATE, T0 + 60, T0 + 89), (LOW_RATE, T0 + 153, burst[23])]


def test_min_rate_low_episode_keeps_its_start_while_still_low() -> None:
    tracker = ExpectationTracker(expect("buy", min_rate=10), started_at=T0)
    for k in range(10):
        tracker.observe(T0 + k)
    assert tracker.state(T0 + 59.5) == OK
    [low] = tracker.evaluate(T0 + 61)
    assert low.started_at == T0 + 60
    for k in range(5):  # some events, not enough
        tracker.observe(T0 + 70 + k)
        assert [a.started_at for a in tracker.evaluate(T0 + 70.5 + k)] == [T0 + 60]
    assert len(tracker.episodes()) == 1


def test_where_limits_an_expectation_to_matching_events() -> None:
    def compile_where(text: str) -> Any:
        assert text == "plan=pro"
        return lambda event: (event.properties or {}).get("plan") == "pro"

    monitor = Monitor(
        [expect("signup", 30, where="plan=pro")], started_at=T0, compile_where=compile_where
    )
    monitor.observe_many([Ev("signup", T0 + 5, properties={"plan": "free"}) for _ in range(3)])
    assert monitor.state_of("signup", T0 + 31) == LATE
    monitor.observe(Ev("signup", T0 + 32, properties={"plan": "pro"}))
    assert monitor.state_of("signup", T0 + 33) == RECOVERED
    [anomaly] = monitor.evaluate(T0 + 33)
    assert anomaly.where == "plan=pro"


@pytest.mark.parametrize(
    "spec",
    [expect("x"), expect("x", 0), expect("x", min_rate=0), expect("x", min_rate=-1)],
    ids=["neither", "every-0", "rate-0", "rate-negative"],
)
def test_an_expectation_that_cannot_be_watched_is_an_error(spec: Expectation) -> None:
    with pytest.raises(ExpectationError, match='expectation for "x"'):
        Monitor([spec], started_at=T0)


# --- restarting --------------------------------------------------------------------------------


def test_restart_seeded_from_history_raises_no_false_alarm() -> None:
    specs = [expect("hb", 30), expect("buy", min_rate=6)]
    history = [Ev("hb", T0 + k * 20) for k in range(60)]  # every 20 s until T0+1180
    history += [Ev("buy", T0 + 600 + k * 5) for k in range(117)]  # every 5 s until T0+1180
    restart = T0 + 1190
    monitor = Monitor(specs, started_at=restart)
    recent = [e for e in history if e.received_at >= restart - 600]
    monitor.seed(recent, last_seen={"hb": T0 + 1180, "buy": T0 + 1180}, history_from=restart - 600)
    for offset in (0, 1, 5, 10):
        assert monitor.evaluate(restart + offset) == []
    # And the deadline carried over: late 30 s after the last heartbeat before the restart.
    assert monitor.state_of("hb", T0 + 1211) == LATE
    # The rate floor judged the minute before the restart, and still does: 6 a minute is due.
    assert monitor.state_of("buy", T0 + 1211) == OK
    assert monitor.state_of("buy", T0 + 1241) == LOW_RATE


def test_restart_seeded_with_only_last_seen_keeps_a_missing_event_missing() -> None:
    monitor = Monitor([expect("hb", 30)], started_at=T0 + 1000)
    monitor.seed(last_seen={"hb": T0})
    [anomaly] = monitor.evaluate(T0 + 1000)
    assert (anomaly.state, anomaly.started_at) == (MISSING, T0 + 60)
    assert monitor.state_of("hb", T0 + 1000) == MISSING
    stats = monitor.counters.get("hb")
    assert stats is not None and (stats.total, stats.last_seen) == (0, T0)


def test_expectation_last_seen_seeds_a_filtered_expectation() -> None:
    spec = expect("signup", 30, where="plan=pro")
    monitor = Monitor([spec], started_at=T0 + 100, compile_where=lambda _: lambda e: True)
    monitor.seed(last_seen={"signup": T0 + 99}, expectation_last_seen={spec: T0 + 50})
    # The name's last event is not necessarily a matching one: only the per-expectation time counts.
    assert monitor.state_of("signup", T0 + 100) == LATE


def test_learned_state_carries_over_a_seeded_restart_and_never_alarms_unseeded() -> None:
    rng = random.Random(7)
    stream = poisson("tick", 2.0, T0, T0 + 45 * 60, rng)  # stops at T0+45m
    restart = T0 + 40 * 60
    continuous = Monitor(started_at=T0)
    seeded = Monitor(started_at=restart)
    seeded.seed(
        [e for e in stream if restart - 20 * 60 <= e.received_at < restart],
        history_from=restart - 20 * 60,
    )
    cold = Monitor(started_at=restart)
    drain(continuous, [e for e in stream if e.received_at < restart], T0, restart - 1)
    after = [e for e in stream if e.received_at >= restart]
    end = T0 + 55 * 60
    states: dict[str, list[str]] = {"continuous": [], "seeded": [], "cold": []}
    for monitor, key in ((continuous, "continuous"), (seeded, "seeded"), (cold, "cold")):
        for now, _ in run(monitor, after, restart, end, 5.0):
            states[key].append(monitor.state_of("tick", now))
    assert QUIET in states["continuous"]
    assert states["seeded"] == states["continuous"]
    # Cold: learning until the name has 10 minutes of history, which it never gets.
    assert LEARNING in states["cold"]
    assert set(states["cold"]) <= {LEARNING, OK}


# --- learned cadence ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1 / 60, 0.2, 2.0, 25.0], ids=["1/min", "0.2/s", "2/s", "25/s"])
def test_a_steady_poisson_stream_for_an_hour_never_alarms(rate: float) -> None:
    rng = random.Random(int(rate * 1000) + 1)
    start = T0 - 3 * 3600 if rate < 0.1 else T0  # a slow stream needs hours to warm up
    end = T0 + 3600
    events = poisson("steady", rate, start, end, rng)
    monitor = Monitor(started_at=start)
    drain(monitor, [e for e in events if e.received_at < T0], start, T0, 60.0)
    warmed = False
    for now, anomalies in run(monitor, [e for e in events if e.received_at >= T0], T0, end):
        assert learned_states(anomalies) == set(), (now - T0, anomalies)
        warmed = warmed or monitor.state_of("steady", now) == OK
    assert warmed, "the stream never left warm-up, so the test proved nothing"
    assert monitor.episodes() == []


def test_a_bursty_stream_is_judged_by_its_usual_gap_not_its_burst_gaps() -> None:
    rng = random.Random(3)
    events = []
    for burst in range(12):  # 300 events in ~3 s, every 10 minutes
        at = T0 + burst * 600
        events += [Ev("sync", at + rng.random() * 3) for _ in range(300)]
    monitor = Monitor(started_at=T0)
    for now, anomalies in run(monitor, events, T0, T0 + 12 * 600, 5.0):
        assert QUIET not in learned_states(anomalies), now - T0


def test_a_stream_that_stops_goes_quiet_then_recovers() -> None:
    rng = random.Random(11)
    events = poisson("tick", 2.0, T0, T0 + 1800, rng)
    last = events[-1].received_at
    monitor = Monitor(started_at=T0)
    drain(monitor, events, T0, last + 59)
    assert monitor.state_of("tick", last + 59) == OK
    # Quiet after max(3 x the usual gap, 60 s): the floor, for an event twice a second.
    [quiet] = monitor.evaluate(last + 61)
    assert (quiet.kind, quiet.state, quiet.started_at) == ("learned", QUIET, last + 60)
    assert quiet.severity is Severity.WARNING
    assert not quiet.firing
    monitor.observe(Ev("tick", last + 300))
    assert monitor.state_of("tick", last + 301) == RECOVERED
    [episode] = monitor.episodes()
    assert (episode.state, episode.started_at, episode.ended_at) == (QUIET, last + 60, last + 300)


def test_a_slow_event_goes_quiet_only_far_beyond_its_usual_gap() -> None:
    rng = random.Random(5)
    events = poisson("daily_report", 1 / 60, T0, T0 + 4 * 3600, rng)
    last = events[-1].received_at
    monitor = Monitor(started_at=T0)
    drain(monitor, events, T0, last, 60.0)
    assert monitor.state_of("daily_report", last + 10 * 60) == OK
    assert monitor.state_of("daily_report", last + 3 * 3600) == QUIET
    [quiet] = monitor.evaluate(last + 3 * 3600)
    assert 15 * 60 < quiet.started_at - last < 60 * 60


def test_no_alarm_in_warm_up() -> None:
    # 9 minutes of history, then silence: not enough to know what "usual" is.
    events = [Ev("new", T0 + k * 2) for k in range(270)]
    monitor = Monitor(started_at=T0)
    for now, anomalies in run(monitor, events, T0, T0 + 3600, 10.0):
        assert learned_states(anomalies) == set(), now - T0
    assert monitor.state_of("new", T0 + 3600) == LEARNING


@pytest.mark.parametrize(
    ("before", "after", "state"),
    [(5.0, 1.0, RATE_DROP), (5.0, 0.5, RATE_DROP), (1.0, 10.0, RATE_SPIKE), (2.0, 8.0, RATE_SPIKE)],
)
def test_a_rate_change_is_flagged_within_minutes(before: float, after: float, state: str) -> None:
    rng = random.Random(17)
    change = T0 + 40 * 60
    events = poisson("api_call", before, T0, change, rng)
    events += poisson("api_call", after, change, change + 20 * 60, rng)
    monitor = Monitor(started_at=T0)
    first_seen: dict[str, float] = {}
    for now, anomalies in run(monitor, events, T0, change + 20 * 60, 5.0):
        for s in learned_states(anomalies):
            first_seen.setdefault(s, now)
    assert set(first_seen) == {state}
    assert change < first_seen[state] <= change + 7 * 60
    [episode] = monitor.episodes()
    assert episode.state == state
    assert episode.ended_at is None  # a lasting change stays flagged (until it is relearned)


def test_a_rate_alarm_ends_when_the_rate_comes_back() -> None:
    rng = random.Random(23)
    events = poisson("api_call", 5.0, T0, T0 + 40 * 60, rng)
    events += poisson("api_call", 0.5, T0 + 40 * 60, T0 + 50 * 60, rng)
    events += poisson("api_call", 5.0, T0 + 50 * 60, T0 + 70 * 60, rng)
    monitor = Monitor(started_at=T0)
    drain(monitor, events, T0, T0 + 70 * 60, 10.0)
    [episode] = monitor.episodes()
    assert episode.state == RATE_DROP
    assert episode.ended_at is not None
    assert T0 + 50 * 60 < episode.ended_at <= T0 + 55 * 60
    assert monitor.state_of("api_call", T0 + 70 * 60) == OK


def rate_changes(base: float, steps: Sequence[tuple[float, float]], seed: int) -> list[Ev]:
    """40 minutes at `base` per second, then (minutes, ratio) steps."""
    rng = random.Random(seed)
    start = T0 + 40 * 60
    events = poisson("api_call", base, T0, start, rng)
    for minutes, ratio in steps:
        events += poisson("api_call", base * ratio, start, start + minutes * 60, rng)
        start += minutes * 60
    return events


def rate_episodes(events: list[Ev], settings: MonitorSettings | None = None) -> list[Episode]:
    monitor = Monitor(started_at=T0, settings=settings)
    drain(monitor, events, T0, max(e.received_at for e in events), 10.0)
    return monitor.episodes()


@pytest.mark.parametrize(("ratio", "episodes"), [(0.65, 0), (1.6, 0), (0.4, 1), (2.5, 1)], ids=str)
def test_a_steady_new_rate_between_or_beyond_the_thresholds(ratio: float, episodes: int) -> None:
    found = rate_episodes(rate_changes(5.0, [(50, ratio)], seed=int(ratio * 10)))
    assert len(found) == episodes
    assert all(e.ended_at is None for e in found)


def test_no_flicker_on_a_rate_that_hovers_at_the_threshold() -> None:
    # Three minutes at 0.35x, three at 0.65x: the 5-minute window swings across 0.5x every minute.
    hovering = rate_changes(5.0, [(3, 0.35), (3, 0.65)] * 9, seed=8)
    [episode] = rate_episodes(hovering)
    assert episode.state == RATE_DROP
    assert episode.ended_at is None
    # The control: without hysteresis and dwell the same stream flickers, so the test has teeth.
    twitchy = MonitorSettings(learned=LearnedSettings(drop_leave=0.5, z_leave=4.0, hold_minutes=1))
    assert len(rate_episodes(hovering, twitchy)) >= 3


def test_an_alarm_that_lasts_an_hour_becomes_the_new_normal() -> None:
    events = rate_changes(5.0, [(90, 0.3)], seed=4)
    [episode] = rate_episodes(events)
    assert episode.state == RATE_DROP
    assert episode.ended_at is not None
    assert episode.ended_at - episode.started_at == pytest.approx(3600, abs=60)


def test_learned_ignores_declared_events() -> None:
    monitor = Monitor([expect("hb", 3600)], started_at=T0)
    events = [Ev("hb", T0 + k) for k in range(1200)]
    drain(monitor, events, T0, T0 + 1500, 10.0)
    assert "hb" not in monitor.learned
    assert monitor.state_of("hb", T0 + 1500) == OK


def test_learned_cadence_runs_alone() -> None:
    learned = LearnedCadence()
    for k in range(1200):
        learned.observe("x", T0 + k)
    assert learned.state_of("x", T0 + 1200) == OK
    assert learned.state_of("x", T0 + 1300) == QUIET
    assert learned.state_of("unknown", T0) is None


# --- the tracking plan ---------------------------------------------------------------------------

ORDER_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "minLength": 1},
        "plan": {"enum": ["free", "pro", "team"]},
        "price": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
        "quantity": {"type": "integer", "minimum": 1},
        "coupon": {"type": ["string", "null"]},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
                "required": ["sku"],
            },
        },
        "first_purchase": {"type": "boolean"},
        "source": {"type": "string"},
        "ts": {"type": "string", "format": "date-time"},
    },
    "required": ["order_id", "plan", "price", "currency"],
    "additionalProperties": False,
}
ORDER = {
    "order_id": "o-1",
    "plan": "pro",
    "price": 19.99,
    "currency": "USD",
    "quantity": 2,
    "coupon": None,
    "items": [{"sku": "a-1", "qty": 1}, {"sku": "b-2", "qty": 1}],
    "first_purchase": True,
    "source": "web",
    "ts": "2024-01-01T00:00:00Z",
}


def order_plan(strict: bool = False) -> Plan:
    events = {"Order Completed": PlanEvent(schema=ORDER_SCHEMA), "Signed Up": PlanEvent()}
    return Plan(PlanConfig(strict=strict, events=events))


def fast_path(plan: Plan, name: str) -> Callable[[Any], object] | None:
    compiled = plan._schemas[name]
    assert compiled is not None
    return compiled.fast


def accepts(fast: Callable[[Any], object], instance: Any) -> bool:
    """The fast path's answer: fastjsonschema returns for a valid instance and raises otherwise."""
    try:
        fast(instance)
    except JsonSchemaValueException:
        return False
    return True


def test_a_valid_event_has_no_errors_and_takes_the_fast_path() -> None:
    plan = order_plan()
    assert plan.check("Order Completed", json.dumps(ORDER)) == []
    assert plan.check("Order Completed", ORDER) == []
    fast = fast_path(plan, "Order Completed")
    assert fast is not None
    assert accepts(fast, ORDER)
    assert not accepts(fast, {**ORDER, "price": -1})


def test_the_fast_path_leaves_the_event_as_it_was() -> None:
    # fastjsonschema writes "default" values into the instance unless told not to.
    schema = {"properties": {"plan": {"type": "string", "default": "free"}}}
    plan = Plan(PlanConfig(events={"e": PlanEvent(schema=schema)}))
    assert fast_path(plan, "e") is not None
    properties: dict[str, Any] = {}
    assert plan.check("e", properties) == []
    assert properties == {}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"price": -1}, ["properties.price: -1 is less than the minimum of 0"]),
        ({"plan": "gold"}, ["properties.plan: 'gold' is not one of ['free', 'pro', 'team']"]),
        ({"currency": "usd"}, ["properties.currency: 'usd' does not match '^[A-Z]{3}$'"]),
        ({"quantity": True}, ["properties.quantity: True is not of type 'integer'"]),
        (
            {"items": [{"sku": "a"}, {"qty": 1}]},
            ["properties.items[1]: 'sku' is a required property"],
        ),
        (
            {"items": [{"sku": 5}]},
            ["properties.items[0].sku: 5 is not of type 'string'"],
        ),
        (
            {"odd key\n": 1},
            ["properties: Additional properties are not allowed ('odd key\\n' was unexpected)"],
        ),
        ({"order_id": None}, ["properties.order_id: None is not of type 'string'"]),
    ],
)
def test_an_invalid_event_gets_one_line_errors_with_paths(
    change: dict[str, Any], errors: list[str]
) -> None:
    assert order_plan().check("Order Completed", json.dumps({**ORDER, **change})) == errors


def test_a_missing_required_property_is_reported_at_the_top() -> None:
    props = {k: v for k, v in ORDER.items() if k != "plan"}
    assert order_plan().check("Order Completed", json.dumps(props)) == [
        "properties: 'plan' is a required property"
    ]


def test_errors_are_bounded() -> None:
    schema = {"type": "object", "additionalProperties": {"type": "string"}}
    plan = Plan(PlanConfig(events={"e": PlanEvent(schema=schema)}))
    errors = plan.check("e", json.dumps({f"k{i}": i for i in range(50)}))
    assert len(errors) == MAX_ERRORS + 1
    assert errors[-1].startswith("(more errors not shown")
    long = plan.check("e", json.dumps({"k": list(range(10_000))}))
    assert len(long[0]) <= 300


def test_repeated_invalid_payloads_are_cached_but_results_stay_independent() -> None:
    plan = order_plan()
    text = json.dumps({**ORDER, "price": -1})
    first = plan.check("Order Completed", text)
    first.append("mutated by a caller")
    assert plan.check("Order Completed", text) == [
        "properties.price: -1 is less than the minimum of 0"
    ]


@pytest.mark.parametrize("properties", [None, "", "{}", {}])
def test_empty_properties_are_an_empty_object(properties: Any) -> None:
    plan = Plan(PlanConfig(events={"e": PlanEvent(schema={"required": ["a"]})}))
    assert plan.check("e", properties) == ["properties: 'a' is a required property"]


def test_unplanned_names_under_strict() -> None:
    strict, lax = order_plan(strict=True), order_plan(strict=False)
    assert strict.is_unplanned("Something Else")
    assert not strict.is_unplanned("Signed Up")  # planned without a schema
    assert not lax.is_unplanned("Something Else")
    # Unplanned is a warning, not an invalid event; names without a schema are not even decoded.
    assert strict.check("Something Else", "not json at all") == []
    assert strict.check("Signed Up", "not json at all") == []


def test_a_schema_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "order.json").write_text(json.dumps(ORDER_SCHEMA))
    config = Config(
        plan=PlanConfig(events={"Order Completed": PlanEvent(schema="schemas/order.json")}),
        source=str(tmp_path / "eventtui.toml"),
    )
    plan = Plan.from_config(config)
    assert plan.check("Order Completed", json.dumps(ORDER)) == []
    assert plan.check("Order Completed", json.dumps({**ORDER, "price": "1"})) == [
        "properties.price: '1' is not of type 'number'"
    ]


def test_a_ref_to_a_sibling_file_resolves(tmp_path: Path) -> None:
    (tmp_path / "common.json").write_text(json.dumps({"$defs": {"id": {"type": "string"}}}))
    (tmp_path / "order.json").write_text(
        json.dumps({"properties": {"order_id": {"$ref": "common.json#/$defs/id"}}})
    )
    config = Config(
        plan=PlanConfig(events={"o": PlanEvent(schema="order.json")}),
        source=str(tmp_path / "eventtui.toml"),
    )
    plan = Plan.from_config(config)
    assert plan.check("o", '{"order_id": "x"}') == []
    assert plan.check("o", '{"order_id": 5}') == ["properties.order_id: 5 is not of type 'string'"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"type": "nope"}', "not a valid JSON Schema at type"),
        ('{"type": "string", "pattern": "(unclosed"}', "not a valid JSON Schema at pattern"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a JSON Schema is an object"),
        ('{"$schema": "https://example.com/mine"}', 'unknown "$schema"'),
        ('{"$ref": "missing.json"}', 'cannot resolve "$ref" "missing.json"'),
        ('{"$ref": "#/$defs/nothing"}', 'cannot resolve "$ref"'),
    ],
)
def test_a_broken_schema_is_a_plan_error_naming_event_and_file(
    tmp_path: Path, content: str, message: str
) -> None:
    (tmp_path / "broken.json").write_text(content)
    config = Config(
        plan=PlanConfig(events={"Order Completed": PlanEvent(schema="broken.json")}),
        source=str(tmp_path / "eventtui.toml"),
    )
    with pytest.raises(PlanError) as error:
        Plan.from_config(config)
    text = str(error.value)
    assert text.startswith("plan.events.Order Completed: schema file")
    assert str(tmp_path / "broken.json") in text
    assert message in text


def test_an_unreadable_schema_file_is_a_plan_error(tmp_path: Path) -> None:
    config = Config(
        plan=PlanConfig(events={"e": PlanEvent(schema="nowhere.json")}),
        source=str(tmp_path / "eventtui.toml"),
    )
    with pytest.raises(
        PlanError, match=r"plan\.events\.e: schema file .*nowhere\.json.*cannot read"
    ):
        Plan.from_config(config)


def test_a_broken_inline_schema_is_a_plan_error() -> None:
    with pytest.raises(PlanError, match=r"plan\.events\.e: inline schema: not a valid JSON Schema"):
        Plan(PlanConfig(events={"e": PlanEvent(schema={"minimum": "zero"})}))


def test_an_inline_schemas_ref_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "id.json").write_text('{"type": "string"}')
    monkeypatch.chdir(tmp_path)  # not where the config is
    config = Config(
        plan=PlanConfig(
            events={"o": PlanEvent(schema={"properties": {"id": {"$ref": "id.json"}}})}
        ),
        source=str(tmp_path / "conf" / "eventtui.toml"),
    )
    plan = Plan.from_config(config)
    assert plan.check("o", '{"id": 5}') == ["properties.id: 5 is not of type 'string'"]


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (
            {"$ref": "https://example.com/order.json"},
            'cannot resolve "$ref" "https://example.com/order.json" (https://example.com/order.json:'
            " not fetched: references must name local files (nothing is fetched over the network))",
        ),
        ({"$ref": "folder"}, 'cannot resolve "$ref" "folder" ({tmp}/folder: a directory, not a regular file)'),
        ({"$ref": "broken.json"}, 'cannot resolve "$ref" "broken.json" ({tmp}/broken.json: not valid JSON'),
        (json.loads('{"not": ' * 600 + "{}" + "}" * 600), "nested too deeply to check"),
    ],
)  # fmt: skip
def test_what_a_schema_cannot_refer_to_is_a_plan_error(
    tmp_path: Path, schema: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a schema reference was fetched over the network")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    (tmp_path / "folder").mkdir()
    (tmp_path / "broken.json").write_text("{")
    config = Config(
        plan=PlanConfig(events={"e": PlanEvent(schema=schema)}),
        source=str(tmp_path / "eventtui.toml"),
    )
    with pytest.raises(PlanError) as error:
        Plan.from_config(config)
    assert str(error.value).startswith("plan.events.e: inline schema: ")
    assert message.format(tmp=tmp_path) in str(error.value)


def test_a_file_referred_to_many_times_is_read_once(tmp_path: Path) -> None:
    """Every "$ref" goes through one loader that keeps what it read: replacing the file after the
    plan is built changes nothing, even for a reference first followed while validating."""
    (tmp_path / "common.json").write_text('{"$defs": {"id": {"type": "string"}}}')
    refs = {f"p{n}": {"$ref": f"{'./' * n}common.json#/$defs/id"} for n in range(3)}
    # Below a subschema with its own "$id", references are followed at validation time.
    later = {"$id": (tmp_path / "sub.json").as_uri(), "$ref": "common.json#/$defs/id"}
    (tmp_path / "e.json").write_text(json.dumps({"properties": {**refs, "later": later}}))
    config = Config(
        plan=PlanConfig(events={"e": PlanEvent(schema="e.json")}),
        source=str(tmp_path / "eventtui.toml"),
    )
    plan = Plan.from_config(config)
    (tmp_path / "common.json").write_text('{"$defs": {"id": {"type": "integer"}}}')
    assert plan.check("e", '{"p0": "a", "p1": "b", "p2": "c", "later": "d"}') == []
    assert sorted(plan.check("e", '{"p0": 1, "later": 2}')) == [
        "properties.later: 2 is not of type 'string'",
        "properties.p0: 1 is not of type 'string'",
    ]


# The fast path must never call valid what jsonschema calls invalid; and where it is used it should
# agree on valid instances too, or it is not doing its job. Each schema marked False is one where
# fastjsonschema, were it used, would accept an instance below that jsonschema rejects.
DRAFT4 = "http://json-schema.org/draft-04/schema#"
DRAFT6 = "http://json-schema.org/draft-06/schema#"
DRAFT7 = "http://json-schema.org/draft-07/schema#"
DRAFT2019 = "https://json-schema.org/draft/2019-09/schema"
# (schema, whether the fast path should handle it)
FAST_SCHEMAS: list[tuple[Any, bool]] = [
    (ORDER_SCHEMA, True),
    ({"type": "integer"}, True),
    ({"type": "number", "exclusiveMinimum": 0, "maximum": 10}, True),
    ({"$schema": DRAFT4, "minimum": 0, "exclusiveMinimum": True}, True),
    ({"$schema": DRAFT4, "maximum": 5, "exclusiveMaximum": True}, True),
    ({"$schema": DRAFT4, "type": "integer"}, True),
    ({"$schema": DRAFT6, "type": "integer", "exclusiveMaximum": 3}, True),
    ({"$schema": DRAFT7, "type": "array", "items": {"type": "integer"}}, True),
    ({"$schema": DRAFT2019, "properties": {"a": {"type": "string"}}, "required": ["a"]}, True),
    ({"enum": [1, True, "a", None, 2.5, [1], {"a": 1}]}, True),
    ({"const": False}, True),
    ({"type": "string", "minLength": 2, "maxLength": 3}, True),
    ({"type": "string", "pattern": "b"}, True),
    ({"type": "object", "additionalProperties": {"type": "integer"}, "maxProperties": 2}, True),
    ({"properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "boolean"}}, True),
    ({"minProperties": 1, "required": ["a"]}, True),
    ({"type": "array", "minItems": 1, "maxItems": 2}, True),
    ({"type": "array", "uniqueItems": True}, True),
    ({"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 2}]}, True),
    ({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, True),
    ({"not": {"type": "string", "pattern": "^a"}}, True),
    ({"allOf": [{"type": "integer"}, {"minimum": 3}]}, True),
    ({"title": "t", "description": "d", "x-vendor": 1, "$comment": "c", "type": "boolean"}, True),
    ({"type": "string", "format": "email"}, True),
    ({"properties": {"a": False}}, True),
    ({"items": {"properties": {"b": {"enum": ["x"]}}, "required": ["b"]}}, True),
    (
        {"$defs": {"pos": {"type": "integer", "minimum": 1}}, "items": {"$ref": "#/$defs/pos"}},
        True,
    ),
    # Annotations beside a "$ref" change nothing in any draft.
    ({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "description": "d"}, True),
    # 2020-12 applies the keywords beside a "$ref"; draft 7 (and fastjsonschema) ignores them.
    ({"$defs": {"s": {"type": "string"}}, "$ref": "#/$defs/s", "minLength": 2}, False),
    (
        {"$schema": DRAFT7, "definitions": {"s": {"type": "string"}}, "$ref": "#/definitions/s"}
        | {"minLength": 2},
        True,
    ),
    (
        {
            "$defs": {"tree": {"type": ["array", "integer"], "items": {"$ref": "#/$defs/tree"}}},
            "$ref": "#/$defs/tree",
        },
        True,  # recursive
    ),
    (
        {
            "$defs": {"x": {"type": "string"}},
            "properties": {
                # A new base URI: here "#/$defs/x" means the integer below, not the string above.
                "a": {
                    "$id": "https://example.com/sub",
                    "$defs": {"x": {"type": "integer"}},
                    "$ref": "#/$defs/x",
                }
            },
        },
        False,
    ),
    # A "$schema" below the top switches jsonschema to that draft.
    ({"properties": {"a": {"$schema": DRAFT4, "type": "integer"}}}, False),
    # fastjsonschema divides decimals: 19.01 is a multiple of 0.01 for it, not for jsonschema.
    ({"type": "number", "multipleOf": 0.01}, False),
    # Its "$" does not match before a final newline: stricter, so looser under not, if, or an
    # atomic group.
    ({"$schema": DRAFT7, "not": {"pattern": "^a$"}}, False),
    ({"$schema": DRAFT7, "if": {"pattern": "^a$"}, "then": {"maxLength": 1}}, False),
    ({"$schema": DRAFT7, "type": "string", "pattern": "^(?>a$|a\n)\\Z"}, False),
    # It asserts a media type that jsonschema only notes.
    ({"$schema": DRAFT7, "not": {"contentMediaType": "application/json"}}, False),
    # Keywords whose draft 7 meaning differs from 2020-12's (or that draft 7 lacks).
    ({"not": {"dependencies": {"a": ["b"]}}}, False),
    ({"dependentRequired": {"a": ["b"]}}, False),
    ({"prefixItems": [{"type": "string"}]}, False),
    ({"type": "array", "contains": {"type": "integer"}, "maxContains": 1}, False),
    ({"properties": {"a": {"type": "string"}}, "unevaluatedProperties": False}, False),
    # Items as an array (draft 7's tuples) still means the same in 2019-09.
    ({"$schema": DRAFT2019, "items": [{"type": "integer"}], "additionalItems": False}, True),
]
VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    2,
    3,
    -1,
    1.0,
    2.5,
    10,
    11,
    0.0,
    5,
    5.0,
    10**30,
    19.01,
    "",
    "a",
    "ab",
    "abc",
    "abcd",
    "xbx",
    "é\U0001f600",
    "USD",
    "a\n",
    [],
    [1],
    [1, 1],
    [1, "a"],
    [1, 2, 3],
    [True],
    {},
    {"a": 1},
    {"a": "x"},
    {"a": "x", "b": True},
    {"a": "x", "b": 2},
    {"b": "x"},
    {"a": 1, "b": 2, "c": 3},
    [{"b": "x"}, {"b": "y"}],
    [{"b": "x"}, {}],
    ORDER,
    {**ORDER, "quantity": 1.0},
    {**ORDER, "price": True},
]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 2 or roll < 0.6:
        return rng.choice(VALUES)
    if roll < 0.8:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["a", "b", "c", "sku", "qty", *ORDER]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


@pytest.mark.parametrize(("schema", "supported"), FAST_SCHEMAS, ids=range(len(FAST_SCHEMAS)))
def test_the_fast_path_never_accepts_what_jsonschema_rejects(schema: Any, supported: bool) -> None:
    plan = Plan(PlanConfig(events={"e": PlanEvent(schema=schema)}))
    fast = fast_path(plan, "e")
    assert (fast is not None) == supported
    validator = validator_for(schema, default=Draft202012Validator)(schema)
    rng = random.Random(42)
    agreed = 0
    for instance in VALUES + [random_value(rng) for _ in range(400)]:
        valid = validator.is_valid(instance)
        if fast is not None and accepts(fast, instance):
            assert valid, (schema, instance)
            agreed += 1
        if isinstance(instance, dict):
            errors = plan.check("e", instance)
            assert (errors == []) == valid, (schema, instance, errors)
    # It must also say yes, or it is no fast path at all.
    assert agreed > 0 or not supported


def test_a_ref_into_another_file_takes_the_fast_path(tmp_path: Path) -> None:
    (tmp_path / "common.json").write_text(json.dumps({"$defs": {"id": {"type": "string"}}}))
    schema = {"properties": {"order_id": {"$ref": "common.json#/$defs/id"}}}
    (tmp_path / "order.json").write_text(json.dumps(schema))
    config = Config(
        plan=PlanConfig(events={"o": PlanEvent(schema="order.json")}),
        source=str(tmp_path / "eventtui.toml"),
    )
    fast = fast_path(Plan.from_config(config), "o")
    assert fast is not None
    assert accepts(fast, {"order_id": "x"})
    assert not accepts(fast, {"order_id": 5})


@pytest.mark.parametrize(
    "common",
    [
        # Its own "$id" would move where its references point; its "$schema" would change the rules.
        {"$id": "https://example.com/common.json", "$defs": {"id": {"type": "string"}}},
        {"$schema": DRAFT4, "$defs": {"id": {"type": "string"}}},
        # A reference out of the machine: never fetched, by either library.
        {"$defs": {"id": {"$ref": "https://example.com/id.json"}}},
    ],
)
def test_a_referenced_file_the_fast_path_cannot_follow_leaves_it_to_jsonschema(
    tmp_path: Path, common: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a schema reference was fetched over the network")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    (tmp_path / "common.json").write_text(json.dumps(common))
    schema = {"properties": {"order_id": {"$ref": "common.json#/$defs/id"}}}
    (tmp_path / "order.json").write_text(json.dumps(schema))
    config = Config(
        plan=PlanConfig(events={"o": PlanEvent(schema="order.json")}),
        source=str(tmp_path / "eventtui.toml"),
    )
    plan = Plan.from_config(config)
    assert fast_path(plan, "o") is None
    assert plan.check("o", '{"order_id": 5}') != []


def test_floats_as_integers_follow_the_declared_draft() -> None:
    # Draft 4 says 1.0 is not an integer, later drafts say it is; both libraries agree per draft.
    for cls, expected in (
        (Draft4Validator, ["x: 1.0 is not of type 'integer'"]),
        (Draft7Validator, []),
    ):
        schema = {"$schema": cls.META_SCHEMA["$schema"], "properties": {"x": {"type": "integer"}}}
        plan = Plan(PlanConfig(events={"e": PlanEvent(schema=schema)}))
        assert plan.check("e", '{"x": 1.0}') == [f"properties.{e}" for e in expected]
        fast = fast_path(plan, "e")
        assert fast is not None
        assert accepts(fast, {"x": 1.0}) == (expected == [])


# --- plan states for viewers ---------------------------------------------------------------------


def test_invalid_events_flag_a_name_for_the_window() -> None:
    watch = PlanWatch(window=900)
    watch.observe("buy", T0, False)
    watch.observe("buy", T0 + 10, False)
    [anomaly] = watch.evaluate(T0 + 20)
    assert (anomaly.kind, anomaly.state, anomaly.started_at, anomaly.detail) == (
        "plan",
        INVALID,
        T0,
        "2 invalid events",
    )
    assert anomaly.firing
    assert watch.evaluate(T0 + 910) == []
    watch.observe("buy", T0 + 2000, False)
    episodes = [(e.started_at, e.ended_at) for e in watch.episodes()]
    assert episodes == [(T0, T0 + 910), (T0 + 2000, None)]


def test_unplanned_names_are_a_warning() -> None:
    monitor = Monitor(started_at=T0, plan=order_plan(strict=True))
    monitor.observe_many([Ev("Signed Up", T0), Ev("Mystery", T0 + 1)])
    assert monitor.state_of("Mystery", T0 + 2) == UNPLANNED
    [anomaly] = monitor.evaluate(T0 + 2)
    assert (anomaly.state, anomaly.severity, anomaly.firing) == (UNPLANNED, Severity.WARNING, False)
    assert monitor.state_of("Signed Up", T0 + 2) == LEARNING


# --- the monitor ---------------------------------------------------------------------------------


def test_anomalies_sort_most_urgent_first_and_rows_follow() -> None:
    plan = Plan(
        PlanConfig(
            strict=True,
            events={
                "Order Completed": PlanEvent(schema=ORDER_SCHEMA),
                "hb": PlanEvent(),
                "late_one": PlanEvent(),
            },
        )
    )
    monitor = Monitor(
        [expect("hb", 30), expect("late_one", 100, grace=1000)], started_at=T0, plan=plan
    )
    monitor.observe_many(
        [Ev("late_one", T0), Ev("Order Completed", T0 + 1, valid=False), Ev("Mystery", T0 + 2)]
    )
    anomalies = monitor.evaluate(T0 + 200)
    assert [a.state for a in anomalies] == [MISSING, INVALID, LATE, UNPLANNED]
    assert [a.state for a in monitor.firing(T0 + 200)] == [MISSING, INVALID]
    states = [(a.event, monitor.state_of(a.event, T0 + 200)) for a in anomalies]
    assert states == [
        ("hb", MISSING),
        ("Order Completed", INVALID),
        ("late_one", LATE),
        ("Mystery", UNPLANNED),
    ]
    assert anomalies[0].severity is Severity.FIRING
    assert describe(anomalies[0], T0 + 200) == (
        "hb: missing for 2m20s (expected every 30s; missing after 1m)"
    )


def test_time_never_runs_backwards() -> None:
    monitor = Monitor([expect("hb", 30)], started_at=T0)
    assert monitor.evaluate(T0 + 100)[0].state == MISSING
    assert monitor.evaluate(T0 + 10)[0].state == MISSING


def scenario(rng: random.Random) -> list[Ev]:
    """Half an hour of mixed traffic with something to notice in every part of the monitor."""
    events = poisson("page_view", 3.0, T0, T0 + 1800, rng)
    events += poisson("api_call", 2.0, T0, T0 + 1200, rng)  # stops: quiet
    events += poisson("api_call", 2.0, T0 + 1500, T0 + 1800, rng)
    events += poisson("search", 1.0, T0, T0 + 1000, rng)
    events += poisson("search", 8.0, T0 + 1000, T0 + 1800, rng)  # spikes
    events += [Ev("heartbeat", T0 + k * 10) for k in range(60)]  # then stops: late, missing
    events += [Ev("heartbeat", T0 + 1000 + k * 10) for k in range(80)]
    events += [Ev("checkout", T0 + 300 + k * 200, valid=k % 2 == 0) for k in range(7)]
    events += [Ev("Mystery", T0 + 700 + k) for k in range(5)]
    return sorted(events, key=lambda e: e.received_at)


def replay(events: list[Ev], step: float) -> tuple[list[Episode], list[list[Anomaly]]]:
    plan = Plan(
        PlanConfig(
            strict=True,
            events={
                n: PlanEvent() for n in ("page_view", "api_call", "search", "heartbeat", "checkout")
            },
        )
    )
    monitor = Monitor([expect("heartbeat", 10, grace=20)], started_at=T0, plan=plan)
    seen = [anomalies for _, anomalies in run(monitor, events, T0, T0 + 1800, step)]
    return monitor.episodes(), seen


def test_replay_is_deterministic() -> None:
    events = scenario(random.Random(99))
    first = replay(events, 1.0)
    second = replay(list(events), 1.0)
    assert first == second
    episodes, _ = first
    states = {(e.kind, e.event, e.state) for e in episodes}
    assert {
        ("declared", "heartbeat", LATE),
        ("declared", "heartbeat", MISSING),
        ("learned", "api_call", QUIET),
        ("learned", "search", RATE_SPIKE),
        ("plan", "checkout", INVALID),
        ("plan", "Mystery", UNPLANNED),
    } <= states
    heartbeat = [e for e in episodes if e.event == "heartbeat"]
    assert [(e.state, e.started_at, e.ended_at) for e in heartbeat] == [
        (LATE, T0 + 600, T0 + 620),
        (MISSING, T0 + 620, T0 + 1000),
    ]


def test_episodes_do_not_depend_on_how_often_the_monitor_is_evaluated() -> None:
    events = scenario(random.Random(99))
    every_second, _ = replay(events, 1.0)
    every_seven, _ = replay(events, 7.0)

    def closed(episodes: list[Episode]) -> list[Episode]:
        return [e for e in episodes if e.ended_at is not None and e.ended_at < T0 + 1790]

    assert closed(every_second) == closed(every_seven)
    assert closed(every_second)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (45, "45s"), (90, "1m30s"), (3600, "1h"), (90061, "1d1h")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_state_ranks_cover_every_state() -> None:
    states = [OK, LEARNING, RECOVERED, LATE, MISSING, LOW_RATE, QUIET, RATE_DROP, RATE_SPIKE]
    states += [UNPLANNED, INVALID]
    anomalies = [Anomaly("declared", "e", state, T0, "") for state in states]
    assert [a.state for a in sorted(anomalies, key=Anomaly.sort_key)][:3] == [
        MISSING,
        LOW_RATE,
        INVALID,
    ]
    assert {a.state for a in anomalies if a.firing} == {MISSING, LOW_RATE, INVALID}


def test_the_monitor_imports_no_ui_storage_or_event_loop() -> None:
    code = (
        "import sys, eventtui.monitor\n"
        "loaded = {'textual', 'rich', 'sqlite3', 'asyncio', 'eventtui.store', 'eventtui.tui'}\n"
        "print(sorted(loaded & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
