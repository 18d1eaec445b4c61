"""Per-event-name counters: total, invalid, last seen, rate per minute, a 30-minute trend; bounded.

Owns the numbers of the counters panel; the `Monitor` holds one `Counters` and feeds it every event
it observes, and the TUI reads it from there. `observe` runs for every event at ingest rates (tens of
thousands per second), so it is O(1) and allocation-free after a name's first event: each name keeps
two small ring buffers (seconds and minutes) stamped with the second or minute they hold, so a stale
bucket is recognised and reset without ever sweeping the ring.

The number of names is capped, because names come from clients: past `max_names` the rest are
counted together under `OTHER`, so a client inventing a name per event cannot grow memory without
bound. `everything` counts the whole stream (events per second).

Pure: time is the events' own `received_at` and the `now` passed in; no clock, no IO, no Textual.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

SPARK_MINUTES: Final = 30
RATE_SECONDS: Final = 60
MAX_NAMES: Final = 2_000
OTHER: Final = "(other names)"


class _Ring:
    """Counts per time slot (second or minute) over a sliding window, O(1) per add."""

    __slots__ = ("counts", "size", "stamps")

    def __init__(self, size: int) -> None:
        self.size = size
        self.counts = [0] * size
        self.stamps = [-1] * size

    def add(self, slot: int, n: int = 1) -> None:
        i = slot % self.size
        stamp = self.stamps[i]
        if stamp == slot:
            self.counts[i] += n
        elif stamp < slot:
            self.stamps[i] = slot
            self.counts[i] = n
        # else: older than the window this bucket now holds; it only ever counts in `total`.

    def window(self, newest: int, length: int) -> list[int]:
        """Counts of the `length` slots ending at `newest`, oldest first."""
        out = []
        for slot in range(newest - length + 1, newest + 1):
            i = slot % self.size
            out.append(self.counts[i] if self.stamps[i] == slot else 0)
        return out

    def total(self, first: int, last: int) -> int:
        return sum(
            self.counts[slot % self.size]
            for slot in range(first, last + 1)
            if self.stamps[slot % self.size] == slot
        )


class NameStats:
    """One name's counts. `last_seen` is 0.0 until an event (or a seed) says otherwise."""

    __slots__ = ("invalid", "last_seen", "minutes", "name", "seconds", "total")

    def __init__(self, name: str) -> None:
        self.name = name
        self.total = 0
        self.invalid = 0
        self.last_seen = 0.0
        self.seconds = _Ring(RATE_SECONDS + 2)
        self.minutes = _Ring(SPARK_MINUTES + 1)

    def add(self, at: float, valid: bool) -> None:
        self.total += 1
        if not valid:
            self.invalid += 1
        if at > self.last_seen:
            self.last_seen = at
        second = int(at)
        self.seconds.add(second)
        self.minutes.add(second // 60)

    def rate_per_minute(self, now: float) -> int:
        """Events in the last 60 seconds."""
        second = int(now)
        return self.seconds.total(second - RATE_SECONDS + 1, second)

    def spark(self, now: float, buckets: int = SPARK_MINUTES) -> list[int]:
        """Events per minute over the last `buckets` minutes, oldest first."""
        return self.minutes.window(int(now) // 60, min(buckets, SPARK_MINUTES))


class Counters:
    """All names' `NameStats`, plus the whole stream's (`everything`) for events per second."""

    def __init__(self, max_names: int = MAX_NAMES) -> None:
        self.max_names = max_names
        self.by_name: dict[str, NameStats] = {}
        self.everything = NameStats("")
        # Bumped on every change, so a panel repaints only when something moved.
        self.version = 0

    def __len__(self) -> int:
        return len(self.by_name)

    def __contains__(self, name: object) -> bool:
        return name in self.by_name

    def names(self) -> Iterator[str]:
        return iter(self.by_name)

    def get(self, name: str) -> NameStats | None:
        return self.by_name.get(name)

    def observe(self, name: str, at: float, valid: bool = True) -> None:
        """Count one event."""
        stats = self.by_name.get(name)
        if stats is None:
            stats = self._new(name)
        stats.add(at, valid)
        self.everything.add(at, valid)
        self.version += 1

    def observe_many(self, events: Iterable[Any]) -> None:
        """Count events (anything with `.name`, `.received_at`, `.valid`)."""
        observe = self.observe
        for event in events:
            observe(event.name, event.received_at, event.valid)

    def _new(self, name: str) -> NameStats:
        if len(self.by_name) >= self.max_names:
            other = self.by_name.get(OTHER)
            if other is None:
                other = self.by_name[OTHER] = NameStats(OTHER)
            return other
        stats = self.by_name[name] = NameStats(name)
        return stats

    def note_last_seen(self, name: str, at: float) -> None:
        """Remember when a name was last seen without counting an event (seeding after a restart)."""
        stats = self.by_name.get(name) or self._new(name)
        if at > stats.last_seen:
            stats.last_seen = at
            self.version += 1

    def seed(
        self,
        name: str,
        total: int,
        invalid: int,
        last_seen: float,
        minutes: Iterable[tuple[int, int]] = (),
        seconds: Iterable[tuple[int, int]] = (),
    ) -> None:
        """Start a name from counts read from the store (attaching to a store that has history)."""
        stats = self.by_name.get(name) or self._new(name)
        stats.total += total
        stats.invalid += invalid
        stats.last_seen = max(stats.last_seen, last_seen)
        everything = self.everything
        everything.total += total
        everything.invalid += invalid
        everything.last_seen = max(everything.last_seen, last_seen)
        for minute, count in minutes:
            stats.minutes.add(minute, count)
            everything.minutes.add(minute, count)
        for second, count in seconds:
            stats.seconds.add(second, count)
            everything.seconds.add(second, count)
        self.version += 1

    def events_per_second(self, now: float, window: int = 5) -> float:
        """Average over the last `window` whole seconds (the current one is still filling)."""
        second = int(now) - 1
        return self.everything.seconds.total(second - window + 1, second) / window
