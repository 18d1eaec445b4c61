"""Wiring for `eventtui watch`, `demo`, `open` and `replay`: where collector, store, monitor and UI meet.

watch: the collector runs on its own thread and loop (`CollectorThread`), so ingest never waits on
the UI; the writer's commit signal wakes the feed at once. open: the feed polls a store another
process writes. Quitting the app stops the collector in the order that loses nothing (commit, ack,
end the session) before these functions return.

Errors are raised (PortInUse, StoreError, ConfigError ...) for the CLI to turn into one line.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec

from eventtui.config import Config
from eventtui.monitor import Episode
from eventtui.monitor.factory import build_monitor
from eventtui.store import EventWriter, Reader
from eventtui.tracking.live import BaselineWatch
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from eventtui.tui.feeds.store import StreamView
from eventtui.tui.states import MonitorStates


@dataclass(frozen=True)
class Ran:
    """What a watch/demo run stored, for the line the CLI prints on exit."""

    session: int
    events: int
    duplicates: int
    refused: int
    path: Path
    # The collector's writer: its restarts, and its failure if it died for good.
    writer: EventWriter
    # The app's own: non-zero when it crashed (Textual has printed the traceback).
    return_code: int = 0


class _HeldLogs(logging.Handler):
    """Log records kept while the TUI owns the terminal (bounded: the newest `keep`)."""

    def __init__(self, keep: int = 200) -> None:
        super().__init__()
        self.records: deque[logging.LogRecord] = deque(maxlen=keep)
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) == self.records.maxlen:
            self.dropped += 1
        self.records.append(record)


@contextlib.contextmanager
def _logs_held() -> Iterator[None]:
    """While the app runs, hold what the core logs and write it once the screen is given back.

    The CLI's log handler writes to the terminal's stderr, which Textual does not capture: a
    record written meanwhile (a store writer restarted, a client refused) would be drawn over the
    screen. What matters to the user while it runs is shown in the app itself (status line,
    toasts); the held lines follow on exit, through the handlers they would have gone to.
    Python's own writers to stderr are routed into the held log too: a warning
    (`warnings.warn`), an exception that ends a thread, one that cannot be raised (`__del__`).
    """
    root = logging.getLogger()
    saved, held = root.handlers[:], _HeldLogs()
    saved_hooks = threading.excepthook, sys.unraisablehook
    root.handlers = [held]
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception
    sys.unraisablehook = _log_unraisable
    try:
        yield
    finally:
        threading.excepthook, sys.unraisablehook = saved_hooks
        logging.captureWarnings(False)
        root.handlers = saved
        if held.dropped:
            root.warning(
                "%d earlier log records were dropped while the screen was busy", held.dropped
            )
        for record in held.records:
            root.handle(record)


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    exc = (args.exc_type, args.exc_value, args.exc_traceback)
    logging.getLogger("eventtui").error("%s failed", name, exc_info=exc)  # type: ignore[arg-type]


def _log_unraisable(args: sys.UnraisableHookArgs) -> None:
    exc = (args.exc_type, args.exc_value, args.exc_traceback)
    logging.getLogger("eventtui").error(
        "%s: %r",
        args.err_msg or "Exception ignored in",
        args.object,
        exc_info=exc,  # type: ignore[arg-type]
    )


def monitor_states(
    config: Config, started_at: float, baseline: BaselineWatch | None = None
) -> MonitorStates:
    """The app's monitor (the one factory's, `where` judged row by row), as the panel shows it;
    with a baseline snapshot to compare the events with (`--baseline`)."""
    return MonitorStates(build_monitor(config, started_at=started_at), baseline)


def run_watch(
    config: Config,
    path: Path,
    *,
    label: str | None = None,
    demo: bool = False,
    clock: Callable[[], float] = time.time,
    run_app: Callable[[EventApp], object] = EventApp.run,
    tune_gc: bool = True,
    baseline: BaselineWatch | None = None,
    stream: StreamView | None = None,
) -> Ran:
    """Collector + TUI in one process until the user quits. Raises PortInUse, StoreError.

    `stream`: the collector publishes to a stream and `path` is the mirror of it the TUI reads
    (`cli/stream.py`); counters come from the stream's rollups.
    """
    from eventtui.collector import Collector, PortInUse
    from eventtui.collector.thread import CollectorThread
    from eventtui.oncall import OnCall

    if demo:
        # The demo module (and the websocket client it sends with) loads only for the demo.
        from eventtui.demo import demo_config

        config = demo_config(config)

    def start(config: Config) -> tuple[Collector, StoreFeed, CollectorThread]:
        collector = Collector(
            config,
            path,
            source="demo" if demo else "watch",
            label=label,
            extensions=[OnCall(config)],  # GET /metrics and [[alert]] webhooks
        )
        feed = StoreFeed(
            path,
            mode="demo" if demo else "watch",
            live=collector.health,
            notices=lambda: collector.notices,
            stream=stream,
            poll_interval=1.0,
        )
        # The writer calls this after each commit: it only sets an Event (never blocks it).
        collector.writer.add_listener(feed.on_commit)
        thread = CollectorThread(collector)
        thread.start()
        feed.session = collector.session_id
        return collector, feed, thread

    taken = ""
    try:
        collector, feed, thread = start(config)
    except PortInUse as exc:
        if not demo:
            raise
        # The demo needs no particular port: it takes free ones and says which.
        taken = (
            f"{(exc.strerror or 'the port is taken').split(';')[0]}, so the demo took free ones. "
        )
        free = msgspec.structs.replace(config.collector, port=0, http_port=0)
        collector, feed, thread = start(msgspec.structs.replace(config, collector=free))
    feed.prefetch()  # the store's history, read while the app starts
    traffic = None
    notice = None
    if demo:
        from eventtui.demo import DemoTraffic

        traffic = DemoTraffic(collector.ws_url, token=config.collector.token)
        traffic.start()
        notice = (
            f"{taken}Demo app sending to {collector.ws_url} — point your own client there too. "
            "heartbeat stops after a minute: watch its state."
        )
    app = EventApp(
        feed,
        clock=clock,
        states=monitor_states(config, clock(), baseline),
        notice=notice,
        theme=config.ui.theme,
        tune_gc=tune_gc,
        bell=config.ui.bell,
    )
    with _logs_held():
        try:
            run_app(app)  # tests drive it headless with a pilot instead
        finally:
            if traffic is not None:
                traffic.stop()
            thread.stop()  # held too, so that every line comes out in order
    stats = collector.writer.stats
    return Ran(
        collector.session_id,
        stats.events,
        stats.duplicates,
        stats.rejects,
        path,
        collector.writer,
        app.return_code or 0,
    )


def run_open(
    config: Config,
    path: Path,
    *,
    clock: Callable[[], float] = time.time,
    baseline: BaselineWatch | None = None,
    stream: StreamView | None = None,
    run_app: Callable[[EventApp], object] = EventApp.run,
    tune_gc: bool = True,
) -> int:
    """The TUI on an existing store, following it live. Raises StoreError if it cannot be read.

    `stream`: `path` is a mirror of that stream (`open --stream`); counters come from its rollups.
    """
    with Reader(path):  # fail here, with one clear line, rather than inside the UI
        pass
    feed = StoreFeed(path, mode="open", stream=stream)
    feed.prefetch()  # the newest rows and the counts, read while the app starts
    app = EventApp(
        feed,
        clock=clock,
        states=monitor_states(config, clock(), baseline),
        theme=config.ui.theme,
        tune_gc=tune_gc,
        bell=config.ui.bell,
    )
    with _logs_held():
        run_app(app)
    return app.return_code or 0


def run_replay(
    config: Config,
    path: Path,
    *,
    session: int | None = None,
    speed: float = 1.0,
    max_gap: float | None = None,
    filter_text: str = "",
    run_app: Callable[[EventApp], object] = EventApp.run,
    tune_gc: bool = True,
    monotonic: Callable[[], float] = time.monotonic,
) -> int:
    """A stored session in the TUI on a virtual clock. Raises ReplayError, StoreError (NoSuchSession).

    `filter_text` limits what is replayed (the monitor then judges only those events, as the
    user asked); the `/` filter inside the app only narrows the stream.
    """
    from eventtui.filters import FilterError, compile_filter
    from eventtui.replay import ReplayClock, ReplayError, load_schedule, session_anomalies
    from eventtui.tui.feeds import ReplayFeed

    try:
        compiled = compile_filter(filter_text) if filter_text.strip() else None
    except FilterError as exc:
        raise ReplayError(f"--filter: {exc}") from None
    where, params = (compiled.where, compiled.params) if compiled else ("1", ())
    with Reader(path) as reader:
        span = reader.session(reader.resolve_session(session))
        schedule = load_schedule(reader, span, where, params)
    if not len(schedule):
        raise ReplayError(f"session {span.id} has no events to replay")
    if span.source == "demo":
        from eventtui.demo import demo_config

        config = demo_config(config)  # its expected heartbeat goes quiet in the replay too
    timeline = schedule.timeline(max_gap=max_gap, whole_session=True)
    clock = ReplayClock(timeline, speed=speed, monotonic=monotonic)  # tests pass a fake one

    def monitor() -> MonitorStates:
        # Started when the session started: an expected event is due from then, as it was live.
        return monitor_states(config, timeline.start)

    def find_anomalies(reader: Reader) -> list[Episode]:
        return session_anomalies(
            reader, schedule, config, started_at=timeline.start, end=timeline.end
        )

    feed = ReplayFeed(path, schedule, clock, find_anomalies=find_anomalies)
    label = f"session {span.id}" + (f" ({span.label})" if span.label else "")
    app = EventApp(
        feed,  # the app's clock is then the time the feed has delivered events up to
        states_factory=monitor,
        notice=f"Replaying {label}: space pauses, +/- speed, ←/→ seek, n next anomaly.",
        theme=config.ui.theme,
        tune_gc=tune_gc,
    )
    with _logs_held():
        run_app(app)
    return app.return_code or 0
