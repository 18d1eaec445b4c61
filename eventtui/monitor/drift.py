"""Learned type drift: per event name and property path, the JSON types seen so far, and a flag
when a path that had a type shows a new one (number -> string, object -> null). A path seen only
as null has no type yet: its first value of another type is learned, not flagged.

No plan needed: the first events of a name teach it, later ones are judged against them. A name
shows `type changed` for `window` after its latest drift (as invalid events do), and the drifts
stay listed (`drifts_of`) with the old types, the new type and when it was first seen, for the
payload pane and `eventtui check`.

Only events that carry their payload are looked at (the TUI's live rows; `check` reads them
for this); light rows (`properties` empty) teach and flag nothing.

Pure: no IO, no clock. May import: eventtui.shapes, the monitor's own modules, msgspec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from eventtui.monitor.anomaly import TYPE_CHANGED, Anomaly, Episode, EpisodeLog
from eventtui.shapes import json_type, walk

# Bounds: a producer inventing names or keys cannot grow the monitor without limit.
MAX_NAMES: Final = 2000
MAX_PATHS: Final = 300
MAX_DRIFTS: Final = 50
# A payload larger than this is not decoded for drift: the UI thread would pay for it.
MAX_PAYLOAD: Final = 16 * 1024

_decode: Final = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class Drift:
    """A path of `name` that took a type it had not had: `before` the types seen until `since`."""

    name: str
    path: str
    before: tuple[str, ...]
    after: str
    since: float

    def describe(self) -> str:
        return f"{self.path}: {' | '.join(self.before)} → {self.after}"


class TypeDrift:
    """See the module docstring."""

    def __init__(self, *, window: float) -> None:
        self.window = window
        self._types: dict[str, dict[str, set[str]]] = {}
        self._drifts: dict[str, list[Drift]] = {}
        self._last: dict[str, float] = {}  # when each name last drifted
        self._since: dict[str, float] = {}  # when its current run of drifts began
        self._logs: dict[str, EpisodeLog] = {}

    def observe(self, name: str, properties: str, at: float) -> None:
        """One event's properties (JSON text); "" or "{}" teaches nothing."""
        if len(properties) <= 2 or len(properties) > MAX_PAYLOAD:
            return
        learned = self._types.get(name)
        if learned is None:
            if len(self._types) >= MAX_NAMES:
                return
            learned = self._types[name] = {}
        try:
            decoded: Any = _decode(properties)
        except msgspec.DecodeError:
            return
        for path, value in walk(decoded):
            kind = json_type(value)
            known = learned.get(path)
            if known is None:
                if len(learned) < MAX_PATHS:
                    learned[path] = {kind}
            elif kind not in known:
                # A path seen only as null had no type yet (an optional field not set): its first
                # real value teaches its type. Anything else that changes type is drift.
                if known != {"null"}:
                    self._drifted(Drift(name, path, tuple(sorted(known)), kind, at))
                known.add(kind)

    def _drifted(self, drift: Drift) -> None:
        name = drift.name
        drifts = self._drifts.setdefault(name, [])
        if len(drifts) < MAX_DRIFTS:
            drifts.append(drift)
        last = self._last.get(name)
        log = self._logs.get(name)
        if log is None:
            log = self._logs[name] = EpisodeLog("learned", name)
        if last is None or drift.since >= last + self.window:
            if last is not None:
                log.close(TYPE_CHANGED, self._since[name], last + self.window, _detail(drifts))
            self._since[name] = drift.since
        self._last[name] = max(drift.since, last or drift.since)
        log.open(TYPE_CHANGED, self._since[name], _detail(drifts))

    def drifts_of(self, name: str) -> list[Drift]:
        return list(self._drifts.get(name, ()))

    def all_drifts(self) -> list[Drift]:
        return sorted(
            (d for found in self._drifts.values() for d in found),
            key=lambda d: (d.since, d.name, d.path),
        )

    def evaluate(self, now: float) -> list[Anomaly]:
        out = []
        for name, last in self._last.items():
            detail = _detail(self._drifts[name])
            if now < last + self.window:
                out.append(Anomaly("learned", name, TYPE_CHANGED, self._since[name], detail))
            else:
                self._logs[name].close(TYPE_CHANGED, self._since[name], last + self.window, detail)
        return out

    def episodes(self) -> list[Episode]:
        return [e for log in self._logs.values() for e in log.episodes()]


def _detail(drifts: list[Drift]) -> str:
    newest = drifts[-1].describe()
    more = len(drifts) - 1
    return newest + (f" (+{more} more)" if more else "")
