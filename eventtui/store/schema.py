"""The store's schema, its migrations, and opening a file safely.

The schema is a public contract (README.md, "The store"): users query it with `sqlite3` or Datasette.
`PRAGMA application_id` marks a file as ours; a file that is not ours, or is corrupt, or was written
by a newer eventtui, is refused with a clear error and never modified.

May import: sqlite3, sqlite-utils.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Final

import sqlite_utils

# "EvTU": marks a SQLite file as an eventtui store.
APPLICATION_ID: Final = 0x45765455
SCHEMA_VERSION: Final = 2

_SCHEMA_V1: Final = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    label TEXT,
    started_at REAL NOT NULL,
    ended_at REAL,
    source TEXT NOT NULL,
    meta TEXT                      -- JSON: host, port, counts (duplicates) ...
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    received_at REAL NOT NULL,     -- epoch seconds, when the collector decoded it
    sent_at REAL,                  -- epoch seconds, the producer's `timestamp`
    name TEXT NOT NULL,
    type TEXT NOT NULL DEFAULT 'track',
    user_id TEXT,
    anonymous_id TEXT,
    message_id TEXT UNIQUE,
    client TEXT,                   -- "ws:127.0.0.1:50412", "http:127.0.0.1:50413", "import"
    properties TEXT NOT NULL DEFAULT '{}',   -- JSON object
    context TEXT NOT NULL DEFAULT '{}',      -- JSON object
    valid INTEGER NOT NULL DEFAULT 1,
    errors TEXT,                   -- JSON array of strings, NULL when valid
    extra TEXT                     -- JSON object: the producer's other top-level fields (traits, ...)
);
CREATE INDEX events_name_received ON events(name, received_at);
CREATE INDEX events_session_id ON events(session_id, id);
CREATE TABLE rejects (
    id INTEGER PRIMARY KEY,
    session_id INTEGER REFERENCES sessions(id),
    received_at REAL NOT NULL,
    client TEXT,
    reason TEXT NOT NULL,
    raw BLOB                       -- the first 4 KiB of what was sent
);
CREATE INDEX rejects_session_id ON rejects(session_id, id);
"""

# Version 2: the filter bar's first page, newest first (`name:page_view`): ~1 s on 1M events with
# (name, received_at), 0.4 ms with (name, id) (benchmarks/query.py). Indexes on user_id and
# anonymous_id were measured too and left out: they halved insert throughput (user ids arrive in
# no order), for a `user:` first page that a newest-first scan already finds quickly.
_SCHEMA_V2: Final = """
CREATE INDEX events_name_id ON events(name, id);
"""

# MIGRATIONS[n] takes a store at version n to n + 1. Version 0 is an empty file.
MIGRATIONS: Final[list[Callable[[sqlite_utils.Database], None]]] = [
    lambda db: _run_script(db, _SCHEMA_V1),
    lambda db: _run_script(db, _SCHEMA_V2),
]
assert len(MIGRATIONS) == SCHEMA_VERSION


def _run_script(db: sqlite_utils.Database, script: str) -> None:
    # Statement by statement: `executescript` would COMMIT the migration's transaction first.
    for statement in script.split(";\n"):
        if statement.strip():
            db.execute(statement)


class StoreError(Exception):
    """A store that cannot be used; the message says which file and why."""


def default_db_path() -> Path:
    """`EVENTTUI_DB`, else the per-user data file ($XDG_DATA_HOME/eventtui/events.db)."""
    env = os.environ.get("EVENTTUI_DB")
    if env:
        return Path(env)
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "eventtui" / "events.db"


def connect(path: Path, *, create: bool, detect_types: int = 0) -> sqlite3.Connection:
    """Open (and when `create`, make or migrate) a store; raise StoreError if it is not usable.

    The connection is in autocommit mode: callers open short explicit transactions.
    `detect_types` is sqlite3's (readers name a converter in a column's alias).
    """
    if not create and not path.exists():
        raise StoreError(f"{path}: no such store (start `eventtui collect` or pass --db)")
    if path.exists() and path.is_dir():
        raise StoreError(f"{path}: is a folder, not a store file")
    if path.exists() and path.stat().st_size > 0:
        _check_header(path)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(
            path,
            isolation_level=None,
            check_same_thread=True,
            timeout=10.0,
            detect_types=detect_types,
        )
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open store ({exc})") from None
    try:
        _check_ours(conn, path)
        conn.execute("PRAGMA busy_timeout = 10000")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, path)
        # WAL + NORMAL: a commit survives a crash of this process (kill -9); a power cut may lose
        # the last transactions. FULL would fsync every commit, for every ack.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read store ({exc.strerror})") from None
    if header != b"SQLite format 3\x00":
        raise StoreError(f"{path}: not an eventtui store (not a SQLite file); left untouched")


def _check_ours(conn: sqlite3.Connection, path: Path) -> None:
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"{path}: the store is corrupt or unreadable ({exc}); left untouched"
        ) from None
    if app_id == 0 and tables == 0:
        return  # a new, empty file: ours to set up
    if app_id != APPLICATION_ID:
        raise StoreError(
            f"{path}: not an eventtui store (another application's SQLite file); left untouched"
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: written by a newer eventtui (schema {version}, this one reads up to "
            f"{SCHEMA_VERSION}); upgrade eventtui"
        )


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    db = sqlite_utils.Database(conn)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](db)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreError(f"{path}: cannot set up the store schema ({exc})") from None


def store_size(path: Path) -> int:
    """Bytes on disk: the database file and its write-ahead log."""
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):  # no WAL file yet, or removed at checkpoint
            total += candidate.stat().st_size
    return total
