"""CountersPanel: one line per event name — total, rate per minute, ticking age, trend, state.

Drawn with the line API like the stream: names come from clients, so there may be thousands, and
only the visible lines are formatted. Columns have fixed widths and the name column gives way
first (cut with an ellipsis), so counts and states are never pushed off-screen by a long name.
The first line is a header that does not scroll.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from rich.segment import Segment
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from eventtui.monitor.counters import SPARK_MINUTES, Counters, NameStats
from eventtui.tui.rows import age, name_style
from eventtui.tui.sanitize import padded
from eventtui.tui.states import NO_STATE, StateMark, StateSource
from eventtui.tui.widgets.scrolling import set_virtual_size

SORT_KEYS: Final = ("rate", "total", "last seen", "name")
SPARK_BLOCKS: Final = " ▁▂▃▄▅▆▇█"

_TOTAL: Final = 8
_RATE: Final = 6
_AGE: Final = 5
_STATE: Final = 10
# Below this many cells for names, the state word gives its room to them.
_NAME_MIN: Final = 14
# mark, spaces between columns, and the fixed columns: what is left is shared by name and trend.
_FIXED: Final = 2 + 5 + _TOTAL + _RATE + _AGE + _STATE


def ordered(
    counters: Counters,
    sort_key: str,
    now: float,
    states: StateSource | None = None,
    extra_names: Iterable[str] = (),
) -> list[tuple[NameStats, StateMark]]:
    """Rows for the panel: firing states first (worst first), then by `sort_key`."""
    rows = list(counters.by_name.values())
    known = counters.by_name.keys()
    rows.extend(NameStats(name) for name in extra_names if name not in known)
    marks = [states.state_of(s.name, now) if states else NO_STATE for s in rows]
    rates = {id(s): s.rate_per_minute(now) for s in rows} if sort_key == "rate" else {}

    def key(pair: tuple[NameStats, StateMark]) -> tuple[Any, ...]:
        stats, mark = pair
        first = (-mark.severity, mark.rank)
        if sort_key == "name":
            return (*first, stats.name.casefold())
        if sort_key == "total":
            return (*first, -stats.total, stats.name)
        if sort_key == "last seen":
            return (*first, -stats.last_seen, stats.name)
        return (*first, -rates[id(stats)], -stats.last_seen, stats.name)

    return sorted(zip(rows, marks, strict=True), key=key)


def sparkline(counts: Sequence[int]) -> str:
    """One character per count, scaled to the largest; zero stays blank so quiet time reads as gap."""
    top = max(counts, default=0)
    if top <= 0:
        return " " * len(counts)
    steps = len(SPARK_BLOCKS) - 1
    return "".join(
        SPARK_BLOCKS[0] if c <= 0 else SPARK_BLOCKS[max(1, round(c / top * steps))] for c in counts
    )


def _compact(n: float) -> str:
    if n < 10_000:
        return f"{n:,.0f}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k" if n < 100_000 else f"{n / 1000:.0f}k"
    return f"{n / 1_000_000:.1f}M"


class CountersPanel(ScrollView, can_focus=True):
    """See the module docstring."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("enter", "choose", "Filter by name", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "counters-panel--header",
        "counters-panel--cursor",
        "counters-panel--muted",
        "counters-panel--spark",
        "counters-panel--ok",
        "counters-panel--info",
        "counters-panel--warning",
        "counters-panel--error",
    }
    DEFAULT_CSS = """
    CountersPanel {
        overflow-x: hidden;
        overflow-y: auto;
        background: $surface;
        & > .counters-panel--header { color: $text-muted; text-style: bold; }
        & > .counters-panel--cursor { background: $block-cursor-blurred-background; }
        &:focus > .counters-panel--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
        & > .counters-panel--muted { color: $text-muted; }
        & > .counters-panel--spark { color: $accent; }
        & > .counters-panel--ok { color: $text-success; }
        & > .counters-panel--info { color: $text-primary; }
        & > .counters-panel--warning { color: $text-warning; text-style: bold; }
        & > .counters-panel--error { color: $text-error; text-style: bold reverse; }
    }
    """

    @dataclass(eq=False)
    class NameChosen(Message):
        """Enter on a name: show only that name in the stream."""

        name: str

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._rows: list[tuple[NameStats, StateMark]] = []
        self._now = 0.0
        self.selected_name: str | None = None
        self.dark = True

    @property
    def names(self) -> list[str]:
        """Names in display order (tests and the command palette read this)."""
        return [stats.name for stats, _ in self._rows]

    @property
    def rows(self) -> Sequence[tuple[NameStats, StateMark]]:
        return self._rows

    def show(self, rows: list[tuple[NameStats, StateMark]], now: float) -> None:
        self._rows = rows
        self._now = now
        set_virtual_size(self, Size(0, len(rows) + 1))  # a new name: no layout of the screen
        self.refresh()

    # --- cursor --------------------------------------------------------------------------------

    def _index(self) -> int | None:
        if self.selected_name is None:
            return None
        for i, (stats, _) in enumerate(self._rows):
            if stats.name == self.selected_name:
                return i
        return None

    def _select(self, index: int) -> None:
        if not self._rows:
            return
        index = max(0, min(len(self._rows) - 1, index))
        self.selected_name = self._rows[index][0].name
        height = self.scrollable_content_region.height - 1
        if index < self.scroll_y:
            self.scroll_to(y=index, animate=False)
        elif index >= self.scroll_y + height:
            self.scroll_to(y=index - height + 1, animate=False)
        self.refresh()

    def action_cursor_up(self) -> None:
        index = self._index()
        self._select(0 if index is None else index - 1)

    def action_cursor_down(self) -> None:
        index = self._index()
        self._select(0 if index is None else index + 1)

    def action_choose(self) -> None:
        if self._index() is not None and self.selected_name is not None:
            self.post_message(self.NameChosen(self.selected_name))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= 1:  # line 0 is the header
            index = int(self.scroll_y) + offset.y - 1
            if index < len(self._rows):
                self._select(index)

    # --- drawing -------------------------------------------------------------------------------

    def _layout(self, width: int) -> tuple[int, int, bool]:
        """(name cells, trend cells, state words?) for this width: the trend narrows, then goes,
        then the state word goes (the sign before the name still says it), before the name is cut
        below `_NAME_MIN` cells (at 80 columns names were cut to 5, three `check…` rows alike).

        The trend always spans 30 minutes: 30 cells of one minute, 15 of two, or 10 of three.
        """
        room = width - _FIXED - 1
        for spark, name_min in ((SPARK_MINUTES, 20), (15, 20), (10, 20), (10, 12)):
            if room >= name_min + spark + 1:
                return min(32, room - spark - 1), spark, True
        if room >= _NAME_MIN:
            return min(32, room), 0, True
        return max(6, min(32, room + _STATE + 1)), 0, False

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        style_of = self.get_component_rich_style
        name_cells, spark_cells, words = self._layout(width)
        if y == 0:
            trend = "30m trend".ljust(spark_cells)[:spark_cells]
            header = (
                "  "
                + "name".ljust(name_cells)
                + " "
                + "total".rjust(_TOTAL)
                + " "
                + "/min".rjust(_RATE)
                + " "
                + "seen".rjust(_AGE)
                + " "
                + (trend + " " if spark_cells else "")
                + ("state" if words else "")
            )
            return (
                Strip([Segment(header, base + style_of("counters-panel--header"))])
                .extend_cell_length(width, base)
                .crop(0, width)
            )
        index = int(self.scroll_y) + y - 1
        if not 0 <= index < len(self._rows):
            return Strip.blank(width, base)
        stats, mark = self._rows[index]
        if stats.name == self.selected_name:
            base = base + style_of("counters-panel--cursor")
        tone = base + style_of(f"counters-panel--{mark.tone}") if mark.label else base
        muted = base + style_of("counters-panel--muted")
        now = self._now
        seen = stats.total > 0
        segments = [
            Segment(f"{mark.symbol or ' ':1} ", tone),
            Segment(padded(stats.name, name_cells), base + name_style(stats.name, self.dark)),
            Segment(" " + _compact(stats.total).rjust(_TOTAL), base if seen else muted),
            Segment(" " + _compact(stats.rate_per_minute(now)).rjust(_RATE), base),
            Segment(" " + (age(now - stats.last_seen) if seen else "never").rjust(_AGE), muted),
        ]
        if spark_cells:
            per_cell = SPARK_MINUTES // spark_cells
            minutes = stats.spark(now, SPARK_MINUTES)
            spark = sparkline(
                [sum(minutes[i : i + per_cell]) for i in range(0, SPARK_MINUTES, per_cell)]
            )
            segments.append(Segment(" " + spark, base + style_of("counters-panel--spark")))
        if words:
            segments.append(Segment(" " + mark.label[:_STATE], tone))
        return Strip(segments).extend_cell_length(width, base).crop(0, width)

    def title_for(self, sort_key: str) -> Text:
        return Text.assemble("Counters", (f" · sorted by {sort_key} · s sorts", "dim"))
