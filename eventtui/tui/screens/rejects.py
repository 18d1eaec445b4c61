"""RejectsScreen: what the collector refused and why (the `rejects` table), newest first.

The rows are read off the UI thread (`load` opens a Reader of its own); what a client sent is
shown through the one sanitiser, as text, first bytes only: it is untrusted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, Final

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from eventtui.tui.rows import clock_time
from eventtui.tui.sanitize import clean_text

# How many rejects the view reads, and how much of what was sent each shows.
LIMIT: Final = 200
RAW_SHOWN: Final = 160


def rejects_text(rows: list[dict[str, Any]], limit: int = LIMIT) -> Text:
    text = Text(end="")
    if not rows:
        text.append("Nothing refused: every input so far was stored.\n", "dim")
    else:
        more = " (the newest " + str(limit) + ")" if len(rows) >= limit else ""
        text.append(f"{len(rows)} refused{more}, newest first\n\n", "dim")
    for row in rows:
        text.append(f"#{row['id']} ", "dim")
        text.append(clock_time(row["received_at"], millis=True), "dim")
        text.append(f" · session {row['session_id']} · ", "dim")
        text.append_text(clean_text(row["client"] or "-", max_chars=60))
        text.append("\n  ")
        text.append_text(clean_text(str(row["reason"]), style="bold", max_chars=300))
        raw = bytes(row["raw"] or b"")
        if raw:
            text.append("\n  ")
            text.append_text(
                clean_text(raw.decode("utf-8", "replace"), style="dim", max_chars=RAW_SHOWN)
            )
        text.append("\n")
    text.append("\nEsc, q or r closes this page · `eventtui rejects` prints them all.", "dim")
    return text


class RejectsScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,r", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    RejectsScreen { align: center middle; }
    RejectsScreen > VerticalScroll {
        width: 110; max-width: 100%; height: auto; max-height: 90%;
        border: round $error; background: $surface; padding: 0 1;
    }
    """

    def __init__(self, load: Callable[[], list[dict[str, Any]]] | None) -> None:
        super().__init__()
        self.load = load
        self.body = Static(Text("reading the store…", style="dim"), id="rejects-body")

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Refused input"
            yield self.body

    def on_mount(self) -> None:
        if self.load is None:
            self.body.update(Text("This view reads no store: nothing to show.", style="dim"))
        else:
            self.run_worker(self._read, thread=True, exit_on_error=False)

    def _read(self) -> None:
        assert self.load is not None
        try:
            text = rejects_text(self.load())
        except Exception as exc:  # a store gone or locked: say so, keep the app
            text = clean_text(f"cannot read the rejects: {exc}", style="bold")
        self.app.call_from_thread(self.body.update, text)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
