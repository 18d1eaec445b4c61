"""What every command prints through: untrusted text made safe, times, tables.

Event names, labels, file names and a collector's replies are someone else's text: every line that
may hold some goes through `clean`, the one sanitiser (`eventtui.text`, which the TUI uses too).

May import: eventtui.text.
"""

from __future__ import annotations

from datetime import datetime
from typing import TextIO

from eventtui.text import clean

__all__ = ["clean", "count", "fmt_time", "table"]


def fmt_time(epoch: float | None) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def count(n: int, noun: str) -> str:
    """`1 event`, `2 events`."""
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def table(headers: list[str], rows: list[list[str]], out: TextIO) -> None:
    """Columns padded to their widest cell; cells are cleaned."""
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for row in rows:
        out.write(
            clean("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()) + "\n"
        )
