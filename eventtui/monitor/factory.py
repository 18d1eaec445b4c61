"""The one way a viewer gets a `Monitor` for a config: watch, open, replay (and its anomaly scan) and
check all build theirs with `build_monitor`.

What differs between them is only how an expectation's `where` is judged:

- one event at a time (the default, `eventtui.matching.row_matcher`): live and replayed rows carry
  their properties, so the filter runs over each row as it is observed;
- by ids the store found beforehand (`where=`, a mapping from each `where` to the ids of the events
  that match it): `check` and the replay's anomaly scan read rows without their payload, and ask
  the store once per filter instead (`where_filters` says which filters, over which names).

May import: config, filters, matching, monitor.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from eventtui.config import Config
from eventtui.filters import Compiled, compile_filter
from eventtui.matching import row_matcher
from eventtui.monitor import Monitor, MonitorSettings
from eventtui.monitor.expectations import ExpectationError, Matcher
from eventtui.plan import Plan


def build_monitor(
    config: Config,
    *,
    started_at: float,
    where: Mapping[str, Collection[int]] | None = None,
    plan: Plan | None = None,
    settings: MonitorSettings | None = None,
) -> Monitor:
    """A monitor for `config`'s expectations and plan (read from its files unless given).

    `started_at`: when watching began (an expected event never seen is due from then). `where`:
    see the module docstring. Raises ExpectationError or PlanError (a ConfigError) naming what.
    """
    if plan is None and (config.plan.events or config.plan.strict):
        plan = Plan.from_config(config)
    compile_where: Callable[[str], Matcher] = row_matcher if where is None else _by_ids(where)
    return Monitor(
        config.expect,
        started_at=started_at,
        plan=plan,
        compile_where=compile_where,
        settings=settings,
    )


def where_filters(config: Config) -> dict[str, tuple[Compiled, list[str]]]:
    """Each distinct `where` of the expectations, compiled, with the event names it applies to.

    Raises ExpectationError naming the expectation for a `where` that is not a valid filter.
    """
    out: dict[str, tuple[Compiled, list[str]]] = {}
    for spec in config.expect:
        if not spec.where:
            continue
        if spec.where not in out:
            try:
                out[spec.where] = (compile_filter(spec.where), [])
            except ValueError as exc:  # FilterError
                raise ExpectationError(f'expectation for "{spec.event}": where: {exc}') from None
        names = out[spec.where][1]
        if spec.event not in names:
            names.append(spec.event)
    return out


def _by_ids(where: Mapping[str, Collection[int]]) -> Callable[[str], Matcher]:
    def compile_where(text: str) -> Matcher:
        # The filter ran in SQL over the same rows; the monitor asks about one event at a time.
        ids = where.get(text, frozenset())
        return lambda event: event.id in ids

    return compile_where
