"""Messages a feed posts to the app: facts about the store, each carrying a batch.

A feed runs in a worker thread and talks to the UI only through these (`post_message` is
thread-safe and never blocks; `call_from_thread` would block the feed and can hang shutdown).
Messages are dataclasses (Textual initialises its part in `Message.__post_init__`); `eq=False`
keeps them compared, and hashed, by identity, as Textual's own messages are.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from textual.message import Message

from eventtui.store import EventRow, NameCounts


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
    # A webhook alert that is failing (`[[alert]]`), from the collector's health: one short line.
    alert_problem: str = ""
    # On a stream: its name (said instead of a session), and (copied, on the stream) per second
    # while the event list shows a sample of it.
    stream: str = ""
    sampled: tuple[int, int] | None = None


@dataclass(eq=False)
class EventsCommitted(Message):
    """New committed events, oldest first.

    `rows` is every new event (counters and the monitor see all of them); `matching` is the
    subset that passes the stream's filter of `generation` (None: no filter, all rows match).
    `through` (replay): every event up to this virtual time is in this batch or an earlier one.
    `credit` is the feed's, returned by `handled()`. `counted`: the counters have these already
    (on a stream they count the collectors' rollups), so the monitor only judges them.
    """

    rows: Sequence[EventRow]
    matching: Sequence[EventRow] | None
    generation: int
    credit: threading.Semaphore | None = None
    through: float | None = None
    counted: bool = False

    @property
    def shown(self) -> Sequence[EventRow]:
        return self.rows if self.matching is None else self.matching

    def handled(self) -> None:
        """Return the feed's credit: it posts at most a few batches ahead of the UI."""
        if self.credit is not None:
            self.credit.release()
            self.credit = None


@dataclass(eq=False)
class HistoryLoaded(Message):
    """The newest stored events matching filter `generation`, oldest first: the stream restarts."""

    rows: Sequence[EventRow]
    generation: int


@dataclass(eq=False)
class CountsSeeded(Message):
    """Per-name counts read from the store when the feed attached, and (live) the recent events
    the monitor judges to continue from the store's history (`recent_from`: all since then).

    On a stream (`rollups`), also each second's rollups: counts of every event to add, which
    the monitor's rates and deadlines learn from too, the rows being maybe a sample."""

    seeds: Sequence[NameCounts]
    recent: Sequence[EventRow] = ()
    recent_from: float | None = None
    rollups: bool = False


@dataclass(eq=False)
class EventLoaded(Message):
    """One event read in full on request (stream rows keep large payloads out of memory)."""

    event_id: int
    row: EventRow | None


@dataclass(eq=False)
class FeedStatusRead(Message):
    status: FeedStatus


@dataclass(eq=False)
class FeedFailed(Message):
    """The feed cannot go on (store missing, unreadable); `error` is one sentence."""

    error: str


@dataclass(eq=False)
class FeedRestarted(Message):
    """Everything shown so far is void (a replay went back in time): counters start over.

    `at` is where virtual time starts again; the events up to the new position follow.
    """

    at: float


@dataclass(eq=False)
class TimeReached(Message):
    """Virtual time moved to `at` and every event up to it has been posted (a replay)."""

    at: float


@dataclass(eq=False)
class FeedNotice(Message):
    """Something the feed wants the user to know (a replay found no anomaly ahead)."""

    text: str
    severity: str = "information"
