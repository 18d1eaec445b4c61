"""HelpScreen: every key, what the columns mean, and the filter language in one page."""

from __future__ import annotations

from typing import ClassVar, Final

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: Final = (
    ("/", "filter the stream · Enter applies · Esc closes · ↑↓ earlier filters"),
    ("space", "pause / resume the stream (new events are counted, not lost)"),
    ("f  End", "follow the newest event again"),
    ("↑ ↓ PgUp PgDn", "select an event; its payload shows beside the stream"),
    ("Home", "the oldest event in the stream"),
    ("Enter", "open the payload · on a counter: show only that name"),
    ("c", "copy the shown payload as JSON"),
    ("s", "sort counters: rate → total → last seen → name"),
    ("a", "anomalies: ongoing and recent episodes, with start, end and duration"),
    ("b", "baseline: compare with a tracking snapshot · ∅ missing vs it · ≠ changed"),
    ("r", "refused input: what the collector did not store, and why"),
    ("Tab", "move between stream, counters and payload"),
    ("ctrl+p", "command palette"),
    ("?", "this help"),
    ("q", "quit (the collector commits, acks and closes its session first)"),
)

REPLAY_KEYS: Final = (
    ("space", "pause / resume the playback (time itself stops)"),
    ("+  -", "faster / slower: 0.1x … 100x, then as fast as possible"),
    ("←  →", "back / on 10 seconds (back: counters start over, as time did)"),
    ("n", "jump to just before the next anomaly"),
)

FILTERS: Final = (
    ("checkout", "name contains"),
    ("name:checkout_*", "name glob"),
    ("plan=pro  cart.total>=100", "property compare (= != < <= > >= ~)"),
    ("context.locale=ja", "a context field (properties. is the default)"),
    ("has:coupon  user:42", "property present, user or anonymous id"),
    ("session:3  type:page  invalid", "session, call type, failed validation"),
    ('-heartbeat   a OR b   "some text"', "negate, either, anywhere in the payload"),
    ("(a OR b) -(c OR d)", "grouping: - binds first, then AND, then OR"),
    ("/  ctrl+u  Enter", "clear the filter (a name filter too): an empty filter"),
)
# Examples are padded to this: the longest one and two spaces.
_EXAMPLE_CELLS: Final = max(len(example) for example, _ in FILTERS) + 2


def help_text() -> Text:
    text = Text()
    text.append("Keys\n", "bold underline")
    for key, does in KEYS:
        text.append(f"  {key:<15}", "bold")
        text.append(f"{does}\n")
    text.append("\nReplay", "bold underline")
    text.append("  (eventtui replay)\n", "dim")
    for key, does in REPLAY_KEYS:
        text.append(f"  {key:<15}", "bold")
        text.append(f"{does}\n")
    text.append("\nFilters", "bold underline")
    text.append("  (terms are ANDed)\n", "dim")
    for example, does in FILTERS:
        text.append(f"  {example:<{_EXAMPLE_CELLS}}", "bold")
        text.append(f"{does}\n")
    text.append("\nStream\n", "bold underline")
    text.append("  ✗ marks an event that failed validation; each name keeps its colour.\n")
    text.append("\nCounters\n", "bold underline")
    text.append("  total · events in the last minute · time since the last one · 30-minute trend\n")
    text.append("  state: ✖ missing  ▼ low rate  ✗ invalid  ◷ late  ◌ quiet  ↓ ↑ rate drop/spike\n")
    text.append("         ? unplanned  ✓ recovered  · learning   (anomalies sort to the top)\n")
    text.append("\nEsc, q or ? closes this page.", "dim")
    return text


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 96; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "eventtui help"
            yield Static(help_text())

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
