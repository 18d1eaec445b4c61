"""Declared expectations (`[[expect]]` in the config): a dead-man's switch and a rate floor per event.

Owns the rules a user wrote down, and the states they give:

- ``every``: the event must arrive at least this often. Past ``every`` since it was last seen it is
  **late**; past ``every + grace`` it is **missing**; the next event makes it ok again, shown as
  **recovered** for a while (``recovered_for``, 60 s by default). ``grace`` defaults to ``every``: an
  event expected every 30s is late after 30s and missing after 1m. Before the first event is seen,
  the clock runs from when monitoring started, so an expected event that never arrives goes missing.
- ``min_rate``: at least N events per minute, counted over a sliding minute (or over 60/N seconds
  when N < 1, so "0.5" means one every two minutes). Below it the state is **low rate**. Nothing is
  judged until a whole window has been watched.

Missing and low rate are *firing* (`eventtui check` exits 1); late is a warning. Every state is a
function of the matching events' times and `now`, so a monitor seeded from the store after a
restart shows what it would have shown had it never stopped, and a replay shows the same episodes
at the same moments. Times are compared exactly; evaluated once a second, an anomaly shows within a
second of its deadline.

``where`` narrows an expectation to some events of that name. Compiling the filter is not this
module's job: the caller passes a predicate (`matches(event) -> bool`); without one, every event of
that name counts.

Pure: no IO, no clock, no Textual. May import: eventtui.config (the `Expectation` Struct).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from eventtui.config import Expectation
from eventtui.monitor.anomaly import (
    LATE,
    LOW_RATE,
    MIN_EPISODE_SECONDS,
    MISSING,
    OK,
    RECOVERED,
    Anomaly,
    Episode,
    EpisodeLog,
    format_duration,
    worst_state,
)

DEFAULT_RECOVERED_FOR: Final = 60.0
# A rate floor remembers the times of its last N events (N = the floor); past this, memory would
# grow for a rule that a dead-man's switch expresses better anyway.
MAX_MIN_RATE_EVENTS: Final = 100_000

Matcher = Callable[[Any], bool]


class ExpectationError(ValueError):
    """An expectation that cannot be watched; the message names the event."""


class ExpectationTracker:
    """One `[[expect]]` rule and the state of its event (see the module docstring)."""

    def __init__(
        self,
        spec: Expectation,
        *,
        started_at: float,
        matches: Matcher | None = None,
        recovered_for: float = DEFAULT_RECOVERED_FOR,
    ) -> None:
        label = f'expectation for "{spec.event}"'
        if spec.every is None and spec.min_rate is None:
            raise ExpectationError(f'{label}: set "every", "min_rate", or both')
        if spec.every is not None and spec.every <= 0:
            raise ExpectationError(f'{label}: "every" must be more than 0 seconds')
        if spec.min_rate is not None and not 0 < spec.min_rate <= MAX_MIN_RATE_EVENTS:
            raise ExpectationError(
                f'{label}: "min_rate" must be more than 0 and at most {MAX_MIN_RATE_EVENTS:,} per minute'
            )
        self.spec = spec
        self.matches = matches
        self.started_at = started_at
        self.recovered_for = recovered_for
        self.every = None if spec.every is None else float(spec.every)
        self.grace = 0.0
        if self.every is not None:
            self.grace = self.every if spec.grace is None else float(spec.grace)
        self.window = 0.0
        self.need = 0
        if spec.min_rate is not None:
            self.window = 60.0 * max(1.0, 1.0 / spec.min_rate)
            # "At least 2.5 a minute" in whole events over one minute is at least 3.
            self.need = math.ceil(spec.min_rate * self.window / 60.0 - 1e-9)
        self.last_seen: float | None = None
        # Since when the events are complete: the rate floor judges only whole windows after it.
        self.observed_from = started_at
        # The times of the newest `need` matching events, oldest first.
        self._recent: deque[float] = deque(maxlen=max(self.need, 1))
        self._low_from: float | None = None
        self._recovered_at: float | None = None
        self._recovered_detail = ""
        self.log = EpisodeLog("declared", spec.event, spec.where)

    @property
    def event(self) -> str:
        return self.spec.event

    @property
    def where(self) -> str | None:
        return self.spec.where

    # --- events -----------------------------------------------------------------------------

    def offer(self, event: Any) -> None:
        """Observe `event` (with `.received_at`) if it matches this expectation's filter."""
        if self.matches is None or self.matches(event):
            self.observe(event.received_at)

    def observe(self, at: float) -> None:
        """A matching event arrived at `at` (epoch seconds)."""
        if self.every is not None:
            reference = self.started_at if self.last_seen is None else self.last_seen
            if at > reference + self.every:
                self._gap_ended(reference, at)
        if self.need:
            self._count(at)
        if self.last_seen is None or at > self.last_seen:
            self.last_seen = at

    def observe_count(self, at: float, count: int) -> None:
        """`count` matching events, the last at `at` (a stream's per-second rollups, which count
        every event): the rate floor counts them all, as if they came at `at`."""
        if count <= 0:
            return
        self.observe(at)
        for _ in range(min(count, self.need + 1) - 1):
            self._count(at)

    def note_last_seen(self, at: float) -> None:
        """Seed from history: the last matching event was at `at` (nothing else is known)."""
        if self.last_seen is None or at > self.last_seen:
            self.last_seen = at

    def note_history_from(self, at: float) -> None:
        """Seed from history: every matching event since `at` has been (or will be) observed."""
        self.observed_from = min(self.observed_from, at)

    def _gap_ended(self, reference: float, at: float) -> None:
        assert self.every is not None
        late_at = reference + self.every
        missing_at = late_at + self.grace
        detail = self._deadline_detail()
        was_open = self.log.is_open(LATE, late_at) or self.log.is_open(MISSING, missing_at)
        self.log.close(LATE, late_at, min(at, missing_at), detail)
        if at > missing_at:
            self.log.close(MISSING, missing_at, at, detail)
        if was_open or at - late_at >= MIN_EPISODE_SECONDS:
            self._recovered_at = at
            self._recovered_detail = f"arrived again after {format_duration(at - reference)}"

    def _count(self, at: float) -> None:
        recent = self._recent
        low_before = self._low_since()
        # Events from several connections can land a few milliseconds out of order; keeping the
        # deque sorted (at the cost of those milliseconds) keeps its head the Nth newest event.
        recent.append(at if not recent or at >= recent[-1] else recent[-1])
        if at < low_before:
            return
        if at < self._low_since():
            start = low_before if self._low_from is None else self._low_from
            was_open = self.log.is_open(LOW_RATE, start)
            self.log.close(LOW_RATE, start, at, self._rate_detail())
            self._low_from = None
            if was_open or at - start >= MIN_EPISODE_SECONDS:
                self._recovered_at = at
                self._recovered_detail = (
                    f"back to at least {self.need} in {format_duration(self.window)}"
                )
        elif self._low_from is None:
            self._low_from = low_before

    def _low_since(self) -> float:
        """When the window (now - window, now] holds fewer than `need` events, given no new ones."""
        recent = self._recent
        oldest = recent[0] if len(recent) == self.need else -math.inf
        return max(self.observed_from, oldest) + self.window

    # --- state ------------------------------------------------------------------------------

    def evaluate(self, now: float) -> list[Anomaly]:
        """The anomalies of this expectation at `now`; records them in the episode log."""
        out: list[Anomaly] = []
        if self.every is not None:
            reference = self.started_at if self.last_seen is None else self.last_seen
            late_at = reference + self.every
            if now > late_at:
                missing_at = late_at + self.grace
                detail = self._deadline_detail()
                if now > missing_at:
                    self.log.close(LATE, late_at, missing_at, detail)
                    self.log.open(MISSING, missing_at, detail)
                    out.append(self._anomaly(MISSING, missing_at, detail))
                else:
                    self.log.open(LATE, late_at, detail)
                    out.append(self._anomaly(LATE, late_at, detail))
        if self.need:
            low_since = self._low_since()
            if now >= low_since:
                start = low_since if self._low_from is None else self._low_from
                detail = self._rate_detail()
                self.log.open(LOW_RATE, start, detail)
                out.append(self._anomaly(LOW_RATE, start, detail))
        recovered = self._recovered_at
        if not out and recovered is not None and recovered <= now < recovered + self.recovered_for:
            out.append(self._anomaly(RECOVERED, recovered, self._recovered_detail))
        return out

    def state(self, now: float) -> str:
        return worst_state((a.state for a in self.evaluate(now)), OK)

    def episodes(self) -> list[Episode]:
        return self.log.episodes()

    def _anomaly(self, state: str, started_at: float, detail: str) -> Anomaly:
        return Anomaly("declared", self.spec.event, state, started_at, detail, self.spec.where)

    def _deadline_detail(self) -> str:
        assert self.every is not None
        every = format_duration(self.every)
        return f"expected every {every}; missing after {format_duration(self.every + self.grace)}"

    def _rate_detail(self) -> str:
        assert self.spec.min_rate is not None
        return (
            f"fewer than {self.need} in {format_duration(self.window)}"
            f" (expected at least {self.spec.min_rate:g}/min)"
        )
