"""The monitor's vocabulary: states, severities, current anomalies and the episodes they leave behind.

Owns the names users see in the state column and the order anomalies sort in. Every part of the
monitor (declared expectations, learned cadence, the tracking plan) reports through these types, so
the TUI, `eventtui check` and the tests read one shape.

Pure: no IO, no clock, no Textual. May import: the standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Literal

Kind = Literal["declared", "learned", "plan"]

# The states of the counters' state column, as users read them.
OK: Final = "ok"
LEARNING: Final = "learning"
RECOVERED: Final = "recovered"
LATE: Final = "late"
MISSING: Final = "missing"
LOW_RATE: Final = "low rate"
QUIET: Final = "quiet"
RATE_DROP: Final = "rate drop"
RATE_SPIKE: Final = "rate spike"
UNPLANNED: Final = "unplanned"
INVALID: Final = "invalid"
# A property path of a name took a JSON type it had not had (learned, `monitor/drift.py`).
TYPE_CHANGED: Final = "type changed"
# An event carried personal data (the collector's detectors, `eventtui.pii`).
PII: Final = "pii"


class Severity(IntEnum):
    """How loud a state is. FIRING is what makes `eventtui check` exit 1."""

    OK = 0
    INFO = 1
    WARNING = 2
    FIRING = 3


# Most urgent first: anomalies sort in this order, and a name's state is the first that applies.
# Declared rules outrank learned ones: a user wrote them down, a guess did not.
STATE_ORDER: Final = (
    MISSING,
    LOW_RATE,
    INVALID,
    LATE,
    QUIET,
    RATE_DROP,
    RATE_SPIKE,
    TYPE_CHANGED,
    PII,
    UNPLANNED,
    RECOVERED,
    LEARNING,
    OK,
)
STATE_RANK: Final = {state: rank for rank, state in enumerate(STATE_ORDER)}
SEVERITY: Final = {
    MISSING: Severity.FIRING,
    LOW_RATE: Severity.FIRING,
    INVALID: Severity.FIRING,
    LATE: Severity.WARNING,
    QUIET: Severity.WARNING,
    RATE_DROP: Severity.WARNING,
    RATE_SPIKE: Severity.WARNING,
    TYPE_CHANGED: Severity.WARNING,
    PII: Severity.WARNING,
    UNPLANNED: Severity.WARNING,
    RECOVERED: Severity.INFO,
    LEARNING: Severity.OK,
    OK: Severity.OK,
}

# Second resolution: an event a few milliseconds past its deadline (network jitter) is not an
# episode worth a line in the history.
# One symbol per state, so that colour is never the only signal (the TUI and `eventtui check`).
SYMBOLS: Final = {
    MISSING: "✖",
    LOW_RATE: "▼",
    INVALID: "✗",
    LATE: "◷",
    QUIET: "◌",
    RATE_DROP: "↓",
    RATE_SPIKE: "↑",
    TYPE_CHANGED: "⇄",
    PII: "⚠",
    UNPLANNED: "?",
    RECOVERED: "✓",
    LEARNING: "·",
    OK: "",
}

MIN_EPISODE_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class Anomaly:
    """Something that is wrong (or just recovered) now. `started_at` is when it began, in event time."""

    kind: Kind
    event: str
    state: str
    started_at: float
    detail: str
    # The expectation's filter, when it watches only some events of that name.
    where: str | None = None

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.state]

    @property
    def firing(self) -> bool:
        return self.severity is Severity.FIRING

    def sort_key(self) -> tuple[int, float, str, str]:
        return (STATE_RANK[self.state], self.started_at, self.event, self.where or "")


@dataclass(frozen=True, slots=True)
class Episode:
    """One stretch of one anomaly, for the history. `ended_at` is None while it goes on."""

    kind: Kind
    event: str
    state: str
    started_at: float
    ended_at: float | None
    detail: str
    where: str | None = None

    @property
    def severity(self) -> Severity:
        return SEVERITY[self.state]

    def duration(self, now: float) -> float:
        return (now if self.ended_at is None else self.ended_at) - self.started_at


def worst_state(states: Iterable[str], default: str = OK) -> str:
    """The most urgent of some states (by STATE_ORDER), or `default` if there are none."""
    return min(states, key=STATE_RANK.__getitem__, default=default)


def sort_anomalies(anomalies: Iterable[Anomaly]) -> list[Anomaly]:
    return sorted(anomalies, key=Anomaly.sort_key)


def format_duration(seconds: float) -> str:
    """A short human duration: 45s, 1m30s, 2h5m, 3d4h (rounded to whole seconds)."""
    total = round(seconds)
    if seconds < 1 and total == 0 and seconds > 0:
        return f"{seconds * 1000:.0f}ms"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{value}{unit}" for value, unit in parts if value]
    # Two units are enough to read at a glance; "1d0h3m2s" is noise.
    return "".join(shown[:2]) or "0s"


@dataclass(slots=True)
class _Record:
    ended_at: float | None
    detail: str


class EpisodeLog:
    """The episodes of one subject (an expectation, a learned event, a plan mark), oldest first.

    Episodes are keyed by (state, started_at). Both are derived from event times, so the same
    episode reported twice (opened by `evaluate`, closed when the next event arrives) is one entry,
    whichever path saw it first. Bounded: the oldest fall off past `limit`.
    """

    __slots__ = ("_items", "event", "kind", "limit", "where")

    def __init__(self, kind: Kind, event: str, where: str | None = None, limit: int = 200) -> None:
        self.kind: Kind = kind
        self.event = event
        self.where = where
        self.limit = limit
        self._items: dict[tuple[str, float], _Record] = {}

    def open(self, state: str, started_at: float, detail: str) -> None:
        if (state, started_at) not in self._items:
            self._add(state, started_at, None, detail)

    def close(self, state: str, started_at: float, ended_at: float, detail: str) -> None:
        item = self._items.get((state, started_at))
        if item is None:
            if ended_at - started_at >= MIN_EPISODE_SECONDS:
                self._add(state, started_at, ended_at, detail)
        elif item.ended_at is None:
            item.ended_at = max(ended_at, started_at)

    def close_all(self, state: str, ended_at: float) -> None:
        """End every open episode of `state` (used when the rule that made it no longer applies)."""
        for (item_state, started_at), item in self._items.items():
            if item_state == state and item.ended_at is None:
                item.ended_at = max(ended_at, started_at)

    def is_open(self, state: str, started_at: float) -> bool:
        item = self._items.get((state, started_at))
        return item is not None and item.ended_at is None

    def has_open(self) -> bool:
        return any(item.ended_at is None for item in self._items.values())

    def episodes(self) -> list[Episode]:
        return [
            Episode(
                self.kind, self.event, state, started_at, item.ended_at, item.detail, self.where
            )
            for (state, started_at), item in self._items.items()
        ]

    def _add(self, state: str, started_at: float, ended_at: float | None, detail: str) -> None:
        self._items[(state, started_at)] = _Record(ended_at, detail)
        if len(self._items) > self.limit:
            del self._items[next(iter(self._items))]
