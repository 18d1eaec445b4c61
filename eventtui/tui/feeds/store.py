"""StoreFeed: tails a store, so the app shows committed events as they arrive.

Rows with ``id > cursor``, woken at once by the writer's commit signal when the collector runs in
this process (`on_commit`), else by a short poll (`eventtui open`). On attach it paints the newest
history first (of every session), then seeds the counters from the store's counts and the monitor
from its recent events (`CountsSeeded`), so a restart neither resets them nor raises false alarms.

On a stream (`stream`: the store is a mirror of it, `stream/mirror.py`), the counters count the
collectors' rollups instead of the rows: each second's new rollups are posted as counts to add
(`CountsSeeded`, which also moves each name's last seen for the monitor), and rows come marked
`counted`, judged by the monitor but not counted again. The mirror may copy only a sample of the
events; the status line says so.

May import: store (Reader), tui.feeds.base, tui.messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, Final, Protocol

from textual.message import Message

from eventtui.store import Commit, EventRow, NameCounts, Reader
from eventtui.tui.feeds.base import FilterRequest, Post, ReadingFeed, slim
from eventtui.tui.messages import (
    CountsSeeded,
    EventsCommitted,
    FeedNotice,
    FeedStatus,
    FeedStatusRead,
    HistoryLoaded,
)

log = logging.getLogger(__name__)

STATUS_INTERVAL: Final = 1.0
# The recent events the monitor judges on attach (learned cadence needs 10 minutes, the plan's
# window is 15), at most this many (the newest), so attaching to a busy store stays quick.
RECENT_SECONDS: Final = 30 * 60.0
RECENT_LIMIT: Final = 200_000


class StreamView(Protocol):
    """What the feed needs of a stream whose mirror it tails (`stream.mirror.Mirror` is one)."""

    @property
    def name(self) -> str: ...

    def take_counts(self) -> list[NameCounts]:
        """Counts of every event on the stream since the last call (the collectors' rollups)."""
        ...

    def sampling(self) -> tuple[int, int] | None:
        """(copied, on the stream) per second while the mirror copies a sample; else None."""
        ...


class StoreFeed(ReadingFeed):
    """Tails a store (see the module docstring).

    `session`: the session the status line names (watch: the one it is collecting; open: the
    latest one); the stream and counters cover the whole store. `live`: the collector's `health()` when collecting here.
    """

    def __init__(
        self,
        path: Path,
        *,
        mode: str = "open",
        session: int | None = None,
        live: Callable[[], dict[str, Any]] | None = None,
        notices: Callable[[], list[str]] | None = None,
        stream: StreamView | None = None,
        poll_interval: float = 0.25,
        history_limit: int = 10_000,
        batch_limit: int = 5_000,
        min_interval: float = 1 / 50,
        max_in_flight: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(path, max_in_flight)
        self.mode = mode
        self.session = session
        self.live = live
        # The collector's notices (retention deleted sessions): each shown once, as a toast.
        self.notices = notices
        self._noticed = 0
        self.stream = stream
        self.poll_interval = poll_interval
        self.history_limit = history_limit
        self.batch_limit = batch_limit
        self.min_interval = min_interval
        self.clock = clock
        self.cursor = 0
        # The first screen (`prefetch`): read in a thread of its own, handed to the app or posted.
        self._first_thread: threading.Thread | None = None
        self._first_done = threading.Event()
        self._first_ready: list[Message] = []
        self._first_late: list[Message] = []
        self._first_closed = False
        self._first_start: tuple[int, int] | None = None

    # --- called from other threads -----------------------------------------------------------

    def on_commit(self, commit: Commit) -> None:
        """A commit listener (the writer's receiver thread): wake the feed now, not at the next poll."""
        if commit.inserted:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # --- the first screen, read while the app starts ------------------------------------------

    def prefetch(self) -> None:
        """Start reading what the first screen shows (the newest rows, then the counts) now, in
        a thread of its own, while Textual is still starting; the app takes it before its first
        frame (`first_screen`). Without it the first frame was empty and rows followed ~0.1 s
        later, from the feed thread that only starts once the app runs (benchmarks/open.py)."""
        self._first_thread = threading.Thread(
            target=self._read_first, name="eventtui-first-screen", daemon=True
        )
        self._first_thread.start()

    def first_screen(self, timeout: float) -> list[Message]:
        """What `prefetch` has read within `timeout`, for the app to show before its first frame;
        what is read later, the feed thread posts. Called once, from the UI thread."""
        if self._first_thread is not None:
            self._first_done.wait(timeout)
        with self._lock:
            self._first_closed = True
            taken, self._first_ready = self._first_ready, []
        return taken

    def _read_first(self) -> None:
        read: list[Message] = []
        try:
            with Reader(self.path) as reader:
                start = self._start(reader, read.append)
            # Offered only once all of it is read: if anything fails, the feed thread reads it
            # all again, and nothing (the counts) is handed over twice.
            for message in read:
                self._offer_first(message)
            self._first_start = start
        except Exception:  # the feed thread reads again, and reports what fails
            log.debug("reading the first screen of %s failed", self.path, exc_info=True)
        finally:
            self._first_done.set()

    def _offer_first(self, message: Message) -> None:
        with self._lock:
            (self._first_late if self._first_closed else self._first_ready).append(message)

    def _take_prefetched(self, post: Post) -> tuple[int, int] | None:
        """The prefetch's cursor and count, once its messages are posted or taken; None if it
        did not run or failed."""
        if self._first_thread is None:
            return None
        self._first_thread.join()
        with self._lock:
            self._first_closed = True
            pending = self._first_ready + self._first_late
            self._first_ready, self._first_late = [], []
        for message in pending:
            post(message)
        return self._first_start

    def _start(self, reader: Reader, post: Post) -> tuple[int, int]:
        """The history and counts the view starts from; (cursor, events stored)."""
        cursor = reader.last_event_id()
        # History first: the stream paints at once; counting a big store takes longer.
        self._load_history(reader, post, FilterRequest(None, (), 0), to_id=cursor)
        stored = reader.count_events()
        history = reader.monitor_history(
            to_id=cursor,
            now=self.clock(),
            recent_seconds=RECENT_SECONDS,
            recent_limit=RECENT_LIMIT,
        )
        if history.counts:
            # On a stream the mirror's counts are of its copies (maybe a sample): the rollups
            # count instead, from the feed's loop; the recent rows are judged all the same.
            counts = history.counts if self.stream is None else ()
            post(
                CountsSeeded(
                    counts, history.recent, history.recent_from, rollups=self.stream is not None
                )
            )
        post(FeedStatusRead(self._status(reader, stored)))
        return cursor, stored

    # --- the feed thread -----------------------------------------------------------------------

    def _run(self, reader: Reader, post: Post) -> None:
        if self.session is None:
            self.session = reader.latest_session_id()
        start = self._take_prefetched(post)
        self.cursor, stored = start if start is not None else self._start(reader, post)
        recounted = self.clock()
        status_at = 0.0
        while not self._stopped.is_set():
            self._serve_requests(reader, post)
            if self.stream is not None:
                rolled = self.stream.take_counts()
                if rolled:
                    post(CountsSeeded(rolled, rollups=True))
            rows = reader.events_after(self.cursor, self.batch_limit)
            if rows:
                stored += len(rows)
                self._post_rows(reader, post, rows)
            now = self.clock()
            if now - recounted > 30:
                # Retention may delete rows; a periodic count keeps the total honest.
                stored, recounted = reader.count_events(), now
            if now - status_at >= 1.0 or (rows and now - status_at >= 0.5):
                status_at = now
                post(FeedStatusRead(self._status(reader, stored)))
                self._post_notices(post)
            if len(rows) == self.batch_limit:
                continue  # behind: read on without waiting
            # A short pause lets commits pile up into one batch; then sleep until woken.
            if self._stopped.wait(self.min_interval):
                break
            # The status (clients, store size) refreshes each second even when no rows come.
            self._wake.wait(min(self.poll_interval, STATUS_INTERVAL))
            self._wake.clear()

    def _post_rows(self, reader: Reader, post: Post, rows: list[EventRow]) -> None:
        first, last = rows[0].id, rows[-1].id
        matching: list[EventRow] | None = None
        if self._where is not None:
            matching = reader.query(self._where, self._params, from_id=first, to_id=last)
        self.cursor = last
        shown = rows if matching is None else matching
        # Only the newest history_limit rows can stay in the stream, so only they are slimmed;
        # older ones in a big batch are only counted, then dropped with the message.
        keep_from = max(0, len(shown) - self.history_limit)
        slimmed = [slim(r) for r in shown[keep_from:]]
        if matching is None:
            rows = rows[:keep_from] + slimmed
        else:
            matching = slimmed
        if self._take_credit():
            post(
                EventsCommitted(
                    rows,
                    matching,
                    self._generation,
                    self._credit,
                    counted=self.stream is not None,  # the rollups count them
                )
            )

    def _load_history(
        self, reader: Reader, post: Post, request: FilterRequest, to_id: int | None = None
    ) -> None:
        # Every session: the store's history shows from the start, and `session:1` finds its own.
        rows = reader.query(
            "1" if request.where is None else request.where,
            request.params,
            to_id=self.cursor if to_id is None else to_id,
            newest_first=True,
            limit=self.history_limit,
        )
        rows.reverse()
        post(HistoryLoaded([slim(r) for r in rows], request.generation))

    def _post_notices(self, post: Post) -> None:
        said = self.notices() if self.notices is not None else []
        for text in said[self._noticed :]:
            post(FeedNotice(text, "warning"))
        self._noticed = len(said)

    def _status(self, reader: Reader, stored: int) -> FeedStatus:
        base = FeedStatus(
            mode=self.mode,
            collecting=False,
            session=reader.latest_session_id() if self.live is None else self.session,
            stored=stored,
            size_bytes=reader.size_bytes(),
            store_name=self.path.name,
        )
        if self.stream is not None:
            # A stream has no session here (the mirror's is a temporary store's): name the stream.
            base = replace(
                base,
                session=None,
                store_name="",
                stream=self.stream.name,
                sampled=self.stream.sampling(),
            )
        if self.live is None:
            return replace(base, refused=reader.count_rejects(from_session=self.session or 0))
        health = self.live()
        session = int(health.get("session", 0)) or self.session
        addresses = tuple(a for a in (health.get("websocket"), health.get("http")) if a)
        return replace(
            base,
            collecting=True,
            addresses=addresses,
            clients=int(health.get("clients", 0)),
            session=base.session if self.stream is not None else session,
            refused=int(health.get("rejects", 0)),
            problem=str(health.get("error", "")),
            alert_problem=str(health.get("alerts_failing", "")),
        )
