"""StatusBar: where events come from and how fast — addresses, clients, events/s, store, session.

When the collector cannot store (its store writer died), that is what the line says first.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from eventtui.text import clean
from eventtui.tui.messages import FeedStatus
from eventtui.tui.sanitize import clean_text


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" or size >= 100 else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


class StatusBar(Static):
    """One line, rebuilt only when what it says changes; the least useful parts go first when narrow."""

    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.status: FeedStatus | None = None
        self.error: str | None = None
        self.rate = 0.0
        self._said: tuple[object, ...] = ()

    def show(self, status: FeedStatus | None, rate: float, error: str | None = None) -> None:
        self.status = status
        self.error = error
        self.rate = rate
        width = self.content_region.width or 200
        key = (status, round(rate, 1), error, width)
        if key == self._said:
            return
        self._said = key
        # One line of fixed height: no layout of the whole screen for new text.
        self.update(self.line(status, rate, error, width), layout=False)

    def on_resize(self) -> None:
        self.show(self.status, self.rate, self.error)

    @staticmethod
    def line(
        status: FeedStatus | None, rate: float, error: str | None = None, width: int = 200
    ) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis", end="")
        if error:
            # Our own sentence about the store, but it quotes a path: plain text, never markup.
            text.append("✖ ", "bold red")
            text.append_text(clean_text(error, style="red"))
            return text
        if status is None:
            text.append("starting…", "dim")
            return text
        # (priority, text, style): when the line is too long, the highest priority numbers go first.
        parts: list[tuple[int, str, str]] = []
        if status.problem:
            # Still listening, but storing nothing: said first, and never "collecting".
            parts.append((0, "✖ " + clean(status.problem), "bold red"))
            parts.extend((6, address, "") for address in status.addresses)
        elif status.collecting:
            parts.append((0, "● collecting", "bold green"))
            for i, address in enumerate(status.addresses):
                parts.append((1 if i == 0 else 6, address, ""))
            if status.clients is not None:
                plural = "s" if status.clients != 1 else ""
                parts.append((3, f"{status.clients} client{plural}", ""))
        elif status.detail:
            parts.append((0, status.detail, "bold"))
        else:
            parts.append((0, f"○ not collecting ({status.mode})", "bold yellow"))
        parts.append((0, f"{rate:,.0f} ev/s", "bold"))
        if status.sampled is not None:
            # The event list shows a sample of a busy stream (the counters count every event).
            kept, seen = status.sampled
            parts.append((1, f"sampled: {kept:,} of {seen:,}/s", "bold yellow"))
        if status.detail:  # a replay says how far it is instead
            pass
        elif status.stream:  # the temporary store a stream is mirrored into: what it copied
            parts.append((4, f"{status.stored:,} copied", ""))
        else:
            parts.append((1, f"{status.stored:,} stored", ""))
            parts.append((4, human_bytes(status.size_bytes), ""))
        if status.refused:
            parts.append((2, f"{status.refused:,} refused", "red"))
        if status.stream:
            parts.append((1, f"stream {clean(status.stream)}", ""))
        elif status.session is not None:
            parts.append((3, f"session {status.session}", ""))
        if status.store_name and not status.collecting:
            parts.append((5, status.store_name, "dim"))
        # A webhook that fails means on-call is not being paged: it keeps up to half the line
        # (second only to the first part), cut short rather than dropped when the line is narrow.
        alert = "⚠ " + clean(status.alert_problem) if status.alert_problem else ""
        room = width - (min(len(alert), max(24, width // 2)) + 3 if alert else 0)
        while len(parts) > 1 and sum(len(p[1]) + 3 for p in parts) - 3 > room:
            worst = max(range(len(parts)), key=lambda i: (parts[i][0], i))
            del parts[worst]
        if alert:
            left = width - sum(len(p[1]) + 3 for p in parts)
            if len(alert) > left:
                alert = alert[: max(left - 1, 1)] + "…"
            parts.insert(1, (0, alert, "bold yellow"))
        for i, (_, words, style) in enumerate(parts):
            if i:
                text.append(" · ", "dim")
            text.append(words, style)
        return text
