"""The durable sink: a JetStream consumer that writes the stream into a normal store.

`Sink` pulls batches from a durable consumer (its name survives restarts: a new run goes on where
the last one acknowledged), hands each batch to the store's `Writer` as one submission, and
acknowledges it to JetStream only after the `Commit`: a crash between the two redelivers the batch,
and the store's UNIQUE `message_id` keeps each event once (every event on the stream has one: the
collector gives one to an event sent without). Batches are processed one after another, and each
message is acknowledged on its own (`AckPolicy.EXPLICIT`): an "ack all up to here" would also
cover a batch delivered to a run that died before storing it, which would then never come again.
A durable consumer created before (with ack all) keeps its policy: JetStream cannot change it;
a new `--durable` name, or deleting the old consumer, gives the per-message policy.

It keeps going through outages: a fetch or an ack that fails (the connection is down, a node is
gone, the client's outbound buffer is full) is retried after `retry_wait`, never in a busy loop.

Each collector's events (and refused input) go to a session of their own, labelled after it
(`Sessions`; the collector is named by each message's `Eventtui-Collector` header): one writer
process per collector seen lately, each committing its part of a batch, and the batch is
acknowledged once every part is committed. A sink started again with the same durable name
continues the sessions of the collectors it meets again (`Writer.reopen`). Events that name no
collector (published before collectors said who they are) go to one session of the stream's.

May import: nats, config, store (the writer API, Reader for the sessions of an earlier run),
stream.*.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from eventtui.config import StreamConfig
from eventtui.model import StoredEvent
from eventtui.store import Commit, Reader, Reject, StoreError, Submission, Writer, WriterStats
from eventtui.stream.connection import Link, reason
from eventtui.stream.subjects import COLLECTOR, Subjects, decode_event, decode_reject

log = logging.getLogger(__name__)

DURABLE: Final = "eventtui-sink"
FETCH_BATCH: Final = 2000
FETCH_WAIT: Final = 0.5
RETRY_WAIT: Final = 0.25
# JetStream redelivers a batch not acknowledged within this (the sink died, or its ack was lost).
ACK_WAIT: Final = 30.0
# Each session is written by a writer process of its own (about 40 MB each); at most this many
# run at once: past it, the one idle longest is closed (its session reopened if it comes back).
MAX_WRITERS: Final = 16
# A collector silent this long (stopped, or restarted under a new name) has its writer closed.
IDLE_CLOSE: Final = 60.0


@dataclass
class Sessions:
    """The sink's sessions in its store: one per collector, each with its own `Writer`, started
    when the collector's first message comes and closed when it has been idle for `idle_close`;
    the sessions of an earlier run with the same `durable` name are continued.

    `writer_for` blocks (it may start a writer process): call it off the event loop.
    """

    path: Path
    stream: str
    durable: str
    max_writers: int = MAX_WRITERS
    idle_close: float = IDLE_CLOSE
    writers: dict[str | None, Writer] = field(default_factory=dict)
    # Sessions written by this run, per collector (None: events that name none).
    sessions: dict[str | None, int] = field(default_factory=dict)
    # What the writers closed so far stored (the exit line counts them too).
    closed: WriterStats = field(default_factory=WriterStats)
    on_commit: list[Callable[[Commit], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._used: dict[str | None, float] = {}
        self._earlier: dict[str | None, int] | None = None

    def label(self, collector: str | None) -> str:
        return f"collector {collector}" if collector else f"stream {self.stream}"

    def started(self, collector: str | None) -> Writer | None:
        """The writer of `collector`'s session if it runs (never blocks), marked as used."""
        writer = self.writers.get(collector)
        if writer is not None:
            self._used[collector] = time.monotonic()
        return writer

    def writer_for(self, collector: str | None) -> Writer:
        """The started writer of `collector`'s session; raises StoreError."""
        self._used[collector] = time.monotonic()
        writer = self.writers.get(collector)
        if writer is not None:
            return writer
        while len(self.writers) >= self.max_writers:
            self._close(min(self.writers, key=lambda c: self._used.get(c, 0.0)))
        reopen = self.sessions.get(collector) or self._earlier_sessions().get(collector)
        writer = Writer(
            self.path,
            source="sink",
            label=self.label(collector),
            meta={"stream": self.stream, "durable": self.durable, "collector": collector},
            reopen=reopen,
        )
        for listener in self.on_commit:
            writer.add_listener(listener)
        try:
            self.sessions[collector] = writer.start()
        except StoreError:
            if reopen is None:
                raise
            # The earlier session is gone (deleted, or a retention cut): start a new one.
            writer.reopen = None
            self.sessions[collector] = writer.start()
        self.writers[collector] = writer
        log.info("writing collector %s into session %d", collector, self.sessions[collector])
        return writer

    def close_idle(self) -> None:
        """Close the writers of collectors silent for `idle_close` (blocks: off the loop)."""
        now = time.monotonic()
        for collector in [c for c in self.writers if now - self._used[c] > self.idle_close]:
            self._close(collector)

    def close(self) -> None:
        for collector in list(self.writers):
            self._close(collector)

    @property
    def stats(self) -> WriterStats:
        total = _copy(self.closed)
        for writer in self.writers.values():
            _add(total, writer.stats)
        return total

    @property
    def failure(self) -> str | None:
        return next((w.failure for w in self.writers.values() if w.failure), None)

    def _close(self, collector: str | None) -> None:
        writer = self.writers.pop(collector)
        writer.close()
        _add(self.closed, writer.stats)

    def _earlier_sessions(self) -> dict[str | None, int]:
        """Per collector, the newest session an earlier run of this durable sink wrote."""
        if self._earlier is None:
            self._earlier = {}
            if self.path.exists():
                with Reader(self.path) as reader:
                    for session in reader.sessions():
                        meta = session.meta
                        if (
                            session.source == "sink"
                            and meta.get("stream") == self.stream
                            and meta.get("durable") == self.durable
                        ):
                            self._earlier[meta.get("collector")] = session.id
        return self._earlier


def _copy(stats: WriterStats) -> WriterStats:
    total = WriterStats()
    _add(total, stats)
    return total


def _add(total: WriterStats, stats: WriterStats) -> None:
    total.events += stats.events
    total.duplicates += stats.duplicates
    total.rejects += stats.rejects
    total.commits += stats.commits
    total.refused_events += stats.refused_events
    total.last_event_id = max(total.last_event_id, stats.last_event_id)


@dataclass
class Sink:
    settings: StreamConfig
    # One writer (one session for everything) or a session per collector.
    writer: Writer | Sessions
    durable: str = DURABLE
    batch: int = FETCH_BATCH
    retry_wait: float = RETRY_WAIT
    ack_wait: float = ACK_WAIT
    link: Link = field(init=False)
    batches: int = 0

    def __post_init__(self) -> None:
        self.link = Link(self.settings)
        self.subjects = Subjects(self.settings.name)
        self.problem: str | None = None

    async def connect(self) -> None:
        """Connect and find the stream; StreamError (one sentence) if either fails."""
        await self.link.connect(pending_size=16 * 1024 * 1024)
        await self.link.require_stream()

    async def _bind(self, stop: asyncio.Event) -> Any:
        """The durable consumer's pull subscription, created if missing; retried until it works
        (a node may be down, a leader being elected) or `stop` is set (then None)."""
        config = ConsumerConfig(
            # Each message acknowledged on its own: an "ack all" also covers messages delivered
            # to an earlier run that died before storing them (they would never come again).
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_ack_pending=self.batch * 4,
            filter_subjects=[self.subjects.all_events, self.subjects.all_rejects],
        )
        while not stop.is_set():
            try:
                return await self.link.js.pull_subscribe(
                    self.subjects.all_events,
                    durable=self.durable,
                    stream=self.settings.name,
                    config=config,
                )
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                await self._trouble(
                    f"cannot consume stream {self.settings.name}: {reason(exc)}", stop
                )
        return None

    async def run(self, stop: asyncio.Event) -> None:
        """Store batches until `stop` is set; the batch in hand is committed and acknowledged."""
        loop = asyncio.get_running_loop()

        def committed(commit: Commit) -> None:
            for future in commit.tickets:
                if isinstance(future, asyncio.Future):
                    loop.call_soon_threadsafe(_settle, future, commit)

        if isinstance(self.writer, Writer):
            self.writer.add_listener(committed)
        else:
            self.writer.on_commit.append(committed)
        subscription = await self._bind(stop)
        idle_checked = time.monotonic()
        while not stop.is_set():
            try:
                messages = await subscription.fetch(self.batch, timeout=FETCH_WAIT)
            except (TimeoutError, nats.errors.TimeoutError):
                self._ok()
                continue
            except (nats.errors.Error, OSError) as exc:
                await self._trouble(f"cannot read the stream: {reason(exc)}", stop)
                continue
            if not messages:  # an expired pull request can answer with none
                continue
            # Per collector (one session each), its events and refused input, in stream order.
            parts: dict[str | None, tuple[list[StoredEvent], list[Reject]]] = {}
            for message in messages:
                kind = self.subjects.kind(message.subject)
                headers = message.headers
                collector = headers.get(COLLECTOR) if headers else None
                events, rejects = parts.setdefault(collector, ([], []))
                try:
                    if kind == "events":
                        events.append(decode_event(message.data))
                    elif kind == "rejects":
                        rejects.append(decode_reject(message.data))
                except ValueError as exc:  # not ours: say so, and acknowledge it with the rest
                    log.warning("skipped a message on %s: %s", message.subject, exc)
            # The same batch until it is stored (an older durable consumer's ack covers every
            # message before it: the next batch's must not be sent first). Parts committed
            # before a failure come again as duplicates, kept once by the UNIQUE message_id.
            error = await self._store(parts, loop)
            while error and not stop.is_set():
                await self._trouble(f"cannot store: {error}", stop)
                error = await self._store(parts, loop)
            if error:
                return  # stopping: not acknowledged, so delivered again to the next run
            await self._ack(messages, stop)
            self.batches += 1
            if isinstance(self.writer, Sessions) and time.monotonic() - idle_checked > 5:
                idle_checked = time.monotonic()
                await asyncio.to_thread(self.writer.close_idle)

    async def _store(
        self,
        parts: dict[str | None, tuple[list[StoredEvent], list[Reject]]],
        loop: asyncio.AbstractEventLoop,
    ) -> str | None:
        """Submit each collector's part to its session's writer; None once all are committed,
        else why not."""
        waiting: list[asyncio.Future[Commit]] = []
        for collector, (events, rejects) in parts.items():
            if not events and not rejects:
                continue
            if isinstance(self.writer, Writer):
                writer = self.writer
            else:
                started = self.writer.started(collector)
                if started is not None:
                    writer = started
                else:
                    try:
                        writer = await asyncio.to_thread(self.writer.writer_for, collector)
                    except StoreError as exc:
                        return str(exc)
            done: asyncio.Future[Commit] = loop.create_future()
            writer.submit(Submission(events, rejects, done))
            waiting.append(done)
        commits = [await done for done in waiting]
        return next((c.error for c in commits if c.error), None)

    async def _ack(self, messages: list[Msg], stop: asyncio.Event) -> None:
        """Acknowledge a stored batch, each message (sent without waiting), the last one waited
        for (the server takes a connection's acks in order); a lost ack only means a redelivery,
        stored once."""
        try:
            for message in messages[:-1]:
                await message.ack()
            await messages[-1].ack_sync(timeout=max(1.0, self.retry_wait * 4))
            self._ok()
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await self._trouble(f"could not acknowledge a stored batch: {reason(exc)}", stop)

    def _ok(self) -> None:
        if self.problem:
            log.warning("the stream answers again")
        self.problem = None

    async def _trouble(self, why: str, stop: asyncio.Event) -> None:
        if why != self.problem:
            log.warning("%s; retrying", why)
        self.problem = why
        # Wait before trying again: no busy loop while the stream is away.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.retry_wait)

    async def close(self) -> None:
        """Disconnect; the writers are closed by whoever made them (`Sessions.close`)."""
        await self.link.close()


def _settle(future: asyncio.Future[Commit], commit: Commit) -> None:
    if not future.done():
        future.set_result(commit)
