"""The monitor: counters, rates, expectations, learned cadence and tracking-plan states over events.

`Monitor` is the one object viewers hold. It is pure code over events and a clock: events come in
through `observe_many` (anything with `.name`, `.received_at`, `.valid`, such as
`eventtui.store.EventRow`), and every question that depends on time takes `now` (epoch seconds)
explicitly. So it runs the same live (now = the wall clock), in replay (now = the virtual clock),
in `eventtui check` (one `evaluate`) and in tests, and the same events with the same `now`s give the
same anomaly episodes with the same start times.

After a restart, `seed` it from the store's history so states carry on instead of starting over:
what it needs is plain data (see `Monitor.seed`).

Parts: `counters` (the bounded per-name counters the TUI's counters panel reads from
`Monitor.counters`), `expectations` (declared `[[expect]]` rules), `learned`
(cadence learned per event), `plan_watch` (invalid and unplanned events as states; the plan
itself, shared with the collector, is `eventtui.plan`; personal data flagged at ingest shows here
too), `drift` (property types learned per name, and when one changes), `anomaly` (states, severities, episodes),
and `factory.build_monitor`, the one way viewers (watch, open, replay, check) get a Monitor for a
config.

Pure: no IO (beyond the factory building a `Plan`, which reads schema files), no asyncio, no
threads, no Textual. May import: eventtui.config, eventtui.plan, eventtui.filters and
eventtui.matching (the factory: `where` judged on an in-memory row, never the store), eventtui.shapes
and eventtui.pii (what a path is, what a finding looks like), msgspec.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from eventtui.config import Expectation
from eventtui.monitor.anomaly import (
    INVALID,
    LATE,
    LEARNING,
    LOW_RATE,
    MISSING,
    OK,
    PII,
    QUIET,
    RATE_DROP,
    RATE_SPIKE,
    RECOVERED,
    SEVERITY,
    STATE_ORDER,
    STATE_RANK,
    TYPE_CHANGED,
    UNPLANNED,
    Anomaly,
    Episode,
    Severity,
    format_duration,
    worst_state,
)
from eventtui.monitor.counters import MAX_NAMES, OTHER, Counters, NameStats
from eventtui.monitor.drift import MAX_NAMES as MAX_DRIFT_NAMES
from eventtui.monitor.drift import Drift, TypeDrift
from eventtui.monitor.expectations import (
    DEFAULT_RECOVERED_FOR,
    ExpectationError,
    ExpectationTracker,
    Matcher,
)
from eventtui.monitor.learned import LearnedCadence, LearnedSettings
from eventtui.monitor.plan_watch import DEFAULT_PLAN_WINDOW, PlanWatch
from eventtui.pii import PII_PREFIX
from eventtui.plan import Plan, PlanError

__all__ = [
    "DRIFT_FIRST",
    "INVALID",
    "LATE",
    "LEARNING",
    "LOW_RATE",
    "MAX_NAMES",
    "MISSING",
    "OK",
    "OTHER",
    "PII",
    "QUIET",
    "RATE_DROP",
    "RATE_SPIKE",
    "RECOVERED",
    "SEVERITY",
    "STATE_ORDER",
    "TYPE_CHANGED",
    "UNPLANNED",
    "Anomaly",
    "Counters",
    "Drift",
    "Episode",
    "ExpectationError",
    "ExpectationTracker",
    "LearnedCadence",
    "LearnedSettings",
    "Matcher",
    "Monitor",
    "MonitorSettings",
    "NameStats",
    "ObservedEvent",
    "Plan",
    "PlanError",
    "PlanWatch",
    "Severity",
    "TypeDrift",
    "describe",
    "format_duration",
]

log = logging.getLogger(__name__)
# Events of a name that all teach the type learner before it samples (`drift_samples`).
DRIFT_FIRST = 100


class ObservedEvent(Protocol):
    """What the monitor reads from an event (`EventRow` and `StoredEvent` both fit)."""

    @property
    def name(self) -> str: ...
    @property
    def received_at(self) -> float: ...
    @property
    def valid(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class MonitorSettings:
    # How long "recovered" shows after a late, missing, low-rate or quiet event comes back.
    recovered_for: float = DEFAULT_RECOVERED_FOR
    # How long an invalid or unplanned event keeps its name flagged (`eventtui check --window`).
    plan_window: float = DEFAULT_PLAN_WINDOW
    learned: LearnedSettings = field(default_factory=LearnedSettings)
    # Names counted one by one; past this, the counters put the rest under `OTHER`.
    max_names: int = MAX_NAMES
    # Events per name per second (of event time) whose properties teach the type learner: decoding
    # every payload cost the TUI 6 us an event (0.18 s a second at 30k events/s). A type that
    # changes for good shows within 1/this seconds; a rare one is found by `check`, which reads all.
    drift_samples: float = 100.0


class Monitor:
    """Counters, expectations, learned cadence and plan states over one stream of events."""

    def __init__(
        self,
        expectations: Iterable[Expectation] = (),
        *,
        started_at: float,
        plan: Plan | None = None,
        compile_where: Callable[[str], Matcher] | None = None,
        settings: MonitorSettings | None = None,
    ) -> None:
        """`started_at`: when monitoring began; an expected event never seen is due from then.

        `compile_where` turns an expectation's `where` filter into a predicate over events; without
        it, an expectation with `where` counts every event of its name (and says so in the log).
        """
        self.settings = settings or MonitorSettings()
        self.started_at = started_at
        self.plan = plan
        self.counters = Counters(self.settings.max_names)
        self.learned = LearnedCadence(self.settings.learned)
        self.plan_watch = PlanWatch(plan, window=self.settings.plan_window)
        self.drift = TypeDrift(window=self.settings.plan_window)
        self._drift_next: dict[str, float] = {}  # per name: the next event time to learn from
        self._drift_count: dict[str, int] = {}  # per name: events that taught the learner
        self.trackers: list[ExpectationTracker] = []
        self._declared: dict[str, list[ExpectationTracker]] = {}
        for spec in expectations:
            matches = None
            if spec.where:
                if compile_where is None:
                    log.warning(
                        'expectation for "%s": no filter compiler given, so where = "%s" is'
                        " ignored and every %s event counts",
                        spec.event,
                        spec.where,
                        spec.event,
                    )
                else:
                    matches = compile_where(spec.where)
            tracker = ExpectationTracker(
                spec,
                started_at=started_at,
                matches=matches,
                recovered_for=self.settings.recovered_for,
            )
            self.trackers.append(tracker)
            self._declared.setdefault(spec.event, []).append(tracker)
        self._now = -math.inf
        self._stale = True
        self._current: list[Anomaly] = []
        self._by_name: dict[str, list[Anomaly]] = {}

    def declared(self, name: str) -> bool:
        return name in self._declared

    # --- events -------------------------------------------------------------------------------

    def observe(self, event: ObservedEvent) -> None:
        self.observe_many((event,))

    def observe_many(
        self, events: Iterable[ObservedEvent], *, count: bool = True, rates: bool = True
    ) -> None:
        """Count and judge events, oldest first (store order). O(1) per event.

        `count=False`: judge only; the counters already hold them (seeded from the store's counts).
        `rates=False`: these may be a sample (a busy stream's): learned cadence and expectations
        without `where` learn from `observe_counts` instead, which counts every event.
        """
        counters = self.counters.observe if count else _no_count
        learned = self.learned.observe if rates else _no_learn
        watch = self.plan_watch
        strict = watch.strict
        declared = self._declared
        drift = self.drift.observe
        drift_next = self._drift_next
        drift_count = self._drift_count
        drift_gap = 1.0 / self.settings.drift_samples
        for event in events:
            name = event.name
            at = event.received_at
            valid = event.valid
            counters(name, at, valid)
            # Rows with their payload (live rows) teach types; light rows carry "" and skip.
            properties = getattr(event, "properties", "")
            if properties and at >= drift_next.get(name, -math.inf):
                drift(name, properties, at)
                # A name's first DRIFT_FIRST events all teach (a new name learns fully); then
                # one in each 1/drift_samples seconds.
                taught = drift_count.get(name, 0) + 1
                if len(drift_count) < MAX_DRIFT_NAMES or name in drift_count:
                    drift_count[name] = taught
                    if taught >= DRIFT_FIRST:
                        drift_next[name] = at + drift_gap
            errors = getattr(event, "errors", None)
            if errors and PII_PREFIX in errors:
                watch.observe_pii(name, at)
            trackers = declared.get(name)
            if trackers is None:
                learned(name, at)
            else:
                for tracker in trackers:
                    if rates or tracker.where is not None:
                        tracker.offer(event)
            if strict or not valid:
                watch.observe(name, at, valid)
        self._stale = True

    def observe_counts(
        self, name: str, seconds: Iterable[tuple[int, int]], last_seen: float
    ) -> None:
        """Every event of `name`, as counts per second (a stream's rollups, oldest first), the
        newest at `last_seen`: what learned cadence and expectations without `where` judge when
        the events themselves are a sample (`observe_many(..., rates=False)`)."""
        seconds = list(seconds)
        trackers = self._declared.get(name)
        for i, (second, n) in enumerate(seconds):
            # Each second's events at its start; the newest second's at the newest event's time.
            at = last_seen if i == len(seconds) - 1 else float(second)
            if trackers is None:
                self.learned.observe_count(name, at, n)
            else:
                for tracker in trackers:
                    if tracker.where is None:
                        tracker.observe_count(at, n)
        self._stale = True

    def seed(
        self,
        events: Iterable[ObservedEvent] = (),
        *,
        last_seen: Mapping[str, float] | None = None,
        expectation_last_seen: Mapping[Expectation, float] | None = None,
        history_from: float | None = None,
        counted: bool = False,
        rates: bool = True,
    ) -> None:
        """Carry state over a restart from the store's history, before any live event.

        - `events`: the stored events since `history_from`, oldest first (e.g. the last 15-60
          minutes: learned rates need 10 minutes, quiet detection a history of gaps; seeding costs
          what observing them costs).
        - `history_from`: every event since this time is in `events` (rate floors then judge the
          minute before the restart instead of waiting a whole minute).
        - `last_seen`: per name, the latest `received_at` in the store (`SELECT name,
          max(received_at) ... GROUP BY name`): deadlines count from there, not from the restart.
          It applies to expectations without `where`.
        - `expectation_last_seen`: per expectation with `where`, the latest matching event's time.
        - `counted`: the counters were already seeded with `events` (from the store's counts).
        - `rates`: False when `events` are a sample (see `observe_many`).
        """
        if history_from is not None:
            for tracker in self.trackers:
                tracker.note_history_from(history_from)
        self.observe_many(events, count=not counted, rates=rates)
        for name, at in (last_seen or {}).items():
            self.counters.note_last_seen(name, at)
            for tracker in self._declared.get(name, ()):
                if tracker.where is None:
                    tracker.note_last_seen(at)
        for spec, at in (expectation_last_seen or {}).items():
            for tracker in self._declared.get(spec.event, ()):
                if tracker.spec == spec:
                    tracker.note_last_seen(at)
        self._stale = True

    # --- state --------------------------------------------------------------------------------

    def evaluate(self, now: float) -> list[Anomaly]:
        """Current anomalies at `now`, most urgent first (recovered ones last, as information).

        Call it about once a second: transitions are computed from `now`, so a deadline shows
        within a second. Time never runs backwards for a monitor: an earlier `now` than a previous
        call is taken as that previous one.
        """
        now = max(now, self._now)
        if now != self._now or self._stale:
            anomalies: list[Anomaly] = []
            for tracker in self.trackers:
                anomalies.extend(tracker.evaluate(now))
            anomalies.extend(self.learned.evaluate(now))
            anomalies.extend(self.plan_watch.evaluate(now))
            anomalies.extend(self.drift.evaluate(now))
            anomalies.sort(key=Anomaly.sort_key)
            by_name: dict[str, list[Anomaly]] = {}
            for anomaly in anomalies:
                by_name.setdefault(anomaly.event, []).append(anomaly)
            self._current = anomalies
            self._by_name = by_name
            self._now = now
            self._stale = False
        return list(self._current)

    def firing(self, now: float) -> list[Anomaly]:
        """The anomalies that make `eventtui check` exit 1: missing, low rate, invalid."""
        return [a for a in self.evaluate(now) if a.firing]

    def anomalies_of(self, name: str, now: float) -> list[Anomaly]:
        self.evaluate(now)
        return list(self._by_name.get(name, ()))

    def state_of(self, name: str, now: float) -> str:
        """The state column for `name`: its most urgent anomaly, else learning or ok."""
        self.evaluate(now)
        anomalies = self._by_name.get(name)
        if anomalies:
            return worst_state(a.state for a in anomalies)
        if name in self._declared:
            return OK
        return self.learned.state_of(name, self._now) or OK

    def episodes(self) -> list[Episode]:
        """The history of anomaly episodes (open ones have `ended_at` None), oldest first."""
        found: list[Episode] = []
        for tracker in self.trackers:
            found.extend(tracker.episodes())
        found.extend(self.learned.episodes())
        found.extend(self.plan_watch.episodes())
        found.extend(self.drift.episodes())
        found.sort(key=lambda e: (e.started_at, STATE_RANK[e.state], e.event, e.where or ""))
        return found


def _no_count(name: str, at: float, valid: bool) -> None:
    """The counters' `observe` when the events are already counted."""


def _no_learn(name: str, at: float) -> None:
    """Learned cadence's `observe` when it learns from counts instead (`observe_counts`)."""


def describe(anomaly: Anomaly, now: float) -> str:
    """One line for `check` and logs: `heartbeat: missing for 2m (expected every 30s; ...)`."""
    subject = anomaly.event if anomaly.where is None else f"{anomaly.event} [{anomaly.where}]"
    since = format_duration(max(0.0, now - anomaly.started_at))
    return f"{subject}: {anomaly.state} for {since} ({anomaly.detail})"
