"""The tracking plan as viewers see it: invalid, unplanned and personal-data events as anomaly
states per name.

The plan itself (schemas, validation at ingest) is `eventtui.plan`; events arrive here already
marked `valid` or not.

Pure: no IO, no clock. May import: eventtui.plan, the monitor's own modules.
"""

from __future__ import annotations

from typing import Final

from eventtui.monitor.anomaly import (
    INVALID,
    PII,
    UNPLANNED,
    Anomaly,
    Episode,
    EpisodeLog,
)
from eventtui.plan import Plan

DEFAULT_PLAN_WINDOW: Final = 15 * 60.0


class _Run:
    """A run of invalid (or unplanned) events of one name, each within `window` of the previous."""

    __slots__ = ("count", "last", "log", "since")

    def __init__(self, log: EpisodeLog, at: float) -> None:
        self.log = log
        self.since = at
        self.last = at
        self.count = 0


class PlanWatch:
    """Invalid and unplanned events as anomalies, per event name.

    A name is **invalid** (firing) from its first invalid event until `window` (15 minutes by
    default, as `eventtui check --window`) has passed without another, and **unplanned** (a
    warning) likewise while events of a name a strict plan does not list keep arriving.
    """

    def __init__(self, plan: Plan | None = None, *, window: float = DEFAULT_PLAN_WINDOW) -> None:
        self.plan = plan
        self.window = window
        self.strict = plan is not None and plan.strict
        self._runs: dict[tuple[str, str], _Run] = {}

    def observe(self, name: str, at: float, valid: bool) -> None:
        if not valid:
            self._mark(INVALID, name, at)
        if self.plan is not None and self.plan.is_unplanned(name):
            self._mark(UNPLANNED, name, at)

    def observe_pii(self, name: str, at: float) -> None:
        """An event the collector flagged for personal data (`eventtui.pii`)."""
        self._mark(PII, name, at)

    def _mark(self, state: str, name: str, at: float) -> None:
        run = self._runs.get((state, name))
        if run is None:
            run = self._runs[(state, name)] = _Run(EpisodeLog("plan", name), at)
        elif at >= run.last + self.window:
            run.log.close(state, run.since, run.last + self.window, _episode_detail(state))
            run.since = at
            run.count = 0
        run.count += 1
        run.last = max(run.last, at)
        run.log.open(state, run.since, _episode_detail(state))

    def evaluate(self, now: float) -> list[Anomaly]:
        out = []
        for (state, name), run in self._runs.items():
            if now < run.last + self.window:
                out.append(Anomaly("plan", name, state, run.since, _live_detail(state, run.count)))
            else:
                run.log.close(state, run.since, run.last + self.window, _episode_detail(state))
        return out

    def episodes(self) -> list[Episode]:
        return [e for run in self._runs.values() for e in run.log.episodes()]


def _episode_detail(state: str) -> str:
    if state == INVALID:
        return "events break their tracking-plan schema"
    if state == PII:
        return "events carry personal data"
    return "not in the tracking plan"


def _live_detail(state: str, count: int) -> str:
    plural = "" if count == 1 else "s"
    if state == INVALID:
        return f"{count} invalid event{plural}"
    if state == PII:
        return f"{count} event{plural} with personal data"
    return f"not in the tracking plan ({count} event{plural})"
