"""Anomalies ahead: a monitor run over a whole session, headless, to know where the anomalies are
(the TUI's "next anomaly" key).

`scan_anomalies` is pure (events in, episodes out); `session_anomalies` feeds it a session's rows
read without their payload, with each expectation's `where` judged by ids the store finds.

May import: config, monitor (its factory), store, replay.schedule.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, Protocol

from eventtui.config import Config
from eventtui.monitor import Episode
from eventtui.monitor.factory import build_monitor, where_filters
from eventtui.replay.schedule import Schedule, iter_light_rows
from eventtui.store import Reader


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


def session_anomalies(
    reader: Reader, schedule: Schedule, config: Config, *, started_at: float, end: float
) -> list[Episode]:
    """The anomaly episodes a replay of `schedule` shows, found without playing it.

    The rows are read without their payload (a tenth of the cost), so each `where` is asked of
    the store once, over the session, instead of of each row.
    """
    top = reader.last_event_id()
    where = {
        text: set(
            reader.matching_ids(
                compiled.where,
                compiled.params,
                names=names,
                session=schedule.session.id,
                to_id=top,
            )
        )
        for text, (compiled, names) in where_filters(config).items()
    }
    monitor = build_monitor(config, started_at=started_at, where=where)
    return scan_anomalies(monitor, iter_light_rows(reader, schedule), end=end)
