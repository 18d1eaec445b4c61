"""Learned cadence: noticing, without any configuration, that an event went quiet or changed pace.

Owns the anomalies of events nobody declared an expectation for (an event with an `[[expect]]` is
judged by that alone). Each event name is judged against its own history only. The rules, as the
README states them:

**Quiet.** eventtui keeps a decaying histogram of the gaps between an event's arrivals, weighted by
the time each gap lasted (half-life 3 hours), and reads its 99th percentile: the gap that covers 99%
of the time the event has been watched. The event is **quiet** once the silence since it was last
seen exceeds ``max(3 x that gap, 60 s)``. A heartbeat every 10 s goes quiet after 60 s; an event
arriving about once a minute goes quiet after 20 to 25 minutes. Weighting by time makes bursty
events safe: a burst of 500 events every 10 minutes has a usual gap of 10 minutes, not milliseconds.
A silence that was flagged is learned only up to the threshold, so an outage does not teach that
outages are normal.

**Rate drop / rate spike.** Arrivals are counted per minute. The baseline is an exponentially
weighted mean and variance of those counts (time constant 60 minutes), learned from minutes older
than the 5-minute comparison window. At the end of every minute, the last 5 minutes are compared
with the baseline:

- drop when the count is under 0.5x expected *and* at least 4 standard deviations below it;
- spike when it is over 2x expected, at least 4 standard deviations above it, *and* at least 20
  events more than expected.

The standard deviation is at least the Poisson one (so a slow event never alarms on noise) and
includes the uncertainty of the baseline itself. A state is entered only after its condition held at
2 consecutive minute ends, and left only after the leave condition (drop: back over 0.7x expected or
within 2 standard deviations; spike: under 1.5x or within 2 standard deviations) held at 2
consecutive minute ends: an event near a threshold does not flicker. While an alarm is on, or the
event is quiet, the baseline stops learning, so an outage does not become the new normal; an alarm
that lasts an hour is taken as the new level, and the baseline restarts from it. A rate drop is not
shown while the event is quiet: quiet already says more.

**Warm-up.** Nothing is flagged for an event until it has arrived at least 20 times over at least
10 minutes (rates also need 10 whole minutes of counts). A restarted monitor starts cold unless it
is seeded with recent history from the store, so a restart never raises alarms from a blank slate.

Learned anomalies are warnings, quieter than declared ones: they never make `eventtui check` fail.
All of this is a function of event times and `now`: the same events give the same episodes, live or
in replay. Cost per event is O(1): a dict lookup, a bucket count and one histogram bin.

Pure: no IO, no clock, no Textual. May import: the monitor's own modules.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from eventtui.monitor.anomaly import (
    LEARNING,
    MIN_EPISODE_SECONDS,
    OK,
    QUIET,
    RATE_DROP,
    RATE_SPIKE,
    RECOVERED,
    Anomaly,
    Episode,
    EpisodeLog,
    format_duration,
)


@dataclass(frozen=True, slots=True)
class LearnedSettings:
    """The parameters of the learned rules (module docstring); the defaults are the documented ones."""

    warmup_arrivals: int = 20
    warmup_seconds: float = 600.0
    quiet_factor: float = 3.0
    quiet_quantile: float = 0.99
    quiet_floor: float = 60.0
    gap_half_life: float = 3 * 3600.0
    window_minutes: int = 5
    baseline_minutes: float = 60.0
    hold_minutes: int = 2
    drop_enter: float = 0.5
    drop_leave: float = 0.7
    spike_enter: float = 2.0
    spike_leave: float = 1.5
    z_enter: float = 4.0
    z_leave: float = 2.0
    spike_min_excess: float = 20.0
    relearn_after: float = 3600.0
    recovered_for: float = 60.0


# Gap histogram: half-octave bins from about 1 ms to about 48 days. Bin i holds gaps up to _EDGES[i].
_EXP_MIN: Final = -10
_EXP_MAX: Final = 22
_BINS: Final = 2 * (_EXP_MAX - _EXP_MIN)
_SQRT_HALF: Final = math.sqrt(0.5)
_EDGES: Final = tuple(
    2.0 ** (_EXP_MIN + i // 2) * (_SQRT_HALF if i % 2 == 0 else 1.0) for i in range(_BINS)
)
# Minutes of silence folded one by one when an event wakes up; beyond this the rate state has long
# settled (an hour-long alarm relearns), so older empty minutes are skipped.
_MAX_FOLD_MINUTES: Final = 24 * 60


class _Cadence:
    """What is known about one event name's rhythm."""

    __slots__ = (
        "base_n",
        "bins",
        "count",
        "first_seen",
        "fold_from",
        "last_seen",
        "leave_n",
        "leave_since",
        "log",
        "mean",
        "minute",
        "minute_count",
        "pending",
        "pending_n",
        "pending_since",
        "rate_detail",
        "rate_since",
        "rate_state",
        "recent",
        "recovered_at",
        "recovered_detail",
        "threshold",
        "usual",
        "var",
    )

    def __init__(self, name: str, at: float, window: int) -> None:
        self.count = 1
        self.first_seen = at
        self.last_seen = at
        self.bins = [0.0] * _BINS
        # The quiet threshold, computed when needed; None after the histogram changed. Decay scales
        # every bin alike, which leaves quantiles unchanged, so only new gaps invalidate it.
        self.threshold: float | None = None
        self.usual = math.inf
        self.minute = _minute(at)
        self.minute_count = 0
        # The first minute is partial (the event was first seen inside it): rates start after it.
        self.fold_from = self.minute + 1
        self.recent: deque[int] = deque(maxlen=window)
        self.mean = 0.0
        self.var = 0.0
        self.base_n = 0
        self.rate_state: str | None = None
        self.rate_since = 0.0
        self.rate_detail = ""
        self.pending: str | None = None
        self.pending_n = 0
        self.pending_since = 0.0
        self.leave_n = 0
        self.leave_since = 0.0
        self.recovered_at: float | None = None
        self.recovered_detail = ""
        self.log = EpisodeLog("learned", name)


def _minute(at: float) -> int:
    return math.floor(at / 60.0)


class LearnedCadence:
    """Learned rhythm and anomalies for every event name observed (see the module docstring)."""

    def __init__(self, settings: LearnedSettings | None = None) -> None:
        self.settings = settings or LearnedSettings()
        self._by_name: dict[str, _Cadence] = {}
        # Per minute, the factor that ages the gap histogram by one minute.
        self._decay = 0.5 ** (60.0 / self.settings.gap_half_life)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> Iterator[str]:
        return iter(self._by_name)

    # --- events -----------------------------------------------------------------------------

    def observe(self, name: str, at: float) -> None:
        c = self._by_name.get(name)
        if c is None:
            self._by_name[name] = c = _Cadence(name, at, self.settings.window_minutes)
            c.minute_count = 1
            return
        minute = _minute(at)
        if minute > c.minute:
            self._advance(c, minute)
        # An older minute (a late straggler) counts in the current one: off by one bucket at most.
        c.minute_count += 1
        last = c.last_seen
        if at > last:
            gap = at - last
            if gap > self.settings.quiet_floor and c.count >= self.settings.warmup_arrivals:
                gap = self._gap_ended(c, gap, at)
            m, e = math.frexp(gap)
            index = 2 * (e - _EXP_MIN) + (m >= _SQRT_HALF)
            c.bins[0 if index < 0 else _BINS - 1 if index >= _BINS else index] += gap
            c.threshold = None
            c.last_seen = at
        c.count += 1

    def observe_count(self, name: str, at: float, count: int) -> None:
        """`count` events of `name`, the last at `at` (a stream's per-second rollups): the minute
        counts all of them; the gaps are the one before `at` (the rest are under a second)."""
        if count <= 0:
            return
        self.observe(name, at)
        c = self._by_name[name]
        c.minute_count += count - 1
        c.count += count - 1

    def _gap_ended(self, c: _Cadence, gap: float, at: float) -> float:
        """A long gap ended at `at`: record it if it was quiet; return the gap to learn."""
        if not self._warm(c):
            return gap
        threshold = self._threshold(c)
        start = c.last_seen + threshold
        if at <= start:
            return gap
        was_open = c.log.is_open(QUIET, start)
        c.log.close(QUIET, start, at, self._quiet_detail(c))
        if was_open or at - start >= MIN_EPISODE_SECONDS:
            c.recovered_at = at
            c.recovered_detail = f"arrived again after {format_duration(gap)}"
        # The window holds the silent minutes: judge rates afresh once it has refilled.
        c.recent.clear()
        c.pending = None
        c.pending_n = 0
        return threshold

    # --- minutes and rates ----------------------------------------------------------------------

    def _advance(self, c: _Cadence, minute: int) -> None:
        """Fold every complete minute before `minute` into the rate state."""
        elapsed = minute - c.minute
        scale = self._decay**elapsed
        c.bins = [w * scale for w in c.bins]
        self._fold(c, c.minute, c.minute_count)
        first_empty = max(c.minute + 1, minute - _MAX_FOLD_MINUTES)
        for empty in range(first_empty, minute):
            self._fold(c, empty, 0)
        c.minute = minute
        c.minute_count = 0

    def _fold(self, c: _Cadence, minute: int, count: int) -> None:
        if minute < c.fold_from:
            return
        s = self.settings
        ended = (minute + 1) * 60.0
        quiet = self._warm(c) and ended > c.last_seen + self._threshold(c)
        recent = c.recent
        leaving = recent[0] if len(recent) == recent.maxlen else None
        recent.append(count)
        if leaving is not None and c.rate_state is None and c.pending is None and not quiet:
            self._learn(c, leaving)
        if quiet or not self._rates_warm(c):
            c.pending = None
            c.pending_n = 0
            return
        window = len(recent)
        observed = float(sum(recent))
        expected = c.mean * window
        var = max(c.var, c.mean)
        # Var(observed - expected): the window's own noise plus the baseline's uncertainty.
        sd = math.sqrt(var * window + var * window * window / min(c.base_n, s.baseline_minutes))
        if c.rate_state is None:
            self._maybe_enter(c, ended, observed, expected, sd)
        else:
            self._maybe_leave(c, ended, observed, expected, sd)

    def _maybe_enter(
        self, c: _Cadence, ended: float, observed: float, expected: float, sd: float
    ) -> None:
        s = self.settings
        state = None
        if observed < s.drop_enter * expected and expected - observed > s.z_enter * sd:
            state = RATE_DROP
        elif (
            observed > s.spike_enter * expected
            and observed - expected > s.z_enter * sd
            and observed - expected >= s.spike_min_excess
        ):
            state = RATE_SPIKE
        if state is None:
            c.pending = None
            c.pending_n = 0
            return
        if state != c.pending:
            c.pending = state
            c.pending_n = 0
            c.pending_since = ended
        c.pending_n += 1
        if c.pending_n >= s.hold_minutes:
            window = len(c.recent)
            c.rate_state = state
            c.rate_since = c.pending_since
            c.rate_detail = (
                f"{observed / window:.3g}/min over the last {window}m"
                f" against a usual {c.mean:.3g}/min"
            )
            c.log.open(state, c.rate_since, c.rate_detail)
            c.pending = None
            c.pending_n = 0
            c.leave_n = 0

    def _maybe_leave(
        self, c: _Cadence, ended: float, observed: float, expected: float, sd: float
    ) -> None:
        s = self.settings
        assert c.rate_state is not None
        if c.rate_state == RATE_DROP:
            leave = observed >= s.drop_leave * expected or expected - observed < s.z_leave * sd
        else:
            leave = observed <= s.spike_leave * expected or observed - expected < s.z_leave * sd
        if leave:
            if c.leave_n == 0:
                c.leave_since = ended
            c.leave_n += 1
            if c.leave_n >= s.hold_minutes:
                c.log.close(c.rate_state, c.rate_since, c.leave_since, c.rate_detail)
                c.rate_state = None
                c.leave_n = 0
            return
        c.leave_n = 0
        if ended - c.rate_since >= s.relearn_after:
            # An alarm this long is the new normal: restart the baseline from the recent minutes.
            window = len(c.recent)
            c.mean = observed / window
            c.var = max(statistics.pvariance(c.recent), c.mean)
            c.base_n = window
            c.log.close(c.rate_state, c.rate_since, ended, c.rate_detail)
            c.rate_state = None

    def _learn(self, c: _Cadence, count: int) -> None:
        c.base_n += 1
        # Bias-corrected start: a plain mean of the first minutes, then an EWMA.
        alpha = max(1.0 / c.base_n, 1.0 / self.settings.baseline_minutes)
        diff = count - c.mean
        c.mean += alpha * diff
        c.var = (1.0 - alpha) * (c.var + alpha * diff * diff)

    # --- state --------------------------------------------------------------------------------

    def _warm(self, c: _Cadence) -> bool:
        s = self.settings
        return c.count >= s.warmup_arrivals and c.last_seen - c.first_seen >= s.warmup_seconds

    def _rates_warm(self, c: _Cadence) -> bool:
        s = self.settings
        baseline_minutes = max(1, math.ceil(s.warmup_seconds / 60.0) - s.window_minutes)
        return self._warm(c) and c.base_n >= baseline_minutes and len(c.recent) == s.window_minutes

    def _threshold(self, c: _Cadence) -> float:
        if c.threshold is None:
            s = self.settings
            total = sum(c.bins)
            usual = math.inf
            if total > 0:
                target = s.quiet_quantile * total
                cumulative = 0.0
                for edge, weight in zip(_EDGES, c.bins, strict=True):
                    cumulative += weight
                    if cumulative >= target:
                        usual = edge
                        break
            c.usual = usual
            c.threshold = max(s.quiet_factor * usual, s.quiet_floor)
        return c.threshold

    def _quiet_detail(self, c: _Cadence) -> str:
        threshold = self._threshold(c)
        usual = format_duration(c.usual)
        return f"usual gap up to {usual}; quiet after {format_duration(threshold)} without one"

    def _current(self, c: _Cadence, now: float) -> Anomaly | None:
        if self._warm(c):
            start = c.last_seen + self._threshold(c)
            if now > start:
                return Anomaly("learned", c.log.event, QUIET, start, self._quiet_detail(c))
        if c.rate_state is not None:
            return Anomaly("learned", c.log.event, c.rate_state, c.rate_since, c.rate_detail)
        recovered = c.recovered_at
        if recovered is not None and recovered <= now < recovered + self.settings.recovered_for:
            return Anomaly("learned", c.log.event, RECOVERED, recovered, c.recovered_detail)
        return None

    def evaluate(self, now: float) -> list[Anomaly]:
        """Current learned anomalies at `now`; completes the minutes before it and logs episodes."""
        minute = _minute(now)
        out = []
        for c in self._by_name.values():
            if minute > c.minute:
                self._advance(c, minute)
            anomaly = self._current(c, now)
            if anomaly is not None:
                if anomaly.state == QUIET:
                    c.log.open(QUIET, anomaly.started_at, anomaly.detail)
                out.append(anomaly)
        return out

    def state_of(self, name: str, now: float) -> str | None:
        """The learned state of `name` as of the last `evaluate`, judged at `now`; None if unseen."""
        c = self._by_name.get(name)
        if c is None:
            return None
        anomaly = self._current(c, now)
        if anomaly is not None:
            return anomaly.state
        return OK if self._warm(c) else LEARNING

    def episodes(self) -> list[Episode]:
        return [e for c in self._by_name.values() for e in c.log.episodes()]
