"""Untrusted text as the TUI draws it: Rich `Text` built with the one sanitiser (`eventtui.text`).

Textual/Rich markup in event data would run actions (``[@click=app.quit]``), and escape sequences
would be obeyed by the terminal. So every widget showing event data builds `Text` objects (never
markup strings) from text that went through `clean`, and cuts it to its column with `fit`;
`clean_text` shows each replaced character in a style of its own.

May import: rich (text and cell widths only), eventtui.text.
"""

from __future__ import annotations

from typing import Final

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text

from eventtui.text import UNSAFE, clean, escape_char

ELLIPSIS: Final = "…"

# Escapes are shown in a style of their own so that a literal backslash-x typed by a producer and
# a replaced control character do not look the same.
ESCAPE_STYLE: Final = Style(color="bright_magenta", italic=True)


def clean_text(text: str, style: Style | str = "", *, max_chars: int | None = None) -> Text:
    """A `Text` of untrusted `text`: never parsed as markup, escapes styled to stand out."""
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars]
        cut = True
    else:
        cut = False
    out = Text(style=style, no_wrap=False, end="")
    position = 0
    for match in UNSAFE.finditer(text):
        if match.start() > position:
            out.append(text[position : match.start()])
        out.append(escape_char(match.group()), ESCAPE_STYLE)
        position = match.end()
    if position < len(text):
        out.append(text[position:])
    if cut:
        out.append(ELLIPSIS, "dim")
    return out


def fit(text: str, cells: int) -> str:
    """`text` cut to at most `cells` terminal cells, ending in an ellipsis when it was cut.

    Clean first: escapes are wider than what they replace, and must be counted.
    """
    if cells <= 0:
        return ""
    # Every character is at most two cells wide, so a long string is sliced before measuring;
    # zero-width characters can still make the slice short of `cells`, which only pads less.
    head = text[: cells * 2 + 1]
    if len(head) == len(text) and cell_len(head) <= cells:
        return text
    return set_cell_size(head, cells - 1) + ELLIPSIS


def shown(text: str, cells: int) -> str:
    """Untrusted `text` made safe and cut to `cells` cells: `clean` then `fit`, on a bounded slice.

    A 10,000-character name costs the same as a short one: only what can show is cleaned.
    """
    if cells <= 0:
        return ""
    head = text[: cells * 2 + 2]
    safe = fit(clean(head), cells)
    if len(head) < len(text) and not safe.endswith(ELLIPSIS):
        # Zero-width characters let the slice fit; the text was still longer than what shows.
        safe = set_cell_size(safe, cells - 1) + ELLIPSIS
    return safe


def padded(text: str, cells: int) -> str:
    """Untrusted `text` in exactly `cells` cells: `shown`, then padded with spaces."""
    return set_cell_size(shown(text, cells), cells)
