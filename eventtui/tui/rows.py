"""How one event reads in a single line: time, colour of its name, a short summary of properties.

Pure formatting over `EventRow`s, shared by the stream and the counters. Every string from the
event goes through `sanitize` before it is returned.

May import: rich (styles), msgspec, store (EventRow), text.
"""

from __future__ import annotations

import time
import zlib
from functools import lru_cache
from typing import Any, Final

import msgspec
from rich.style import Style

from eventtui.text import clean

# Distinct hues readable on dark and light themes; a name keeps its colour across runs because
# the index comes from crc32, not Python's per-process salted hash().
DARK_PALETTE: Final = (
    "#61afef",
    "#98c379",
    "#e5c07b",
    "#c678dd",
    "#56b6c2",
    "#d19a66",
    "#ff79c6",
    "#8be9fd",
    "#a6e22e",
    "#bd93f9",
    "#f4a261",
    "#7ee0b5",
)
LIGHT_PALETTE: Final = (
    "#0b5cad",
    "#2e7d32",
    "#8a6d00",
    "#7b1fa2",
    "#00796b",
    "#b35900",
    "#ad1457",
    "#01579b",
    "#558b2f",
    "#4527a0",
    "#8d4004",
    "#00695c",
)

_decode: Final = msgspec.json.Decoder().decode


def name_style(name: str, dark: bool = True) -> Style:
    return _name_style(name, dark)


@lru_cache(maxsize=4096)
def _name_style(name: str, dark: bool) -> Style:
    palette = DARK_PALETTE if dark else LIGHT_PALETTE
    return Style(color=palette[zlib.crc32(name.encode("utf-8", "replace")) % len(palette)])


def clock_time(epoch: float, millis: bool = False) -> str:
    """Local wall-clock time of day, as the developer's other tools show it."""
    text = time.strftime("%H:%M:%S", time.localtime(epoch))
    return f"{text}.{int(epoch * 1000) % 1000:03d}" if millis else text


def age(seconds: float) -> str:
    """A short, ticking age: 4s, 12m, 3h, 2d."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def summarize(properties: str, max_chars: int = 160) -> str:
    """``plan=pro cart_total=49.5 coupon=SPRING`` from a properties JSON object, cleaned.

    Stops once `max_chars` are written, so a 500 KB payload costs no more than a small one.
    """
    if not properties or properties == "{}":
        return ""
    if len(properties) > 64 * 1024:
        return f"{{… {len(properties):,} bytes}}"
    try:
        value = _decode(properties)
    except (msgspec.DecodeError, RecursionError):
        return clean(properties[:max_chars])
    if not isinstance(value, dict):
        return clean(_scalar(value))
    parts: list[str] = []
    size = 0
    for key, item in value.items():
        part = f"{key}={_scalar(item)}"
        parts.append(part)
        size += len(part) + 1
        if size >= max_chars:
            break
    return clean(" ".join(parts))


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:39] + "…"
        return text if text and " " not in text and "=" not in text else f'"{text}"'
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return f"{{…{len(value)}}}"
    if isinstance(value, list):
        return f"[…{len(value)}]"
    if isinstance(value, float):
        text = repr(value)
        return text if len(text) <= 10 else f"{value:.6g}"
    return str(value)
