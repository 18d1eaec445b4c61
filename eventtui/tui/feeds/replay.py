"""ReplayFeed: a stored session played on a virtual clock, posted to the app as the live feed posts.

The app cannot tell a replay from live: it gets the same `EventsCommitted` batches, and its clock
is virtual time, so ages, rates and the monitor's anomaly states appear at the same recorded
moments they did live. The app's "now" is not the replay clock's reading but the time the feed
has delivered every event up to (`through` on each batch, `TimeReached` between them): a monitor
asked about a moment before it has seen that moment's events would invent late and missing
episodes (after a seek back, or at high speed when a heartbeat lands exactly on its deadline).
Pacing is `eventtui.replay`'s (Timeline, ReplayClock, Player); this module only runs it on the
feed thread and takes the user's commands.

Threads: the feed thread owns its Reader and calls `Player.due`; the UI thread's commands (pause,
speed, seek) change the clock. Both hold `_lock` while they touch clock or player, briefly.

May import: replay, store, tui.feeds.base, tui.messages.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from eventtui.monitor import Episode
from eventtui.replay import (
    PAGE_ROWS,
    Player,
    ReplayClock,
    Schedule,
    fetch_rows,
    format_speed,
    next_after,
    next_speed,
)
from eventtui.store import EventRow, Reader
from eventtui.tui.feeds.base import FilterRequest, Post, ReadingFeed, slim
from eventtui.tui.messages import (
    EventsCommitted,
    FeedNotice,
    FeedRestarted,
    FeedStatus,
    FeedStatusRead,
    HistoryLoaded,
    TimeReached,
)

log = logging.getLogger(__name__)

SEEK_SECONDS: Final = 10.0
# "Next anomaly" lands this long before it, so the state change is seen happening.
ANOMALY_LEAD: Final = 3.0
_STATUS_INTERVAL: Final = 0.25
# The progress bar in the status line: where the virtual time is in the recording.
PROGRESS_CELLS: Final = 20


@runtime_checkable
class Playback(Protocol):
    """What a feed that plays recorded time offers the app's keys (space, +/-, ←/→, n)."""

    started_at: float  # virtual time at the start of the recording

    def toggle_pause(self) -> None: ...
    def change_speed(self, step: int) -> None: ...
    def seek_by(self, seconds: float) -> None: ...
    def next_anomaly(self) -> None: ...
    def now(self) -> float: ...


class ReplayFeed(ReadingFeed):
    """See the module docstring. `find_anomalies` gives the session's anomaly episodes, read on the
    feed thread with its Reader, for the "next anomaly" key."""

    mode = "replay"
    doing = "replaying"

    def __init__(
        self,
        path: Path,
        schedule: Schedule,
        clock: ReplayClock,
        *,
        find_anomalies: Callable[[Reader], list[Episode]] | None = None,
        history_limit: int = 10_000,
    ) -> None:
        super().__init__(path, max_in_flight=3)
        self.schedule = schedule
        self.clock = clock
        self.started_at = clock.timeline.start
        self.player = Player(schedule.times, clock)
        self.find_anomalies = find_anomalies
        self.history_limit = history_limit
        self._restart = False
        self._find_anomaly = False
        self._anomaly_times: list[float] | None = None

    # --- the app's clock and commands (UI thread) ---------------------------------------------

    def now(self) -> float:
        """Virtual time: the recorded epoch seconds being played."""
        with self._lock:
            return self.clock.now()

    def toggle_pause(self) -> None:
        with self._lock:
            self.clock.toggle_pause()
        self._wake.set()

    def change_speed(self, step: int) -> None:
        with self._lock:
            self.clock.set_speed(next_speed(self.clock.speed, step))
        self._wake.set()

    def seek_by(self, seconds: float) -> None:
        with self._lock:
            if self.player.seek_by(seconds):
                self._restart = True
        self._wake.set()

    def next_anomaly(self) -> None:
        self._find_anomaly = True
        self._wake.set()

    # --- the feed thread --------------------------------------------------------------------------

    def _run(self, reader: Reader, post: Post) -> None:
        post(HistoryLoaded([], 0))
        status_at = 0.0
        reached = None
        while not self._stopped.is_set():
            with self._lock:
                restart, self._restart = self._restart, False
                due = self.player.due(PAGE_ROWS)
                through = self.player.caught_up_to()
                wait = 0.0 if due else self.player.wait()
            if restart:
                post(FeedRestarted(self.clock.timeline.start))
                reached = None
            self._serve_requests(reader, post)
            if self._find_anomaly:
                self._find_anomaly = False
                self._seek_to_anomaly(reader, post)
            if due:
                self._post_rows(reader, post, fetch_rows(reader, self.schedule, due), through)
                reached = through
            elif through != reached:
                post(TimeReached(through))
                reached = through
            now = time.monotonic()
            if now - status_at >= _STATUS_INTERVAL:
                status_at = now
                post(FeedStatusRead(self._status()))
            if due:
                continue
            timeout = _STATUS_INTERVAL if wait is None else min(wait, _STATUS_INTERVAL)
            self._wake.wait(timeout)
            self._wake.clear()

    def _post_rows(self, reader: Reader, post: Post, rows: list[EventRow], through: float) -> None:
        matching = None
        if self._where is not None:
            matching = [slim(r) for r in self._matching(reader, [r.id for r in rows])]
        shown = [slim(r) for r in rows] if matching is None else rows
        if self._take_credit():
            post(EventsCommitted(shown, matching, self._generation, self._credit, through))

    def _matching(self, reader: Reader, ids: Sequence[int]) -> list[EventRow]:
        return reader.matching_in(ids, self._where or "1", self._params)

    def _load_history(self, reader: Reader, post: Post, request: FilterRequest) -> None:
        with self._lock:
            played = self.player.cursor
        # The newest played events, up to a bound, checked against the filter in one statement.
        ids = self.schedule.ids[max(0, played - 5 * self.history_limit) : played]
        if request.where is None:
            rows = fetch_rows(
                reader, self.schedule, range(max(0, played - self.history_limit), played)
            )
        else:
            rows = self._matching(reader, ids)[-self.history_limit :]
        post(HistoryLoaded([slim(r) for r in rows], request.generation))

    def _seek_to_anomaly(self, reader: Reader, post: Post) -> None:
        if self.find_anomalies is None:
            post(FeedNotice("No monitor configured for this replay.", "warning"))
            return
        if self._anomaly_times is None:
            # Once per replay: a headless monitor run over the whole session (fast: no payloads),
            # so "next" knows what comes without playing it.
            episodes = self.find_anomalies(reader)
            self._anomaly_times = sorted(e.started_at for e in episodes if e.severity >= 2)
        with self._lock:
            target = next_after(self._anomaly_times, self.clock.now(), lead=ANOMALY_LEAD)
            if target is not None and self.player.seek_to(target - ANOMALY_LEAD):
                self._restart = True
        if target is None:
            post(FeedNotice("No anomaly ahead in this session."))
        else:
            post(
                FeedNotice(f"Next anomaly at {time.strftime('%H:%M:%S', time.localtime(target))}.")
            )

    def _status(self) -> FeedStatus:
        with self._lock:
            clock = self.clock
            state = "‖" if clock.paused else ("✓" if self.player.done else "▶")
            filled = round(clock.fraction * PROGRESS_CELLS)
            detail = (
                f"{state} replay {format_speed(clock.speed)} · "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(clock.now()))} "
                f"{'━' * filled}{'─' * (PROGRESS_CELLS - filled)} "
                f"{clock.fraction:.0%} · {self.player.cursor:,}/{self.player.total:,} events"
            )
        return FeedStatus(
            mode="replay",
            collecting=False,
            session=self.schedule.session.id,
            stored=len(self.schedule),
            store_name=self.path.name,
            detail=detail,
        )
