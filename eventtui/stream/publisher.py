"""The collector's writer when it has a stream: publish to JetStream, acknowledge after its ack.

`StreamPublisher` stands where `store.Writer` stands (the `EventWriter` protocol): the collector's
`Ingest` submits batches to it, and it reports a `Commit` per batch, in submission order, only once
JetStream has acknowledged every message of the batch (with R3, once a quorum holds it). Only then
do clients get their `{"ack": N}` or HTTP 200.

Each event goes to `<stream>.events.<name>` with `Nats-Msg-Id` = its message id, so a client's
retry, through this collector or another, is stored once within the stream's duplicate window. An
event sent without a message id is given one here (`<collector>-<n>`), so that a sink's store,
whose `message_id` is UNIQUE, keeps it once however often the stream delivers it.

A publish that gets no ack (a node died, a leader is being elected, the connection is down) is
sent again with the same id every `attempt_timeout`, until `[stream] ack_timeout`; past it, its
batch's clients get an error, never an ack. Meanwhile `problem` says why acks are held (the TUI's
status line and /health show it), and the writer's backlog grows until the collector stops
reading its clients. It all runs on an event loop of its own thread, so the collector's loop
never waits on the network.

Every second it also publishes a `Rollup` (per-name counts of the events it acknowledged) to
`<stream>.rollups.<collector>`: viewers sum those across collectors instead of reading every event.

May import: nats, config, model, store (the writer API), stream.*.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import nats

from eventtui.config import StreamConfig
from eventtui.loop_thread import LoopThread
from eventtui.model import ABSENT_MESSAGE_ID, StoredEvent
from eventtui.store import Commit, Submission, WriterStats
from eventtui.stream.connection import Link, reason
from eventtui.stream.subjects import (
    COLLECTOR,
    MSG_ID,
    Rollup,
    Subjects,
    encode_event,
    encode_reject,
    encode_rollup,
)

log = logging.getLogger(__name__)

# A publish unacknowledged this long is sent again (same message id: stored once).
ATTEMPT_TIMEOUT: Final = 2.0
# Before sending again what failed: a leader election takes a few hundred milliseconds.
RETRY_WAIT: Final = 0.2
ROLLUP_INTERVAL: Final = 1.0
# Messages published and not yet acknowledged, across batches: past it, publishing waits.
MAX_IN_FLIGHT: Final = 20_000


def collector_name() -> str:
    """This collector's name on the stream: host, process, and a few random characters."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class StreamPublisher:
    settings: StreamConfig
    # Where a store would be: only named in messages (the collector's `--db`, unused here).
    path: Path = Path("-")
    label: str | None = None
    collector: str = field(default_factory=collector_name)
    attempt_timeout: float = ATTEMPT_TIMEOUT
    retry_wait: float = RETRY_WAIT
    rollup_interval: float = ROLLUP_INTERVAL

    def __post_init__(self) -> None:
        self.session_id = 0  # a stream has no sessions; a sink's store does
        self.stats = WriterStats()
        self.restarts = 0
        self.meta: dict[str, Any] = {}
        self.pending_bytes = 0
        self.subjects = Subjects(self.settings.name)
        self.link = Link(self.settings)
        self._listeners: list[Callable[[Commit], None]] = []
        self._lock = threading.Lock()
        self._thread = LoopThread("eventtui-stream-publish")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[tuple[Submission, int] | None] | None = None
        self._stalled: str | None = None
        self._ids = itertools.count(1)
        self._counts: dict[str, list[float]] = {}
        self._done = threading.Event()
        self._closed = False
        self._last_ack = time.monotonic()  # of any publish: acks flowing means no stall
        self.sent = 0  # messages published, re-sends included

    # --- the EventWriter protocol ----------------------------------------------------------------

    @property
    def problem(self) -> str | None:
        """Why acks are held right now: the connection is down, or the stream does not answer."""
        return self.link.down or self._stalled

    @property
    def failure(self) -> str | None:
        return None  # the publisher never gives up: it reconnects for as long as it runs

    def add_listener(self, listener: Callable[[Commit], None]) -> None:
        self._listeners.append(listener)

    def start(self) -> int:
        """Connect and make sure the stream exists; raises StreamError (one sentence) if not."""
        started: Future[None] = Future()
        self._thread.start(lambda stop: self._main(stop, started))
        started.result()
        return 0

    def submit(self, submission: Submission) -> None:
        size = sum(len(e.properties) + len(e.context) + 200 for e in submission.events)
        size += sum(len(r.raw) + 200 for r in submission.rejects)
        with self._lock:
            if self._loop is None or self._inbox is None or self._closed:
                self.stats.refused_events += len(submission.events)
                closed = True
            else:
                self.pending_bytes += size
                closed = False
        if closed:
            self._notify(Commit([submission.ticket], 0, 0, 0, 0, "the stream publisher is closed"))
            return
        assert self._loop is not None and self._inbox is not None
        self._loop.call_soon_threadsafe(self._inbox.put_nowait, (submission, size))

    def close(self, timeout: float = 30.0) -> None:
        """Publish what was submitted (or refuse it past `ack_timeout`), then disconnect."""
        with self._lock:
            if self._closed or self._loop is None or self._inbox is None:
                return
            self._closed = True
            loop, inbox = self._loop, self._inbox
        loop.call_soon_threadsafe(inbox.put_nowait, None)
        self._done.wait(timeout)
        self._thread.stop(timeout)

    # --- the loop --------------------------------------------------------------------------------

    async def _main(self, stop: asyncio.Event, started: Future[None]) -> None:
        try:
            await self.link.connect(pending_size=64 * 1024 * 1024)
            await self.link.ensure_stream(self.subjects.all)
        except BaseException as exc:
            started.set_exception(exc)
            return
        self._inbox = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        order: asyncio.Queue[tuple[asyncio.Task[tuple[Commit, list[StoredEvent]]], int] | None]
        order = asyncio.Queue()
        finisher = asyncio.create_task(self._finish(order))
        rollups = asyncio.create_task(self._rollups())
        started.set_result(None)
        while (item := await self._inbox.get()) is not None:
            submission, size = item
            order.put_nowait((asyncio.create_task(self._publish(submission)), size))
        order.put_nowait(None)
        await finisher
        rollups.cancel()
        await self._publish_rollup(final=True)
        await self.link.close()
        self._done.set()

    async def _finish(
        self,
        order: asyncio.Queue[tuple[asyncio.Task[tuple[Commit, list[StoredEvent]]], int] | None],
    ) -> None:
        """Report each batch, in submission order (an ack covers every frame before it)."""
        while (item := await order.get()) is not None:
            task, size = item
            commit, stored = await task
            with self._lock:
                self.pending_bytes -= size
            if commit.error is None:
                self.stats.events += commit.inserted
                self.stats.duplicates += commit.duplicates
                self.stats.rejects += commit.rejects
                self.stats.commits += 1
                self.stats.last_event_id = max(self.stats.last_event_id, commit.last_event_id)
                for event in stored:
                    self._count(event)
            else:
                self.stats.refused_events += len(stored)
            self._notify(commit)

    async def _publish(self, submission: Submission) -> tuple[Commit, list[StoredEvent]]:
        """Publish one batch until every message is acknowledged or `ack_timeout` passes."""
        events = [
            e
            if e.message_id
            else e._replace(
                message_id=f"{self.collector}-{next(self._ids)}",
                absent=e.absent | ABSENT_MESSAGE_ID,  # shown as the producer sent it: without
            )
            for e in submission.events
        ]
        messages = [
            (self.subjects.event(e.name), encode_event(e), str(e.message_id)) for e in events
        ]
        reject_subject = self.subjects.reject(self.collector)
        messages += [
            (reject_subject, encode_reject(r), f"{self.collector}-r{next(self._ids)}")
            for r in submission.rejects
        ]
        duplicate = [False] * len(events)
        pending = list(range(len(messages)))
        deadline = time.monotonic() + self.settings.ack_timeout
        last_seq = 0
        attempts = 0
        error = ""
        while pending:
            attempts += 1
            futures: dict[int, asyncio.Future[Any]] = {}
            try:
                for index in pending:
                    subject, data, msg_id = messages[index]
                    await self._flight.acquire()
                    try:
                        futures[index] = await self.link.js.publish_async(
                            subject, data, headers={MSG_ID: msg_id, COLLECTOR: self.collector}
                        )
                    except BaseException:
                        self._flight.release()
                        raise
                    futures[index].add_done_callback(self._answered)
                    self.sent += 1
                    if self.sent % 256 == 0:
                        # Let the acks of earlier batches in: a loop busy publishing thousands
                        # reads none, and their senders would take the silence for a stall.
                        await asyncio.sleep(0)
            except (nats.errors.Error, OSError) as exc:  # the outbound buffer is full, closed...
                error = reason(exc)
            if futures:
                await self._acks(futures, deadline)
            still = []
            for index in pending:
                future = futures.get(index)
                if future is None:
                    still.append(index)
                elif not future.done():
                    future.cancel()
                    error = error or "no publish ack"
                    still.append(index)
                elif future.exception() is not None:
                    error = reason(future.exception())  # type: ignore[arg-type]
                    still.append(index)
                else:
                    ack = future.result()
                    last_seq = max(last_seq, ack.seq)
                    # A duplicate on a second attempt is our own first attempt, stored.
                    if index < len(events) and ack.duplicate and attempts == 1:
                        duplicate[index] = True
            pending = still
            if not pending:
                break
            self._stall(f"the stream has not acknowledged {len(pending)} events: {error}")
            if time.monotonic() >= deadline:
                return (
                    Commit(
                        [submission.ticket],
                        0,
                        0,
                        0,
                        last_seq,
                        f"the stream did not acknowledge them within"
                        f" {self.settings.ack_timeout:g} s ({error})",
                        unconfirmed=True,
                    ),
                    events,
                )
            await asyncio.sleep(self.retry_wait)
        self._stall(None)
        stored = [e for e, dup in zip(events, duplicate, strict=True) if not dup]
        commit = Commit(
            [submission.ticket],
            len(stored),
            len(events) - len(stored),
            len(submission.rejects),
            last_seq,
        )
        return commit, stored

    def _answered(self, future: asyncio.Future[Any]) -> None:
        self._flight.release()
        if not future.cancelled() and future.exception() is None:
            self._last_ack = time.monotonic()

    async def _acks(self, futures: dict[int, asyncio.Future[Any]], deadline: float) -> None:
        """Wait for these publish acks until they all came, the deadline passed, or the stream
        stalled: no ack at all, for any batch, for `attempt_timeout`.

        Acks that are slow while others arrive are waited for, not sent again: under load, a
        second copy of every slow message would only add to the queue in front of them (an
        earlier version did, and under load never caught up). A stall is a lost publish (a
        leader died with it, the connection dropped): those are sent again.
        """
        waiting = set(futures.values())
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            _, waiting = await asyncio.wait(waiting, timeout=min(self.attempt_timeout, left))
            if waiting and time.monotonic() - self._last_ack >= self.attempt_timeout:
                return

    def _stall(self, why: str | None) -> None:
        if why and not self._stalled:
            log.warning("%s; holding acks", why)
        elif self._stalled and not why:
            log.warning("the stream acknowledges again")
        self._stalled = why

    # --- rollups ---------------------------------------------------------------------------------

    def _count(self, event: StoredEvent) -> None:
        counts = self._counts.get(event.name)
        if counts is None:
            self._counts[event.name] = [1, 0 if event.valid else 1, event.received_at]
        else:
            counts[0] += 1
            counts[1] += 0 if event.valid else 1
            counts[2] = max(counts[2], event.received_at)

    async def _rollups(self) -> None:
        while True:
            await asyncio.sleep(self.rollup_interval)
            await self._publish_rollup()

    async def _publish_rollup(self, final: bool = False) -> None:
        """Publish the counts since the last rollup; kept for the next one if not acknowledged."""
        if not self._counts:
            return
        counts, self._counts = self._counts, {}
        rollup = Rollup(
            self.collector,
            time.time(),
            {name: (int(c[0]), int(c[1]), c[2]) for name, c in counts.items()},
        )
        try:
            await self.link.js.publish(
                self.subjects.rollup(self.collector),
                encode_rollup(rollup),
                timeout=self.attempt_timeout,
                headers={MSG_ID: f"{self.collector}-u{next(self._ids)}"},
            )
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            if not final:
                for name, (count, invalid, last) in rollup.names.items():
                    old = self._counts.setdefault(name, [0, 0, last])
                    old[0] += count
                    old[1] += invalid
                    old[2] = max(old[2], last)
            log.debug("rollup not published: %s", reason(exc))

    def _notify(self, commit: Commit) -> None:
        for listener in self._listeners:
            try:
                listener(commit)
            except Exception:  # one listener's bug must not stop the others
                log.exception("commit listener failed")
