"""A tracking snapshot: what a session's events looked like, as a small file meant for review.

Like a syrupy or insta snapshot, but of tracking: per event name how many were seen and each
property path with its JSON types, whether every event had it, and its strings when they are few
(at most `MAX_VALUES` distinct); plus the order in which names first appeared. No times, ids or
session numbers: the same events always give the same bytes, and a file committed beside the code
changes only when the tracking does.

Built from a session (through the store's `Reader`) or from a JSON Lines file (`eventtui export`'s
or plain event objects); read back with `load`, which refuses a file that is not one, or one
written by a newer eventtui.

May import: store, model, shapes, pii.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from eventtui.model import EventRefused, normalise
from eventtui.pii import value_hit
from eventtui.shapes import json_type, walk
from eventtui.store import Reader
from eventtui.store.rows import META_KEY

FORMAT: Final = "eventtui-snapshot"
VERSION: Final = 1
# A "short value domain": this many distinct strings at most, each at most MAX_VALUE_CHARS long.
MAX_VALUES: Final = 20
MAX_VALUE_CHARS: Final = 80
# Paths recorded per event name; past this the name's entry says "truncated" (a runaway payload
# must not turn a reviewable file into megabytes).
MAX_PATHS: Final = 500

_decoder: Final = msgspec.json.Decoder()


class SnapshotError(Exception):
    """A file that cannot be read as a snapshot or an export; one sentence naming it."""


@dataclass
class _Path:
    types: set[str] = field(default_factory=set)
    present: int = 0  # events that had it
    occurrences: int = 0  # string values seen (an array repeats a path within one event)
    values: set[str] | None = field(default_factory=set)  # None: too many, too long or personal


@dataclass
class _Name:
    count: int = 0
    paths: dict[str, _Path] = field(default_factory=dict)
    truncated: bool = False


class Builder:
    """Events in (name and decoded properties), a snapshot out. Pure."""

    def __init__(self) -> None:
        self._names: dict[str, _Name] = {}  # insertion order is first appearance

    def add(self, name: str, properties: Any) -> None:
        entry = self._names.get(name)
        if entry is None:
            entry = self._names[name] = _Name()
        entry.count += 1
        seen: set[str] = set()
        paths = entry.paths
        for path, value in walk(properties):
            shape = paths.get(path)
            if shape is None:
                if len(paths) >= MAX_PATHS:
                    entry.truncated = True
                    continue
                shape = paths[path] = _Path()
            kind = json_type(value)
            shape.types.add(kind)
            if path not in seen:
                seen.add(path)
                shape.present += 1
            if kind == "string" and shape.values is not None:
                shape.occurrences += 1
                if len(value) > MAX_VALUE_CHARS or value_hit(value):
                    shape.values = None  # personal data never goes into a file meant for git
                elif value not in shape.values:
                    shape.values.add(value)
                    if len(shape.values) > MAX_VALUES:
                        shape.values = None

    def snapshot(self) -> dict[str, Any]:
        """The snapshot as a JSON-ready dict, keys in a fixed order."""
        events: dict[str, Any] = {}
        for name in sorted(self._names):
            entry = self._names[name]
            props: dict[str, Any] = {}
            for path in sorted(entry.paths):
                shape = entry.paths[path]
                item: dict[str, Any] = {
                    "types": sorted(shape.types),
                    "always": shape.present == entry.count,
                }
                if _is_domain(shape):
                    item["values"] = sorted(shape.values or ())
                props[path] = item
            described: dict[str, Any] = {"count": entry.count, "properties": props}
            if entry.truncated:
                described["truncated"] = True
            events[name] = described
        return {
            "format": FORMAT,
            "version": VERSION,
            "total": sum(e.count for e in self._names.values()),
            "order": list(self._names),
            "events": events,
        }


def _is_domain(shape: _Path) -> bool:
    """A small set of strings that repeat: an enum. Strings that never repeat (ids, timestamps)
    are not one, however few were seen, once there are three of them."""
    if not shape.values or shape.types - {"string", "null"}:
        return False
    return not (len(shape.values) == shape.occurrences and shape.occurrences >= 3)


def dumps(snapshot: dict[str, Any]) -> bytes:
    """The file's bytes: UTF-8 JSON, keys in the snapshot's order, one final newline; one line per
    name in `order` and per property path, so a review's diff shows what changed line by line."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    lines = ["{"]
    for key in ("format", "version", "total"):
        lines.append(f"  {one(key)}: {one(snapshot[key])},")
    order = snapshot["order"]
    lines.append('  "order": [' + ("" if order else "],"))
    lines += [f"    {one(name)}{',' * (i < len(order) - 1)}" for i, name in enumerate(order)]
    if order:
        lines.append("  ],")
    events = snapshot["events"]
    lines.append('  "events": {' + ("}" if not events else ""))
    for i, (name, entry) in enumerate(events.items()):
        lines.append(f"    {one(name)}: {{")
        lines.append(f'      "count": {one(entry["count"])},')
        if entry.get("truncated"):
            lines.append('      "truncated": true,')
        props = entry["properties"]
        lines.append('      "properties": {' + ("}" if not props else ""))
        for j, (path, shape) in enumerate(props.items()):
            lines.append(f"        {one(path)}: {one(shape)}{',' * (j < len(props) - 1)}")
        if props:
            lines.append("      }")
        lines.append("    }" + "," * (i < len(events) - 1))
    if events:
        lines.append("  }")
    lines.append("}")
    return ("\n".join(lines) + "\n").encode()


def from_session(reader: Reader, session: int) -> dict[str, Any]:
    """The snapshot of one stored session, oldest event first."""
    builder = Builder()
    for rows, _fraction in reader.pages(session=session):
        for row in rows:
            # Columns in EventRow order: name is 4, properties 10 (JSON text).
            builder.add(row[4], _decoder.decode(row[10]) if row[10] else {})
    return builder.snapshot()


def from_events(events: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    builder = Builder()
    for name, properties in events:
        builder.add(name, properties)
    return builder.snapshot()


def load(path: Path) -> dict[str, Any]:
    """A snapshot file, or the snapshot of a JSON Lines export; SnapshotError for anything else."""
    try:
        with path.open("rb") as file:
            head = file.read(4096).lstrip()
            file.seek(0)
            if head.startswith(b"{") and b'"format"' in head and FORMAT.encode() in head:
                return _read_snapshot(path, file.read())
            return from_events(_export_events(path, file))
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _read_snapshot(path: Path, data: bytes) -> dict[str, Any]:
    try:
        doc = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"{path}: not a tracking snapshot ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotError(f"{path}: not a tracking snapshot or a JSON Lines export")
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise SnapshotError(f"{path}: snapshot has no version number")
    if version > VERSION:
        raise SnapshotError(
            f"{path}: written by a newer eventtui (snapshot version {version}; this one reads"
            f" {VERSION}): upgrade eventtui"
        )
    try:
        checked: dict[str, Any] = msgspec.to_builtins(msgspec.convert(doc, _SnapshotDoc))
    except msgspec.ValidationError as exc:
        raise SnapshotError(f"{path}: not a valid tracking snapshot ({exc})") from None
    return {"format": FORMAT, "version": version, **checked}


class _PathDoc(msgspec.Struct, forbid_unknown_fields=True):
    types: list[str]
    always: bool
    values: list[str] | msgspec.UnsetType = msgspec.UNSET


class _NameDoc(msgspec.Struct, forbid_unknown_fields=True):
    count: int
    properties: dict[str, _PathDoc]
    truncated: bool | msgspec.UnsetType = msgspec.UNSET


class _SnapshotDoc(msgspec.Struct):
    """What `load` checks a snapshot file against: fields of a newer minor version are ignored."""

    total: int
    order: list[str]
    events: dict[str, _NameDoc]


def _export_events(path: Path, file: IO[bytes]) -> Iterator[tuple[str, Any]]:
    """(name, properties) of each line of a JSON Lines file; the first bad line is an error."""
    lines = 0
    for number, line in enumerate(file, 1):
        if not line.strip():
            continue
        try:
            obj = _decoder.decode(line)
        except msgspec.DecodeError:
            obj = None
        if not isinstance(obj, dict):
            raise SnapshotError(
                f"{path}, line {number}: not a tracking snapshot or a JSON Lines export"
                " (each line must be one event object)"
            )
        obj.pop(META_KEY, None)
        try:
            event = normalise(obj, client="file", received_at=0.0)
        except EventRefused as exc:
            raise SnapshotError(
                f"{path}, line {number}: not an event ({exc}); a baseline is a tracking snapshot"
                " or a JSON Lines export"
            ) from None
        lines += 1
        yield event.name, _decoder.decode(event.properties) if event.properties else {}
    if not lines:
        raise SnapshotError(f"{path}: holds no events (not a tracking snapshot or an export)")
