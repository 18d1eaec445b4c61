"""PayloadPane: the selected event as highlighted, pretty JSON, with its validation errors.

The JSON is built token by token into a `Text` (see `jsonview`), never parsed from markup, with
depth, string length and total size capped: the pane stays responsive on any payload. What `c`
copies is the same JSON without the caps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from eventtui.pii import PII_PREFIX
from eventtui.store import EventRow
from eventtui.tui.jsonview import HangingIndent, JsonStyles, hanging, to_json, to_text
from eventtui.tui.rows import clock_time
from eventtui.tui.sanitize import clean_text


def payload_of(row: EventRow) -> object:
    """The event object as sent, or (when it cannot be decoded: too deep) its raw columns."""
    try:
        return row.payload()
    except (ValueError, RecursionError):
        return {
            "event": row.name,
            "type": row.type,
            "properties (raw, too deeply nested to format)": row.properties[:20_000],
            "context (raw)": row.context[:20_000],
        }


def copy_text(row: EventRow) -> str:
    """The payload as JSON for the clipboard: complete, with control characters escaped."""
    return to_json(payload_of(row))


class PayloadPane(VerticalScroll, can_focus=True):
    """See the module docstring."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "payload-pane--key",
        "payload-pane--string",
        "payload-pane--number",
        "payload-pane--literal",
        "payload-pane--punctuation",
        "payload-pane--error",
        "payload-pane--warning",
        "payload-pane--muted",
    }
    DEFAULT_CSS = """
    PayloadPane {
        background: $surface;
        & > Static { width: 1fr; }
        & > .payload-pane--key { color: $text-primary; text-style: bold; }
        & > .payload-pane--string { color: $text-success; }
        & > .payload-pane--number { color: $text-warning; }
        & > .payload-pane--literal { color: $text-accent; text-style: italic; }
        & > .payload-pane--punctuation { color: $text-muted; }
        & > .payload-pane--error { color: $text-error; text-style: bold; }
        & > .payload-pane--warning { color: $text-warning; text-style: bold; }
        & > .payload-pane--muted { color: $text-muted; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.row: EventRow | None = None
        self.label = ""
        self.truncated = False
        self._text = Text("No event yet.", style="dim")
        self._body = Static(self._text, id="payload-body")
        self._body_lines = (-1, 0)  # the body's height in lines, at its width, as last laid out
        # What the monitor learned about this event's name that the row itself cannot say (its
        # property types that changed): lines to show under the errors. Set by the app.
        self.notes_for: Callable[[str], list[str]] | None = None
        # Off on a stream: the row's session is the temporary mirror's, which means nothing.
        self.show_session = True

    def compose(self):  # type: ignore[no-untyped-def]
        yield self._body

    @property
    def waiting_for(self) -> int | None:
        """The id of a large event being read from the store, if any."""
        return self.row.id if self.row is not None and self.row.omitted else None

    @property
    def rendered_text(self) -> str:
        """Plain text of what the pane shows (for tests)."""
        return self._text.plain

    def show(self, row: EventRow | None, label: str = "") -> None:
        # The same event, as whole as before (a large one arrives whole after its slim row).
        same = (
            row is not None
            and self.row is not None
            and (row.id, row.omitted) == (self.row.id, self.row.omitted)
        )
        if same and label == self.label:
            return
        self.row = row
        self.label = label
        self.border_subtitle = Text(label, style="dim") if label else None
        if row is None:
            self._text = Text("No event selected.", style="dim")
        else:
            self._text = self._build(row)
        # Long lines wrap under their own indentation, not at column 0. A layout of the whole
        # screen (15-50 ms while events stream in) only when the body's height changes: following
        # a stream, the next event is mostly as many lines as the last.
        width = self._body.content_size.width
        lines = len(hanging(self._text, width).split("\n")) if width else -1
        moved = (lines, width) != self._body_lines or lines < 0
        self._body_lines = (lines, width)
        self._body.update(HangingIndent(self._text), layout=moved)
        self.scroll_home(animate=False)

    def _build(self, row: EventRow) -> Text:
        style_of = self.get_component_rich_style
        muted = style_of("payload-pane--muted")
        head = Text(end="")
        head.append(f"#{row.id} ", muted)
        head.append_text(clean_text(row.name, style="bold", max_chars=120))
        # Two short lines that wrap only in a very narrow pane (one long line wrapped mid-phrase
        # at 80 columns, and the name ran into the type).
        head.append(f" · {row.type}\n", muted)
        head.append(clock_time(row.received_at, millis=True), muted)
        if row.user_id or row.anonymous_id:
            head.append(" · user ", muted)
            head.append_text(clean_text(row.user_id or row.anonymous_id or "", max_chars=120))
        head.append(f" · session {row.session_id}\n" if self.show_session else "\n", muted)
        errors = row.error_list()
        warning_style = style_of("payload-pane--warning")
        if not row.valid or errors:
            error_style = style_of("payload-pane--error")
            head.append("✗ invalid\n" if not errors else "", error_style)
            for error in errors[:50]:
                # Personal data found at ingest is a warning, not a broken event (eventtui.pii).
                style, sign = (
                    (warning_style, "⚠ ") if error.startswith(PII_PREFIX) else (error_style, "✗ ")
                )
                head.append(sign, style)
                head.append_text(clean_text(str(error), style=style, max_chars=500))
                head.append("\n")
        for note in self.notes_for(row.name)[:20] if self.notes_for is not None else ():
            head.append("⇄ ", warning_style)
            head.append_text(clean_text(note, style=warning_style, max_chars=500))
            head.append("\n")
        if row.omitted:
            head.append(f"\nreading {row.omitted:,} bytes from the store…", muted)
            return head
        styles = JsonStyles(
            key=style_of("payload-pane--key"),
            string=style_of("payload-pane--string"),
            number=style_of("payload-pane--number"),
            literal=style_of("payload-pane--literal"),
            punctuation=style_of("payload-pane--punctuation"),
            elided=muted,
        )
        body, self.truncated = to_text(payload_of(row), styles)
        head.append("\n")
        head.append_text(body)
        if self.truncated:
            head.append("\n\n(shortened for display; c copies all of it)", muted)
        return head
