"""The one sanitiser for untrusted text: everything an event carries passes here before a terminal.

Event names, user ids, property values, validation errors and a collector's replies come from
whoever can reach the collector. Escape sequences in that text are a known attack on log viewers
(OSC 52 writes the clipboard, ESC ] 8 forges links, bidi overrides reorder what you read). The CLI
prints through `clean`; the TUI builds its Rich `Text` from the same rules (`tui/sanitize.py`).

What is replaced (Unicode categories Cc, Cf, Cs, Zl, Zp):
- C0 controls, DEL and C1 controls (ESC, CSI, OSC, NUL, BEL, ...) -> ``\\x1b`` style escapes,
  with ``\\t``, ``\\n``, ``\\r`` for the common three;
- format characters: bidi embeddings/overrides/isolates, zero-width spaces and joiners (but a
  joiner between two emoji, which makes them one), soft hyphens, BOMs, tag characters ->
  ``\\u202e`` style escapes, so look-alike names stay distinct;
- line and paragraph separators -> escapes (a row must stay one row);
- lone surrogates -> U+FFFD (they cannot be encoded for the terminal at all).

May import: the standard library only (no Rich, no Textual: every command may print through it).
"""

from __future__ import annotations

import re
from typing import Final

# Generated from unicodedata (categories Cc, Cf, Cs, Zl, Zp) and checked against it by a test;
# 13430-1343F covers the Egyptian format controls that newer Unicode versions add.
_UNSAFE_RANGES: Final = (
    "\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e"
    "\u200b\u200c\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
# The zero-width joiner (U+200D) is one of them, except between two emoji, where it joins them
# into one (👨‍👩‍👧): escaped there, a family showed as three people and two `\u200d`.
_EMOJI: Final = "\u2600-\u27bf\u2b00-\u2bff\ufe0f\U0001f000-\U0001faff"
UNSAFE: Final = re.compile(f"[{_UNSAFE_RANGES}]|(?<![{_EMOJI}])\u200d|\u200d(?![{_EMOJI}])")

_NAMED: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


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
