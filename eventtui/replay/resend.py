"""Re-send: a stored session sent again to a collector at its recorded pace (`replay --to-url`).

Each event goes as its own frame, its original payload, when its time comes on a `ReplayClock`;
the network is `eventtui.sender`'s.

May import: store, sender, replay.clock, replay.schedule.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from eventtui.replay.clock import Monotonic, Player, ReplayClock
from eventtui.replay.schedule import PAGE_ROWS, Schedule, fetch_rows
from eventtui.store import EventRow, Reader

# Rows a re-send reads ahead at a time, between two events (about a millisecond of SQLite).
READ_AHEAD: Final = 400


@dataclass(slots=True)
class ResendStats:
    events: int = 0  # frames handed to the sender
    # (schedule index, real monotonic time it was handed over): for measuring the pacing.
    sent_at: list[tuple[int, float]] = field(default_factory=list)


def rewrite_ids(run: str | None = None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A payload transform giving every messageId a per-run suffix (`--new-ids`).

    The store keeps one event per messageId: re-sent into the store it came from, a session with
    ids would be acknowledged and stored not at all. With new ids it is stored once more; sent twice
    in one run (a retry), still once.
    """
    suffix = f"~replay-{run or secrets.token_hex(4)}"

    def transform(payload: dict[str, Any]) -> dict[str, Any]:
        if "messageId" in payload:
            payload["messageId"] = f"{payload['messageId']}{suffix}"
        return payload

    return transform


class _Ahead:
    """Rows read ahead of the schedule position, a few hundred at a time."""

    def __init__(self, read: Callable[[range], list[EventRow]], total: int) -> None:
        self.read = read
        self.total = total
        self.rows: list[EventRow] = []
        self.start = 0  # schedule index of rows[0]

    @property
    def end(self) -> int:
        return self.start + len(self.rows)

    def extend(self, count: int) -> None:
        stop = min(self.total, self.end + count)
        if stop > self.end:
            self.rows.extend(self.read(range(self.end, stop)))

    def take(self, due: range) -> list[EventRow]:
        if due.stop > self.end:
            self.extend(due.stop - self.end)
        taken = self.rows[due.start - self.start : due.stop - self.start]
        del self.rows[: due.stop - self.start]
        self.start = due.stop
        return taken


async def paced_frames(
    player: Player,
    read: Callable[[range], list[EventRow]],
    *,
    stats: ResendStats | None = None,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    sleep: Callable[[float], Any] = asyncio.sleep,
    record_times: bool = False,
) -> AsyncIterator[bytes]:
    """Each event as a frame (its original payload as JSON) when its time comes on the clock.

    `read` gives the rows of schedule positions. Rows are read ahead while the next event is not
    due yet (a read of `READ_AHEAD` rows takes about a millisecond), so a read rarely delays one.
    """
    encode = msgspec.json.Encoder().encode
    stats = stats if stats is not None else ResendStats()
    ahead = _Ahead(read, player.total)
    monotonic = player.clock.monotonic
    while player.cursor < player.total:
        wait = player.wait()
        if wait is None:  # paused: only a command resumes it (not reachable headless)
            await sleep(0.05)
            continue
        if wait > 0.002 and ahead.end < player.total and ahead.end - player.cursor < READ_AHEAD:
            ahead.extend(READ_AHEAD)
            continue  # reading took time: ask the clock again
        if wait > 0:
            await sleep(wait)
            continue
        due = player.due(PAGE_ROWS)
        for index, row in zip(due, ahead.take(due), strict=True):
            payload = row.payload()
            if transform is not None:
                payload = transform(payload)
            if record_times:
                stats.sent_at.append((index, monotonic()))
            stats.events += 1
            yield encode(payload)


@dataclass(slots=True)
class ResendResult:
    """What a re-send did; `errors` are the collector's refusals as (event id, reason)."""

    session: int
    events: int
    acked: int
    errors: list[tuple[int, str]]
    seconds: float
    stats: ResendStats


async def resend(
    reader: Reader,
    schedule: Schedule,
    url: str,
    *,
    speed: float = 1.0,
    max_gap: float | None = None,
    new_ids: bool = False,
    progress: Callable[[int, float | None], None] | None = None,
    monotonic: Monotonic = time.monotonic,
    record_times: bool = False,
    window: int = 1000,
) -> ResendResult:
    """Send the schedule's events to `url` at the recorded pace x `speed`, waiting for the acks.

    Each event goes as its own frame, its original payload (`EventRow.payload()`) with its
    messageId (unless `new_ids`, see `rewrite_ids`), so the pacing is the recorded one, event by
    event. Raises `eventtui.sender.SendError` if the collector cannot be reached or hangs up.
    """
    from eventtui.sender import send_frames

    timeline = schedule.timeline(max_gap=max_gap, whole_session=False)
    # Paused until the connection is open: the first event goes at once, the rest at their pace.
    clock = ReplayClock(timeline, speed=speed, monotonic=monotonic, paused=True)
    player = Player(schedule.times, clock)
    stats = ResendStats()

    async def frames() -> AsyncIterator[bytes]:
        clock.resume()
        async for frame in paced_frames(
            player,
            lambda indices: fetch_rows(reader, schedule, indices),
            stats=stats,
            transform=rewrite_ids() if new_ids else None,
            record_times=record_times,
        ):
            yield frame

    def on_ack(acked: int) -> None:
        if progress is not None:
            progress(acked, clock.fraction)

    started = monotonic()
    result = await send_frames(url, frames(), window=window, on_ack=on_ack)
    errors = [
        (schedule.ids[frame - 1] if 0 < frame <= len(schedule) else 0, reason)
        for frame, _, reason in result.errors
    ]
    return ResendResult(
        schedule.session.id, stats.events, result.acked, errors, monotonic() - started, stats
    )
