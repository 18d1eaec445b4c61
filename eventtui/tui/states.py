"""MonitorStates: the monitor's counters and anomaly states as the counters panel shows them.

Adapts `eventtui.monitor.Monitor` to the panel's `StateSource` seam: the monitor's `Counters`, a
word, a symbol and a tone for each state (`StateMark`: colour is never the only signal), one toast
per new anomaly episode, and the episode history in the order the anomalies view lists it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, runtime_checkable

from eventtui.monitor import (
    OK,
    SEVERITY,
    TYPE_CHANGED,
    Counters,
    Episode,
    Monitor,
    Severity,
    describe,
)
from eventtui.monitor.anomaly import STATE_RANK, SYMBOLS, UNPLANNED
from eventtui.tracking.live import MISSING, BaselineWatch
from eventtui.tracking.snapshot import load


@dataclass(frozen=True)
class StateMark:
    """How the counters panel shows one name's state: a word, a symbol, and how bad it is."""

    label: str
    symbol: str
    severity: int  # 0 fine or unknown; higher sorts first and draws the eye
    tone: str  # "ok", "muted", "info", "warning", "error": the panel maps it to theme colours
    rank: int = 0  # among equal severities, lower sorts first (missing before invalid)


NO_STATE: Final = StateMark("", "", 0, "ok")
# The panel's state column has ten cells: a state whose word is longer gets a shorter one here
# (`check` and the anomalies view keep the monitor's own word).
_SHORT_LABELS: Final = {TYPE_CHANGED: "retyped"}
# Against a baseline snapshot (`--baseline`, or b): a name it has and the live events lack, or one
# whose properties were removed or retyped. Signs unlike the monitor's ✖ missing, so a one-cell
# column at 80x24 still tells them apart: ∅ (absent from what is seen) and ≠ (differs).
_BASELINE_RANK: Final = STATE_RANK[UNPLANNED]
BASELINE_MISSING: Final = StateMark(
    "base: gone", "∅", int(Severity.WARNING), "warning", _BASELINE_RANK
)
BASELINE_CHANGED: Final = StateMark(
    "base: diff", "≠", int(Severity.WARNING), "warning", _BASELINE_RANK
)


def load_baseline(path: str) -> BaselineWatch:
    """A snapshot (or export) file as a baseline; raises SnapshotError naming what is wrong."""
    return BaselineWatch(load(Path(path)), source=path)


class StateSource(Protocol):
    """What the counters panel needs from the monitor: fed every event, asked per name."""

    @property
    def counters(self) -> Counters:
        """The per-name counts of every event fed in (the monitor's own)."""
        ...

    def observe_many(self, events: Iterable[Any]) -> None: ...

    def state_of(self, name: str, now: float) -> StateMark: ...

    def names(self) -> Iterable[str]:
        """Names the source knows of without having seen them (declared expectations)."""
        ...


@runtime_checkable
class EpisodeSource(Protocol):
    """What the anomalies screen reads: the episodes in the order to list them, and how a state
    shows (here, not in the screen's module, which the app imports only when it is opened)."""

    def episodes(self, now: float) -> Sequence[Episode]: ...

    def mark(self, state: str) -> StateMark: ...


_TONES: Final = {
    Severity.FIRING: "error",
    Severity.WARNING: "warning",
    Severity.INFO: "info",
    Severity.OK: "muted",
}
ToastSeverity = Literal["information", "warning", "error"]
# Exactly the firing states (missing, low rate, invalid) toast as errors: the bell rings for these.
FIRING_TOAST: Final = "error"
_TOAST: Final[dict[Severity, ToastSeverity]] = {
    Severity.FIRING: FIRING_TOAST,
    Severity.WARNING: "warning",
    Severity.INFO: "information",
}
# The anomalies view lists at most this many episodes: every open one, then the latest ended.
EPISODES_SHOWN: Final = 200


class MonitorStates:
    """See the module docstring."""

    def __init__(self, monitor: Monitor, baseline: BaselineWatch | None = None) -> None:
        self.monitor = monitor
        self.baseline = baseline
        self._announced: set[tuple[str, str, float, str | None]] = set()
        self._marks: dict[str, StateMark] = {}

    @property
    def counters(self) -> Counters:
        return self.monitor.counters

    def observe_many(self, events: Iterable[Any]) -> None:
        if self.baseline is not None:
            events = list(events)
            self.baseline.observe_many(events)
        self.monitor.observe_many(events)

    def judge_many(self, events: Iterable[Any]) -> None:
        """Judge events a stream's rollups have counted already, maybe a sample of them: rates
        and deadlines come from the rollups (`observe_counts`), the rest from these."""
        if self.baseline is not None:
            events = list(events)
            self.baseline.observe_many(events)
        self.monitor.observe_many(events, count=False, rates=False)

    def observe_counts(self, counts: Iterable[Any]) -> None:
        """A stream's rollups (`NameCounts`, counted already): what learned cadence and the
        expectations without `where` judge, every event counted."""
        for name_counts in counts:
            self.monitor.observe_counts(
                name_counts.name, name_counts.seconds, name_counts.last_seen
            )

    def set_baseline(self, baseline: BaselineWatch | None, rows: Iterable[Any] = ()) -> None:
        """Compare with `baseline` from now on (None: stop), taught the `rows` seen so far."""
        if baseline is not None:
            baseline.observe_many(rows)
        self.baseline = baseline

    def seed_last_seen(self, last_seen: Mapping[str, float]) -> None:
        self.monitor.seed(last_seen=last_seen)

    def seed_history(
        self,
        recent: Iterable[Any],
        last_seen: Mapping[str, float],
        history_from: float,
        rates: bool = True,
    ) -> None:
        """Continue from the store: the recent events judged (already counted), then each name's
        last stored time, so deadlines, learned cadence and plan results carry over. `rates`:
        False on a stream, whose rollups teach rates and deadlines (`observe_counts`)."""
        self.monitor.seed(
            recent, last_seen=last_seen, history_from=history_from, counted=True, rates=rates
        )

    def state_of(self, name: str, now: float) -> StateMark:
        state = self.monitor.state_of(name, now)
        if state == OK:
            # A declared expectation that holds says so; an undeclared name has nothing to say.
            mark = self.mark(OK) if self.monitor.declared(name) else NO_STATE
        else:
            mark = self.mark(state)
        if self.baseline is not None and mark.severity < Severity.FIRING:
            # A firing state says more than the baseline; anything quieter says less.
            verdict = self.baseline.verdicts(now).get(name)
            if verdict is not None:
                return BASELINE_MISSING if verdict == MISSING else BASELINE_CHANGED
        return mark

    def mark(self, state: str) -> StateMark:
        """How `state` shows: its word, symbol, severity and tone."""
        mark = self._marks.get(state)
        if mark is None:
            severity = SEVERITY.get(state, Severity.INFO)
            # LEARNING is Severity.OK but still worth a faint word: the panel says why it is quiet.
            mark = StateMark(
                _SHORT_LABELS.get(state, state),
                # "ok" has no symbol elsewhere; here a holding expectation shows one (●).
                SYMBOLS.get(state) or "●",
                int(severity),
                _TONES[severity],
                STATE_RANK.get(state, len(STATE_RANK)),
            )
            self._marks[state] = mark
        return mark

    def names(self) -> Iterator[str]:
        yield from (tracker.spec.event for tracker in self.monitor.trackers)
        if self.baseline is not None:
            yield from self.baseline.names

    def alerts(self, now: float) -> list[tuple[ToastSeverity, str]]:
        """New anomaly episodes since the last call, each once, as (toast severity, sentence)."""
        out: list[tuple[ToastSeverity, str]] = []
        current = set()
        for anomaly in self.monitor.evaluate(now):
            key = (anomaly.event, anomaly.state, anomaly.started_at, anomaly.where)
            current.add(key)
            toast = _TOAST.get(anomaly.severity)
            if key not in self._announced and toast is not None:
                out.append((toast, describe(anomaly, now)))
        self._announced = current
        return out

    def episodes(self, now: float, limit: int = EPISODES_SHOWN) -> list[Episode]:
        """Open episodes first (most urgent, then longest running), then ended ones, latest first.

        Evaluates at `now` first, so an anomaly that began since the last tick is listed.
        """
        self.monitor.evaluate(now)
        found = self.monitor.episodes()
        ongoing = [e for e in found if e.ended_at is None]
        ongoing.sort(key=lambda e: (STATE_RANK.get(e.state, len(STATE_RANK)), e.started_at))
        ended = [e for e in found if e.ended_at is not None]
        ended.sort(key=lambda e: (e.ended_at or 0.0, e.started_at), reverse=True)
        return (ongoing + ended)[:limit]
