"""Per-event-name counters: total, invalid, last seen, events in the last minute, a 30-minute sparkline.

Owns the numbers of the counters panel. `observe` runs for every event at ingest rates (tens of
thousands per second), so it is O(1) and allocation-free after a name's first event: each name keeps
two small ring buffers (60 one-second buckets, 30 one-minute buckets) stamped with the second or
minute they hold, so a stale bucket is recognised and reset without ever sweeping the ring.

Pure: time is the events' own `received_at` and the `now` passed to `snapshot`; no clock, no IO,
no Textual.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

RATE_WINDOW_SECONDS: Final = 60
HISTORY_MINUTES: Final = 30


@dataclass(frozen=True, slots=True)
class CounterRow:
    """One line of the counters panel."""

    name: str
    total: int
    invalid: int
    # Events received in the last 60 seconds, i.e. the rate per minute right now.
    per_minute: int
    last_seen: float | None
    # Events per minute over the last HISTORY_MINUTES minutes, oldest first; the last is this minute.
    histogram: tuple[int, ...]


class _Count:
    __slots__ = (
        "invalid",
        "last_seen",
        "min_counts",
        "min_stamps",
        "sec_counts",
        "sec_stamps",
        "total",
    )

    def __init__(self) -> None:
        self.total = 0
        self.invalid = 0
        self.last_seen: float | None = None
        self.sec_counts = [0] * RATE_WINDOW_SECONDS
        self.sec_stamps = [-1] * RATE_WINDOW_SECONDS
        self.min_counts = [0] * HISTORY_MINUTES
        self.min_stamps = [-1] * HISTORY_MINUTES


class Counters:
    """Counters for every event name seen (see the module docstring)."""

    def __init__(self) -> None:
        self._by_name: dict[str, _Count] = {}

    def __len__(self) -> int:
        return len(self._by_name)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> Iterator[str]:
        return iter(self._by_name)

    def observe(self, name: str, at: float, valid: bool = True) -> None:
        count = self._by_name.get(name)
        if count is None:
            count = self._by_name[name] = _Count()
        count.total += 1
        if not valid:
            count.invalid += 1
        if count.last_seen is None or at > count.last_seen:
            count.last_seen = at
        second = int(at)
        _bump(count.sec_stamps, count.sec_counts, second, RATE_WINDOW_SECONDS)
        _bump(count.min_stamps, count.min_counts, second // 60, HISTORY_MINUTES)

    def observe_many(self, items: Iterable[tuple[str, float, bool]]) -> None:
        observe = self.observe
        for name, at, valid in items:
            observe(name, at, valid)

    def note_last_seen(self, name: str, at: float) -> None:
        """Remember when a name was last seen without counting an event (seeding after a restart)."""
        count = self._by_name.get(name)
        if count is None:
            count = self._by_name[name] = _Count()
        if count.last_seen is None or at > count.last_seen:
            count.last_seen = at

    def row(self, name: str, now: float) -> CounterRow | None:
        count = self._by_name.get(name)
        return None if count is None else _row(name, count, now)

    def snapshot(self, now: float) -> list[CounterRow]:
        """Every name's row as of `now`, sorted by name."""
        return [_row(name, self._by_name[name], now) for name in sorted(self._by_name)]


def _row(name: str, count: _Count, now: float) -> CounterRow:
    second = int(now)
    oldest = second - RATE_WINDOW_SECONDS
    per_minute = sum(
        n
        for n, stamp in zip(count.sec_counts, count.sec_stamps, strict=True)
        if oldest < stamp <= second
    )
    minute = second // 60
    stamps = count.min_stamps
    counts = count.min_counts
    histogram = tuple(
        counts[m % HISTORY_MINUTES] if stamps[m % HISTORY_MINUTES] == m else 0
        for m in range(minute - HISTORY_MINUTES + 1, minute + 1)
    )
    return CounterRow(name, count.total, count.invalid, per_minute, count.last_seen, histogram)


def _bump(stamps: list[int], counts: list[int], key: int, size: int) -> None:
    """Count one arrival in the ring slot of `key` (a second or a minute since the epoch)."""
    slot = key % size
    stamp = stamps[slot]
    if stamp == key:
        counts[slot] += 1
    elif stamp < key:
        stamps[slot] = key
        counts[slot] = 1
    # else: older than the ring holds (a late straggler); it counts in the totals only.
