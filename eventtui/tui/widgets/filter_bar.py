"""FilterBar: type a filter, Enter applies it, Escape (the app's binding) closes; ↑/↓ recall.

The bar only collects text and shows errors: compiling and applying belong to the app.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Static

from eventtui.tui.sanitize import clean_text


class FilterInput(Input):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "recall(-1)", "Earlier filter", show=False),
        Binding("down", "recall(1)", "Later filter", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.history: list[str] = []
        self._recall: int | None = None

    def remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        del self.history[:-100]
        self._recall = None

    def action_recall(self, step: int) -> None:
        if not self.history:
            return
        if self._recall is None:
            self._recall = len(self.history)
        self._recall = max(0, min(len(self.history), self._recall + step))
        self.value = self.history[self._recall] if self._recall < len(self.history) else ""
        self.cursor_position = len(self.value)


class FilterBar(Vertical):
    DEFAULT_CSS = """
    FilterBar {
        height: auto;
        display: none;
        background: $panel;
        &.-open { display: block; }
        & > Horizontal { height: 1; }
        & #filter-prompt { width: auto; padding: 0 1; color: $text-accent; text-style: bold; }
        & FilterInput, & FilterInput:focus {
            border: none;
            height: 1;
            padding: 0;
            background: $panel;
            width: 1fr;
        }
        & > #filter-error { color: $text-error; padding: 0 1; display: none; }
        & > #filter-error.-shown { display: block; }
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.input = FilterInput(
            placeholder="checkout  name:sign_*  plan=pro  -heartbeat  invalid    (Enter applies · Esc closes · ↑↓ history)",
            id="filter-input",
        )
        self.error = Static("", id="filter-error")

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield Static("filter:", id="filter-prompt", markup=False)
            yield self.input
        yield self.error

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def open(self, current: str) -> None:
        self.add_class("-open")
        self.input.value = current
        self.input.cursor_position = len(current)
        # Synchronously, not `focus()` (which queues behind pending keys): someone typing
        # "/plan=pro" in one burst must have every key after "/" land in the input.
        self.screen.set_focus(self.input)
        self.show_error(None)

    def close(self) -> None:
        self.remove_class("-open")
        self.show_error(None)

    def show_error(self, message: str | None) -> None:
        self.error.set_class(bool(message), "-shown")
        # The message quotes what the user typed: plain text, never markup.
        self.error.update(clean_text(f"✗ {message}") if message else "")
