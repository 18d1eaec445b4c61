"""The store's schema, its migrations, and opening a file safely.

The schema is a public contract (README.md, "The store"): users query it with `sqlite3` or Datasette.
`PRAGMA application_id` marks a file as ours; a file that is not ours, or is corrupt, or was written
by a newer eventtui, is refused with a clear error and never modified.

May import: sqlite3, sqlite-utils (only to migrate: opening a current store must not pay its import).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

from eventtui.store import rollups

if TYPE_CHECKING:
    # Imported at run time only by `_migrate`: see there.
    import sqlite_utils

# "EvTU": marks a SQLite file as an eventtui store.
APPLICATION_ID: Final = 0x45765455
SCHEMA_VERSION: Final = 5
# The first version with the rollups (store/rollups.py); viewers read older stores without them.
ROLLUPS_VERSION: Final = 5
# The first versions with the `absent` and `source` columns (viewers read older stores too).
ABSENT_VERSION: Final = 3
SOURCE_VERSION: Final = 4

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

# Version 3: `absent`, the fields the producer did not send (bits: 1 type, 2 properties, 4 context),
# stored with their defaults ('track', '{}') in their columns; the payload pane, copy, export and
# re-send leave them out again, so they show the event as it was sent. Adding a column with a
# constant default rewrites nothing: instant on a store of any size.
_SCHEMA_V3: Final = """
ALTER TABLE events ADD COLUMN absent INTEGER NOT NULL DEFAULT 0
"""

# Version 4: the protocol each event arrived in (`source:posthog`), for the filter and the payload
# pane: "eventtui" (the websocket and POST /events), "segment", "posthog", "snowplow", "amplitude",
# "mixpanel" (README.md, "The store"). Rows stored before it have NULL: their protocol was not
# recorded. A column with no default is added without rewriting the table, and left unindexed:
# a handful of values, and every index costs each insert (see version 2).
_SCHEMA_V4: Final = """
ALTER TABLE events ADD COLUMN source TEXT
"""
# Viewers open a store without migrating it (it may be read-only, or its collector an older
# eventtui): on a store older than version 4, a temporary view of the same name stands in front
# of `events` and adds the column as NULL, so every read and filter means the same on both.
_SOURCE_SHIM: Final = "CREATE TEMP VIEW events AS SELECT *, NULL AS source FROM main.events"


# Version 5: per-session rollups (name_totals, name_minutes) that the writer keeps in the same
# transaction as the events, so that viewers' counters, trends and totals cost what the number of
# names costs, not the number of events (store/rollups.py). Built from the events on migration.

# A migration's progress: (rows done, fraction done). Only the long ones report it.
Progress = Callable[[int, float | None], None]

# MIGRATIONS[n] takes a store at version n to n + 1. Version 0 is an empty file.
MIGRATIONS: Final[list[Callable[[sqlite_utils.Database, Progress | None], None]]] = [
    lambda db, _: _run_script(db, _SCHEMA_V1),
    lambda db, _: _run_script(db, _SCHEMA_V2),
    lambda db, _: _run_script(db, _SCHEMA_V3),
    lambda db, _: _run_script(db, _SCHEMA_V4),
    lambda db, progress: rollups.build(db.conn, progress),
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


def connect(
    path: Path, *, create: bool, read_only: bool = False, progress: Progress | None = None
) -> sqlite3.Connection:
    """Open (and when `create`, make or migrate) a store; raise StoreError if it is not usable.

    `read_only` is for viewers: a store in a place this process cannot write beside (a read-only
    mount, another user's folder) is then opened read-only (`_open_read_only`). The connection
    is in autocommit mode: callers open short explicit transactions. `progress` hears how a long
    migration goes.
    """
    return _connect(path, create=create, read_only=read_only, progress=progress)[0]


def connect_for_reading(path: Path, *, detect_types: int = 0) -> tuple[sqlite3.Connection, str]:
    """`connect(path, create=False, read_only=True)`, and the URI it opened (for ATTACH).

    `detect_types` is sqlite3's (a reader names a column converter in a column's alias).
    """
    conn, uri = _connect(path, create=False, read_only=True, detect_types=detect_types)
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < SOURCE_VERSION:
            conn.execute(_SOURCE_SHIM)  # in the temp schema: the store itself is not touched
    except BaseException:
        conn.close()
        raise
    return conn, uri


def has_source_column(conn: sqlite3.Connection, schema: str = "main") -> bool:
    """Whether `schema`'s events table records each event's protocol (SOURCE_VERSION and later)."""
    return bool(conn.execute(f"PRAGMA {schema}.user_version").fetchone()[0] >= SOURCE_VERSION)


def _connect(
    path: Path,
    *,
    create: bool,
    read_only: bool,
    detect_types: int = 0,
    progress: Progress | None = None,
) -> tuple[sqlite3.Connection, str]:
    _check_file(path, create=create)
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    uri = path.absolute().as_uri()
    conn = _open(uri, path, detect_types)
    try:
        try:
            _check_ours(conn, path)
        except _CannotWriteBeside as exc:
            conn.close()
            if not read_only:
                raise StoreError(f"{path}: cannot write to the store: {exc.reason}") from None
            conn, uri = _open_read_only(path, exc.reason, detect_types)
        conn.execute("PRAGMA busy_timeout = 10000")
        if create:
            conn.execute("PRAGMA journal_mode = WAL")
            _migrate(conn, path, progress)
        # WAL + NORMAL: a commit survives a crash of this process (kill -9); a power cut may lose
        # the last transactions. FULL would fsync every commit, for every ack.
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn, uri


def _open(uri: str, path: Path, detect_types: int = 0) -> sqlite3.Connection:
    # Always a URI, so that ATTACH on this connection takes one too (store.sessions.export_store).
    try:
        return sqlite3.connect(
            uri,
            uri=True,
            isolation_level=None,
            check_same_thread=True,
            timeout=10.0,
            detect_types=detect_types,
        )
    except sqlite3.Error as exc:
        why = _unwritable(path) if not path.exists() else None
        raise StoreError(f"{path}: cannot open store ({why or exc})") from None


def _open_read_only(
    path: Path, reason: str, detect_types: int = 0
) -> tuple[sqlite3.Connection, str]:
    """A store this process cannot write beside, opened read-only, or StoreError saying why not.

    SQLite reads a WAL-mode store without write access when its -wal and -shm files exist, or
    when it may create them, or when the file is opened `immutable` (SQLite's WAL documentation,
    "Read-Only Databases"). `mode=ro` covers the first case: a store whose writer is running, or
    was killed. When the -shm cannot be created, `immutable` is safe only if the -wal holds
    nothing, since an immutable store is read from its main file alone and the log is ignored.
    Immutable also means no locking: what is read is the file as it was, and a collector that
    starts writing it later (its owner, from elsewhere) is not seen by this connection.
    """
    uri = path.absolute().as_uri() + "?mode=ro"
    conn = _open(uri, path, detect_types)
    try:
        _check_ours(conn, path)
        return conn, uri
    except _CannotWriteBeside:
        conn.close()
    except BaseException:
        conn.close()
        raise
    wal, shm = (path.with_name(path.name + suffix) for suffix in ("-wal", "-shm"))
    try:
        logged = wal.stat().st_size
    except FileNotFoundError:
        logged = 0
    except OSError as exc:
        raise StoreError(f"{path}: cannot read its log {wal.name} ({exc.strerror})") from None
    if logged:
        raise StoreError(
            f"{path}: cannot be read here: its latest commits are in {wal.name}, and SQLite"
            f" needs to create {shm.name} beside it to read them, but {reason}; copy both"
            " files to a folder you can write, or open it once where it can be written"
        )
    uri += "&immutable=1"
    conn = _open(uri, path, detect_types)
    try:
        _check_ours(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn, uri


def _unwritable(path: Path) -> str | None:
    """Why this process cannot create files beside `path` (None: it can)."""
    folder = path.absolute().parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return f"{folder} is on a read-only file system"
    except OSError:
        return None  # no such folder: SQLite's own error says more
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"this user may not write in {folder}"
    return None


def _check_file(path: Path, *, create: bool) -> None:
    """Refuse what cannot be a store before SQLite opens it (and maybe writes beside it)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        if not create:
            raise StoreError(
                f"{path}: no such store (start `eventtui collect` or pass --db)"
            ) from None
        return
    except OSError as exc:
        raise StoreError(f"{path}: cannot read store ({exc.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path}: is a folder, not a store file")
    if not stat.S_ISREG(st.st_mode):
        # A device or a pipe: SQLite would write a journal beside it (/dev/null-journal), and
        # reading a pipe's header would wait forever.
        raise StoreError(f"{path}: not a store file ({_file_kind(st.st_mode)})")
    if st.st_size > 0:
        _check_header(path)
    elif not create:
        # A reader must not set a schema up in it: that is a collector's job.
        raise StoreError(
            f"{path}: the file is empty, not an eventtui store yet"
            f" (`eventtui collect --db {path}` sets one up)"
        )


def _file_kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def _check_header(path: Path) -> None:
    try:
        with path.open("rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read store ({exc.strerror})") from None
    if header != b"SQLite format 3\x00":
        raise StoreError(f"{path}: not an eventtui store (not a SQLite file); left untouched")


class _CannotWriteBeside(StoreError):
    """SQLite could not open the store's -shm/-wal: this process may not create files there."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _check_ours(conn: sqlite3.Connection, path: Path) -> None:
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if code in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY):
            reason = _unwritable(path)
            if reason is not None:
                raise _CannotWriteBeside(reason) from None
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


def _migrate(conn: sqlite3.Connection, path: Path, progress: Progress | None) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == SCHEMA_VERSION:
        return
    # Imported only when a store needs a migration: it costs ~0.2 s of every viewer's start-up.
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    try:
        conn.execute("BEGIN IMMEDIATE")
        version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step](db, progress)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise StoreError(f"{path}: cannot set up the store schema ({exc})") from None


def store_files(path: Path) -> list[Path]:
    """The store file and the files SQLite keeps beside it, under each name it may go by."""
    names = [path.absolute(), path.resolve()]
    return [
        n.with_name(n.name + suffix) for n in names for suffix in ("", "-wal", "-shm", "-journal")
    ]


def is_store_file(store: Path, target: Path) -> bool:
    """Whether writing `target` would write over `store` or a file SQLite keeps beside it."""
    resolved = target.resolve()
    for part in store_files(store):
        if part.resolve() == resolved:
            return True
        with contextlib.suppress(OSError):  # either may not exist
            if os.path.samefile(part, target):  # a hard link: another name for the same file
                return True
    return False


def store_size(path: Path) -> int:
    """Bytes on disk: the database file and its write-ahead log."""
    total = 0
    for candidate in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):  # no WAL file yet, or removed at checkpoint
            total += candidate.stat().st_size
    return total
