"""A tracking plan inferred from what was observed: one JSON Schema per event name, and the
`[plan.events.*]` TOML lines that use them (`eventtui plan infer`).

From a snapshot (`snapshot.Builder`): each path's types, the keys every event had as `required`,
a small string domain as `enum`. Objects stay open (no `additionalProperties: false`): a plan
inferred from one session should catch a broken event, not every new property. The plan validates
the session it came from with no violations (tests/test_snapshots_and_diff.py proves it).

Pure: a snapshot in, file names and contents out. May import: shapes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from eventtui.shapes import segments

DRAFT: Final = "https://json-schema.org/draft/2020-12/schema"
_UNSAFE_FILE_CHARS: Final = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True, slots=True)
class InferredPlan:
    schemas: dict[str, tuple[str, bytes]]  # event name -> (file name, file bytes)
    toml: str  # the [plan.events."name"] tables, schema paths under `folder`


def infer(snapshot: dict[str, Any], *, folder: str) -> InferredPlan:
    """Schemas for every name of `snapshot`; the TOML names them as `folder`/file."""
    schemas: dict[str, tuple[str, bytes]] = {}
    used: set[str] = set()
    lines = ["# Inferred by `eventtui plan infer`: review, then copy into eventtui.toml."]
    for name, entry in snapshot["events"].items():
        file_name = _file_name(name, used)
        schema = event_schema(name, entry)
        schemas[name] = (
            file_name,
            (json.dumps(schema, indent=2, ensure_ascii=False) + "\n").encode(),
        )
        where = f"{folder.rstrip('/')}/{file_name}" if folder else file_name
        lines += [
            "",
            f"[plan.events.{_toml_string(name)}]",
            f"schema = {_toml_string(where)}",
            f"description = {_toml_string(_description(entry))}",
        ]
    return InferredPlan(schemas, "\n".join(lines) + "\n")


def event_schema(name: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of one name's properties."""
    root: dict[str, Any] = {"$schema": DRAFT, "title": name, "type": "object"}
    for path, shape in entry["properties"].items():
        keys = segments(path)
        node = root
        for key in keys[:-1]:
            node = _descend(node, key)
        leaf = _leaf(shape)
        last = keys[-1]
        if last is None:
            node["items"] = {**leaf, **node.get("items", {})}
        else:
            props = node.setdefault("properties", {})
            props[last] = {**leaf, **props.get(last, {})}
            # Required only at the top: "always" counts events, and a child of an object that is
            # sometimes absent is absent with it.
            if node is root and shape["always"]:
                node.setdefault("required", []).append(last)
    return root


def _descend(node: dict[str, Any], key: str | None) -> dict[str, Any]:
    below: dict[str, Any]
    if key is None:
        below = node.setdefault("items", {})
    else:
        below = node.setdefault("properties", {}).setdefault(key, {})
    return below


def _leaf(shape: dict[str, Any]) -> dict[str, Any]:
    types: list[str] = shape["types"]
    out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}
    values = shape.get("values")
    if values:
        out["enum"] = [*values, None] if "null" in types else list(values)
    return out


def _description(entry: dict[str, Any]) -> str:
    count = entry["count"]
    return f"inferred from {count:,} event{'s' * (count != 1)}"


def _file_name(name: str, used: set[str]) -> str:
    base = _UNSAFE_FILE_CHARS.sub("_", name).strip("._")[:100] or "event"
    candidate, n = f"{base}.json", 1
    while candidate.lower() in used:  # case-insensitive file systems
        n += 1
        candidate = f"{base}-{n}.json"
    used.add(candidate.lower())
    return candidate


def _toml_string(text: str) -> str:
    # JSON's string escapes (\\, \", \uXXXX, with ASCII output) are all valid in a TOML basic string.
    return json.dumps(text, ensure_ascii=True)
