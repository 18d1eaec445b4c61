"""Pretty JSON for the payload pane and the clipboard, built safely and within bounds.

The printer walks the value with an explicit stack, not recursion: a payload nested 1,000 deep
(which the collector refuses, but an imported store may hold) renders instead of crashing. The
display form caps depth, string length and total size; the copy form caps nothing and stays
valid JSON. Strings are JSON-encoded first and then cleaned with JSON escapes, so control and
bidi characters appear as ``\\u001b`` and the copy decodes to the same value.

May import: rich, text (the sanitiser).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from rich.cells import cell_len, get_character_cell_size
from rich.console import Console, ConsoleOptions, RenderResult
from rich.style import Style
from rich.text import Text

from eventtui.text import clean

_END: Final = object()


@dataclass(frozen=True)
class JsonStyles:
    """Styles for each kind of token; the payload pane fills them from its component classes."""

    key: Style | str = "bold"
    string: Style | str = ""
    number: Style | str = ""
    literal: Style | str = "italic"
    punctuation: Style | str = "dim"
    elided: Style | str = "dim italic"


@dataclass(frozen=True)
class Limits:
    max_depth: int | None = None
    max_string: int | None = None
    max_chars: int | None = None


DISPLAY_LIMITS: Final = Limits(max_depth=24, max_string=1_000, max_chars=60_000)


@dataclass
class _Printer:
    limits: Limits
    indent: str = "  "
    tokens: list[tuple[str, str]] = field(default_factory=list)
    size: int = 0
    truncated: bool = False

    def emit(self, text: str, kind: str) -> None:
        self.tokens.append((text, kind))
        self.size += len(text)

    def scalar(self, value: Any) -> None:
        if isinstance(value, str):
            limit = self.limits.max_string
            if limit is not None and len(value) > limit:
                self.emit(_string(value[:limit]), "string")
                self.emit(f" …(+{len(value) - limit:,} chars)", "elided")
                self.truncated = True
            else:
                self.emit(_string(value), "string")
        elif value is None or isinstance(value, bool):
            self.emit(json.dumps(value), "literal")
        elif isinstance(value, int | float):
            self.emit(_number(value), "number")
        else:  # not from JSON; show what it is rather than fail
            self.emit(_string(repr(value)), "string")

    def run(self, value: Any) -> None:
        stack: list[list[Any]] = []
        self.open(value, 0, stack)
        max_chars = self.limits.max_chars
        while stack:
            if max_chars is not None and self.size > max_chars:
                self.emit("\n…", "elided")
                self.truncated = True
                return
            frame = stack[-1]
            items, is_dict, depth, first = frame
            item: Any = next(items, _END)
            if item is _END:
                stack.pop()
                self.emit("\n" + self.indent * (depth - 1) + ("}" if is_dict else "]"), "punct")
                continue
            if not first:
                self.emit(",", "punct")
            frame[3] = False
            self.emit("\n" + self.indent * depth, "punct")
            if is_dict:
                key, item = item
                self.emit(_string(str(key)), "key")
                self.emit(": ", "punct")
            self.open(item, depth, stack)

    def open(self, value: Any, depth: int, stack: list[list[Any]]) -> None:
        if isinstance(value, Mapping | list | tuple):
            is_dict = isinstance(value, Mapping)
            if not value:
                self.emit("{}" if is_dict else "[]", "punct")
                return
            max_depth = self.limits.max_depth
            if max_depth is not None and depth >= max_depth:
                what = f"{len(value):,} keys" if is_dict else f"{len(value):,} items"
                self.emit("{" if is_dict else "[", "punct")
                self.emit(f"… {what} nested deeper than {max_depth} levels", "elided")
                self.emit("}" if is_dict else "]", "punct")
                self.truncated = True
                return
            self.emit("{" if is_dict else "[", "punct")
            items: Iterator[Any] = (
                iter(value.items()) if isinstance(value, Mapping) else iter(value)
            )
            stack.append([items, is_dict, depth + 1, True])
        else:
            self.scalar(value)


def _string(value: str) -> str:
    return clean(json.dumps(value, ensure_ascii=False), json=True)


def _number(value: float) -> str:
    if (isinstance(value, float) and value != value) or value in (float("inf"), float("-inf")):
        return json.dumps(str(value))
    return json.dumps(value)


def to_json(value: Any) -> str:
    """The whole value as indented JSON, with unsafe characters as JSON escapes (for copying)."""
    printer = _Printer(Limits())
    printer.run(value)
    return "".join(text for text, _ in printer.tokens)


def to_text(
    value: Any, styles: JsonStyles | None = None, limits: Limits = DISPLAY_LIMITS
) -> tuple[Text, bool]:
    """The value as highlighted JSON for display, and whether any limit cut it short."""
    styles = styles or JsonStyles()
    by_kind = {
        "key": styles.key,
        "string": styles.string,
        "number": styles.number,
        "literal": styles.literal,
        "punct": styles.punctuation,
        "elided": styles.elided,
    }
    printer = _Printer(limits)
    printer.run(value)
    text = Text(no_wrap=False, overflow="fold", end="")
    for chunk, kind in printer.tokens:
        text.append(chunk, by_kind[kind])
    return text, printer.truncated


def hanging(text: Text, width: int) -> Text:
    """`text` with each line longer than `width` cells broken there, its continuations indented two
    cells past the line's own indentation: a long string in the JSON stays under its key instead
    of wrapping to column 0. A line breaks after a space when there is one in the second half of
    the room ("· session 1" wrapped as "sessi" / "on 1"), else at the edge."""
    out = Text(end="", no_wrap=True, overflow="fold")
    for number, line in enumerate(text.split("\n", allow_blank=True)):
        if number:
            out.append("\n")
        plain = line.plain
        hang = len(plain) - len(plain.lstrip(" ")) + 2
        if line.cell_len <= width or width - hang < 10:
            out.append_text(line)  # short, or a pane too narrow to indent: as it is
            continue
        offsets, start, used, room = [], 0, 0, width
        for index, char in enumerate(plain):
            cells = get_character_cell_size(char)
            if used + cells > room:
                space = plain.rfind(" ", start + room // 2, index)
                cut = space + 1 if space > start else index
                carried = cell_len(plain[cut:index])
                if carried >= width - hang:
                    cut, carried = index, 0
                offsets.append(cut)
                start, used, room = cut, carried, width - hang
            used += cells
        for part, piece in enumerate(line.divide(offsets)):
            if part:
                out.append("\n" + " " * hang)
            out.append_text(piece)
    return out


class HangingIndent:
    """A renderable for `hanging`: the width is only known when the pane is drawn."""

    def __init__(self, text: Text) -> None:
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield hanging(self.text, options.max_width)
