"""Replay: a stored session played again on a virtual clock, to watch it or to re-send it.

Owns pacing. The parts, each usable (and tested) on its own:

- `clock`: speeds, `Timeline` (recorded time and play position, long silences shortened),
  `ReplayClock` (play position over real time: speed, pause, seek) and `Player` (which events are
  due now). Pure.
- `schedule`: a session's events in replay order (`load_schedule`), their rows read from the store
  a page at a time as they come due (`fetch_rows`).
- `anomalies`: `scan_anomalies`, a monitor run over a whole session to know where the anomalies
  are (the TUI's "next anomaly" key).
- `resend`: a session re-sent to a collector at the recorded pace (`eventtui replay --to-url`).

The TUI plays a replay through `tui/feeds/replay.py`, which runs these on its feed thread.
No Textual, no threads. May import: config, filters, model, monitor, store, sender.
"""

from eventtui.replay.anomalies import scan_anomalies, session_anomalies
from eventtui.replay.clock import (
    MAX_FINITE_SPEED,
    MAX_SPEED,
    MIN_SPEED,
    SPEED_STEPS,
    Player,
    ReplayClock,
    ReplayError,
    Timeline,
    format_speed,
    next_after,
    next_speed,
    parse_speed,
)
from eventtui.replay.resend import (
    READ_AHEAD,
    ResendResult,
    ResendStats,
    paced_frames,
    resend,
    rewrite_ids,
)
from eventtui.replay.schedule import (
    PAGE_ROWS,
    Schedule,
    fetch_rows,
    iter_light_rows,
    load_schedule,
)

__all__ = [
    "MAX_FINITE_SPEED",
    "MAX_SPEED",
    "MIN_SPEED",
    "PAGE_ROWS",
    "READ_AHEAD",
    "SPEED_STEPS",
    "Player",
    "ReplayClock",
    "ReplayError",
    "ResendResult",
    "ResendStats",
    "Schedule",
    "Timeline",
    "fetch_rows",
    "format_speed",
    "iter_light_rows",
    "load_schedule",
    "next_after",
    "next_speed",
    "paced_frames",
    "parse_speed",
    "resend",
    "rewrite_ids",
    "scan_anomalies",
    "session_anomalies",
]
