"""Per-name rollups summed across collectors: counts a viewer trusts without reading every event.

Every collector publishes, once a second, the per-name counts of the events it acknowledged
(`subjects.Rollup`). `RollupSum` adds them up: totals, invalid counts and the last time each name
was seen, over every collector on the stream, and the count of the last minute. Pure: rollups in,
sums out.

May import: stream.subjects, store (NameCounts: what a viewer's counters add).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from eventtui.store import NameCounts
from eventtui.stream.subjects import Rollup

MINUTE: Final = 60.0


@dataclass
class NameSum:
    count: int = 0
    invalid: int = 0
    last_seen: float = 0.0


@dataclass
class RollupSum:
    names: dict[str, NameSum] = field(default_factory=dict)
    collectors: dict[str, float] = field(default_factory=dict)  # collector -> its newest rollup
    _recent: deque[tuple[float, str, int]] = field(default_factory=deque)

    def add(self, rollup: Rollup) -> None:
        self.collectors[rollup.collector] = max(
            rollup.at, self.collectors.get(rollup.collector, 0.0)
        )
        for name, (count, invalid, last_seen) in rollup.names.items():
            total = self.names.setdefault(name, NameSum())
            total.count += count
            total.invalid += invalid
            total.last_seen = max(total.last_seen, last_seen)
            self._recent.append((rollup.at, name, count))

    def last_seen(self) -> dict[str, float]:
        return {name: total.last_seen for name, total in self.names.items()}

    def per_minute(self, now: float) -> dict[str, int]:
        """Events per name over the minute before `now`, summed across collectors."""
        while self._recent and self._recent[0][0] < now - MINUTE * 2:
            self._recent.popleft()
        counts: dict[str, int] = {}
        for at, name, count in self._recent:
            if now - MINUTE < at <= now:
                counts[name] = counts.get(name, 0) + count
        return counts


def as_counts(rollups: Iterable[Rollup]) -> list[NameCounts]:
    """Rollups as counts to add to a viewer's counters (`Counters.seed` adds): per name, the
    total, invalid and last seen, and the count per second and per minute of the rollups' times
    (a rollup holds about one second of a collector's events)."""
    sums: dict[str, tuple[list[float], dict[int, int], dict[int, int]]] = {}
    for rollup in rollups:
        second = int(rollup.at)
        for name, (count, invalid, last_seen) in rollup.names.items():
            entry = sums.get(name)
            if entry is None:
                entry = sums[name] = ([0, 0, 0.0], {}, {})
            totals, seconds, minutes = entry
            totals[0] += count
            totals[1] += invalid
            totals[2] = max(totals[2], last_seen)
            seconds[second] = seconds.get(second, 0) + count
            minutes[second // 60] = minutes.get(second // 60, 0) + count
    return [
        NameCounts(
            name,
            int(totals[0]),
            int(totals[1]),
            totals[2],
            sorted(minutes.items()),
            sorted(seconds.items()),
        )
        for name, (totals, seconds, minutes) in sums.items()
    ]
