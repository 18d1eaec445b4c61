"""Feeds: where the app's events come from. The app is given one; it never opens the store itself.

A feed runs in a thread worker the app starts (`run`), reads committed rows and posts them to the
app in batches (`EventsCommitted`, see `messages.py`). Everything the UI asks of it (`set_filter`,
`request_event`, `stop`) is thread-safe and returns at once: the feed thread does the reading.

`StoreFeed` tails a store: rows with ``id > cursor``, woken at once by the writer's commit signal
when the collector runs in this process (`on_commit`), else by a short poll (`eventtui open`).
`ReplayFeed` (tui/replay.py) posts the same messages on a virtual clock, so a replay shows what live
did; both share `ReadingFeed`, the thread plumbing.

May import: store (Reader), tui.messages. Owns its Reader: sqlite3 objects are bound to the thread
that made them, so the Reader is created, used and closed inside `run`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Protocol

from textual.message import Message

from eventtui.store import Commit, EventRow, Reader, StoreError
from eventtui.tui.messages import (
    CountsSeeded,
    EventLoaded,
    EventsCommitted,
    FeedFailed,
    FeedStatus,
    FeedStatusRead,
    HistoryLoaded,
    NameSeed,
)

log = logging.getLogger(__name__)

Post = Callable[[Message], object]

# Rows bigger than this reach the stream without their payload; the payload pane asks for it when
# shown. Keeps the 10k-row stream buffer in megabytes even when every event is near the 512 KB limit.
SLIM_BYTES: Final = 16 * 1024
STATUS_INTERVAL: Final = 1.0


class Feed(Protocol):
    """The data source the app is given (see the module docstring)."""

    mode: str

    def run(self, post: Post) -> None:
        """Read and post until `stop` is called; runs in a worker thread."""

    def stop(self) -> None: ...

    def set_filter(self, where: str | None, params: Sequence[Any], generation: int) -> None:
        """Restart the stream on a compiled filter (None: everything); answers `HistoryLoaded`."""

    def request_event(self, event_id: int) -> None:
        """Read one event in full; answers `EventLoaded`."""


class SlimRow(EventRow):
    """A stream row whose payload was left in the store; `full_size` is what it weighs there."""

    # Not a tuple field (a NamedTuple subclass cannot add one): an attribute, set by `slim`.
    full_size: int


def slim(row: EventRow) -> EventRow:
    """The row as the stream keeps it: itself, or a `SlimRow` if its payload is large."""
    size = len(row.properties) + len(row.context) + len(row.extra or "")
    if size <= SLIM_BYTES:
        return row
    slimmed = SlimRow._make(
        row._replace(
            properties=row.properties if len(row.properties) <= SLIM_BYTES else "",
            context="{}",
            extra=None,
        )
    )
    slimmed.full_size = size
    return slimmed


@dataclass
class FilterRequest:
    where: str | None
    params: Sequence[Any]
    generation: int


class ReadingFeed:
    """What the feeds that read a store in their own thread share.

    The UI thread's requests (`set_filter`, `request_event`, `stop`) are queued under `_lock` and
    wake the thread; `run` opens the Reader there and reports any failure as `FeedFailed`. Batches
    are posted against `_credit` (at most `max_in_flight` unconsumed), so a busy app slows the
    feed instead of queueing messages. Subclasses implement `_run` and `_load_history`.
    """

    # The verb in "reading PATH failed: ..." when the feed stops on an error.
    doing = "reading"

    def __init__(self, path: Path, max_in_flight: int) -> None:
        self.path = path
        self._credit = threading.Semaphore(max_in_flight)
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._filter_request: FilterRequest | None = None
        self._event_requests: list[int] = []
        # The filter in force: set from each request before its history loads.
        self._where: str | None = None
        self._params: Sequence[Any] = ()
        self._generation = 0

    # --- called from other threads -----------------------------------------------------------

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        # A feed blocked on credit must see the stop too.
        self._credit.release()

    def set_filter(self, where: str | None, params: Sequence[Any], generation: int) -> None:
        with self._lock:
            self._filter_request = FilterRequest(where, tuple(params), generation)
        self._wake.set()

    def request_event(self, event_id: int) -> None:
        with self._lock:
            self._event_requests.append(event_id)
        self._wake.set()

    # --- the feed thread -----------------------------------------------------------------------

    def run(self, post: Post) -> None:
        try:
            reader = Reader(self.path)
        except StoreError as exc:
            post(FeedFailed(str(exc)))
            return
        try:
            self._run(reader, post)
        except Exception as exc:  # report, don't vanish: the UI shows it in the status bar
            log.exception("%s %s failed", self.doing, self.path)
            post(FeedFailed(f"{self.doing} {self.path} failed: {exc}"))
        finally:
            reader.close()

    def _run(self, reader: Reader, post: Post) -> None:
        raise NotImplementedError

    def _load_history(self, reader: Reader, post: Post, request: FilterRequest) -> None:
        raise NotImplementedError

    def _serve_requests(self, reader: Reader, post: Post) -> None:
        """Answer what the UI asked for since last time: payloads, then a new filter's history."""
        with self._lock:
            request, self._filter_request = self._filter_request, None
            wanted, self._event_requests = self._event_requests, []
        for event_id in wanted:
            post(EventLoaded(event_id, reader.event(event_id)))
        if request is not None:
            self._where, self._params = request.where, request.params
            self._generation = request.generation
            self._load_history(reader, post, request)

    def _take_credit(self) -> bool:
        """Wait until the app has room for another batch; False once the feed is stopping."""
        while not self._credit.acquire(timeout=0.2):
            if self._stopped.is_set():
                return False
        return not self._stopped.is_set()


class StoreFeed(ReadingFeed):
    """Tails a store (see the module docstring).

    `session`: the first session the stream and counters cover (watch: the session it is
    collecting; open: the latest one). `live`: the collector's `health()` when collecting here.
    """

    def __init__(
        self,
        path: Path,
        *,
        mode: str = "open",
        session: int | None = None,
        live: Callable[[], dict[str, Any]] | None = None,
        poll_interval: float = 0.25,
        history_limit: int = 10_000,
        batch_limit: int = 5_000,
        min_interval: float = 1 / 30,
        max_in_flight: int = 3,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(path, max_in_flight)
        self.mode = mode
        self.session = session
        self.live = live
        self.poll_interval = poll_interval
        self.history_limit = history_limit
        self.batch_limit = batch_limit
        self.min_interval = min_interval
        self.clock = clock
        self.cursor = 0

    # --- called from other threads -----------------------------------------------------------

    def on_commit(self, commit: Commit) -> None:
        """Writer-thread listener: wake the feed now instead of at the next poll."""
        if commit.inserted:
            self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    # --- the feed thread -----------------------------------------------------------------------

    def _run(self, reader: Reader, post: Post) -> None:
        if self.session is None:
            self.session = reader.latest_session_id()
        self.cursor = reader.last_event_id()
        # History first: the stream paints at once; counting a big store takes longer.
        self._load_history(reader, post, FilterRequest(None, (), 0))
        stored = reader.count_events()
        recounted = self.clock()
        seeds = self._seeds(reader)
        if seeds:
            post(CountsSeeded(seeds))
        status_at = 0.0
        while not self._stopped.is_set():
            self._serve_requests(reader, post)
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
            matching = reader.query(
                f"id >= ? AND id <= ? AND ({self._where})", [first, last, *self._params]
            )
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
            post(EventsCommitted(rows, matching, self._generation, self._credit))

    def _load_history(self, reader: Reader, post: Post, request: FilterRequest) -> None:
        where = "id <= ?"
        params: list[Any] = [self.cursor]
        if self.session is not None:
            where += " AND session_id >= ?"
            params.append(self.session)
        if request.where is not None:
            where += f" AND ({request.where})"
            params.extend(request.params)
        rows = reader.query(where, params, newest_first=True, limit=self.history_limit)
        rows.reverse()
        post(HistoryLoaded([slim(r) for r in rows], request.generation))

    def _seeds(self, reader: Reader) -> list[NameSeed]:
        """Counts per name since `session`, up to `cursor`, so counters are true from the start.

        Bounded by `cursor` (where the tail begins): rows committed while this runs arrive through
        `events_after` and must not be counted twice.

        Aggregates over the documented schema; the events_name_received index serves them.
        """
        if self.session is None:
            return []
        conn = reader.conn
        now = self.clock()
        sid = self.session
        totals = conn.execute(
            "SELECT name, count(*), sum(valid = 0), max(received_at) FROM events"
            " WHERE session_id >= ? AND id <= ? GROUP BY name",
            (sid, self.cursor),
        ).fetchall()
        if not totals:
            return []
        minutes: dict[str, list[tuple[int, int]]] = {}
        for name, minute, count in conn.execute(
            "SELECT name, CAST(received_at / 60 AS INTEGER), count(*) FROM events"
            " WHERE session_id >= ? AND id <= ? AND received_at > ? GROUP BY 1, 2",
            (sid, self.cursor, now - 31 * 60),
        ):
            minutes.setdefault(name, []).append((int(minute), count))
        seconds: dict[str, list[tuple[int, int]]] = {}
        for name, second, count in conn.execute(
            "SELECT name, CAST(received_at AS INTEGER), count(*) FROM events"
            " WHERE session_id >= ? AND id <= ? AND received_at > ? GROUP BY 1, 2",
            (sid, self.cursor, now - 61),
        ):
            seconds.setdefault(name, []).append((int(second), count))
        return [
            NameSeed(name, total, invalid or 0, last, minutes.get(name, ()), seconds.get(name, ()))
            for name, total, invalid, last in totals
        ]

    def _status(self, reader: Reader, stored: int) -> FeedStatus:
        base = FeedStatus(
            mode=self.mode,
            collecting=False,
            session=reader.latest_session_id() if self.live is None else self.session,
            stored=stored,
            size_bytes=reader.size_bytes(),
            store_name=self.path.name,
        )
        if self.live is None:
            refused = reader.conn.execute(
                "SELECT count(*) FROM rejects WHERE session_id >= ?", (self.session or 0,)
            ).fetchone()[0]
            return replace(base, refused=int(refused))
        health = self.live()
        addresses = tuple(a for a in (health.get("websocket"), health.get("http")) if a)
        return replace(
            base,
            collecting=True,
            addresses=addresses,
            clients=int(health.get("clients", 0)),
            session=int(health.get("session", 0)) or self.session,
            refused=int(health.get("rejects", 0)),
            problem=str(health.get("error", "")),
        )


class StaticFeed:
    """A fixed list of events and a status, posted once: previews, snapshots and UI tests.

    It cannot run SQL filters; a filter restarts the stream on the same rows.
    """

    def __init__(self, rows: Sequence[EventRow], status: FeedStatus | None = None) -> None:
        self.mode = status.mode if status else "static"
        self.rows = list(rows)
        self.status = status
        self.requests: list[tuple[str | None, tuple[Any, ...], int]] = []
        self._stopped = threading.Event()
        self._post: Post | None = None

    def run(self, post: Post) -> None:
        self._post = post
        post(HistoryLoaded([], 0))
        if self.rows:
            post(EventsCommitted([slim(r) for r in self.rows], None, 0))
        if self.status is not None:
            post(FeedStatusRead(self.status))
        self._stopped.wait()

    def stop(self) -> None:
        self._stopped.set()

    def set_filter(self, where: str | None, params: Sequence[Any], generation: int) -> None:
        self.requests.append((where, tuple(params), generation))
        if self._post is not None:
            self._post(HistoryLoaded([slim(r) for r in self.rows], generation))

    def request_event(self, event_id: int) -> None:
        if self._post is not None:
            found = next((r for r in self.rows if r.id == event_id), None)
            self._post(EventLoaded(event_id, found))
