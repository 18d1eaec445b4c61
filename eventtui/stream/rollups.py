"""Per-name rollups summed across collectors: counts a viewer trusts without reading every event.

Every collector publishes, once a second, the per-name counts of the events it acknowledged
(`subjects.Rollup`). `RollupSum` adds them up: totals, invalid counts and the last time each name
was seen, over every collector on the stream, and the count of the last minute. Pure: rollups in,
sums out.

May import: stream.subjects.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

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
