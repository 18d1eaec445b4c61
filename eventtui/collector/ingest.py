"""The one path every received frame takes after its transport: decode, check, store, wait.

The websocket and HTTP listeners both hand raw bodies here. `Ingest` decodes them (model), runs
the tracking-plan check when one is configured, submits rows to the store's writer (a process of its own), and resolves
each submission when the transaction holding it has committed, in the event loop that submitted it.

May import: model, protocols, store (writer API).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from eventtui.model import DecodedFrame, EventCheck, StoredEvent, decode_frame, decode_json_lines
from eventtui.protocols import Options, Request
from eventtui.protocols import Protocol as VendorProtocol
from eventtui.store import Commit, EventWriter, Reject, Submission

log = logging.getLogger(__name__)

__all__ = ["EventCheck", "Ingest"]


# Called in the event loop once the frame it was submitted with is committed: (arg, commit).
OnCommit = Callable[[Any, Commit], None]


class Tap(Protocol):
    """Sees each writer submission: `summarize` when it is handed over (once per event-loop turn,
    with the turn's events and rejects), `committed` with that summary once its transaction is
    done (or failed: `commit.error`), in the event loop. The metrics count here, per batch, so the
    per-frame path pays nothing for them; a summary, not the rows, is what waits for the commit."""

    def summarize(self, events: list[StoredEvent], rejects: list[Reject], at: float) -> Any: ...

    def committed(self, summary: Any, commit: Commit) -> None: ...


# Bytes submitted to the writer and not yet committed, above which listeners stop reading their
# clients, and below which they read again. The writer is the slowest stage for batched frames
# (about 7 us per row against 3-4 us to decode it); without a bound, a fast client would queue
# rows in front of it until memory ran out. 16 MB is about half a second of the writer's work.
MAX_WRITER_BACKLOG: Final = 16 * 1024 * 1024
RESUME_WRITER_BACKLOG: Final = MAX_WRITER_BACKLOG // 2


@dataclass
class Ingest:
    """Decodes frames and batches them across connections into writer submissions.

    Frames submitted during one turn of the event loop go to the writer as one submission: one
    queue hand-off and one ticket list per turn, however many connections sent frames in it.
    """

    writer: EventWriter
    loop: asyncio.AbstractEventLoop
    max_event_bytes: int
    check: EventCheck | None = None
    _events: list[StoredEvent] = field(default_factory=list)
    _rejects: list[Reject] = field(default_factory=list)
    _tickets: list[tuple[OnCommit, Any]] = field(default_factory=list)
    # True while the writer's backlog is over MAX_WRITER_BACKLOG: listeners stop reading.
    congested: bool = False
    # Called in the event loop with the new value of `congested`.
    congestion_listeners: list[Callable[[bool], None]] = field(default_factory=list)
    # Observers of every submission and its commit (the collector's metrics).
    taps: list[Tap] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.writer.add_listener(self._on_commit)
        # A check that can answer for many events at once (the personal-data detectors' `needed`
        # prefilter) runs once per hand-over, over every event of the turn, instead of once per
        # frame: at one event per frame its per-call cost was a tenth of the collector's time.
        # It only annotates events (never refuses one), so running it after decoding changes
        # nothing a client is told. Any other check (a schema) judges each event as it is decoded.
        batched = self.check is not None and hasattr(self.check, "needed")
        self._decode_check = None if batched else self.check
        self._batch_check = self.check if batched else None

    def decode(
        self,
        data: bytes,
        *,
        binary: bool,
        client: str,
        lines: bool = False,
        source: str = "eventtui",
    ) -> DecodedFrame:
        """Accepted events (checked against the plan) and refusals; never raises for bad input."""
        if lines:
            return decode_json_lines(
                data,
                client=client,
                max_event_bytes=self.max_event_bytes,
                check=self._decode_check,
                source=source,
            )
        return decode_frame(
            data,
            binary=binary,
            client=client,
            max_event_bytes=self.max_event_bytes,
            check=self._decode_check,
            source=source,
        )

    def decode_request(
        self, protocol: VendorProtocol, request: Request, *, client: str
    ) -> DecodedFrame:
        """A vendor SDK's request (`eventtui.protocols`), decoded as `decode` decodes a frame."""
        options = Options(client, time.time(), self.max_event_bytes, self._decode_check)
        return protocol.decode(request, options)

    def submit(
        self,
        frame: DecodedFrame,
        *,
        client: str,
        on_commit: OnCommit,
        arg: Any = None,
        latest_only: bool = False,
    ) -> None:
        """Queue a decoded frame for the writer; `on_commit(arg, commit)` runs here after commit.

        `latest_only`: the callback only needs the newest `arg` of a run of submissions (a
        websocket's frame numbers: one ack covers them all), so a run collapses into one ticket.
        """
        tickets = self._tickets
        if not tickets:
            self.loop.call_soon(self._hand_over)
        self._events.extend(frame.events)
        if frame.refusals:
            at = frame_received_at(frame)
            self._rejects.extend(Reject(at, client, r.reason, r.raw) for r in frame.refusals)
        if latest_only and tickets and tickets[-1][0] == on_commit:
            tickets[-1] = (on_commit, arg)
        else:
            tickets.append((on_commit, arg))

    def _hand_over(self) -> None:
        if self._batch_check is not None and self._events:
            self._events = _checked(self._batch_check, self._events)
        if self.taps:
            at = self.loop.time()
            for tap in self.taps:
                summary = tap.summarize(self._events, self._rejects, at)
                self._tickets.append((tap.committed, summary))
        submission = Submission(self._events, self._rejects, self._tickets)
        self._events, self._rejects, self._tickets = [], [], []
        try:
            self.writer.submit(submission)
        except Exception:
            # Not reached by any input we know of; if it were, its waiters must hear of it, not
            # wait forever for a commit (a websocket handler, and `stop` behind it).
            log.exception("handing events to the store writer failed")
            error = "store write failed: internal error"
            self._dispatch(Commit([submission.ticket], 0, 0, 0, 0, error))
        if not self.congested and self.writer.pending_bytes > MAX_WRITER_BACKLOG:
            self._set_congested(True)

    def _set_congested(self, congested: bool) -> None:
        self.congested = congested
        log.debug("writer backlog %d bytes: %s", self.writer.pending_bytes, congested)
        for listener in self.congestion_listeners:
            listener(congested)

    async def store(self, frame: DecodedFrame, *, client: str) -> Commit:
        """Submit and wait for the commit (HTTP: respond 200 only after it)."""
        done: asyncio.Future[Commit] = self.loop.create_future()
        self.submit(frame, client=client, on_commit=_resolve, arg=done)
        return await done

    async def flush(self) -> None:
        """Wait until everything submitted so far is committed."""
        await self.store(DecodedFrame([], []), client="")

    def _on_commit(self, commit: Commit) -> None:
        # The writer's receiver thread: hop to the event loop once per transaction, not per frame.
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._dispatch, commit)

    def _dispatch(self, commit: Commit) -> None:
        for tickets in commit.tickets:
            for on_commit, arg in tickets or ():  # None: a submission made outside Ingest
                try:
                    on_commit(arg, commit)
                except Exception:  # one listener's bug must not leave the others waiting forever
                    log.exception("handling a commit failed")
        if self.congested and self.writer.pending_bytes < RESUME_WRITER_BACKLOG:
            self._set_congested(False)


def _checked(check: Any, events: list[StoredEvent]) -> list[StoredEvent]:
    """`events` after a batched check (see `Ingest.__post_init__`); the list itself when its
    prefilter finds nothing to look at, the usual case."""
    if not check.needed(events):
        return events
    out = []
    for event in events:
        try:
            out.append(check(event))
        except Exception:  # not reached by any input we know of: the event is kept, unflagged
            log.exception("the personal-data check of an event failed; stored without it")
            out.append(event)
    return out


def _resolve(future: asyncio.Future[Commit], commit: Commit) -> None:
    if not future.done():  # a cancelled waiter (client gone): the rows are stored anyway
        future.set_result(commit)


def frame_received_at(frame: DecodedFrame) -> float:
    return frame.events[0].received_at if frame.events else time.time()
