"""EventApp: the live screen — stream, counters, payload, status — over an injected feed.

Data flow: the feed (a worker thread) posts batches; handlers only buffer them (the stream's
inbox, the counters' O(1) increments); a ~10 Hz paint tick moves what arrived onto the screen
inside `batch_update()`, so a burst of 30k events/s costs ten repaints a second, not 30k.

The app never opens the store, never reads the wall clock for what it shows: it is given a feed
and a `clock` (epoch seconds), so tests, snapshots and replay decide what "now" is.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ClassVar, Final

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input

from eventtui.filters import FilterError, compile_filter
from eventtui.monitor.counters import Counters
from eventtui.tracking.snapshot import SnapshotError
from eventtui.tui.feeds import SEEK_SECONDS, Feed, Playback
from eventtui.tui.messages import (
    CountsSeeded,
    EventLoaded,
    EventsCommitted,
    FeedFailed,
    FeedNotice,
    FeedRestarted,
    FeedStatus,
    FeedStatusRead,
    HistoryLoaded,
    TimeReached,
)
from eventtui.tui.rows import clock_time
from eventtui.tui.sanitize import clean_text
from eventtui.tui.screens.baseline import BaselinePrompt
from eventtui.tui.screens.help import HelpScreen
from eventtui.tui.screens.rejects import RejectsScreen
from eventtui.tui.states import (
    FIRING_TOAST,
    EpisodeSource,
    MonitorStates,
    StateSource,
    ToastSeverity,
    load_baseline,
)
from eventtui.tui.widgets.counters import SORT_KEYS, CountersPanel, ordered
from eventtui.tui.widgets.filter_bar import FilterBar
from eventtui.tui.widgets.footer import KeyFooter
from eventtui.tui.widgets.payload import PayloadPane, copy_text
from eventtui.tui.widgets.status import StatusBar
from eventtui.tui.widgets.stream import EventStream

PAINT_INTERVAL: Final = 0.1
# How long the first frame may wait for the rows and counts the feed reads ahead: a big store's
# newest rows take ~40 ms; longer than this, the frame comes first and they follow.
FIRST_SCREEN_WAIT: Final = 0.25
# New rows are painted when they arrive rather than at the next tick (commit to screen was up to
# a whole tick, p99 ~300 ms in a terminal at 100 events/s), at most once per this gap, so a
# flood still costs at most 20 stream paints a second.
STREAM_PAINT_GAP: Final = 0.05
# Counters re-sort and rates re-sum at this pace; the ages they show tick in whole seconds.
COUNTERS_INTERVAL: Final = 0.25
# While following, the payload pane shows the newest event, at a pace a reader can take in.
FOLLOW_PAYLOAD_INTERVAL: Final = 0.5
# States are judged (and toasts raised) at this pace: twice a second, so a deadline shows within a
# second of passing, even with the paint tick's own lag.
STATES_INTERVAL: Final = 0.5
# Anomaly toasts: sentences in one toast, and toasts on screen at once (older ones give way).
ALERTS_PER_TOAST: Final = 3
MAX_TRACKING_TOASTS: Final = 2
_TOAST_ORDER: Final[list[ToastSeverity]] = ["error", "warning", "information"]
_SIMPLE_NAME: Final = re.compile(r"[A-Za-z0-9_.:/-]+")


def name_filter(name: str) -> str:
    """The filter for exactly this name; quoted (no glob) unless it is plain."""
    if _SIMPLE_NAME.fullmatch(name):
        return f"name:{name}"
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'name:"{escaped}"'


def _send_hint(status: FeedStatus) -> tuple[str, ...]:
    """What the empty stream says while collecting: where to send an event (addresses are ours)."""
    if not status.collecting or not status.addresses:
        return ()
    lines = ["No events yet. Send one:"]
    for address in status.addresses:
        if address.startswith("http"):
            lines.append(f"""  curl -d '{{"event":"hello"}}' {address}/events""")
        else:
            lines.append(f"  a websocket client to {address} (eventtui send --url {address})")
    return tuple(lines)


def tune_gc() -> None:
    """Fewer, smaller garbage collections for a process that streams events (process-wide).

    Every stream row survives long enough to reach the oldest generation, so with the default
    thresholds CPython ran a full collection every few seconds at 10k events/s, each a 50-150 ms
    pause (benchmarks/tui.py: key p99 167 ms, 100 ms/s in GC). Freezing what startup built (the
    widget tree, Textual's caches) takes it out of every collection, and a larger young
    generation lets rows die before promotion: key p99 53 ms, GC 33 ms/s at 10k/s.
    The opt-in is `watch`/`open`'s: tests leave the process's GC as they found it.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


class EventApp(App[None]):
    """See the module docstring."""

    # Absolute, so subclasses elsewhere (benchmarks, tests) find it too.
    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "eventtui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (130, "-wide")]  # noqa: RUF012 (Textual's own)
    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: handled as the key arrives, so keys typed right after "/" reach the input.
        Binding("slash", "open_filter", "Filter", priority=True),
        Binding("space", "toggle_pause", "Pause"),
        # The same key while the stream is paused, so that the footer says what it will do.
        Binding("space", "resume", "Resume"),
        # Replay only (hidden otherwise, see check_action).
        Binding("plus,equals_sign", "speed(1)", "Faster"),
        Binding("minus", "speed(-1)", "Slower"),
        Binding("left", "seek(-1)", "Back 10s", show=False),
        Binding("right", "seek(1)", "On 10s", show=False),
        Binding("n", "next_anomaly", "Next anomaly"),
        Binding("f", "follow", "Follow"),
        Binding("c", "copy_payload", "Copy"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("a", "anomalies", "Anomalies"),
        # Kept out of the footer (its width at 80x24 is spoken for); the help lists it.
        Binding("b", "baseline", "Baseline", show=False),
        Binding("r", "rejects", "Rejects", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "focus_stream", "Back", show=False),
    ]

    def __init__(
        self,
        feed: Feed,
        *,
        clock: Callable[[], float] | None = None,
        states: StateSource | None = None,
        states_factory: Callable[[], StateSource] | None = None,
        expected: Iterable[str] = (),
        stream_rows: int = 10_000,
        paint_interval: float = PAINT_INTERVAL,
        notice: str | None = None,
        theme: str | None = None,
        tune_gc: bool = False,
        bell: bool = False,
    ) -> None:
        super().__init__()
        self.tune_gc = tune_gc
        # `[ui] bell`: ring once when an anomaly episode starts firing (not for warnings).
        self.bell_on_firing = bell
        self.feed = feed
        self.playback = feed if isinstance(feed, Playback) else None
        # Live: the wall clock. Replay: the virtual time up to which the feed has delivered every
        # event (see tui/feeds/replay.py) — never the replay clock's own reading, which runs ahead.
        self.feed_time = self.playback.started_at if self.playback is not None else 0.0
        self.clock: Callable[[], float] = clock or (
            self._delivered_time if self.playback is not None else time.time
        )
        # A replay that goes back in time needs a fresh monitor: monitors never run backwards.
        self.states_factory = states_factory
        self.states = (
            states if states is not None else (states_factory() if states_factory else None)
        )
        # Counted here only when no monitor counts them (previews and UI tests).
        self._own_counters = Counters()
        self.expected = tuple(expected)
        self.stream_rows = stream_rows
        self.paint_interval = paint_interval
        self.notice = notice
        self.sort_key = SORT_KEYS[0]
        self.filter_text = ""
        self._compiled: tuple[str | None, tuple[Any, ...]] = (None, ())
        self.generation = 0
        self.feed_status: FeedStatus | None = None
        self.feed_error: str | None = None
        # Paint ticks that changed the screen, and those that moved new rows into the stream
        # (the benchmark reads both).
        self.paints = 0
        self.stream_paints = 0
        self._counters_version = -1
        self._counters_names = 0
        self._counters_at = 0.0
        self._payload_at = 0.0
        self._payload_stale = False
        self._alerts_at = 0.0
        self._painted_at = 0.0  # monotonic
        self._paint_pending = False
        if theme:
            self.theme = theme

    @property
    def counters(self) -> Counters:
        """The per-name counters: the monitor's, when there is one."""
        return self.states.counters if self.states is not None else self._own_counters

    # --- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield EventStream(self.stream_rows, id="stream")
            with Vertical(id="side"):
                yield CountersPanel(id="counters")
                yield PayloadPane(id="payload")
        yield FilterBar(id="filter-bar")
        yield StatusBar(id="status")
        yield KeyFooter()

    @property
    def stream(self) -> EventStream:
        return self.query_one("#stream", EventStream)

    @property
    def counters_panel(self) -> CountersPanel:
        return self.query_one("#counters", CountersPanel)

    @property
    def payload(self) -> PayloadPane:
        return self.query_one("#payload", PayloadPane)

    @property
    def status_bar(self) -> StatusBar:
        return self.query_one("#status", StatusBar)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one("#filter-bar", FilterBar)

    def on_mount(self) -> None:
        self._stream = self.stream
        self._counters_panel = self.counters_panel
        self._payload = self.payload
        self._status = self.status_bar
        self._stream.border_title = "Events"
        self._counters_panel.border_title = self._counters_panel.title_for(self.sort_key)
        self._payload.border_title = "Payload"
        self._payload.notes_for = self._type_changes
        # On a stream the rows come from a temporary mirror: its session is nobody's.
        self._payload.show_session = getattr(self.feed, "stream", None) is None
        self._apply_theme()
        self._stream.focus()
        # The store's newest rows and its counts in the first frame, when the feed read them
        # while Textual started (`StoreFeed.prefetch`), rather than an empty frame first.
        for message in self.feed.first_screen(FIRST_SCREEN_WAIT):
            if isinstance(message, HistoryLoaded):
                self.on_history_loaded(message)
            elif isinstance(message, CountsSeeded):
                self.on_counts_seeded(message)
            elif isinstance(message, FeedStatusRead):
                self.on_feed_status_read(message)
        if self._stream.latest is not None:
            self._show_payload()
        self._show_counters(self.clock())
        self._status.show(self.feed_status, 0.0)
        self.set_interval(self.paint_interval, self._paint, name="paint")
        self.run_worker(self._run_feed, thread=True, group="feed", exit_on_error=False, name="feed")
        if self.notice:
            self.notify(self.notice, markup=False, timeout=8)
        if self.tune_gc:
            self.call_after_refresh(tune_gc)

    def _run_feed(self) -> None:
        self.feed.run(self.post_message)

    def on_unmount(self) -> None:
        self.feed.stop()

    def watch_theme(self) -> None:
        if self.is_mounted:  # type: ignore[truthy-function]
            self._apply_theme()

    def _apply_theme(self) -> None:
        dark = self.current_theme.dark
        for widget in (self.stream, self.counters_panel):
            widget.dark = dark
        self.stream.invalidate()
        self.counters_panel.refresh()

    # --- feed messages (handlers only buffer; `_paint` draws) -------------------------------------

    def on_events_committed(self, message: EventsCommitted) -> None:
        try:
            rows = message.rows
            judge_many = getattr(self.states, "judge_many", None)
            if message.counted:
                # Counted already (a stream's rollups): the monitor only judges them.
                if judge_many is not None:
                    judge_many(rows)
            elif self.states is not None:
                self.states.observe_many(rows)  # the monitor counts them too
            else:
                self._own_counters.observe_many(rows)
            if message.generation == self.generation:
                self._stream.add(message.shown)
                self._paint_soon()
            if message.through is not None:
                self.feed_time = message.through  # only now has the monitor seen that far
        finally:
            message.handled()

    def on_time_reached(self, message: TimeReached) -> None:
        self.feed_time = message.at

    def _delivered_time(self) -> float:
        return self.feed_time

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        if message.generation == self.generation:
            self._stream.restart(message.rows, message.generation)
            self._update_stream_title()

    def on_counts_seeded(self, message: CountsSeeded) -> None:
        for seed in message.seeds:
            self.counters.seed(
                seed.name, seed.total, seed.invalid, seed.last_seen, seed.minutes, seed.seconds
            )
        last_seen = {seed.name: seed.last_seen for seed in message.seeds}
        seed_history = getattr(self.states, "seed_history", None)
        if seed_history is not None and message.recent_from is not None:
            # Deadlines, learned cadence and plan results continue from the store's history.
            if message.rollups:  # a stream's: its rollups teach rates and deadlines
                seed_history(message.recent, last_seen, message.recent_from, rates=False)
            else:
                seed_history(message.recent, last_seen, message.recent_from)
            self._counters_version = -1
            return
        observe_counts = getattr(self.states, "observe_counts", None)
        if message.rollups and observe_counts is not None:
            # Every event on the stream, counted: rates and deadlines judge these.
            observe_counts(message.seeds)
            return
        seed_last_seen = getattr(self.states, "seed_last_seen", None)
        if seed_last_seen is not None:
            # Deadlines count from the last stored event, not from the moment we attached.
            seed_last_seen(last_seen)

    def on_event_loaded(self, message: EventLoaded) -> None:
        if message.row is not None and self._payload.waiting_for == message.event_id:
            self._payload.show(message.row, self._payload.label)

    def on_feed_status_read(self, message: FeedStatusRead) -> None:
        problem = message.status.problem
        if problem and (self.feed_status is None or self.feed_status.problem != problem):
            self.notify(problem, title="Events are not stored", severity="error", markup=False)
        self.feed_status = message.status
        hint = _send_hint(message.status)
        if hint != self._stream.empty_hint:
            self._stream.empty_hint = hint
            self._stream.refresh()

    def on_feed_restarted(self, message: FeedRestarted) -> None:
        self.feed_time = message.at
        self._own_counters = Counters()
        if self.states_factory is not None:
            self.states = self.states_factory()
        self.generation += 1
        self._stream.restart([], self.generation)
        self.feed.set_filter(*self._compiled, self.generation)
        self._show_counters(self.clock())

    def on_feed_notice(self, message: FeedNotice) -> None:
        severity = message.severity if message.severity in ("warning", "error") else "information"
        self.notify(message.text, severity=severity, markup=False)  # type: ignore[arg-type]

    def on_feed_failed(self, message: FeedFailed) -> None:
        self.feed_error = message.error
        self._status.show(self.feed_status, 0.0, message.error)
        self.notify(message.error, title="Cannot read the store", severity="error", markup=False)

    # --- painting ----------------------------------------------------------------------------------

    def _paint_soon(self) -> None:
        """Paint new rows now, or as soon as `STREAM_PAINT_GAP` has passed since the last paint."""
        if self._paint_pending:
            return
        self._paint_pending = True
        wait = self._painted_at + STREAM_PAINT_GAP - time.monotonic()
        if wait <= 0:
            self.call_later(self._paint_now)  # after the messages already queued
        else:
            self.set_timer(wait, self._paint_now, name="paint soon")

    def _paint_now(self) -> None:
        self._paint_pending = False
        self._paint()

    def _paint(self) -> None:
        now = self.clock()
        tick = time.monotonic()
        self._painted_at = tick
        with self.batch_update():
            changed = self._stream.flush()
            self.stream_paints += changed
            self._payload_stale |= changed
            if (
                self._payload_stale
                and self._stream.cursor is None
                and (
                    tick - self._payload_at >= FOLLOW_PAYLOAD_INTERVAL or self._payload.row is None
                )
            ):
                self._payload_at = tick
                self._show_payload()
            if (
                (
                    self.counters.version != self._counters_version
                    and tick - self._counters_at >= COUNTERS_INTERVAL
                )
                or tick - self._counters_at >= 1.0
                # A name never seen before is news: shown with the rows that brought it. At 1k
                # events/s its row can scroll out of the stream within one paint, and the counters
                # panel is then the only place it shows.
                or len(self.counters) != self._counters_names
            ):
                self._counters_at = tick
                self._show_counters(now)
                changed = True
            self._status.show(
                self.feed_status, self.counters.events_per_second(now), self.feed_error
            )
            if self.states is not None and tick - self._alerts_at >= STATES_INTERVAL:
                self._alerts_at = tick
                if self._raise_alerts(now):
                    self._show_counters(now)  # the state column says what the toast says
                    changed = True
        if changed:
            self.paints += 1

    def _show_counters(self, now: float) -> None:
        self._counters_version = self.counters.version
        self._counters_names = len(self.counters)
        extra = list(self.expected)
        if self.states is not None:
            extra.extend(self.states.names())
        self._counters_panel.show(
            ordered(self.counters, self.sort_key, now, self.states, extra), now
        )

    def _raise_alerts(self, now: float) -> bool:
        """Toast each new anomaly episode; True if there was one."""
        alerts = getattr(self.states, "alerts", None)
        if alerts is None:
            return False
        raised = alerts(now)
        if raised:
            self._toast_alerts(raised)
        if self.bell_on_firing and any(severity == FIRING_TOAST for severity, _ in raised):
            self.bell()  # once per check, however many episodes began firing in it
        return bool(raised)

    def _toast_alerts(self, raised: list[tuple[ToastSeverity, str]]) -> None:
        """One toast for the episodes of one check (they came six at a time in a fast replay),
        its severity the worst of them; at most MAX_TRACKING_TOASTS stay on screen, the newest."""
        worst = min((severity for severity, _ in raised), key=_TOAST_ORDER.index)
        lines = [text for _, text in raised[:ALERTS_PER_TOAST]]
        if len(raised) > ALERTS_PER_TOAST:
            lines.append(f"… and {len(raised) - ALERTS_PER_TOAST} more (a: anomalies)")
        self.notify("\n".join(lines), title="Tracking", severity=worst, markup=False, timeout=10)
        shown = [n for n in self._notifications if n.title == "Tracking"]
        for old in shown[:-MAX_TRACKING_TOASTS]:
            self._unnotify(old)  # Textual's own removal (private): no public one for one toast

    def _show_payload(self) -> None:
        stream = self._stream
        row = stream.selected
        label = "selected"
        if row is None:
            row = stream.latest
            label = "newest · ↑ to select" if not stream.paused else "newest before pause"
        self._payload_stale = False
        self._payload.show(row, label)
        if row is not None and row.omitted:
            self.feed.request_event(row.id)

    def _update_stream_title(self) -> None:
        title = Text("Events")
        if self.filter_text:
            title.append(" · filter ", "dim")
            title.append_text(clean_text(self.filter_text, style="bold", max_chars=80))
        self._stream.border_title = title

    # --- widget messages ----------------------------------------------------------------------------

    def on_event_stream_cursor_moved(self, message: EventStream.CursorMoved) -> None:
        self._payload_at = time.monotonic()
        self._show_payload()

    def on_event_stream_opened(self, message: EventStream.Opened) -> None:
        self._show_payload()
        self._payload.focus()

    def on_counters_panel_name_chosen(self, message: CountersPanel.NameChosen) -> None:
        self.apply_filter(name_filter(message.name))

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if message.input.id != "filter-input":
            return
        if self.apply_filter(message.value):
            self.filter_bar.input.remember(message.value.strip())
            self.filter_bar.close()
            self._focus_stream()

    def _focus_stream(self) -> None:
        # At once, so keys typed right after Enter/Esc reach the stream, not the hidden input.
        self.screen.set_focus(self._stream)

    def apply_filter(self, text: str) -> bool:
        """Compile `text` and restart the stream on it; False (and an inline error) if it is bad."""
        text = text.strip()
        where: str | None = None
        params: tuple[Any, ...] = ()
        if text:
            try:
                compiled = compile_filter(text)
            except FilterError as exc:
                self.filter_bar.show_error(str(exc))
                return False
            where, params = compiled.where, tuple(compiled.params)
        self.filter_text = text
        self._compiled = (where, params)
        self.generation += 1
        self._stream.loading = True
        self._stream.generation = self.generation
        self._stream.flush()
        self.feed.set_filter(where, params, self.generation)
        self._update_stream_title()
        return True

    # --- actions --------------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_filter":
            # Inside the filter (or on the help page) "/" is just a character.
            return not self.filter_bar.is_open and self.screen is self.screen_stack[0]
        if action in ("speed", "seek", "next_anomaly"):
            return self.playback is not None  # False also hides them from the footer
        if action in ("toggle_pause", "resume"):
            stream = getattr(self, "_stream", None)  # set in on_mount
            paused = self.playback is None and stream is not None and stream.paused
            return paused == (action == "resume")
        return True

    def action_resume(self) -> None:
        self.action_toggle_pause()

    def action_open_filter(self) -> None:
        self.filter_bar.open(self.filter_text)

    def action_focus_stream(self) -> None:
        if self.filter_bar.is_open:
            self.filter_bar.close()
        self._focus_stream()

    def action_toggle_pause(self) -> None:
        if self.playback is not None:
            # In a replay, space stops time itself: counters and states hold still too.
            self.playback.toggle_pause()
            return
        self._stream.set_paused(not self._stream.paused)
        self.refresh_bindings()  # the footer: Pause or Resume
        if self._stream.cursor is None:
            self._show_payload()  # its label says whether it is the newest or the last before pause

    def action_speed(self, step: int) -> None:
        if self.playback is not None:
            self.playback.change_speed(step)

    def action_seek(self, direction: int) -> None:
        if self.playback is not None:
            self.playback.seek_by(direction * SEEK_SECONDS)

    def action_next_anomaly(self) -> None:
        if self.playback is not None:
            self.playback.next_anomaly()

    def action_follow(self) -> None:
        self._stream.follow()
        self._show_payload()

    def action_cycle_sort(self) -> None:
        index = SORT_KEYS.index(self.sort_key)
        self.sort_key = SORT_KEYS[(index + 1) % len(SORT_KEYS)]
        self._counters_panel.border_title = self._counters_panel.title_for(self.sort_key)
        self._show_counters(self.clock())

    def action_copy_payload(self) -> None:
        row = self._payload.row
        if row is None:
            self.notify("No event to copy yet.", severity="warning")
            return
        if row.omitted:
            self.notify("Still reading that event from the store; try again.", severity="warning")
            return
        text = copy_text(row)
        self.copy_to_clipboard(text)
        self.notify(f"Copied event #{row.id} as JSON ({len(text):,} characters).", markup=False)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_anomalies(self) -> None:
        # Imported when first opened: its DataTable costs start-up ~20 ms (benchmarks/startup.py).
        from eventtui.tui.screens.anomalies import AnomaliesScreen

        if not isinstance(self.screen, AnomaliesScreen):
            self.push_screen(AnomaliesScreen(self._episode_source, lambda: self.clock()))

    def action_rejects(self) -> None:
        """What the collector refused and why, read from the store (the feed knows which)."""
        if not isinstance(self.screen, RejectsScreen):
            self.push_screen(RejectsScreen(getattr(self.feed, "rejects", None)))

    def _type_changes(self, name: str) -> list[str]:
        """The payload pane's lines on `name`'s changed property types (path, old, new, since)."""
        if not isinstance(self.states, MonitorStates):
            return []
        return [
            f"type changed: {d.describe()} since {clock_time(d.since)}"
            for d in self.states.monitor.drift.drifts_of(name)
        ]

    def action_baseline(self) -> None:
        """Pick a tracking snapshot to compare with: regressed names show ∅ or ≠ in the counters."""
        if not isinstance(self.states, MonitorStates) or isinstance(self.screen, BaselinePrompt):
            self.notify("No monitor here to compare with a baseline.", severity="warning")
            return
        current = self.states.baseline.source if self.states.baseline is not None else ""
        self.push_screen(BaselinePrompt(current), self._baseline_chosen)

    def _baseline_chosen(self, value: str | None) -> None:
        if value is None or not isinstance(self.states, MonitorStates):
            return
        if not value:
            self.states.set_baseline(None)
            self.notify("No baseline: counters show the monitor's states only.", markup=False)
        else:
            try:
                watch = load_baseline(value)
            except SnapshotError as exc:
                self.notify(str(exc), title="Not a baseline", severity="error", markup=False)
                return
            self.states.set_baseline(watch, self._stream.rows)
            self.notify(
                f"Comparing with {value}: ∅ a name it has and these events lack, ≠ a property"
                " removed or retyped.",
                markup=False,
            )
        self._show_counters(self.clock())

    def _episode_source(self) -> EpisodeSource | None:
        # Asked on every refresh: a replay that seeks back swaps in a fresh monitor.
        return self.states if isinstance(self.states, EpisodeSource) else None

    async def action_quit(self) -> None:
        self.feed.stop()
        self.exit()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Filter events", "Type a filter for the stream (/)", self.action_open_filter
        )
        yield SystemCommand("Clear filter", "Show every event again", lambda: self.apply_filter(""))
        yield SystemCommand(
            "Pause or resume", "Hold the stream still (space)", self.action_toggle_pause
        )
        yield SystemCommand("Follow newest", "Stick to the newest event (f)", self.action_follow)
        yield SystemCommand(
            "Copy payload", "Copy the selected event as JSON (c)", self.action_copy_payload
        )
        for key in SORT_KEYS:
            yield SystemCommand(
                f"Sort counters by {key}",
                "Anomalies stay on top",
                lambda key=key: self._sort_by(key),
            )
        yield SystemCommand(
            "Anomalies", "Current and recent anomaly episodes (a)", self.action_anomalies
        )
        yield SystemCommand(
            "Refused input", "What the collector refused, and why (r)", self.action_rejects
        )
        yield SystemCommand("Keys and filters", "Show the help page (?)", self.action_help)

    def _sort_by(self, key: str) -> None:
        self.sort_key = key
        self._counters_panel.border_title = self._counters_panel.title_for(key)
        self._show_counters(self.clock())
