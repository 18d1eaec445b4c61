"""A one-line progress display for long CLI commands (export, import) on stderr.

Owns only drawing: it is the `progress` callback that `eventtui.transfer` calls, and that the
store's writer process hands a long migration. It draws when stderr is a terminal and stays silent
otherwise, so piped or scripted runs see only their output.

May import: the standard library only.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

_BAR_WIDTH = 24


class ProgressBar:
    """Call it with (events so far, fraction done or None); `close()` clears the line."""

    def __init__(
        self,
        label: str,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        min_interval: float = 0.1,
    ) -> None:
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        # Default: only on a terminal. A caller writing its output to that same terminal (an
        # export to stdout) passes enabled=False rather than interleave the two.
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.min_interval = min_interval
        self._started = time.monotonic()
        self._last_draw = 0.0
        self._width = 0

    def __call__(self, events: int, fraction: float | None) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        # About 10 redraws a second: a terminal write per batch would cost more than the batch.
        if now - self._last_draw < self.min_interval and fraction != 1.0:
            return
        self._last_draw = now
        elapsed = now - self._started
        parts = [self.label]
        if fraction is not None:
            fraction = min(max(fraction, 0.0), 1.0)
            filled = round(fraction * _BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'-' * (_BAR_WIDTH - filled)}] {fraction:4.0%}")
        parts.append(f"{events:,} events")
        if elapsed >= 1.0:
            parts.append(f"{events / elapsed:,.0f}/s")
        line = "  ".join(parts)
        self._draw(line)

    def close(self) -> None:
        """Erase the line, so the command's own summary starts on a clean one."""
        if self.enabled and self._width:
            self._draw("")
            self.stream.write("\r")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _draw(self, line: str) -> None:
        padding = " " * max(self._width - len(line), 0)
        self.stream.write(f"\r{line}{padding}")
        self.stream.flush()
        self._width = len(line)
