"""What the collector itself knows for on-call: counts per name, refusals, commit latency, and the
declared expectations and plan states, judged by the collector (no TUI needed).

`CollectorWatch` is an `Ingest` tap (`eventtui.collector.ingest.Tap`): it sees each writer
submission once per event-loop turn and counts it once its transaction is committed (an event
whose commit failed was never acknowledged, so it is not counted). Counting is a few C-level
passes over many rows at once (`Counter` over the names, a filter for invalid and expected
events): small batches are gathered and counted together, before anything reads the counts.
Everything else (the exposition, expectation states) is computed when asked.

Only the firing-capable parts of the monitor run here: declared expectations (`[[expect]]`) and
the tracking plan's marks. Learned cadence needs every event's gaps, costs more per event, and
never fires; it stays in the viewers.

Runs in the collector's event loop: nothing here is thread-safe, and nothing needs to be.

May import: collector (the tap's types), monitor, config, model, store (the `Commit` and `Reject`).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Final

from eventtui.config import Config
from eventtui.model import StoredEvent
from eventtui.monitor import OK, OTHER, RECOVERED, Anomaly, ExpectationTracker, PlanWatch
from eventtui.monitor.anomaly import worst_state
from eventtui.monitor.counters import MAX_NAMES
from eventtui.monitor.factory import build_monitor
from eventtui.store import Commit, Reject

# Upper bounds of the commit-latency histogram, in seconds: a healthy commit takes a few ms;
# the top buckets catch a store held by another writer (up to `store.writer.LOCK_WAIT_SECONDS`).
LATENCY_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Refusal reasons are sentences that quote what the client sent; as a metric label they are
# folded into a few stable kinds (first match wins), so a client cannot grow the label set.
REFUSAL_KINDS: Final = (
    ("invalid_utf8", re.compile(r"invalid UTF-8")),
    ("not_json", re.compile(r"^not valid ")),
    ("too_deep", re.compile(r"nesting is deeper")),
    ("too_large", re.compile(r"-byte limit|too large")),
    ("bad_name", re.compile(r"\bname\b|\"event\"")),
    (
        "bad_shape",
        re.compile(
            r"must be (?:a JSON object|an event|an array|an object)|holds no events|body is empty|not an object"
        ),
    ),
    ("bad_field", re.compile(r"must be|reserved")),
    ("http_body", re.compile(r"the body|gzip|deflate|Content-Encoding|HTTP")),
)
OTHER_REFUSAL: Final = "other"

_name = attrgetter("name")
_received_at = attrgetter("received_at")

# Batches under this many rows are counted together, at most this many rows later (see
# `CollectorWatch.summarize`): about a millisecond of counting, and that much memory.
SMALL_BATCH: Final = 512


def refusal_kind(reason: str) -> str:
    """The label a refusal is counted under (see REFUSAL_KINDS)."""
    for kind, pattern in REFUSAL_KINDS:
        if pattern.search(reason):
            return kind
    return OTHER_REFUSAL


@dataclass(slots=True)
class _Summary:
    """Batches of rows, counted: what `CollectorWatch` adds up (never the rows themselves)."""

    names: Counter[str]
    invalid: Counter[str] | None
    # Per expectation, the times of its matching events in arrival order: floats, not the rows,
    # so a batch's rows are freed at hand-over as they were before (held rows would outlive a
    # young garbage collection and cost every later one).
    expected: list[tuple[ExpectationTracker, list[float]]]
    plan: list[tuple[str, float, bool]]
    refusals: Counter[str] | None


@dataclass(frozen=True, slots=True)
class ExpectationState:
    tracker: ExpectationTracker
    state: str  # ok, late, missing, low rate (recovered counts as ok)
    firing: bool
    last_seen: float | None
    age: float  # since the last matching event, or since watching began if none came yet


class CollectorWatch:
    """Counters and expectation states for one running collector (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        started_at: float,
        loop_time: Callable[[], float],
        max_names: int = MAX_NAMES,
    ) -> None:
        monitor = build_monitor(config, started_at=started_at)  # raises a ConfigError subclass
        self.started_at = started_at
        self.trackers: list[ExpectationTracker] = monitor.trackers
        self.plan_watch: PlanWatch = monitor.plan_watch
        self._expected: dict[str, list[ExpectationTracker]] = {}
        for tracker in self.trackers:
            self._expected.setdefault(tracker.event, []).append(tracker)
        self._loop_time = loop_time
        self.max_names = max_names
        self.events: dict[str, int] = {}
        self.invalid: dict[str, int] = {}
        self.refusals: Counter[str] = Counter()
        # Cumulative counts per LATENCY_BUCKETS bound (the last slot is +Inf), and their sum.
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.failed_commits = 0
        # Small batches committed and not yet counted (see `summarize`), and their rows.
        self._pending: list[tuple[list[StoredEvent], list[Reject]]] = []
        self._pending_rows = 0

    # --- the Ingest tap -----------------------------------------------------------------------

    def summarize(self, events: list[StoredEvent], rejects: list[Reject], at: float) -> Any:
        if not events and not rejects:
            return None  # a flush: nothing to count, and not a commit worth timing
        if len(events) + len(rejects) < SMALL_BATCH:
            # One frame per loop turn is common at one event per frame: building Counters for it
            # would cost more than the frame's decoding. The lists (Ingest's, never reused) wait
            # for the commit and are counted many at a time.
            return (at, events, rejects)
        # A large batch (an HTTP body of thousands of events) is folded now, so its rows are not
        # held while the commit is awaited.
        return (at, _summary_of(events, rejects, self._expected, self.plan_watch.strict), None)

    def committed(self, summary: Any, commit: Commit) -> None:
        if summary is None:
            return
        if commit.error:
            self.failed_commits += 1
            return
        at, counted, rejects = summary
        elapsed = max(0.0, self._loop_time() - at)
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        self.latency_sum += elapsed
        if rejects is None:
            self._apply(counted)
            return
        self._pending.append((counted, rejects))
        self._pending_rows += len(counted) + len(rejects)
        if self._pending_rows >= SMALL_BATCH:
            self.drain()

    def drain(self) -> None:
        """Count the small batches committed since the last time (before anything is read)."""
        if not self._pending:
            return
        pending, self._pending, self._pending_rows = self._pending, [], 0
        events = [e for batch, _ in pending for e in batch]
        rejects = [r for _, batch in pending for r in batch]
        self._apply(_summary_of(events, rejects, self._expected, self.plan_watch.strict))

    def _apply(self, summary: _Summary) -> None:
        _add_capped(self.events, summary.names, self.max_names)
        if summary.invalid:
            _add_capped(self.invalid, summary.invalid, self.max_names)
        if summary.refusals:
            self.refusals.update(summary.refusals)
        for tracker, times in summary.expected:
            _observe(tracker, times)
        observe = self.plan_watch.observe
        for name, at, valid in summary.plan:
            observe(name, at, valid)

    # --- state, computed when asked -----------------------------------------------------------

    def anomalies(self, now: float) -> list[Anomaly]:
        """Declared and plan anomalies at `now` (wall-clock seconds), most urgent first."""
        self.drain()
        found: list[Anomaly] = []
        for tracker in self.trackers:
            found.extend(tracker.evaluate(now))
        found.extend(self.plan_watch.evaluate(now))
        found.sort(key=Anomaly.sort_key)
        return found

    def expectation_states(self, now: float) -> list[ExpectationState]:
        self.drain()
        out = []
        for tracker in self.trackers:
            anomalies = tracker.evaluate(now)
            # "recovered" is information for a screen; to an alert rule it is ok.
            state = worst_state((a.state for a in anomalies if a.state != RECOVERED), OK)
            seen = tracker.last_seen
            out.append(
                ExpectationState(
                    tracker,
                    state,
                    any(a.firing for a in anomalies),
                    seen,
                    max(0.0, now - (seen if seen is not None else tracker.started_at)),
                )
            )
        return out

    def latency_buckets(self) -> list[tuple[str, float]]:
        """Cumulative (le, count) pairs for a Prometheus histogram."""
        out, total = [], 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.latency_counts, strict=True):
            total += count
            out.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
        return out


def _observe(tracker: ExpectationTracker, times: list[float]) -> None:
    """`tracker.observe` each time, in C-level passes where the rule allows it.

    A dead-man's switch without a rate floor only needs to know when a gap longer than `every`
    ended: if the times span less than `every`, no gap can end between two of them, so the first
    (ending any gap since the event seen before) and the last suffice.
    """
    if not times:
        return
    first, last = min(times), max(times)
    every = tracker.every
    if not tracker.need and every is not None and last - first < every:
        tracker.observe(first)
        tracker.observe(last)
        return
    for at in sorted(times):
        tracker.observe(at)


def _summary_of(
    events: list[StoredEvent],
    rejects: list[Reject],
    expected: dict[str, list[ExpectationTracker]],
    strict: bool,
) -> _Summary:
    # C-level passes: Counter over the names, one filter each for invalid and expected events,
    # then one per expectation over the expected ones (usually few: heartbeats, key events).
    invalid = [e for e in events if not e.valid]
    watched = [e for e in events if e.name in expected] if expected else []
    per_tracker: list[tuple[ExpectationTracker, list[float]]] = []
    if watched:
        for name, trackers in expected.items():
            mine = [e for e in watched if e.name == name]
            for tracker in trackers if mine else ():
                match = tracker.matches
                chosen = mine if match is None else [e for e in mine if match(e)]
                per_tracker.append((tracker, list(map(_received_at, chosen))))
    return _Summary(
        names=Counter(map(_name, events)),
        invalid=Counter(map(_name, invalid)) if invalid else None,
        expected=per_tracker,
        plan=[(e.name, e.received_at, e.valid) for e in (events if strict else invalid)],
        refusals=Counter(refusal_kind(r.reason) for r in rejects) if rejects else None,
    )


def _add_capped(into: dict[str, int], counts: Counter[str], cap: int) -> None:
    """Add per-name counts; past `cap` names the rest go under OTHER (a label set clients cannot
    grow without bound: the same cap and bucket as the monitor's counters)."""
    for name, n in counts.items():
        if name in into:
            into[name] += n
        elif len(into) < cap:
            into[name] = n
        else:
            into[OTHER] = into.get(OTHER, 0) + n
