"""The shape of an event's properties: each path in them and the JSON type of its value.

One walk, shared by whatever learns or compares shapes (the tracking snapshot, the monitor's
learned type drift), so a path is spelled the same everywhere: `properties.cart.total`, an array's
elements as `properties.items[]`, and a key that would be ambiguous in that spelling (a dot, a
bracket, a quote, empty) quoted as `properties["a.b"]`.

Pure and cheap: no IO, the standard library only. May import: nothing of eventtui.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, Final

# JSON's own types. Integers and fractions are one "number": JavaScript sends 1.0 as 1, so telling
# them apart would flag drift that is only how a float happened to print.
TYPES: Final = ("string", "number", "boolean", "null", "object", "array")
# Deeper than this, a path's value is typed but not walked into: the shape of a deep tree is noise.
MAX_DEPTH: Final = 8
ROOT: Final = "properties"

_PLAIN_KEY: Final = re.compile(r"[^.\[\]\"\s]+")


def json_type(value: Any) -> str:
    """The JSON type of a decoded value."""
    cls = value.__class__
    if cls is str:
        return "string"
    if cls is bool:  # before int: a bool is an int to Python
        return "boolean"
    if cls is int or cls is float:
        return "number"
    if value is None:
        return "null"
    if cls is dict:
        return "object"
    if cls is list:
        return "array"
    return "string"  # anything else a decoder might hand back is text to JSON


def child(path: str, key: str) -> str:
    """The path of `key` inside the object at `path`."""
    if _PLAIN_KEY.fullmatch(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def walk(properties: Any, root: str = ROOT) -> Iterator[tuple[str, Any]]:
    """Every (path, value) under `properties`, parents before children; `root` itself not included.

    An array's elements all share one path (`x[]`): a shape, not a position.
    """
    if properties.__class__ is not dict:
        return
    stack: list[tuple[str, Any, int]] = [(root, properties, 0)]
    while stack:
        path, node, depth = stack.pop()
        if node.__class__ is dict:
            items: Any = ((child(path, k), v) for k, v in node.items())
        else:
            items = ((f"{path}[]", v) for v in node)
        below: list[tuple[str, Any, int]] = []
        for sub, value in items:
            yield sub, value
            if depth + 1 < MAX_DEPTH and value.__class__ in (dict, list) and value:
                below.append((sub, value, depth + 1))
        stack.extend(reversed(below))


def parent_paths(path: str) -> Iterator[str]:
    """The paths that hold `path`, nearest first (`a.b[].c` gives `a.b[]`, `a.b`, `a`)."""
    end = len(path)
    while True:
        cut = max(path.rfind(".", 0, end), path.rfind("[", 0, end))
        if cut <= 0:
            return
        # A quoted key's own dots and brackets are inside quotes; walking back over them would
        # invent parents, so a path with quotes stops at the quote.
        if path.count('"', 0, cut) % 2:
            return
        yield path[:cut]
        end = cut


def segments(path: str) -> list[str | None]:
    """The keys of a path after its root, None for an array's elements (`[]`).

    The inverse of the spelling `walk` gives: `properties.a["b.c"][].d` is ["a", "b.c", None, "d"].
    Raises ValueError for text that is not such a path.
    """
    out: list[str | None] = []
    dot = path.find(".")
    bracket = path.find("[")
    ends = [i for i in (dot, bracket) if i >= 0]
    i = min(ends) if ends else len(path)
    decoder = json.JSONDecoder()
    while i < len(path):
        if path.startswith("[]", i):
            out.append(None)
            i += 2
        elif path.startswith('["', i):
            key, end = decoder.raw_decode(path, i + 1)
            if not path.startswith("]", end):
                raise ValueError(f"not a property path: {path!r}")
            out.append(str(key))
            i = end + 1
        elif path.startswith(".", i):
            match = _PLAIN_KEY.match(path, i + 1)
            if match is None:
                raise ValueError(f"not a property path: {path!r}")
            out.append(match.group())
            i = match.end()
        else:
            raise ValueError(f"not a property path: {path!r}")
    return out
