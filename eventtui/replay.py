"""Replay: a stored session played again on a virtual clock, to watch it or to re-send it.

Owns pacing. The parts, each usable (and tested) on its own:

- `Timeline`: the recorded span of a replay, with silences longer than `max_gap` shortened. It maps
  recorded (virtual) time to *play position* (seconds of playback at 1x) and back.
- `ReplayClock`: play position as a function of real time: speed (0.1x-100x, or `MAX_SPEED`),
  pause, seek. Real time comes from an injected `monotonic`, so tests drive it with a fake clock.
- `Player`: given the clock, which events are due now (their indices in the schedule), and how
  long until the next one.
- `Schedule` / `load_schedule` / `fetch_rows`: a session's events in replay order, read from the
  store (ids and times only; rows are read a page at a time as they come due, or without their
  payload for events a viewer counts but will not draw).
- `scan_anomalies`: a monitor run over a whole session, headless, to know where the anomalies are
  (the TUI's "next anomaly" key).
- `resend`: a session re-sent to a collector at the recorded pace (`eventtui replay --to-url`).

Time, decided:
- Virtual time is recorded time (epoch seconds of `received_at`), always: what the viewer shows is
  when things really happened. Events play in `(received_at, id)` order.
- A silence longer than `max_gap` plays as `max_gap`: its first half plays, the clock jumps over
  the rest but the last half, which plays too. So the moment an event went quiet is seen, and so
  is the state just before events resumed; displayed times stay true across the jump.
- Seeking by N seconds moves the *play position* by N: across a shortened silence it skips the
  part that is never played, so a seek always moves. `seek_to` takes a virtual time.

Pure apart from the store reads and `resend` (the network, through `eventtui.sender`): no Textual,
no threads. May import: model, store, sender.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import secrets
import time
from array import array
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import msgspec

from eventtui.store import EventRow, Reader, SessionRow

MAX_SPEED: Final = math.inf
MIN_SPEED: Final = 0.1
MAX_FINITE_SPEED: Final = 100.0
# The steps of the TUI's +/- keys.
SPEED_STEPS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, MAX_SPEED)
# Rows read from the store at a time (one SQLite statement); also the largest batch `due` gives
# at max speed.
PAGE_ROWS: Final = 2000
# Rows a re-send reads ahead at a time, between two events (about a millisecond of SQLite).
READ_AHEAD: Final = 400

Monotonic = Callable[[], float]


class ReplayError(ValueError):
    """A replay that cannot be done as asked (bad speed, no such session); one sentence."""


def parse_speed(text: str | float) -> float:
    """`"10"`, `"10x"`, `"0.5"` or `"max"` as a speed; raises ReplayError outside 0.1-100."""
    if isinstance(text, str):
        word = text.strip().lower()
        if word == "max":
            return MAX_SPEED
        word = word.removesuffix("x").removesuffix("\u00d7")
        try:
            value = float(word)
        except ValueError:
            raise ReplayError(f'speed "{text}" is not a number like 0.5, 10 or "max"') from None
    else:
        value = float(text)
    if value == MAX_SPEED:
        return value
    if not MIN_SPEED <= value <= MAX_FINITE_SPEED:
        raise ReplayError(
            f"speed {value:g} is out of range: {MIN_SPEED:g} to {MAX_FINITE_SPEED:g}, or max"
        )
    return value


def format_speed(speed: float) -> str:
    return "max" if speed == MAX_SPEED else f"{speed:g}x"


def next_speed(speed: float, step: int) -> float:
    """The next speed step up (`step` 1) or down (-1) from `speed`."""
    if step > 0:
        return next((s for s in SPEED_STEPS if s > speed), SPEED_STEPS[-1])
    return next((s for s in reversed(SPEED_STEPS) if s < speed), SPEED_STEPS[0])


# --- time ----------------------------------------------------------------------------------------


class Timeline:
    """Recorded time and play position (see the module docstring), for one sorted list of times.

    The span is `[start, end]`: by default the first and last event, or wider when given (a session
    that began before its first event and ended after its last). Silences inside it, including
    those before the first event and after the last, are shortened to `max_gap` seconds.
    """

    def __init__(
        self,
        times: Sequence[float],
        *,
        start: float | None = None,
        end: float | None = None,
        max_gap: float | None = None,
    ) -> None:
        if max_gap is not None and not max_gap > 0:
            raise ReplayError("max gap must be more than 0 seconds")
        first = times[0] if len(times) else (start if start is not None else 0.0)
        last = times[-1] if len(times) else first
        self.start = first if start is None else min(start, first)
        self.end = max(last, self.start) if end is None else max(end, last, self.start)
        self.max_gap = max_gap
        # Played stretches: recorded [seg_start[k], seg_end[k]] plays from position seg_pos[k].
        # Between two stretches lies a skipped part of a shortened silence.
        self._seg_start: list[float] = [self.start]
        self._seg_end: list[float] = []
        self._seg_pos: list[float] = [0.0]
        if max_gap is not None:
            half = max_gap / 2
            previous = self.start
            for t in self._gap_edges(times):
                if t - previous > max_gap:
                    self._cut(previous + half, t - half)
                previous = t
        self._seg_end.append(self.end)
        self.length = self._seg_pos[-1] + (self.end - self._seg_start[-1])
        self.skipped = (self.end - self.start) - self.length

    def _gap_edges(self, times: Sequence[float]) -> Iterator[float]:
        yield from times
        yield self.end

    def _cut(self, played_until: float, resumes_at: float) -> None:
        k = len(self._seg_pos) - 1
        self._seg_end.append(played_until)
        self._seg_pos.append(self._seg_pos[k] + (played_until - self._seg_start[k]))
        self._seg_start.append(resumes_at)

    @property
    def cuts(self) -> list[tuple[float, float]]:
        """The skipped parts, as (recorded time the clock jumps from, recorded time it jumps to)."""
        return list(zip(self._seg_end[:-1], self._seg_start[1:], strict=True))

    def position(self, t: float) -> float:
        """The play position of recorded time `t` (inside a skipped part: where the jump is)."""
        if t <= self.start:
            return 0.0
        if t >= self.end:
            return self.length
        k = bisect.bisect_right(self._seg_start, t) - 1
        return self._seg_pos[k] + min(t, self._seg_end[k]) - self._seg_start[k]

    def time_at(self, position: float) -> float:
        """The recorded time at play `position` (at a jump: the time it jumps to)."""
        if position <= 0:
            return self.start
        if position >= self.length:
            return self.end
        k = bisect.bisect_right(self._seg_pos, position) - 1
        return min(self._seg_start[k] + (position - self._seg_pos[k]), self._seg_end[k])


class ReplayClock:
    """Play position over real time: speed, pause, seek (see the module docstring).

    At `MAX_SPEED` the position does not move with real time: the `Player` moves it to each event
    as it hands it out, so "now" is the last event delivered.
    """

    def __init__(
        self,
        timeline: Timeline,
        *,
        speed: float = 1.0,
        monotonic: Monotonic = time.monotonic,
        paused: bool = False,
    ) -> None:
        self.timeline = timeline
        self.monotonic = monotonic
        self.speed = speed
        self.paused = paused
        self._anchor_real = monotonic()
        self._anchor_position = 0.0

    @property
    def position(self) -> float:
        if self.paused or self.speed == MAX_SPEED:
            return self._anchor_position
        elapsed = self.monotonic() - self._anchor_real
        return min(self.timeline.length, self._anchor_position + elapsed * self.speed)

    def now(self) -> float:
        """The virtual time: recorded epoch seconds."""
        return self.timeline.time_at(self.position)

    @property
    def finished(self) -> bool:
        return self.position >= self.timeline.length

    @property
    def fraction(self) -> float:
        length = self.timeline.length
        return 1.0 if length <= 0 else self.position / length

    def set_speed(self, speed: float) -> None:
        self._reanchor(self.position)
        self.speed = speed

    def pause(self) -> None:
        self._reanchor(self.position)
        self.paused = True

    def resume(self) -> None:
        self._reanchor(self.position)
        self.paused = False

    def toggle_pause(self) -> None:
        if self.paused:
            self.resume()
        else:
            self.pause()

    def seek_position(self, position: float) -> None:
        self._reanchor(min(max(position, 0.0), self.timeline.length))

    def seek_by(self, seconds: float) -> None:
        """Move the play position by `seconds` (negative: back)."""
        self.seek_position(self.position + seconds)

    def seek_to(self, t: float) -> None:
        """Move to virtual time `t` (clamped to the timeline)."""
        self.seek_position(self.timeline.position(t))

    def real_seconds_until(self, t: float) -> float | None:
        """Real seconds until virtual time `t` comes; None while paused (it never will)."""
        ahead = self.timeline.position(t) - self.position
        if ahead <= 0:
            return 0.0
        if self.paused:
            return None
        return 0.0 if self.speed == MAX_SPEED else ahead / self.speed

    def _reanchor(self, position: float) -> None:
        self._anchor_real = self.monotonic()
        self._anchor_position = position


class Player:
    """Which events of a schedule are due on a clock; remembers how far it has handed them out.

    `times` is sorted. `due()` returns the indices of the events due now and moves past them;
    a seek back (`seek_to`, `seek_by`) makes the next `due()` start again from the first event,
    and returns True: the consumer must forget what it was shown (counters, monitor) and rebuild
    it from the events that `due()` then hands out again up to the new position.
    """

    def __init__(self, times: Sequence[float], clock: ReplayClock) -> None:
        self.times = times
        self.clock = clock
        self.cursor = 0  # events [0, cursor) have been handed out

    @property
    def total(self) -> int:
        return len(self.times)

    @property
    def done(self) -> bool:
        return self.cursor >= len(self.times) and self.clock.finished

    def due(self, limit: int | None = None) -> range:
        """Indices of the events due now (at most `limit`), oldest first; marks them handed out."""
        start = self.cursor
        clock = self.clock
        if clock.speed == MAX_SPEED and not clock.paused:
            stop = len(self.times) if limit is None else min(len(self.times), start + limit)
            if stop > start:
                clock.seek_position(
                    max(clock.position, clock.timeline.position(self.times[stop - 1]))
                )
            elif start >= len(self.times):
                clock.seek_position(clock.timeline.length)  # play out the silence after the last
        else:
            stop = bisect.bisect_right(self.times, clock.now(), lo=start)
            if limit is not None:
                stop = min(stop, start + limit)
        self.cursor = stop
        return range(start, stop)

    def wait(self) -> float | None:
        """Real seconds until `due()` has more to give (0: now); None when only a command can help
        (paused, or played to the end)."""
        if self.cursor < len(self.times):
            return self.clock.real_seconds_until(self.times[self.cursor])
        if self.clock.finished:
            return None
        return self.clock.real_seconds_until(self.clock.timeline.end)

    def caught_up_to(self) -> float:
        """The virtual time up to which every event has been handed out."""
        now = self.clock.now()
        if self.cursor < len(self.times) and self.times[self.cursor] <= now:
            # Behind (a busy consumer, or max speed): only as far as the last event handed out.
            return self.times[self.cursor - 1] if self.cursor else self.clock.timeline.start
        return now

    def seek_to(self, t: float) -> bool:
        """Go to virtual time `t`; True if that is a step back (see the class docstring)."""
        before = self.clock.now()
        self.clock.seek_to(t)
        return self._after_seek(before)

    def seek_by(self, seconds: float) -> bool:
        """Move the play position by `seconds`; True if that is a step back."""
        before = self.clock.now()
        self.clock.seek_by(seconds)
        return self._after_seek(before)

    def _after_seek(self, before: float) -> bool:
        # Back in time, even where no event lies: a monitor never goes back, so it starts over.
        now = self.clock.now()
        if now < before or self.cursor > bisect.bisect_right(self.times, now):
            self.cursor = 0
            return True
        return False


def next_after(times: Sequence[float], now: float, *, lead: float = 0.0) -> float | None:
    """The first of sorted `times` after `now + lead`, or None: the target of "next anomaly"."""
    i = bisect.bisect_right(times, now + lead)
    return times[i] if i < len(times) else None


# --- the store side ------------------------------------------------------------------------------


@dataclass(slots=True)
class Schedule:
    """A session's events in replay order: ids and recorded times (16 bytes an event)."""

    session: SessionRow
    ids: array[int] = field(default_factory=lambda: array("q"))
    times: array[float] = field(default_factory=lambda: array("d"))
    # True when ids ascend with times and no other row lies between them: pages are id ranges.
    contiguous: bool = True

    def __len__(self) -> int:
        return len(self.ids)

    def timeline(self, *, max_gap: float | None, whole_session: bool) -> Timeline:
        """The replay's span: the events, or (`whole_session`, the TUI) the session around them.

        An import's start and end are when the file was loaded, not when its events happened, so
        its span is always its events'.
        """
        start = end = None
        if whole_session and self.session.source != "import":
            start = self.session.started_at
            end = self.session.ended_at
        return Timeline(self.times, start=start, end=end, max_gap=max_gap)


def load_schedule(
    reader: Reader, session: SessionRow, where: str = "1", params: Sequence[Any] = ()
) -> Schedule:
    """The ids and times of the session's events matching `where`, in replay order."""
    ids, times, contiguous = reader.replay_order(session.id, where, params)
    return Schedule(session, ids, times, contiguous)


def fetch_rows(
    reader: Reader, schedule: Schedule, indices: range, *, light: bool = False
) -> list[EventRow]:
    """The rows of schedule positions `indices` (a step-1 range), in schedule order.

    `light`: without their payload, for events a viewer counts but will never draw: at max speed,
    or catching up after a seek, only the newest few thousand can stay in a stream; reading whole
    rows for the rest is 3-4x the cost of counting them (benchmarks/replay.py).
    """
    rows = reader.events_in(
        schedule.ids[indices.start : indices.stop], contiguous=schedule.contiguous, light=light
    )
    if len(rows) != len(indices):
        raise ReplayError(
            f"events of session {schedule.session.id} were deleted while it was being replayed"
        )
    return rows


# --- anomalies ahead -----------------------------------------------------------------------------


class _Monitor(Protocol):
    def observe_many(self, events: Iterable[Any]) -> None: ...
    def evaluate(self, now: float) -> list[Any]: ...
    def episodes(self) -> list[Any]: ...


def iter_light_rows(reader: Reader, schedule: Schedule) -> Iterator[EventRow]:
    """What a monitor reads of each event (no payload), in replay order, a page at a time."""
    total = len(schedule)
    step = PAGE_ROWS * 5
    for start in range(0, total, step):
        yield from fetch_rows(reader, schedule, range(start, min(total, start + step)), light=True)


def scan_anomalies(
    monitor: _Monitor, events: Iterable[Any], *, end: float, step: float = 1.0
) -> list[Any]:
    """Run `monitor` over `events` (oldest first) as a replay would, to `end`; its episodes.

    It is evaluated before each event that comes `step` or more after the last evaluation (so at
    most once a `step` of virtual time, and after every silence), and at `end`. Episode start times
    come from event times and deadlines, not from when they were noticed, so these are the
    episodes a replay shows.
    """
    pending: list[Any] = []
    evaluated = -math.inf
    for event in events:
        at = event.received_at
        if at - evaluated >= step:
            if pending:
                monitor.observe_many(pending)
                pending = []
            monitor.evaluate(at)
            evaluated = at
        pending.append(event)
    monitor.observe_many(pending)
    monitor.evaluate(end)
    return monitor.episodes()


# --- re-send -------------------------------------------------------------------------------------


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
