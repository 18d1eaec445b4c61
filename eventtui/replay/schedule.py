"""A session's events in replay order, read from the store as they come due.

`load_schedule` reads ids and times only (16 bytes an event); `fetch_rows` reads the rows of a run
of schedule positions, whole or (`light`) without their payload, a page at a time;
`iter_light_rows` reads them all that way, for a monitor that only counts and judges.

May import: store, replay.clock.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from eventtui.replay.clock import ReplayError, Timeline
from eventtui.store import EventRow, Reader, SessionRow

# Rows read from the store at a time (one SQLite statement); also the largest batch `Player.due`
# gives at max speed.
PAGE_ROWS: Final = 2000


@dataclass(slots=True)
class Schedule:
    """A session's events in replay order: ids and recorded times (16 bytes an event)."""

    session: SessionRow
    ids: array[int] = field(default_factory=lambda: array("q"))
    times: array[float] = field(default_factory=lambda: array("d"))
    # True when ids ascend with times and no other row lies between them: pages are id ranges.
    contiguous: bool = True

    def __len__(self) -> int:
        return len(self.ids)

    def timeline(self, *, max_gap: float | None, whole_session: bool) -> Timeline:
        """The replay's span: the events, or (`whole_session`, the TUI) the session around them.

        An import's start and end are when the file was loaded, not when its events happened, so
        its span is always its events'.
        """
        start = end = None
        if whole_session and self.session.source != "import":
            start = self.session.started_at
            end = self.session.ended_at
        return Timeline(self.times, start=start, end=end, max_gap=max_gap)


def load_schedule(
    reader: Reader, session: SessionRow, where: str = "1", params: Sequence[Any] = ()
) -> Schedule:
    """The ids and times of the session's events matching `where`, in replay order."""
    ids, times, contiguous = reader.replay_order(session.id, where, params)
    return Schedule(session, ids, times, contiguous)


def fetch_rows(
    reader: Reader, schedule: Schedule, indices: range, *, light: bool = False
) -> list[EventRow]:
    """The rows of schedule positions `indices` (a step-1 range), in schedule order.

    `light`: without their payload, for events a viewer counts but will never draw: at max speed,
    or catching up after a seek, only the newest few thousand can stay in a stream; reading whole
    rows for the rest is 3-4x the cost of counting them (benchmarks/replay.py).
    """
    rows = reader.events_in(
        schedule.ids[indices.start : indices.stop], contiguous=schedule.contiguous, light=light
    )
    if len(rows) != len(indices):
        raise ReplayError(
            f"events of session {schedule.session.id} were deleted while it was being replayed"
        )
    return rows


def iter_light_rows(reader: Reader, schedule: Schedule) -> Iterator[EventRow]:
    """What a monitor reads of each event (no payload), in replay order, a page at a time."""
    total = len(schedule)
    step = PAGE_ROWS * 5
    for start in range(0, total, step):
        yield from fetch_rows(reader, schedule, range(start, min(total, start + step)), light=True)
