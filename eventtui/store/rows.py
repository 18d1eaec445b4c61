"""What a read of the store gives back: one row type for a stored event, one for a session.

`EventRow` is built in one place (`event_rows` from the cursor's tuples of `ROW_SELECT`,
`light_rows` from those of `LIGHT_SELECT`), so every viewer sees the same shape: `valid` is a
bool, and `omitted` says whether the payload stayed in the store. `SessionRow` is a session with
its counts.

May import: sqlite3 (a column converter), msgspec, model (the event object rebuilt from columns).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import msgspec

from eventtui.model import event_object, payload_of

# The `events` table's columns, in order: the schema's contract (a copy between stores uses it).
EVENT_COLUMNS: Final = (
    "id, session_id, received_at, sent_at, name, type, user_id, anonymous_id, message_id, client,"
    " properties, context, valid, errors, extra, absent, source"
)
# The same for a store of schema 2 (before `absent`), read without migrating it.
EVENT_COLUMNS_V2: Final = EVENT_COLUMNS.replace(", absent", ", 0 AS absent")
# `valid` as a bool, converted by sqlite3 itself while it builds the row (a connection opened with
# `DETECT_TYPES`): converting it in Python cost 6% of export throughput (benchmarks/query.py).
DETECT_TYPES: Final = sqlite3.PARSE_COLNAMES
_VALID_CONVERTER: Final = "eventtui_valid"
sqlite3.register_converter(_VALID_CONVERTER, lambda stored: stored != b"0")
_VALID_AS_BOOL: Final = f'valid AS "valid [{_VALID_CONVERTER}]"'
# A whole row: the columns, and 0 for `omitted`.
ROW_SELECT: Final = EVENT_COLUMNS.replace(" valid,", f" {_VALID_AS_BOOL},") + ", 0"
ROW_SELECT_V2: Final = EVENT_COLUMNS_V2.replace(" valid,", f" {_VALID_AS_BOOL},") + ", 0"
# What a reader that only counts and judges events needs (the monitor, `check`): the rest of the
# row stays in the store. Six columns, the row filled in Python: 1.3 us a row where selecting all
# sixteen (constants for the payload) cost 2.4 us (benchmarks/replay.py).
LIGHT_SELECT: Final = f"id, session_id, received_at, name, {_VALID_AS_BOOL}, errors"
# The reserved top-level key of an exported event: what the store added to the producer's event.
META_KEY: Final = "eventtui"
_encoder: Final = msgspec.json.Encoder()


class EventRow(NamedTuple):
    """A stored event as viewers see it.

    A NamedTuple, built straight from the cursor's tuples: at 30k events/s the TUI feed spent
    4.3 us per row building a frozen dataclass, 2.1 us for this.
    """

    id: int
    session_id: int
    received_at: float
    sent_at: float | None
    name: str
    type: str
    user_id: str | None
    anonymous_id: str | None
    message_id: str | None
    client: str | None
    properties: str
    context: str
    valid: bool
    errors: str | None
    extra: str | None
    # The fields the producer did not send (model.ABSENT_* bits): stored with their defaults.
    absent: int = 0
    # The protocol it arrived in (`model.StoredEvent.source`); None when stored before version 4.
    source: str | None = None
    # Bytes of payload (properties, context, extra) left in the store: 0 when the row is whole;
    # -1 for a light row (`light_rows`: only id, session_id, received_at, name, valid and errors
    # were read; the rest is empty); else a large payload the TUI's stream keeps out of memory
    # (the payload pane asks for the whole row when it shows it).
    omitted: int = 0

    def payload(self) -> dict[str, Any]:
        """The event object as the producer sent it."""
        return payload_of(self)

    def error_list(self) -> list[str]:
        """The validation errors; text that is not a JSON list (a hand-edited store) as one error."""
        if not self.errors:
            return []
        try:
            found = json.loads(self.errors)
        except ValueError:
            return [self.errors]
        return [str(e) for e in found] if isinstance(found, list) else [str(found)]


_new_row = tuple.__new__


def event_row(values: Sequence[Any]) -> EventRow:
    """One row of `ROW_SELECT` (read with `DETECT_TYPES`) as an `EventRow`."""
    # tuple.__new__ skips the NamedTuple's keyword handling: the columns come in field order.
    return _new_row(EventRow, values)


def event_rows(values: Iterable[Sequence[Any]]) -> list[EventRow]:
    return [_new_row(EventRow, v) for v in values]


def light_rows(values: Iterable[Sequence[Any]]) -> list[EventRow]:
    """Rows of `LIGHT_SELECT` as `EventRow`s without their payload (`omitted` -1)."""
    return [
        _new_row(
            EventRow,
            (i, s, at, None, n, "", None, None, None, None, "", "", v, e, None, 0, None, -1),
        )
        for i, s, at, n, v, e in values
    ]


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session and what it holds."""

    id: int
    label: str | None
    started_at: float
    ended_at: float | None
    source: str
    meta: dict[str, Any]
    events: int
    rejects: int

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "source": self.source,
            "events": self.events,
            "rejects": self.rejects,
            "duplicates": self.meta.get("duplicates", 0),
        }


@dataclass(frozen=True, slots=True)
class NameCounts:
    """One event name's counts in a span of the store, so counters start true on attach."""

    name: str
    total: int
    invalid: int
    last_seen: float
    # (epoch minute, count) for the sparkline window; (epoch second, count) for the rate window.
    minutes: Sequence[tuple[int, int]] = ()
    seconds: Sequence[tuple[int, int]] = ()


@dataclass(frozen=True, slots=True)
class MonitorHistory:
    """What a live view starts from (`Reader.monitor_history`): the store's counts per name, and
    its recent events without payload, so counters, deadlines, learned cadence and plan results
    continue from the stored history instead of from the moment the view opened."""

    counts: Sequence[NameCounts]
    # Oldest first; every stored event received after `recent_from` is among them.
    recent: Sequence[EventRow]
    recent_from: float


def export_line(
    id_: int,
    session_id: int,
    received_at: float,
    sent_at: float | None,
    name: str,
    type_: str,
    user_id: str | None,
    anonymous_id: str | None,
    message_id: str | None,
    client: str | None,
    properties: str,
    context: str,
    valid: bool,
    errors: str | None,
    extra: str | None,
    absent: int,
    source: str | None,
    omitted: int,
) -> bytes:
    """One stored row (an `EventRow`'s fields, in order) as a line of `eventtui export`'s format
    (`transfer.py` describes it; the HTTP test API answers with the same objects)."""
    # Unpacked, not read by attribute: a NamedTuple's attribute access costs more than the call.
    obj = event_object(
        name=name,
        type_=type_,
        properties=None,
        context=None,
        user_id=user_id,
        anonymous_id=anonymous_id,
        message_id=message_id,
        sent_at=sent_at,
        extra=extra,
        absent=absent,
    )
    # event_object would decode properties and context only to have them encoded again; the
    # stored JSON is what the encoder writes, so it is spliced in raw (about 2x the throughput).
    if properties and "properties" in obj:
        obj["properties"] = msgspec.Raw(properties)
    if context and "context" in obj:
        obj["context"] = msgspec.Raw(context)
    meta: dict[str, Any] = {
        "id": id_,
        "session_id": session_id,
        "received_at": received_at,
        "sent_at": sent_at,
        "client": client,
        "valid": valid,
        "errors": msgspec.Raw(errors) if errors else None,
    }
    if source is not None:
        meta["source"] = source
    if META_KEY in obj:
        meta["shadowed"] = obj[META_KEY]
    obj[META_KEY] = meta
    return _encoder.encode(obj) + b"\n"
