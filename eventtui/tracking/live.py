"""A baseline snapshot held against live events: which names regressed, for the counters panel.

Fed the rows the TUI sees (their properties decoded into a `snapshot.Builder`), it answers with
`diff.diff`'s verdict per name: "missing" (the baseline has the name, the live events do not
yet) or "changed" (a property removed or retyped). Recomputed at most once per `interval`
seconds of the caller's clock, and only after new events: the panel asks per name per paint.

Pure: no IO, no clock of its own. May import: tracking.snapshot, tracking.diff.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import msgspec

from eventtui.tracking.diff import diff
from eventtui.tracking.snapshot import Builder

MISSING: Final = "missing"
CHANGED: Final = "changed"
# A payload larger than this teaches the live snapshot its name only (as the monitor's drift).
MAX_PAYLOAD: Final = 16 * 1024

_decode: Final = msgspec.json.Decoder().decode


class BaselineWatch:
    def __init__(self, baseline: dict[str, Any], *, source: str, interval: float = 1.0) -> None:
        self.baseline = baseline
        self.source = source  # what to call it on screen (the file name)
        self.interval = interval
        self._live = Builder()
        self._dirty = True
        self._at = float("-inf")
        self._verdicts: dict[str, str] = {}
        # Names seen only without their payload (a light row, a large event left in the store):
        # not missing, and their properties unknown, so not judged either.
        self._unjudged: set[str] = set()

    @property
    def names(self) -> list[str]:
        return list(self.baseline["events"])

    def observe_many(self, rows: Iterable[Any]) -> None:
        """Rows with `.name`, `.properties` (JSON text) and `.omitted` (an `EventRow`)."""
        add = self._live.add
        for row in rows:
            text = row.properties
            if row.omitted or len(text) > MAX_PAYLOAD:
                self._unjudged.add(row.name)
                continue
            try:
                properties: Any = _decode(text) if text else {}
            except msgspec.DecodeError:
                properties = {}
            add(row.name, properties)
        self._dirty = True

    def verdicts(self, now: float) -> dict[str, str]:
        """name -> MISSING or CHANGED, for the names that regressed against the baseline."""
        if self._dirty and now >= self._at + self.interval:
            found = diff(self.baseline, self._live.snapshot()).regressed_names
            self._verdicts = {n: v for n, v in found.items() if n not in self._unjudged}
            self._dirty = False
            self._at = now
        return self._verdicts
