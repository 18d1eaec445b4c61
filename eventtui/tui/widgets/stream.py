"""EventStream: the live tail of events, a bounded buffer drawn with the line API.

Rows arrive in batches (`add`) and are only buffered; `flush`, called by the app's paint tick,
moves them into the view once per tick. Only the visible lines are ever rendered (`render_line`),
each once per width and selection state (an LRU of strips keyed by the row's absolute index, so
trimming the head of the buffer invalidates nothing).

Follow mode is an explicit flag: the view sticks to the newest row until the user scrolls up,
moves the cursor, or pauses. From then on the view stays put: new rows are held back (bounded)
and counted in the subtitle as "N new", so at 30k events/s the rows being read are not pushed
out of the buffer under the reader. `f`, End, or scrolling back to the bottom follows again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Final

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from eventtui.store import EventRow
from eventtui.tui.rows import clock_time, name_style, summarize
from eventtui.tui.sanitize import fit, padded
from eventtui.tui.widgets.scrolling import set_virtual_size

INVALID_MARK: Final = "✗"
USER_CELLS: Final = 12


class EventStream(ScrollView, can_focus=True):
    """See the module docstring."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "Oldest", show=False),
        Binding("end", "follow", "Newest", show=False),
        Binding("enter", "open", "Open", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "event-stream--cursor",
        "event-stream--time",
        "event-stream--user",
        "event-stream--summary",
        "event-stream--invalid",
    }
    DEFAULT_CSS = """
    EventStream {
        overflow-x: hidden;
        overflow-y: scroll;
        background: $surface;
        & > .event-stream--cursor { background: $block-cursor-blurred-background; }
        &:focus > .event-stream--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
        }
        & > .event-stream--time { color: $text-muted; }
        & > .event-stream--user { color: $text-secondary; }
        & > .event-stream--summary { color: $foreground; }
        & > .event-stream--invalid { color: $text-error; text-style: bold; }
    }
    """

    @dataclass(eq=False)
    class CursorMoved(Message):
        """The selected row changed; `row` is None when the stream follows the newest row."""

        stream: EventStream
        row: EventRow | None

    @dataclass(eq=False)
    class Opened(Message):
        """Enter on a row: the user wants its payload."""

        row: EventRow

    def __init__(self, max_rows: int = 10_000, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.max_rows = max_rows
        self._rows: list[EventRow] = []
        self._first = 0  # absolute index of _rows[0]: grows as the head is trimmed
        self._incoming: list[EventRow] = []
        self._held: deque[EventRow] = deque(maxlen=max_rows)
        self.cursor: int | None = None  # absolute index of the selected row
        self.following = True
        self.paused = False
        self.unseen = 0
        self.generation = 0
        self.loading = False
        # Shown while the stream holds no event (where to send one); set by the app.
        self.empty_hint: tuple[str, ...] = ()
        self.filter_label = ""
        self.dark = True
        self._programmatic = 0
        self._strips: LRUCache[tuple[int, int, bool], Strip] = LRUCache(1024)
        self._subtitle_state: tuple[object, ...] = ()

    # --- data in -----------------------------------------------------------------------------

    @property
    def rows(self) -> Sequence[EventRow]:
        return self._rows

    @property
    def latest(self) -> EventRow | None:
        return self._rows[-1] if self._rows else None

    @property
    def selected(self) -> EventRow | None:
        if self.cursor is None:
            return None
        index = self.cursor - self._first
        return self._rows[index] if 0 <= index < len(self._rows) else None

    def add(self, rows: Sequence[EventRow]) -> None:
        """Buffer new rows; they show at the next `flush`. Cheap: called per feed batch."""
        incoming = self._incoming
        incoming.extend(rows)
        if len(incoming) > self.max_rows * 2:
            del incoming[: len(incoming) - self.max_rows]

    def restart(self, rows: Sequence[EventRow], generation: int) -> None:
        """Replace everything with `rows` (a filter was applied): follow the newest again."""
        self.generation = generation
        self.loading = False
        self._rows = list(rows[-self.max_rows :])
        self._first += len(self._rows) + self.max_rows  # fresh absolute indexes: no stale cache
        self._incoming.clear()
        self._held.clear()
        self.cursor = None
        self.paused = False
        self.unseen = 0
        self._strips.clear()
        self.following = True
        self._resize_and_follow()
        self.post_message(self.CursorMoved(self, None))
        self.refresh()

    @property
    def holding(self) -> bool:
        """New rows wait (counted as "N new") while paused or while the user reads older rows.

        Appending them would push the rows being read out of the bounded buffer within seconds
        at a high rate; holding keeps the view still until the user follows again.
        """
        return self.paused or not self.following

    def flush(self) -> bool:
        """Move buffered rows into view (the app calls this at its paint tick); True if changed."""
        changed = False
        if self._incoming:
            new, self._incoming = self._incoming, []
            if self.holding:
                self._held.extend(new)
                self.unseen += len(new)
            else:
                self._append(new)
                changed = True
        self._update_subtitle()
        return changed

    def _append(self, new: Sequence[EventRow]) -> None:
        rows = self._rows
        rows.extend(new)
        excess = len(rows) - self.max_rows
        if excess > 0:
            del rows[:excess]
            self._first += excess
            if self.cursor is not None and self.cursor < self._first:
                self.cursor = None
        self._resize_and_follow()

    def _release(self) -> None:
        """Show what was held back: the user follows the newest rows again."""
        held = list(self._held)
        self._held.clear()
        self.unseen = 0
        self._append(held)

    def _resize_and_follow(self) -> None:
        set_virtual_size(self, Size(0, len(self._rows)))  # no layout of the screen per paint
        if self.following:
            self._scroll_quietly(max(0, len(self._rows) - self.scrollable_content_region.height))
            self.refresh()

    def _scroll_quietly(self, y: float) -> None:
        self._programmatic += 1
        try:
            self.scroll_to(y=y, animate=False, force=True)
        finally:
            self._programmatic -= 1

    # --- follow, pause -----------------------------------------------------------------------

    def follow(self) -> None:
        """Stick to the newest row again (and resume if paused)."""
        self.paused = False
        self.following = True
        moved = self.cursor is not None
        self.cursor = None
        self._release()
        self._update_subtitle()
        if moved:
            self.post_message(self.CursorMoved(self, None))

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if not paused and self.following:
            self._release()
        self._update_subtitle()

    def on_resize(self) -> None:
        self._strips.clear()
        if self.following:
            self._resize_and_follow()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._programmatic:
            return
        if new_value < old_value and new_value < self.max_scroll_y:
            self.following = False
        elif (
            new_value >= self.max_scroll_y
            and self.cursor is None
            and not self.paused
            and not self.following
        ):
            self.following = True  # scrolled back to the bottom: follow again
            self._release()
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        state = (self.paused, self.following, self.unseen, self.loading)
        if state == self._subtitle_state:
            return
        self._subtitle_state = state
        if self.loading:
            text = Text("loading…", style="italic")
        elif self.paused:
            text = Text.assemble(("‖ paused", "bold"), f" · {self.unseen:,} new · space resumes")
        elif not self.following and self.unseen:
            text = Text.assemble((f"↓ {self.unseen:,} new", "bold"), " · f follows")
        elif not self.following:
            text = Text("f follows the newest", style="dim")
        else:
            text = Text("following", style="dim")
        self.border_subtitle = text

    # --- cursor --------------------------------------------------------------------------------

    def _move_cursor(self, index: int | None) -> None:
        if not self._rows:
            return
        last = self._first + len(self._rows) - 1
        if index is not None:
            index = max(self._first, min(last, index))
        if index == self.cursor:
            return
        self.cursor = index
        if index is not None:
            self.following = False
            line = index - self._first
            height = self.scrollable_content_region.height
            if line < self.scroll_y:
                self._scroll_quietly(line)
            elif line >= self.scroll_y + height:
                self._scroll_quietly(line - height + 1)
        self._update_subtitle()
        self.refresh()
        self.post_message(self.CursorMoved(self, self.selected))

    def _bottom_visible(self) -> int:
        height = self.scrollable_content_region.height
        line = min(len(self._rows) - 1, int(self.scroll_y) + height - 1)
        return self._first + max(0, line)

    def action_cursor_up(self) -> None:
        if self.cursor is None:
            self._move_cursor(self._bottom_visible())
        else:
            self._move_cursor(self.cursor - 1)

    def action_cursor_down(self) -> None:
        if self.cursor is None:
            self._move_cursor(self._bottom_visible())
        else:
            self._move_cursor(self.cursor + 1)

    def action_page_up(self) -> None:
        step = max(1, self.scrollable_content_region.height - 1)
        start = self._bottom_visible() if self.cursor is None else self.cursor
        self._move_cursor(start - step)

    def action_page_down(self) -> None:
        step = max(1, self.scrollable_content_region.height - 1)
        start = self._bottom_visible() if self.cursor is None else self.cursor
        self._move_cursor(start + step)

    def action_first(self) -> None:
        self._move_cursor(self._first)

    def action_follow(self) -> None:
        self.follow()

    def action_open(self) -> None:
        row = self.selected or self.latest
        if row is not None:
            if self.cursor is None:
                self._move_cursor(self._first + len(self._rows) - 1)
            self.post_message(self.Opened(row))

    async def _on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        line = int(self.scroll_y) + offset.y
        if 0 <= line < len(self._rows):
            self._move_cursor(self._first + line)

    # --- drawing -------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips.clear()

    def invalidate(self) -> None:
        """Forget rendered lines (the theme changed)."""
        self._strips.clear()
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        line = int(self.scroll_y) + y
        base = self.rich_style
        if not 0 <= line < len(self._rows):
            if not self._rows and 0 <= line - 1 < len(self.empty_hint):
                hint = self.empty_hint[line - 1]
                muted = base + self.get_component_rich_style("event-stream--time")
                return (
                    Strip([Segment(" " + hint, muted)])
                    .extend_cell_length(width, base)
                    .crop(0, width)
                )
            return Strip.blank(width, base)
        index = self._first + line
        selected = index == self.cursor
        key = (index, width, selected)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._render_row(self._rows[line], width, selected, base)
            self._strips[key] = strip
        return strip

    def _render_row(self, row: EventRow, width: int, selected: bool, base: Style) -> Strip:
        style_of = self.get_component_rich_style
        # The cursor style goes on last so the whole row reads as selected, not just its name.
        cursor = style_of("event-stream--cursor") if selected else Style()
        millis = width >= 80  # at high rates whole seconds all read the same
        name_cells = max(10, min(28, width // 4))
        user_cells = USER_CELLS if width >= 80 else 8
        time_text = clock_time(row.received_at, millis)
        segments = [Segment(time_text, base + style_of("event-stream--time") + cursor)]
        if row.valid:
            segments.append(Segment("   ", base + cursor))
        else:
            mark_style = base + style_of("event-stream--invalid") + cursor
            segments.append(Segment(f" {INVALID_MARK} ", mark_style))
        name_style_ = base + self._name_style(row) + cursor
        segments.append(Segment(padded(row.name, name_cells), name_style_))
        user = row.user_id or row.anonymous_id or "-"
        user_style = base + style_of("event-stream--user") + cursor
        segments.append(Segment(f" {padded(user, user_cells)} ", user_style))
        used = len(time_text) + 3 + name_cells + user_cells + 2
        rest = width - used
        if rest > 0:
            if row.omitted and not row.properties:
                summary = f"{{… {row.omitted:,} bytes}}"
            else:
                summary = summarize(row.properties, rest + 1)
            summary_style = base + style_of("event-stream--summary") + cursor
            segments.append(Segment(fit(summary, rest), summary_style))
        strip = Strip(segments)
        return strip.extend_cell_length(width, base + cursor).crop(0, width)

    def _name_style(self, row: EventRow) -> Style:
        style = name_style(row.name, self.dark)
        return style + Style(bold=True) if not row.valid else style
