"""Messages a feed posts to the app: facts about the store, each carrying a batch.

A feed runs in a worker thread and talks to the UI only through these (`post_message` is
thread-safe and never blocks; `call_from_thread` would block the feed and can hang shutdown).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from textual.message import Message

from eventtui.store import EventRow


@dataclass(frozen=True)
class FeedStatus:
    """What the status bar shows about where events come from."""

    mode: str  # "watch", "open", "replay"
    collecting: bool
    addresses: tuple[str, ...] = ()
    clients: int | None = None
    session: int | None = None
    stored: int = 0
    size_bytes: int = 0
    refused: int = 0
    store_name: str = ""
    # A replay's position and speed ("▶ 10x · 12:00:05 · 34%"), shown instead of the listener.
    detail: str = ""
    # Why the collector cannot store events now (its store writer died), from its health.
    problem: str = ""


@dataclass(frozen=True)
class NameSeed:
    """Counts for one event name read from history, so counters start true on attach."""

    name: str
    total: int
    invalid: int
    last_seen: float
    # (epoch minute, count) for the sparkline window; (epoch second, count) for the rate window.
    minutes: Sequence[tuple[int, int]] = ()
    seconds: Sequence[tuple[int, int]] = ()


class EventsCommitted(Message):
    """New committed events, oldest first.

    `rows` is every new event (counters and the monitor see all of them); `matching` is the
    subset that passes the stream's filter of `generation` (None: no filter, all rows match).
    `through` (replay): every event up to this virtual time is in this batch or an earlier one.
    """

    def __init__(
        self,
        rows: Sequence[EventRow],
        matching: Sequence[EventRow] | None,
        generation: int,
        credit: threading.Semaphore | None = None,
        through: float | None = None,
    ) -> None:
        super().__init__()
        self.rows = rows
        self.matching = matching
        self.generation = generation
        self.through = through
        self._credit = credit

    @property
    def shown(self) -> Sequence[EventRow]:
        return self.rows if self.matching is None else self.matching

    def handled(self) -> None:
        """Return the feed's credit: it posts at most a few batches ahead of the UI."""
        if self._credit is not None:
            self._credit.release()
            self._credit = None


class HistoryLoaded(Message):
    """The newest stored events matching filter `generation`, oldest first: the stream restarts."""

    def __init__(self, rows: Sequence[EventRow], generation: int) -> None:
        super().__init__()
        self.rows = rows
        self.generation = generation


class CountsSeeded(Message):
    """Per-name counts read from the store when the feed attached."""

    def __init__(self, seeds: Sequence[NameSeed]) -> None:
        super().__init__()
        self.seeds = seeds


class EventLoaded(Message):
    """One event read in full on request (stream rows keep large payloads out of memory)."""

    def __init__(self, event_id: int, row: EventRow | None) -> None:
        super().__init__()
        self.event_id = event_id
        self.row = row


class FeedStatusRead(Message):
    def __init__(self, status: FeedStatus) -> None:
        super().__init__()
        self.status = status


class FeedFailed(Message):
    """The feed cannot go on (store missing, unreadable); `error` is one sentence."""

    def __init__(self, error: str) -> None:
        super().__init__()
        self.error = error


class FeedRestarted(Message):
    """Everything shown so far is void (a replay went back in time): counters start over.

    `at` is where virtual time starts again; the events up to the new position follow.
    """

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at


class TimeReached(Message):
    """Virtual time moved to `at` and every event up to it has been posted (a replay)."""

    def __init__(self, at: float) -> None:
        super().__init__()
        self.at = at


class FeedNotice(Message):
    """Something the feed wants the user to know (a replay found no anomaly ahead)."""

    def __init__(self, text: str, severity: str = "information") -> None:
        super().__init__()
        self.text = text
        self.severity = severity
