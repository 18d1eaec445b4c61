"""The viewers' backend on a stream: the part of the stream they ask for, mirrored into a store.

Viewers (`open`, `query`, `check`, `replay` with `--stream`) read a store through `Reader`, whose
queries are SQL. Rather than a second implementation of every query over JetStream, `Mirror`
copies the selected part of the stream (from `since`, up to `until`, only the subjects of the
names a filter pins) into a store file of its own, through the same `Writer` as a collector's,
and the viewer opens that file with the `Reader` it always uses: the same screens and outputs as
on any store. One-shot commands wait until it has caught up (`wait`); `open` and `watch` follow
it while the mirror goes on copying, as they follow a store another process collects into.

For the TUI (`sample`), the mirror copies a sample of the events when there are more than a screen
can show (`stream/sampling.py`), and hands the collectors' rollups, as they arrive, to the feed
that counts them (`take_counts`): the counters count every event on the stream, not the copies.

The consumer is ephemeral and unacknowledged (nothing is consumed for anyone else); a fetch that
fails is retried after `retry_wait` (no busy loop while the stream is away).

May import: nats, config, filters, store (the writer API), loop_thread, stream.*.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from eventtui.config import StreamConfig
from eventtui.filters import Group, Node, Not, Term, parse_filter
from eventtui.loop_thread import LoopThread
from eventtui.model import StoredEvent
from eventtui.store import NameCounts, Reject, Submission, Writer
from eventtui.stream.connection import Link, reason
from eventtui.stream.rollups import RollupSum, as_counts
from eventtui.stream.sampling import Sampler
from eventtui.stream.subjects import Rollup, Subjects, decode_event, decode_reject, decode_rollup

log = logging.getLogger(__name__)

FETCH_BATCH: Final = 5000
FETCH_WAIT: Final = 0.3
RETRY_WAIT: Final = 0.25


def pinned_names(filter_text: str) -> set[str] | None:
    """The event names a filter allows, when it pins them (`name:x`, `name:a OR name:b`, ANDed
    with anything), so that only their subjects are read; None when any name may match."""
    node = parse_filter(filter_text)
    return _pinned(node) if node is not None else None


def _pinned(node: Node) -> set[str] | None:
    if isinstance(node, Term):
        return {node.value} if node.kind == "name" else None
    if isinstance(node, Not):
        return None
    assert isinstance(node, Group)
    parts = [_pinned(part) for part in node.parts]
    if node.op == "OR":
        if any(p is None for p in parts):
            return None
        return set().union(*(p for p in parts if p is not None))
    pinned = [p for p in parts if p is not None]
    if not pinned:
        return None
    return set.intersection(*pinned)


@dataclass
class Mirror:
    settings: StreamConfig
    path: Path
    since: float | None = None
    until: float | None = None
    names: set[str] | None = None
    follow: bool = False
    # Create the stream if it is missing (`watch`, whose own collector is about to publish to it).
    create: bool = False
    # The TUI's mirror: copy a sample of the events when the stream carries more than a screen
    # shows (the count per second it copies at most; None: every event, as one-shot commands need).
    sample: int | None = None
    retry_wait: float = RETRY_WAIT
    copied: int = 0
    problem: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.subjects = Subjects(self.settings.name)
        self.link = Link(self.settings)
        self.writer = Writer(self.path, source="stream", label=f"stream {self.settings.name}")
        self._thread = LoopThread("eventtui-stream-mirror")
        self._caught_up = threading.Event()
        # The collectors' per-name rollups in range, summed (read in the mirror's thread; a
        # one-shot command reads them after `wait`).
        self.rollups = RollupSum()
        # With `follow`, the rollups not yet taken by the viewer's feed (`take_counts`).
        self._fresh: list[Rollup] = []
        self._lock = threading.Lock()
        self.sampler = Sampler(self.sample) if self.sample else None
        self._next_seq = 0  # the stream sequence after the last message copied
        self._finished = threading.Event()

    def start(self) -> None:
        """Connect, find the stream, open the store; raises StreamError or StoreError."""
        started: Future[None] = Future()
        self._thread.start(lambda stop: self._main(stop, started))
        started.result()

    def wait(self, timeout: float | None = None) -> bool:
        """Until everything in range is copied and committed (one-shot commands)."""
        return self._caught_up.wait(timeout)

    @property
    def name(self) -> str:
        """The stream's name, as a viewer's status line says it."""
        return self.settings.name

    def take_counts(self) -> list[NameCounts]:
        """The rollups that arrived since the last call, as per-name counts to add (any thread)."""
        with self._lock:
            fresh, self._fresh = self._fresh, []
        return as_counts(fresh)

    def sampling(self) -> tuple[int, int] | None:
        """(events copied, events on the stream) in the last second that was sampled, if one
        was lately; None while every event is copied (any thread: reads two numbers)."""
        return self.sampler.state(time.time()) if self.sampler is not None else None

    def close(self, timeout: float = 10.0) -> None:
        self._thread.stop(timeout)
        self.writer.close(timeout)

    def _filter_subjects(self) -> list[str]:
        rollups = [self.subjects.all_rollups]  # small: always read
        if self.names is None:
            return [self.subjects.all_events, self.subjects.all_rejects, *rollups]
        return [*(self.subjects.event(name) for name in sorted(self.names)), *rollups]

    async def _main(self, stop: asyncio.Event, started: Future[None]) -> None:
        try:
            await self.link.connect()
            if self.create:
                await self.link.ensure_stream(self.subjects.all)
            else:
                await self.link.require_stream()
            await asyncio.to_thread(self.writer.start)
        except BaseException as exc:
            await self.link.close()
            started.set_exception(exc)
            return
        started.set_result(None)
        try:
            await self._copy(stop)
        finally:
            await self.link.close()

    async def _consumer(self, stop: asyncio.Event) -> Any:
        """An ephemeral consumer from `since`, or, made again after an outage (an ephemeral
        consumer does not outlive its server), from the message after the last one copied."""
        since = self.since
        if self._next_seq:
            policy = DeliverPolicy.BY_START_SEQUENCE
        elif since is None:
            policy = DeliverPolicy.ALL
        else:
            policy = DeliverPolicy.BY_START_TIME
        config = ConsumerConfig(
            ack_policy=AckPolicy.NONE,
            deliver_policy=policy,
            opt_start_seq=self._next_seq or None,
            opt_start_time=None
            if since is None or self._next_seq
            else datetime.datetime.fromtimestamp(since, datetime.UTC),
            filter_subjects=self._filter_subjects(),
            inactive_threshold=60.0,
            mem_storage=True,
            num_replicas=1,
        )
        while not stop.is_set():
            try:
                return await self.link.js.pull_subscribe(
                    self.subjects.all_events, stream=self.settings.name, config=config
                )
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                await self._trouble(f"cannot read stream {self.settings.name}: {reason(exc)}", stop)
        return None

    async def _copy(self, stop: asyncio.Event) -> None:
        subscription = await self._consumer(stop)
        committed = 0
        while subscription is not None and not stop.is_set():
            try:
                messages = await subscription.fetch(FETCH_BATCH, timeout=FETCH_WAIT)
            except (TimeoutError, nats.errors.TimeoutError):
                messages = []
            except (nats.errors.Error, OSError) as exc:
                await self._trouble(f"cannot read the stream: {reason(exc)}", stop)
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
                subscription = await self._consumer(stop)
                continue
            self.problem = None
            if messages:
                self._next_seq = messages[-1].metadata.sequence.stream + 1
            events: list[StoredEvent] = []
            rejects: list[Reject] = []
            keep = self.sampler.keep if self.sampler is not None else None
            now = time.time()
            for message in messages:
                kind = self.subjects.kind(message.subject)
                with contextlib.suppress(ValueError):
                    if kind == "events":
                        event = decode_event(message.data)
                        if (self.until is None or event.received_at <= self.until) and (
                            keep is None or keep(event.received_at, now)
                        ):
                            events.append(event)
                    elif kind == "rejects":
                        rejects.append(decode_reject(message.data))
                    elif kind == "rollups":
                        self._add_rollup(decode_rollup(message.data))
            if events or rejects:
                self.writer.submit(Submission(events, rejects))
                self.copied += len(events)
            done = not messages or messages[-1].metadata.num_pending == 0
            if messages and self.until is not None:
                stamp = messages[-1].metadata.timestamp
                done = done or (stamp is not None and stamp.timestamp() > self.until)
            if done and not self._caught_up.is_set():
                # Committed before anyone reads it: wait for the writer's last commit.
                await self._committed(committed + len(events))
                self._caught_up.set()
                if not self.follow:
                    return
            committed += len(events)

    def _add_rollup(self, rollup: Rollup) -> None:
        with self._lock:
            self.rollups.add(rollup)
            if self.follow:  # a one-shot command reads only the sums
                self._fresh.append(rollup)

    async def _committed(self, count: int) -> None:
        stats = self.writer.stats
        while stats.events + stats.duplicates < count and self.writer.problem is None:
            await asyncio.sleep(0.01)

    async def _trouble(self, why: str, stop: asyncio.Event) -> None:
        if why != self.problem:
            log.warning("%s; retrying", why)
        self.problem = why
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), self.retry_wait)
