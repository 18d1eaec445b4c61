"""The durable sink: a JetStream consumer that writes the stream into a normal store.

`Sink` pulls batches from a durable consumer (its name survives restarts: a new run goes on where
the last one acknowledged), hands each batch to the store's `Writer` as one submission, and
acknowledges it to JetStream only after the `Commit`: a crash between the two redelivers the batch,
and the store's UNIQUE `message_id` keeps each event once (every event on the stream has one: the
collector gives one to an event sent without). Batches are processed one after another, so one
"ack all up to here" per batch acknowledges only what is committed.

It keeps going through outages: a fetch or an ack that fails (the connection is down, a node is
gone, the client's outbound buffer is full) is retried after `retry_wait`, never in a busy loop.

May import: nats, config, store (the writer API), stream.*.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Final

import nats
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from eventtui.config import StreamConfig
from eventtui.model import StoredEvent
from eventtui.store import Commit, Reject, Submission, Writer
from eventtui.stream.connection import Link, reason
from eventtui.stream.subjects import Subjects, decode_event, decode_reject

log = logging.getLogger(__name__)

DURABLE: Final = "eventtui-sink"
FETCH_BATCH: Final = 2000
FETCH_WAIT: Final = 0.5
RETRY_WAIT: Final = 0.25
# JetStream redelivers a batch not acknowledged within this (the sink died, or its ack was lost).
ACK_WAIT: Final = 30.0


@dataclass
class Sink:
    settings: StreamConfig
    writer: Writer
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
            ack_policy=AckPolicy.ALL,
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

        self.writer.add_listener(committed)
        subscription = await self._bind(stop)
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
            events: list[StoredEvent] = []
            rejects: list[Reject] = []
            for message in messages:
                kind = self.subjects.kind(message.subject)
                try:
                    if kind == "events":
                        events.append(decode_event(message.data))
                    elif kind == "rejects":
                        rejects.append(decode_reject(message.data))
                except ValueError as exc:  # not ours: say so, and acknowledge it with the rest
                    log.warning("skipped a message on %s: %s", message.subject, exc)
            done: asyncio.Future[Commit] = loop.create_future()
            self.writer.submit(Submission(events, rejects, done))
            commit = await done
            if commit.error:
                # Not acknowledged: JetStream delivers the batch again after ack_wait.
                await self._trouble(f"cannot store: {commit.error}", stop)
                continue
            await self._ack(messages[-1], stop)
            self.batches += 1

    async def _ack(self, last: Msg, stop: asyncio.Event) -> None:
        """Acknowledge everything up to `last`; a lost ack only means a redelivery, stored once."""
        try:
            await last.ack_sync(timeout=max(1.0, self.retry_wait * 4))
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
        await self.link.close()


def _settle(future: asyncio.Future[Commit], commit: Commit) -> None:
    if not future.done():
        future.set_result(commit)
