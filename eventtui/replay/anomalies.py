"""Anomalies ahead: a monitor run over a whole session, headless, to know where the anomalies are
(the TUI's "next anomaly" key).

Pure: events in, episodes out. May import: the standard library only (the monitor is given).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol


class _Monitor(Protocol):
    def observe_many(self, events: Iterable[Any]) -> None: ...
    def evaluate(self, now: float) -> list[Any]: ...
    def episodes(self) -> list[Any]: ...


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
