"""One event against a filter, in Python: for expectations' `where` while events stream past.

The filter language compiles to SQL (filters.py). To judge a single event without a store round
trip, the compiled WHERE clause runs over that one row, given as a one-row subquery named
`events`, on a private in-memory SQLite connection. So `where` means exactly what it means in the
filter bar and `query`: one grammar, one compiler, one set of semantics (json_extract included).

May import: sqlite3, filters.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import Any, Final

from eventtui.filters import compile_filter

_COLUMNS: Final = (
    "id", "session_id", "received_at", "sent_at", "name", "type", "user_id", "anonymous_id",
    "message_id", "client", "properties", "context", "valid", "errors", "extra", "source",
)  # fmt: skip
_ROW: Final = ", ".join(f"? AS {column}" for column in _COLUMNS)

# sqlite3 connections belong to the thread that made them; each thread gets its own.
_local = threading.local()


def _connection() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = sqlite3.connect(":memory:", check_same_thread=True)
    return conn


def row_matcher(text: str) -> Callable[[Any], bool]:
    """A predicate over events (anything with the `events` columns as attributes).

    Raises FilterError for a bad filter, as `compile_filter` does.
    """
    compiled = compile_filter(text)
    sql = f"SELECT EXISTS (SELECT 1 FROM (SELECT {_ROW}) AS events WHERE {compiled.where})"

    def matches(event: Any) -> bool:
        values = [getattr(event, column, None) for column in _COLUMNS]
        return bool(_connection().execute(sql, (*values, *compiled.params)).fetchone()[0])

    return matches
