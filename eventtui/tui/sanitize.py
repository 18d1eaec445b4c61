"""The one sanitiser for untrusted text: everything an event carries passes here before display.

Event names, user ids, property values and validation errors come from whoever can reach the
collector. Escape sequences in that text are a known attack on log viewers (OSC 52 writes the
clipboard, ESC ] 8 forges links, bidi overrides reorder what you read), and Textual/Rich markup in it
would run actions (``[@click=app.quit]``). So every widget showing event data builds `Text` objects
(never markup strings) from text that went through `clean`, and cuts it to its column with `fit`.

What is replaced (Unicode categories Cc, Cf, Cs, Zl, Zp):
- C0 controls, DEL and C1 controls (ESC, CSI, OSC, NUL, BEL, ...) -> ``\\x1b`` style escapes,
  with ``\\t``, ``\\n``, ``\\r`` for the common three;
- format characters: bidi embeddings/overrides/isolates, zero-width spaces and joiners, soft
  hyphens, BOMs, tag characters -> ``\\u202e`` style escapes, so look-alike names stay distinct;
- line and paragraph separators -> escapes (a row must stay one row);
- lone surrogates -> U+FFFD (they cannot be encoded for the terminal at all).

May import: rich (text and cell widths only).
"""

from __future__ import annotations

import re
from typing import Final

from rich.cells import cell_len, set_cell_size
from rich.style import Style
from rich.text import Text

ELLIPSIS: Final = "…"

# Generated from unicodedata (categories Cc, Cf, Cs, Zl, Zp) and checked against it by a test;
# 13430-1343F covers the Egyptian format controls that newer Unicode versions add.
_UNSAFE_RANGES: Final = (
    "\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    "\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
UNSAFE: Final = re.compile(f"[{_UNSAFE_RANGES}]")

_NAMED: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

# Escapes are shown in a style of their own so that a literal backslash-x typed by a producer and
# a replaced control character do not look the same.
ESCAPE_STYLE: Final = Style(color="bright_magenta", italic=True)


def escape_char(ch: str, *, json: bool = False) -> str:
    """The visible stand-in for one unsafe character."""
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        return "\ufffd"
    if json:
        # Inside JSON text every unsafe character sits in a string literal, where \\uXXXX is a
        # valid escape: the result is still JSON that decodes to the same value.
        return f"\\u{code:04x}" if code <= 0xFFFF else _json_pair(code)
    if ch in _NAMED:
        return _NAMED[ch]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _json_pair(code: int) -> str:
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _replace(match: re.Match[str]) -> str:
    return escape_char(match.group())


def _replace_json(match: re.Match[str]) -> str:
    return escape_char(match.group(), json=True)


def clean(text: str, *, json: bool = False) -> str:
    """`text` with every unsafe character replaced by a visible escape (see the module docstring).

    With ``json=True`` the escapes are JSON ``\\uXXXX`` escapes, for text that is JSON already.
    """
    if not UNSAFE.search(text):
        return text
    return UNSAFE.sub(_replace_json if json else _replace, text)


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
