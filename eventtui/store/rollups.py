"""Per-session rollups of the events table, kept in the transaction that inserts the events.

`name_totals` holds, per session and name, how many events were stored, how many broke the plan,
and when the first and last arrived; `name_minutes` how many arrived in each minute. Viewers read
them instead of scanning events (counters, trends, `sessions` totals, the names a store holds), so
their cost follows the number of names and minutes, not of events (README, "The store").

Two ways to add a transaction's events, with the same result:
- `add_rows`: from the rows the writer just inserted, counted in Python. Used when every row was
  inserted (no duplicate ignored): about 1 µs a row, where reading them back costs ~6.
- `add_range`: reading back the events with ids in a range, grouped by SQLite. Used when some
  rows were duplicates (`INSERT OR IGNORE` skipped them, and only SQLite knows which), and by the
  migration that builds rollups for a store written before them.

Deleting a session deletes its rollups (`delete_session`). A test proves that rollups always
equal GROUP BY over events (tests/test_rollups.py).

May import: sqlite3.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Final

SCHEMA: Final = """
CREATE TABLE name_totals (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    name TEXT NOT NULL,
    events INTEGER NOT NULL,
    invalid INTEGER NOT NULL,
    first_at REAL NOT NULL,        -- epoch seconds: min(received_at)
    last_at REAL NOT NULL,         -- epoch seconds: max(received_at)
    PRIMARY KEY (session_id, name)
) WITHOUT ROWID;
CREATE TABLE name_minutes (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    name TEXT NOT NULL,
    minute INTEGER NOT NULL,       -- CAST(received_at / 60 AS INTEGER)
    events INTEGER NOT NULL,
    -- Minute first: viewers ask for the last 30 minutes of every name, a range of this key.
    PRIMARY KEY (minute, session_id, name)
) WITHOUT ROWID;
CREATE INDEX name_minutes_session ON name_minutes(session_id);
"""

_UPSERT_TOTALS: Final = (
    " ON CONFLICT DO UPDATE SET events = events + excluded.events,"
    " invalid = invalid + excluded.invalid, first_at = min(first_at, excluded.first_at),"
    " last_at = max(last_at, excluded.last_at)"
)
_UPSERT_MINUTES: Final = " ON CONFLICT DO UPDATE SET events = events + excluded.events"
_ADD_TOTALS: Final = (
    "INSERT INTO name_totals (session_id, name, events, invalid, first_at, last_at)"
    " VALUES (?, ?, ?, ?, ?, ?)" + _UPSERT_TOTALS
)
_ADD_MINUTES: Final = (
    "INSERT INTO name_minutes (session_id, name, minute, events) VALUES (?, ?, ?, ?)"
    + _UPSERT_MINUTES
)
_ADD_RANGE_TOTALS: Final = (
    "INSERT INTO name_totals (session_id, name, events, invalid, first_at, last_at)"
    " SELECT session_id, name, count(*), sum(valid = 0), min(received_at), max(received_at)"
    " FROM events WHERE id BETWEEN ? AND ? GROUP BY session_id, name" + _UPSERT_TOTALS
)
_ADD_RANGE_MINUTES: Final = (
    "INSERT INTO name_minutes (session_id, name, minute, events)"
    " SELECT session_id, name, CAST(received_at / 60 AS INTEGER), count(*)"
    " FROM events WHERE id BETWEEN ? AND ? GROUP BY 1, 2, 3" + _UPSERT_MINUTES
)
# Rows per statement when a migration builds rollups: progress is reported between them.
MIGRATION_SLICE: Final = 50_000


def add_rows(
    conn: sqlite3.Connection,
    session: int,
    rows: Sequence[Sequence[Any]],
    *,
    received_at: int,
    name: int,
    valid: int,
) -> None:
    """Add inserted rows of one session; `received_at`, `name`, `valid` are their column indexes."""
    totals: dict[str, list[Any]] = {}
    minutes: dict[tuple[str, int], int] = {}
    for row in rows:
        key, at = row[name], row[received_at]
        entry = totals.get(key)
        if entry is None:
            totals[key] = [session, key, 1, 0 if row[valid] else 1, at, at]
        else:
            entry[2] += 1
            if not row[valid]:
                entry[3] += 1
            if at < entry[4]:
                entry[4] = at
            elif at > entry[5]:
                entry[5] = at
        minute = (key, int(at // 60))
        minutes[minute] = minutes.get(minute, 0) + 1
    conn.executemany(_ADD_TOTALS, totals.values())
    conn.executemany(
        _ADD_MINUTES, [(session, key, minute, n) for (key, minute), n in minutes.items()]
    )


def add_range(conn: sqlite3.Connection, first_id: int, last_id: int = 2**63 - 1) -> None:
    """Add the stored events with `first_id` <= id <= `last_id`, whatever their sessions."""
    conn.execute(_ADD_RANGE_TOTALS, (first_id, last_id))
    conn.execute(_ADD_RANGE_MINUTES, (first_id, last_id))


def build(conn: sqlite3.Connection, progress: Callable[[int, float | None], None] | None) -> None:
    """Create the tables and fill them from every stored event (schema migration 2 → 3)."""
    for statement in SCHEMA.split(";\n"):
        if statement.strip():
            conn.execute(statement)
    first, last = conn.execute("SELECT min(id), max(id) FROM events").fetchone()
    if first is None:
        return
    done = 0
    for low in range(first, last + 1, MIGRATION_SLICE):
        high = min(low + MIGRATION_SLICE - 1, last)
        add_range(conn, low, high)
        done += high - low + 1
        if progress is not None:
            progress(done, (high - first + 1) / (last - first + 1))


def delete_session(conn: sqlite3.Connection, session: int) -> None:
    conn.execute("DELETE FROM name_totals WHERE session_id = ?", (session,))
    conn.execute("DELETE FROM name_minutes WHERE session_id = ?", (session,))
