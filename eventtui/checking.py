"""`eventtui check`: expectations and the tracking plan judged once over the store, for cron and CI.

Owns what a check covers, how the monitor is fed from the store for it, and the report (a result
object, its JSON form and its text table). Two scopes:

- **A window ending now** (`check_window`, for cron): the plan verdict covers the events received
  in the last `window` (15 minutes by default). Expectations are judged at `now` with the store's
  whole memory: an expected event last stored an hour ago is missing even when the window is 15
  minutes, because deadlines count from the last matching event in the store. An expected event the
  store has never held is due from when its collector started (the newest collecting session), or
  from the window's start if that is later.
- **One recorded session** (`check_session`, for CI after an end-to-end run): the session's events
  on the session's own clock, from its start to its end (or to now while it is still running). An
  imported session's clock is its events' span: its start and end are when the import ran.

The monitor does the judging (`eventtui.monitor`, the same code as the TUI), so `check` and the
counters panel agree. The exit code rule lives in `CheckResult.ok`: nothing firing (missing, low
rate, invalid events in the scope). Late, quiet, rate warnings and unplanned events are reported.

Reads: the store's named reads (`Reader.event_names`, `light_events`, `matching_ids`, ...), each
shaped for the store's indexes (names by a skip-scan, then one range per name: a few milliseconds
where a full scan of a store of millions of rows costs a second). Every read of a window is
bounded by the newest id seen at the start, so rows committed meanwhile never make the parts
disagree.

The core never prints: the CLI prints `render_text` or `CheckResult.as_json()`.
May import: config, filters, monitor, pii (what a finding looks like), store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from eventtui.config import Config, Expectation, parse_duration
from eventtui.filters import Compiled
from eventtui.monitor import (
    INVALID,
    LATE,
    LOW_RATE,
    MISSING,
    PII,
    QUIET,
    RATE_DROP,
    RATE_SPIKE,
    RECOVERED,
    TYPE_CHANGED,
    UNPLANNED,
    Anomaly,
    Drift,
    ExpectationError,
    Monitor,
    MonitorSettings,
    Plan,
    PlanError,
    Severity,
    format_duration,
)
from eventtui.monitor.anomaly import SYMBOLS
from eventtui.monitor.factory import build_monitor, where_filters
from eventtui.pii import PII_PREFIX
from eventtui.store import EventRow, Reader

DEFAULT_WINDOW: Final = 15 * 60.0
_PAGE: Final = 5000

# For a terminal whose encoding has no room for the symbols above.
ASCII_SYMBOLS: Final = {
    MISSING: "X",
    LOW_RATE: "v",
    INVALID: "x",
    LATE: "~",
    QUIET: ".",
    RATE_DROP: "v",
    RATE_SPIKE: "^",
    UNPLANNED: "?",
    RECOVERED: "+",
    TYPE_CHANGED: "~",
    PII: "!",
}
_SGR: Final = {
    Severity.FIRING: "\x1b[1;31m",
    Severity.WARNING: "\x1b[33m",
    Severity.INFO: "\x1b[32m",
    Severity.OK: "",
}
_RESET: Final = "\x1b[0m"


class CheckError(Exception):
    """A check that cannot run (bad window, bad expectation); one line. An unknown session is the
    store's `NoSuchSession`."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What a check covered: `start` to `end`, and anomalies judged at `end`."""

    start: float
    end: float
    # Seconds, for a window ending now; None for a session.
    window: float | None = None
    session_id: int | None = None
    session_label: str | None = None
    # A session that has not ended (judged at the wall clock).
    running: bool = False


@dataclass(frozen=True, slots=True)
class CheckResult:
    store: Path
    checked_at: float
    scope: Scope
    events: int
    expectations: int
    anomalies: tuple[Anomaly, ...]
    # When each anomaly's subject was last seen ((event, where) -> time), where known.
    last_seen: Mapping[tuple[str, str | None], float]
    invalid: Mapping[str, int]
    sample_errors: Mapping[str, str]
    unplanned: tuple[str, ...]
    planned: bool
    # Events flagged for personal data, per name, and one finding each (a path and a detector,
    # never the value); `[plan] pii = "fail"` makes them fail the check.
    pii: Mapping[str, int] = field(default_factory=dict)
    pii_samples: Mapping[str, str] = field(default_factory=dict)
    pii_fails: bool = False
    # Property types that changed in the scope; `[plan] strict_types` makes them fail the check.
    drifts: tuple[Drift, ...] = ()
    strict_types: bool = False

    @property
    def firing(self) -> list[Anomaly]:
        return [a for a in self.anomalies if a.firing]

    @property
    def ok(self) -> bool:
        """What the exit code says: nothing firing and no invalid event in the scope (nor personal
        data or a changed type, when the plan says they fail)."""
        if (self.pii_fails and self.pii) or (self.strict_types and self.drifts):
            return False
        return not self.firing and not self.invalid

    def as_json(self) -> dict[str, Any]:
        """The documented JSON object of `eventtui check --json` (README, "Tracking health")."""
        scope = self.scope
        out: dict[str, Any] = {"ok": self.ok, "checked_at": self.checked_at}
        out["store"] = str(self.store)
        if scope.session_id is None:
            out["window"] = {"seconds": scope.window, "from": scope.start, "to": scope.end}
        else:
            out["session"] = {
                "id": scope.session_id,
                "label": scope.session_label,
                "from": scope.start,
                "to": scope.end,
                "running": scope.running,
            }
        out["events"] = self.events
        out["expectations"] = self.expectations
        out["anomalies"] = [
            {
                "kind": a.kind,
                "event": a.event,
                "where": a.where,
                "state": a.state,
                "severity": a.severity.name.lower(),
                "firing": a.firing,
                "started_at": a.started_at,
                "last_seen": self.last_seen.get((a.event, a.where)),
                "detail": a.detail,
            }
            for a in self.anomalies
        ]
        out["plan"] = {
            "invalid": dict(self.invalid),
            "sample_errors": dict(self.sample_errors),
            "unplanned": list(self.unplanned),
            "pii": dict(self.pii),
            "pii_findings": dict(self.pii_samples),
            "pii_fails": self.pii_fails,
            "type_changes": [
                {
                    "event": d.name,
                    "path": d.path,
                    "before": list(d.before),
                    "after": d.after,
                    "since": d.since,
                }
                for d in self.drifts
            ],
            "strict_types": self.strict_types,
        }
        return out


# --- inputs ----------------------------------------------------------------------------------------


def parse_window(text: str | None) -> float:
    """`--window` as seconds ("15m", "90s", "2h"); None gives the default."""
    if text is None:
        return DEFAULT_WINDOW
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise CheckError(f"--window: {exc}") from None
    if not 0 < seconds < math.inf:
        raise CheckError(f'--window: must be more than 0 seconds, got "{text}"')
    return seconds


def _config_name(config: Config) -> str:
    return config.source or "the config"


def _plan(config: Config) -> Plan | None:
    if not (config.plan.events or config.plan.strict):
        return None
    try:
        return Plan.from_config(config)
    except PlanError as exc:
        raise CheckError(f"{_config_name(config)}: {exc}") from None


def _filters(config: Config) -> dict[str, tuple[Compiled, list[str]]]:
    """Each distinct `where` of the expectations, compiled; a bad one is an error naming it."""
    try:
        return where_filters(config)
    except ExpectationError as exc:
        raise CheckError(f"{_config_name(config)}: {exc}") from None


def _rate_window(spec: Expectation) -> float:
    # As ExpectationTracker counts a floor: over a minute, or 60/N seconds below one a minute.
    return 0.0 if spec.min_rate is None else 60.0 * max(1.0, 1.0 / spec.min_rate)


# --- the two scopes -------------------------------------------------------------------------------


def check_window(
    reader: Reader,
    config: Config,
    *,
    window: float,
    now: float,
    seen: Mapping[str, float] | None = None,
) -> CheckResult:
    """Expectations at `now` over the whole store; the plan over events received in `window`.

    `seen`: when each name was last seen according to another source (a stream's rollups, summed
    across collectors), for names whose events the store does not hold (`check --stream`)."""
    plan = _plan(config)
    filters = _filters(config)
    top = reader.last_event_id()
    window_start = now - window
    # Rate floors need a whole window of their own, which may be longer than --window.
    history_start = min(window_start, now - max(map(_rate_window, config.expect), default=0.0))
    collecting_since = reader.collecting_since()
    started_at = window_start if collecting_since is None else max(collecting_since, window_start)

    last_seen: dict[str, float] = {}
    rows: list[EventRow] = []
    for name in reader.event_names():
        before = reader.last_received(name, at_or_before=history_start)
        if before is not None:
            last_seen[name] = before
        rows.extend(reader.light_events(name=name, after=history_start, to_id=top))
    for name, at in (seen or {}).items():
        if at <= history_start and at > last_seen.get(name, -math.inf):
            last_seen[name] = at
    rows.sort()
    expectation_last_seen: dict[Expectation, float] = {}
    matching: dict[str, set[int]] = {}
    for spec in config.expect:
        if not spec.where:
            continue
        compiled, _ = filters[spec.where]
        found = reader.last_received(
            spec.event, at_or_before=history_start, where=compiled.where, params=compiled.params
        )
        if found is not None:
            expectation_last_seen[spec] = found
        matching.setdefault(spec.where, set()).update(
            reader.matching_ids(
                compiled.where,
                compiled.params,
                names=[spec.event],
                after=history_start,
                to_id=top,
            )
        )
    # Events before the window feed the rate floors only: the plan verdict is the window's.
    in_window = [r for r in rows if r.received_at > window_start]
    observed = (r if r.received_at > window_start else r._replace(valid=True) for r in rows)
    monitor = _monitor(config, plan, matching, started_at=started_at, plan_window=window)
    monitor.seed(
        last_seen=last_seen,
        expectation_last_seen=expectation_last_seen,
        history_from=history_start,
    )
    monitor.observe_many(observed)
    _learn_types(reader, monitor, in_window)
    scope = Scope(window_start, now, window=window)
    latest = _latest(rows, last_seen)
    return _result(reader, config, plan, monitor, scope, in_window, latest, checked_at=now)


def check_session(reader: Reader, config: Config, session_id: int, *, now: float) -> CheckResult:
    """Expectations and the plan over one session's events, judged at its end (see the docstring)."""
    plan = _plan(config)
    filters = _filters(config)
    top = reader.last_event_id()
    session = reader.session(session_id)  # NoSuchSession
    label, started, ended, source = (
        session.label,
        session.started_at,
        session.ended_at,
        session.source,
    )
    rows = reader.light_events(session=session_id, to_id=top)
    first = min((r.received_at for r in rows), default=None)
    last = max((r.received_at for r in rows), default=None)
    running = False
    if source == "import":
        # An import's own start and end are when the file was loaded, not when its events happened.
        start, end = (first, last) if first is not None and last is not None else (started, started)
    else:
        start = started
        if ended is not None:
            end = ended
        elif session_id == reader.latest_session_id():
            end, running = now, True
        else:
            # Never ended and not the newest: its collector was cut off; its last event is its end.
            end = started if last is None else last
        if first is not None and last is not None:
            start, end = min(start, first), max(end, last)
    matching: dict[str, set[int]] = {}
    for where, (compiled, names) in filters.items():
        matching[where] = set(
            reader.matching_ids(
                compiled.where, compiled.params, names=names, session=session_id, to_id=top
            )
        )
    # Longer than the session: every invalid event in it counts at its end.
    plan_window = max(end - start, 0.0) + 1.0
    monitor = _monitor(config, plan, matching, started_at=start, plan_window=plan_window)
    monitor.observe_many(rows)
    _learn_types(reader, monitor, rows)
    scope = Scope(start, end, session_id=session_id, session_label=label, running=running)
    return _result(reader, config, plan, monitor, scope, rows, _latest(rows), checked_at=now)


# --- shared --------------------------------------------------------------------------------------


def _learn_types(reader: Reader, monitor: Monitor, rows: list[EventRow]) -> None:
    """Type drift needs the payloads the light rows left in the store: read them, a page at a
    time, in store order, and let the monitor's learner see each."""
    observe = monitor.drift.observe
    for start in range(0, len(rows), _PAGE):
        ids = [r.id for r in rows[start : start + _PAGE]]
        for row in reader.events_in(ids):
            observe(row.name, row.properties, row.received_at)


def _monitor(
    config: Config,
    plan: Plan | None,
    matching: Mapping[str, set[int]],
    *,
    started_at: float,
    plan_window: float,
) -> Monitor:
    try:
        return build_monitor(
            config,
            started_at=started_at,
            plan=plan,
            where=matching,
            settings=MonitorSettings(plan_window=plan_window),
        )
    except ExpectationError as exc:
        raise CheckError(f"{_config_name(config)}: {exc}") from None


def _latest(rows: list[EventRow], before: Mapping[str, float] | None = None) -> dict[str, float]:
    """When each name was last seen: in `rows`, else as `before` says."""
    latest = dict(before or {})
    for row in rows:
        if row.received_at > latest.get(row.name, -math.inf):
            latest[row.name] = row.received_at
    return latest


def _result(
    reader: Reader,
    config: Config,
    plan: Plan | None,
    monitor: Monitor,
    scope: Scope,
    rows: list[EventRow],
    latest: Mapping[str, float],
    *,
    checked_at: float,
) -> CheckResult:
    anomalies = tuple(monitor.evaluate(scope.end))
    invalid: dict[str, int] = {}
    samples: dict[str, str] = {}
    unplanned: set[str] = set()
    pii: dict[str, int] = {}
    pii_samples: dict[str, str] = {}
    for row in rows:
        if not row.valid:
            invalid[row.name] = invalid.get(row.name, 0) + 1
            errors = row.error_list()
            if errors:
                samples[row.name] = errors[0]  # the newest: rows are in store order
        if row.errors and PII_PREFIX in row.errors:
            found = [e for e in row.error_list() if e.startswith(PII_PREFIX)]
            if found:
                pii[row.name] = pii.get(row.name, 0) + 1
                pii_samples[row.name] = found[0].removeprefix(PII_PREFIX)
        if plan is not None and plan.is_unplanned(row.name):
            unplanned.add(row.name)
    last_seen: dict[tuple[str, str | None], float] = {}
    for tracker in monitor.trackers:
        if tracker.last_seen is not None:
            last_seen[(tracker.event, tracker.where)] = tracker.last_seen
    for anomaly in anomalies:
        if anomaly.where is None and (anomaly.event, None) not in last_seen:
            seen = latest.get(anomaly.event)
            if seen is not None:
                last_seen[(anomaly.event, None)] = seen
    return CheckResult(
        store=reader.path,
        checked_at=checked_at,
        scope=scope,
        events=len(rows),
        expectations=len(config.expect),
        anomalies=anomalies,
        last_seen=last_seen,
        invalid=dict(sorted(invalid.items())),
        sample_errors=dict(sorted(samples.items())),
        unplanned=tuple(sorted(unplanned)),
        planned=plan is not None,
        pii=dict(sorted(pii.items())),
        pii_samples=dict(sorted(pii_samples.items())),
        pii_fails=config.plan.pii == "fail",
        drifts=tuple(monitor.drift.all_drifts()),
        strict_types=config.plan.strict_types,
    )


# --- text ------------------------------------------------------------------------------------------


def render_text(
    result: CheckResult,
    *,
    clean: Callable[[str], str],
    color: bool = False,
    unicode: bool = True,
) -> str:
    """The human report: header, anomalies most urgent first, plan violations, verdict.

    `clean` makes untrusted text (event names, validation errors) safe for the terminal; `color`
    adds ANSI colour (for a tty), always beside a symbol and a word, never instead of them.
    """
    scope = result.scope
    end = scope.end
    lines = [_header(result, clean, sep=" · " if unicode else " - ")]
    if result.expectations == 0 and not result.planned:
        lines.append(
            "note: the config declares no [[expect]] and no [plan]: only invalid events, personal"
            " data and changed property types are checked"
        )
    symbols = SYMBOLS if unicode else ASCII_SYMBOLS
    if result.anomalies:
        rows = []
        for a in result.anomalies:
            subject = a.event if a.where is None else f"{a.event} [{a.where}]"
            seen = result.last_seen.get((a.event, a.where))
            rows.append(
                (
                    a.severity,
                    [
                        f"{symbols.get(a.state, '*')} {a.state}",
                        clean(subject),
                        format_duration(max(0.0, end - a.started_at)),
                        "never" if seen is None else f"{format_duration(max(0.0, end - seen))} ago",
                        clean(a.detail),
                    ],
                )
            )
        lines.append("")
        lines.extend(_table(["state", "event", "for", "last seen", "detail"], rows, color=color))
    else:
        lines.append("no anomalies")
    if result.invalid:
        rows = [
            (
                Severity.FIRING,
                [
                    clean(name),
                    f"{count:,}",
                    clean(result.sample_errors.get(name, "(no error recorded)")),
                ],
            )
            for name, count in result.invalid.items()
        ]
        lines.append("")
        lines.append("plan violations")
        lines.extend(_table(["event", "invalid", "sample error"], rows, color=False))
    if result.drifts:
        severity = Severity.FIRING if result.strict_types else Severity.WARNING
        rows = [
            (
                severity,
                [
                    clean(d.name),
                    clean(d.path),
                    " | ".join(d.before),
                    d.after,
                    _clock(d.since, same_day_as=end),
                ],
            )
            for d in result.drifts
        ]
        lines.append("")
        fails = "fail: [plan] strict_types" if result.strict_types else "a warning"
        lines.append(f"type changes ({fails})")
        lines.extend(_table(["event", "path", "was", "now", "since"], rows, color=color))
    if result.pii:
        severity = Severity.FIRING if result.pii_fails else Severity.WARNING
        rows = [
            (severity, [clean(name), f"{count:,}", clean(result.pii_samples.get(name, ""))])
            for name, count in result.pii.items()
        ]
        lines.append("")
        fails = 'fail: [plan] pii = "fail"' if result.pii_fails else "a warning"
        lines.append(f"personal data ({fails})")
        lines.extend(_table(["event", "events", "finding (path: detector)"], rows, color=color))
    if result.unplanned:
        names = ", ".join(clean(n) for n in result.unplanned)
        lines.append("")
        lines.append(f"unplanned (not in the strict plan): {names}")
    firing = len(result.firing)
    if result.ok:
        verdict, severity = "OK: nothing firing", Severity.INFO
    else:
        reasons = [f"{firing} firing"]
        if result.pii_fails and result.pii:
            reasons.append(f"personal data in {sum(result.pii.values()):,} events")
        if result.strict_types and result.drifts:
            reasons.append(f"{len(result.drifts)} type changes")
        verdict, severity = f"FAIL: {', '.join(reasons)}", Severity.FIRING
    lines.append("")
    lines.append(_paint(verdict, severity) if color else verdict)
    return "\n".join(lines) + "\n"


def _header(result: CheckResult, clean: Callable[[str], str], *, sep: str) -> str:
    scope = result.scope
    span = f"{_clock(scope.start)} to {_clock(scope.end, same_day_as=scope.start)}"
    if scope.session_id is None:
        assert scope.window is not None
        what = f"last {format_duration(scope.window)} ({span})"
    else:
        label = f' "{clean(scope.session_label)}"' if scope.session_label else ""
        state = "still running" if scope.running else "judged at its end"
        what = f"session {scope.session_id}{label} ({span}, {state})"
    plural = "" if result.events == 1 else "s"
    return sep.join(
        [f"store {clean(str(result.store))}", what, f"{result.events:,} event{plural} checked"]
    )


def _clock(epoch: float, *, same_day_as: float | None = None) -> str:
    when = datetime.fromtimestamp(epoch)
    if same_day_as is not None and datetime.fromtimestamp(same_day_as).date() == when.date():
        return when.strftime("%H:%M:%S")
    return when.strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: list[str], rows: list[tuple[Severity, list[str]]], *, color: bool) -> list[str]:
    widths = [max([len(h), *(len(cells[i]) for _, cells in rows)]) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for severity, cells in rows:
        padded = [c.ljust(w) for c, w in zip(cells, widths, strict=True)]
        if color:
            padded[0] = _paint(padded[0], severity)
        out.append("  ".join(padded).rstrip())
    return out


def _paint(text: str, severity: Severity) -> str:
    start = _SGR[severity]
    return f"{start}{text}{_RESET}" if start else text
