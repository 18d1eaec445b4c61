"""Thinning the events a screen is shown when the stream carries more than it can show.

A viewer's mirror (`stream/mirror.py`) for the TUI copies at most `cap` events per second of
event time: within a second it keeps each event with chance 1/`step`, where `step` is what the
previous second needed to stay under the cap, and stops at the cap itself (so the first second of a
burst is bounded too). By chance, not every `step`-th event: clients that send names in a cycle
(page, click, signup, page, ...) would otherwise show one name only, whenever `step` is a multiple
of the cycle. Counters never come from these events: the TUI sums the collectors' rollups
(`stream/rollups.py`), which count every event. One-shot commands (query, check, replay) never
sample.

Pure: events' times in, keep-or-drop out (the random draws from the `Random` it is given).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Final

# Events per second the TUI's event list is given from a stream. The list keeps 10,000 rows (5 s
# of this), the screen shows a few dozen, and no one reads more than a few a second; the app's cost
# grows with the rows it is fed (benchmarks/README.md, TUI: 23% CPU at 2k/s against 9% idle, 42% at
# 30k/s), and the mirror writes every kept row to its own store, so a few thousand a second keeps
# both small however busy the stream is.
SAMPLE_CAP: Final = 2_000


@dataclass
class Sampler:
    cap: int = SAMPLE_CAP
    second: int = -1  # the second of event time being counted
    seen: int = 0  # events of that second offered
    kept: int = 0  # and kept
    step: int = 1  # keep one in `step` this second
    # The last second that was thinned: (kept, seen), and when (the caller's clock) it ended.
    last: tuple[int, int] = (0, 0)
    last_at: float = float("-inf")
    rng: random.Random = field(default_factory=random.Random)
    second_at: float = float("-inf")  # when (the caller's clock) the second being counted began

    def keep(self, at: float, now: float) -> bool:
        """Whether to keep an event received at `at` (one a little out of order counts in the
        second being counted); `now` is the caller's clock, for `state`."""
        second = int(at)
        if second > self.second:
            self._roll(second, now)
        self.seen += 1
        if self.kept >= self.cap or (self.step > 1 and self.rng.random() * self.step >= 1.0):
            return False
        self.kept += 1
        return True

    def _roll(self, second: int, now: float) -> None:
        if self.seen > self.kept:
            self.last, self.last_at = (self.kept, self.seen), now
        # The next second is thinned as much as this one needed (an idle second between resets it).
        busy = self.seen if second == self.second + 1 else 0
        self.step = max(1, math.ceil(busy / self.cap))
        self.second, self.seen, self.kept, self.second_at = second, 0, 0, now

    def state(self, now: float, recent: float = 3.0) -> tuple[int, int] | None:
        """(kept, seen) of the second being counted once it is past the cap, else of the last
        thinned second if it ended within `recent` seconds of `now`; None: nothing was dropped."""
        if self.seen > self.cap and now - self.second_at <= recent:
            return (self.kept, self.seen)
        if now - self.last_at <= recent:
            return self.last
        return None
