"""The one path every received frame takes after its transport: decode, check, store, wait.

The websocket and HTTP listeners both hand raw bodies here. `Ingest` decodes them (model), runs
the tracking-plan check when one is configured, submits rows to the writer thread, and resolves
each submission when the transaction holding it has committed, in the event loop that submitted it.

May import: model, store (writer API).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from eventtui.model import DecodedFrame, StoredEvent, decode_frame, decode_json_lines
from eventtui.store import Commit, Reject, Submission, Writer

log = logging.getLogger(__name__)

# Checks an accepted event against the tracking plan; returns it (maybe marked invalid).
EventCheck = Callable[[StoredEvent], StoredEvent]


@dataclass
class Ingest:
    writer: Writer
    loop: asyncio.AbstractEventLoop
    max_event_bytes: int
    check: EventCheck | None = None
    received_events: int = 0
    refused_events: int = 0
    _started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.writer.add_listener(self._on_commit)

    def decode(
        self, data: bytes, *, binary: bool, client: str, lines: bool = False
    ) -> DecodedFrame:
        if lines:
            frame = decode_json_lines(data, client=client, max_event_bytes=self.max_event_bytes)
        else:
            frame = decode_frame(
                data, binary=binary, client=client, max_event_bytes=self.max_event_bytes
            )
        if self.check is not None:
            frame.events = [self.check(event) for event in frame.events]
        self.received_events += len(frame.events)
        self.refused_events += len(frame.refusals)
        return frame

    def submit(
        self, frame: DecodedFrame, *, client: str, on_commit: Callable[[Commit], None]
    ) -> None:
        """Hand a decoded frame to the writer; `on_commit` runs in this loop after the commit."""
        rejects = [
            Reject(frame_received_at(frame), client, r.reason, r.raw) for r in frame.refusals
        ]
        self.writer.submit(Submission(frame.events, rejects, ticket=on_commit))

    async def store(self, frame: DecodedFrame, *, client: str) -> Commit:
        """Submit and wait for the commit (HTTP: respond 200 only after it)."""
        done: asyncio.Future[Commit] = self.loop.create_future()
        self.submit(frame, client=client, on_commit=done.set_result)
        return await done

    async def flush(self) -> None:
        """Wait until everything submitted so far is committed."""
        await self.store(DecodedFrame([], []), client="")

    def _on_commit(self, commit: Commit) -> None:
        # Writer thread: hop to the event loop once per transaction, not once per frame.
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._dispatch, commit)

    @staticmethod
    def _dispatch(commit: Commit) -> None:
        for ticket in commit.tickets:
            if ticket is not None:
                # InvalidStateError: the waiter was cancelled (client gone); rows are stored anyway.
                with contextlib.suppress(asyncio.InvalidStateError):
                    ticket(commit)


def frame_received_at(frame: DecodedFrame) -> float:
    return frame.events[0].received_at if frame.events else time.time()
