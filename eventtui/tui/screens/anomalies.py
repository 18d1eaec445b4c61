"""AnomaliesScreen: current and recent anomaly episodes, most urgent first (the `a` key).

Reads the episode history from an `EpisodeSource` (the app's `MonitorStates`) about once a second,
at the app's clock: a replay lists virtual times, a paused replay holds still. Open episodes come
first (most urgent, then longest running), then ended ones, latest first; at most 200.

A small keyed table (`DataTable`, as STYLE asks of aggregates): each second only the duration cells
of open episodes change, in place. The rows are rebuilt only when an episode begins or ends (the
order changed) or the width did; the cursor stays on the episode it was on.

Event names, filters and details reach the screen through the one sanitiser, as `Text`.

May import: textual, rich, eventtui.monitor (types and formatting), eventtui.tui.states
(`StateMark`), eventtui.tui.sanitize.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import ClassVar, Final

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from eventtui.monitor import Episode, format_duration
from eventtui.tui.sanitize import clean_text
from eventtui.tui.states import EpisodeSource, StateMark

REFRESH_INTERVAL: Final = 1.0
ONGOING: Final = "ongoing"
# Narrow terminals: the event and detail columns share what the fixed ones leave, neither below
# its floor; the line under the table shows the highlighted episode's name and detail in full.
EVENT_CELLS: Final = 32
EVENT_MIN_CELLS: Final = 12
DETAIL_MIN_CELLS: Final = 20
# "365d23h" is the widest `format_duration`: the one column that changes in place keeps its width.
DURATION_CELLS: Final = 7
# Not `$text-muted`: its alpha needs the background to blend with, and cells carry no background
# (the cursor row's must show through).
MUTED: Final = Style(dim=True)
COLUMNS: Final = (
    ("state", "state"),
    ("event", "event"),
    ("kind", "kind"),
    ("start", "start"),
    ("end", "end"),
    ("duration", "duration"),
    ("detail", "detail"),
)


def clock_time(at: float, now: float) -> str:
    """Local wall time of `at`; with the date when it is not the same day as `now`."""
    local = time.localtime(at)
    if local[:3] == time.localtime(now)[:3]:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%m-%d %H:%M", local)


def episode_keys(episodes: Sequence[Episode]) -> list[str]:
    """A row key per episode, stable while it is listed and unique among them."""
    keys = []
    seen: dict[str, int] = {}
    for e in episodes:
        # State and start identify an episode within its subject (see `EpisodeLog`); two rules
        # on the same event could still share both, so repeats are numbered.
        key = repr((e.kind, e.event, e.where, e.state, e.started_at))
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key}#{seen[key]}")
    return keys


def _cut(text: Text, cells: int) -> Text:
    if text.cell_len > cells:
        text.truncate(cells, overflow="ellipsis")
    return text


class EpisodeTable(DataTable[Text]):
    """The episodes as rows; `show` diffs against what is on screen."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "episode-table--info",
        "episode-table--warning",
        "episode-table--error",
    }
    DEFAULT_CSS = """
    EpisodeTable {
        height: 1fr;
        & > .episode-table--info { color: $text-primary; }
        & > .episode-table--warning { color: $text-warning; text-style: bold; }
        & > .episode-table--error { color: $text-error; text-style: bold reverse; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        # What is on screen: one (key, ended_at) per row, and the width it was laid out for.
        self._signature: list[tuple[str, float | None]] = []
        self._laid_out_for = -1
        self._open_rows: list[tuple[str, Episode]] = []
        self.by_key: dict[str, Episode] = {}

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self._signature]

    def show(
        self, episodes: Sequence[Episode], now: float, mark_of: Callable[[str], StateMark]
    ) -> None:
        signature = [
            (key, e.ended_at) for key, e in zip(episode_keys(episodes), episodes, strict=True)
        ]
        width = self.size.width
        if signature != self._signature or width != self._laid_out_for:
            self._rebuild(episodes, signature, now, mark_of)
            return
        for key, episode in self._open_rows:
            self.update_cell(key, "duration", self._duration(episode, now))

    def _duration(self, episode: Episode, now: float) -> Text:
        return Text(format_duration(max(0.0, episode.duration(now))), justify="right")

    def _tone(self, tone: str) -> Style:
        if tone not in ("info", "warning", "error"):
            return MUTED
        return self.get_component_rich_style(f"episode-table--{tone}", partial=True)

    def _rebuild(
        self,
        episodes: Sequence[Episode],
        signature: list[tuple[str, float | None]],
        now: float,
        mark_of: Callable[[str], StateMark],
    ) -> None:
        rows: list[tuple[str, list[Text]]] = []
        for (key, _), episode in zip(signature, episodes, strict=True):
            mark = mark_of(episode.state)
            ongoing = episode.ended_at is None
            tone = self._tone(mark.tone) if ongoing else MUTED
            event = _cut(clean_text(episode.event, max_chars=EVENT_CELLS * 2 + 2), EVENT_CELLS)
            if episode.where:
                event.append(" [", "dim")
                event.append_text(clean_text(episode.where, style="dim", max_chars=80))
                event.append("]", "dim")
                _cut(event, EVENT_CELLS)
            end = (
                Text(ONGOING, "bold") if ongoing else Text(clock_time(episode.ended_at or now, now))
            )
            rows.append(
                (
                    key,
                    [
                        Text(f"{mark.symbol} {mark.label}", tone),
                        event,
                        Text(episode.kind, MUTED),
                        Text(clock_time(episode.started_at, now)),
                        end,
                        self._duration(episode, now),
                        clean_text(episode.detail, max_chars=500),
                    ],
                )
            )
        widths = [cell_len(label) for _, label in COLUMNS]
        for _, cells in rows:
            for index, cell in enumerate(cells[:-1]):
                widths[index] = max(widths[index], cell.cell_len)
        widths[5] = max(widths[5], DURATION_CELLS)
        # Event and detail share what is left (less cell padding, and a scrollbar if rows
        # overflow); the event gives way first, down to its floor.
        overflows = len(rows) > self.size.height - 1  # the header takes a line
        scrollbar = self.styles.scrollbar_size_vertical if overflows else 0
        fixed = widths[0] + sum(widths[2:6]) + 2 * self.cell_padding * len(COLUMNS) + scrollbar
        room = self.size.width - fixed
        widths[1] = min(widths[1], max(EVENT_MIN_CELLS, room - DETAIL_MIN_CELLS))
        widths[-1] = max(DETAIL_MIN_CELLS, room - widths[1])
        for _, cells in rows:
            _cut(cells[1], widths[1])
            _cut(cells[-1], widths[-1])

        selected = self.selected_key()
        self.clear(columns=True)
        for (key, label), width in zip(COLUMNS, widths, strict=True):
            self.add_column(label, width=width, key=key)
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._signature = signature
        self._laid_out_for = self.size.width
        self.by_key = {key: episode for (key, _), episode in zip(signature, episodes, strict=True)}
        self._open_rows = [
            (key, episode)
            for (key, _), episode in zip(signature, episodes, strict=True)
            if episode.ended_at is None
        ]
        keys = self.keys
        if selected in keys:
            self.move_cursor(row=keys.index(selected))

    def selected_key(self) -> str | None:
        keys = self.keys
        row = self.cursor_row
        return keys[row] if 0 <= row < len(keys) else None


class AnomaliesScreen(ModalScreen[None]):
    """See the module docstring."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,a,q", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    AnomaliesScreen { align: center middle; }
    AnomaliesScreen > Vertical {
        width: 96%; height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
        border-subtitle-color: $text-muted;
    }
    AnomaliesScreen #anomalies-empty { color: $text-muted; padding: 1 0; }
    AnomaliesScreen #anomalies-selected {
        height: auto; max-height: 3; border-top: solid $primary 50%; color: $text-muted;
    }
    """

    def __init__(
        self, source: Callable[[], EpisodeSource | None], clock: Callable[[], float]
    ) -> None:
        """`source` is asked each refresh: a replay that seeks back swaps the app's monitor."""
        super().__init__()
        self._source = source
        self._clock = clock

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Anomalies"
            box.border_subtitle = "Esc closes"
            yield Static(id="anomalies-empty")
            yield EpisodeTable(id="anomalies-table")
            yield Static(id="anomalies-selected")

    @property
    def table(self) -> EpisodeTable:
        return self.query_one("#anomalies-table", EpisodeTable)

    def on_mount(self) -> None:
        self.table.focus()
        # After the first layout: the detail column is sized to the table's width.
        self.call_after_refresh(self.refresh_episodes)
        self.set_interval(REFRESH_INTERVAL, self.refresh_episodes, name="anomalies")

    def on_resize(self) -> None:
        self.call_after_refresh(self.refresh_episodes)

    def refresh_episodes(self) -> None:
        source = self._source()
        now = self._clock()
        episodes = source.episodes(now) if source is not None else []
        empty = self.query_one("#anomalies-empty", Static)
        if source is None:
            empty.update(Text("No monitor is running, so there is nothing to list."))
        elif not episodes:
            empty.update(Text("No anomalies so far."))
        empty.display = not episodes
        if source is not None:
            self.table.show(episodes, now, source.mark)
        self._show_selected()
        ongoing = sum(1 for e in episodes if e.ended_at is None)
        title = f"Anomalies · {ongoing} ongoing · {len(episodes) - ongoing} ended"
        # In the title, top left: toasts cover the bottom right, where a subtitle would go.
        self.query_one(Vertical).border_title = title

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def _show_selected(self) -> None:
        """The highlighted episode's name and detail in full, however narrow the columns."""
        table = self.table
        key = table.selected_key()
        episode = table.by_key.get(key) if key is not None else None
        line = self.query_one("#anomalies-selected", Static)
        line.display = episode is not None
        if episode is None:
            return
        text = clean_text(episode.event, style="bold", max_chars=500)
        if episode.where:
            text.append(" [")
            text.append_text(clean_text(episode.where, max_chars=200))
            text.append("]")
        text.append(f" · {episode.kind} · {episode.state} · ")
        text.append_text(clean_text(episode.detail, max_chars=500))
        line.update(text)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
