"""BaselinePrompt: name a tracking snapshot to compare the live events with (the `b` key).

Enter loads it (the app says what went wrong, in one line, if it is not a snapshot or an
export); an empty name stops comparing; Escape leaves things as they were.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static


class BaselinePrompt(ModalScreen[str | None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = """
    BaselinePrompt { align: center middle; }
    BaselinePrompt > Vertical {
        width: 70; max-width: 100%; height: auto; border: round $accent; background: $surface;
        padding: 0 1;
    }
    BaselinePrompt Static { color: $text-muted; }
    """

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                "Baseline: a tracking snapshot (eventtui snapshot) or an export. Enter compares,"
                " empty stops, Esc cancels.",
                markup=False,
            )
            yield Input(self.current or "tracking.snap.json", id="baseline-path")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())
