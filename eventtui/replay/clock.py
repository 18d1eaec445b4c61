"""Pacing on a virtual clock: speeds, the replay's timeline, the clock, and which events are due.

- `Timeline`: the recorded span of a replay, with silences longer than `max_gap` shortened. It maps
  recorded (virtual) time to *play position* (seconds of playback at 1x) and back.
- `ReplayClock`: play position as a function of real time: speed (0.1x-100x, or `MAX_SPEED`),
  pause, seek. Real time comes from an injected `monotonic`, so tests drive it with a fake clock.
- `Player`: given the clock, which events are due now (their indices in the schedule), and how
  long until the next one.

Time, decided:
- Virtual time is recorded time (epoch seconds of `received_at`), always: what the viewer shows is
  when things really happened. Events play in `(received_at, id)` order.
- A silence longer than `max_gap` plays as `max_gap`: its first half plays, the clock jumps over
  the rest but the last half, which plays too. So the moment an event went quiet is seen, and so
  is the state just before events resumed; displayed times stay true across the jump.
- Seeking by N seconds moves the *play position* by N: across a shortened silence it skips the
  part that is never played, so a seek always moves. `seek_to` takes a virtual time.

Pure: no IO, no threads, no clock of its own. May import: the standard library only.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Final

MAX_SPEED: Final = math.inf
MIN_SPEED: Final = 0.1
MAX_FINITE_SPEED: Final = 100.0
# The steps of the TUI's +/- keys.
SPEED_STEPS: Final = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, MAX_SPEED)

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
