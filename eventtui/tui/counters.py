"""Per-name counters for the counters panel: total, rate per minute, last seen, a 30-minute trend.

Pure code over events (anything with .name, .received_at, .valid) and times passed in: no
Textual, no clock of its own. Each event costs O(1): two ring buckets and a few increments. The
number of names is capped, because names come from clients: past `max_names` the rest are counted
together under `OTHER`, so a client inventing a name per event cannot grow memory without bound.

States (ok / late / missing ...) come from a `StateSource`, the seam the monitor plugs into.

May import: nothing from Textual.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

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


@dataclass(frozen=True)
class StateMark:
    """How the counters panel shows one name's state: a word, a symbol, and how bad it is."""

    label: str
    symbol: str
    severity: int  # 0 fine or unknown; higher sorts first and draws the eye
    tone: str  # "ok", "muted", "info", "warning", "error": the panel maps it to theme colours
    rank: int = 0  # among equal severities, lower sorts first (missing before invalid)


NO_STATE: Final = StateMark("", "", 0, "ok")


class StateSource(Protocol):
    """What the counters panel needs from the monitor (issue 5): fed every event, asked per name."""

    def observe_many(self, events: Iterable[Any]) -> None: ...

    def state_of(self, name: str, now: float) -> StateMark: ...

    def names(self) -> Iterable[str]:
        """Names the source knows of without having seen them (declared expectations)."""
        ...


SORT_KEYS: Final = ("rate", "total", "last seen", "name")


class Counters:
    """All names' `NameStats`, plus the whole stream's (`everything`) for events per second."""

    def __init__(self, max_names: int = MAX_NAMES) -> None:
        self.max_names = max_names
        self.by_name: dict[str, NameStats] = {}
        self.everything = NameStats("")
        # Bumped on every change, so the panel repaints only when something moved.
        self.version = 0

    def observe(self, events: Sequence[Any]) -> None:
        by_name = self.by_name
        everything = self.everything
        for event in events:
            stats = by_name.get(event.name)
            if stats is None:
                stats = self._new(event.name)
            at = event.received_at
            stats.add(at, event.valid)
            everything.add(at, event.valid)
        if events:
            self.version += 1

    def _new(self, name: str) -> NameStats:
        if len(self.by_name) >= self.max_names:
            other = self.by_name.get(OTHER)
            if other is None:
                other = self.by_name[OTHER] = NameStats(OTHER)
            return other
        stats = self.by_name[name] = NameStats(name)
        return stats

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

    def ordered(
        self,
        sort_key: str,
        now: float,
        states: StateSource | None = None,
        extra_names: Iterable[str] = (),
    ) -> list[tuple[NameStats, StateMark]]:
        """Rows for the panel: firing states first (worst first), then by `sort_key`."""
        rows = list(self.by_name.values())
        known = self.by_name.keys()
        rows.extend(NameStats(name) for name in extra_names if name not in known)
        marks = [states.state_of(s.name, now) if states else NO_STATE for s in rows]
        rates = {id(s): s.rate_per_minute(now) for s in rows} if sort_key == "rate" else {}

        def key(pair: tuple[NameStats, StateMark]) -> tuple[Any, ...]:
            stats, mark = pair
            first = (-mark.severity, mark.rank)
            if sort_key == "name":
                return (*first, stats.name.casefold())
            if sort_key == "total":
                return (*first, -stats.total, stats.name)
            if sort_key == "last seen":
                return (*first, -stats.last_seen, stats.name)
            return (*first, -rates[id(stats)], -stats.last_seen, stats.name)

        return sorted(zip(rows, marks, strict=True), key=key)


SPARK_BLOCKS: Final = " ▁▂▃▄▅▆▇█"


def sparkline(counts: Sequence[int]) -> str:
    """One character per count, scaled to the largest; zero stays blank so quiet time reads as gap."""
    top = max(counts, default=0)
    if top <= 0:
        return " " * len(counts)
    steps = len(SPARK_BLOCKS) - 1
    return "".join(
        SPARK_BLOCKS[0] if c <= 0 else SPARK_BLOCKS[max(1, round(c / top * steps))] for c in counts
    )
