"""The SQLite store: schema and migrations, the writer thread, readers.

The store is the source of truth: the collector writes it through one `Writer`; every viewer reads
committed rows through a `Reader`.
"""

from eventtui.store.reader import EventRow, Reader, SessionRow
from eventtui.store.schema import SCHEMA_VERSION, StoreError, connect, default_db_path, store_size
from eventtui.store.writer import Commit, Reject, Submission, Writer

__all__ = [
    "SCHEMA_VERSION",
    "Commit",
    "EventRow",
    "Reader",
    "Reject",
    "SessionRow",
    "StoreError",
    "Submission",
    "Writer",
    "connect",
    "default_db_path",
    "store_size",
]
