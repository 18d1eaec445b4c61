"""What every feed shares: the `Feed` seam the app is given, and the thread plumbing of the feeds
that read a store (`ReadingFeed`).

A feed is where the app's events come from; the app never opens the store itself. A feed runs in a
thread worker the app starts (`run`), reads committed rows and posts them to the app in batches
(`EventsCommitted`, see `tui/messages.py`). Everything the UI asks of it (`set_filter`,
`request_event`, `stop`) is thread-safe and returns at once: the feed thread does the reading.

The feeds: `StoreFeed` (feeds/store.py) tails a store; `ReplayFeed` (feeds/replay.py) plays a
stored session on a virtual clock and posts the same messages, so a replay shows what live did;
`StaticFeed` (feeds/static.py) posts a fixed list (previews, snapshots, UI tests).

A reading feed owns its Reader: sqlite3 objects are bound to the thread that made them, so the
Reader is created, used and closed inside `run`.

May import: store (Reader, EventRow), tui.messages.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from textual.message import Message

from eventtui.store import EventRow, Reader, StoreError
from eventtui.tui.messages import EventLoaded, FeedFailed

log = logging.getLogger(__name__)

Post = Callable[[Message], object]

# Rows bigger than this reach the stream without their payload; the payload pane asks for it when
# shown. Keeps the 10k-row stream buffer in megabytes even when every event is near the 512 KB limit.
SLIM_BYTES: Final = 16 * 1024


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

    def first_screen(self, timeout: float) -> list[Message]:
        """Messages read ahead for the app's first frame (waiting at most `timeout`); the app
        handles them before it paints, and the feed does not post them again."""


def slim(row: EventRow) -> EventRow:
    """The row as the stream keeps it: itself, or without its payload (`omitted`) if that is large."""
    size = len(row.properties) + len(row.context) + len(row.extra or "")
    if size <= SLIM_BYTES:
        return row
    return row._replace(
        properties=row.properties if len(row.properties) <= SLIM_BYTES else "",
        context="{}",
        extra=None,
        omitted=size,
    )


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

    def rejects(self, limit: int = 200) -> list[dict[str, Any]]:
        """The newest refused inputs of the store (`eventtui rejects`), for the TUI's rejects
        view. Any thread but the feed's own: it opens a Reader of its own, as a viewer does."""
        with Reader(self.path) as reader:
            return reader.rejects(limit=limit)

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        # A feed blocked on credit must see the stop too.
        self._credit.release()

    def set_filter(self, where: str | None, params: Sequence[Any], generation: int) -> None:
        with self._lock:
            self._filter_request = FilterRequest(where, tuple(params), generation)
        self._wake.set()

    def first_screen(self, timeout: float) -> list[Message]:
        return []  # nothing read ahead unless a feed says otherwise

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
