"""The SQLite store, and the only package that speaks SQL.

The store is the source of truth: the collector writes it through one `Writer` (whose connection
lives in a child process, `writer_process`); every viewer reads committed rows through a `Reader`,
as `EventRow`s and `SessionRow`s (`rows`). `sessions` labels, deletes, prunes and copies whole
sessions; `schema` owns the tables, migrations and opening a file safely.
"""

from eventtui.store.reader import MAX_INT64, NoSuchSession, Reader
from eventtui.store.rows import EVENT_COLUMNS, EventRow, MonitorHistory, NameCounts, SessionRow
from eventtui.store.schema import SCHEMA_VERSION, StoreError, connect, default_db_path, store_size
from eventtui.store.writer import Commit, EventWriter, Reject, Submission, Writer, WriterStats

__all__ = [
    "EVENT_COLUMNS",
    "MAX_INT64",
    "SCHEMA_VERSION",
    "Commit",
    "EventRow",
    "EventWriter",
    "MonitorHistory",
    "NameCounts",
    "NoSuchSession",
    "Reader",
    "Reject",
    "SessionRow",
    "StoreError",
    "Submission",
    "Writer",
    "WriterStats",
    "connect",
    "default_db_path",
    "store_size",
]
