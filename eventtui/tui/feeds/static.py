"""StaticFeed: a fixed list of events and a status, posted once: previews, snapshots and UI tests.

May import: store (EventRow), tui.feeds.base, tui.messages.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from textual.message import Message

from eventtui.store import EventRow
from eventtui.tui.feeds.base import Post, slim
from eventtui.tui.messages import (
    EventLoaded,
    EventsCommitted,
    FeedStatus,
    FeedStatusRead,
    HistoryLoaded,
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

    def first_screen(self, timeout: float) -> list[Message]:
        return []  # posted once it runs, as a test expects

    def request_event(self, event_id: int) -> None:
        if self._post is not None:
            found = next((r for r in self.rows if r.id == event_id), None)
            self._post(EventLoaded(event_id, found))
