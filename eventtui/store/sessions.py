"""Sessions as units: label one, delete one, prune old ones (retention), copy some into a file of their own.

- `label_session`, `delete_session`: what `eventtui sessions label|delete` do.
- `prune_sessions(path, older_than)`: retention (`[store] retention`): deletes the sessions that
  *ended* longer ago than that (a running session, or one whose collector was killed before it
  could end it, is never pruned), then gives the space back (see `reclaim_space`).
- `export_store`: sessions copied, rows and ids unchanged, into a new standalone store file
  (`eventtui export --format sqlite`) that every command reads with `--db`.

Deletes go in slices of `DELETE_SLICE` rows, one short transaction each, so a collector writing to
the same store is never kept waiting for long (its commit, and so its acks, wait for the lock); the
session row goes last, so an interrupted delete is finished by running it again.

May import: sqlite3, store.schema, store.reader, store.rows, store.liveness.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NamedTuple

from eventtui.store import rollups
from eventtui.store.liveness import writer_alive
from eventtui.store.reader import Reader, no_session
from eventtui.store.rows import EVENT_COLUMNS, EVENT_COLUMNS_V2
from eventtui.store.schema import (
    ABSENT_VERSION,
    StoreError,
    connect,
    has_source_column,
    is_store_file,
)

log = logging.getLogger(__name__)

# Rows per delete transaction: ~50 ms of SQLite work (three indexes per event row).
DELETE_SLICE: Final = 5_000
# Rows per copy statement in `export_store`: progress is reported between them.
COPY_SLICE: Final = 50_000
# VACUUM rewrites the whole file (seconds per GB, and as much free disk again): only worth it when
# most of the file is free pages. Below this, SQLite reuses the free pages for new events.
VACUUM_FREE_FRACTION: Final = 0.5

_REJECT_COLUMNS: Final = "id, session_id, received_at, client, reason, raw"
_SESSION_COLUMNS: Final = "id, label, started_at, ended_at, source, meta"


class SessionError(StoreError):
    """A session operation that cannot be done as asked; one sentence naming the session."""


@dataclass(frozen=True, slots=True)
class Deleted:
    sessions: int
    events: int
    rejects: int


class Pruned(NamedTuple):
    """What retention removed (`sessions, events = prune_sessions(...)`)."""

    sessions: int
    events: int


@dataclass(frozen=True, slots=True)
class Exported:
    sessions: list[int]
    events: int
    rejects: int
    size_bytes: int


# --- label, delete -------------------------------------------------------------------------------


def label_session(path: Path, session: int, label: str | None) -> None:
    """Set (or, with None or blank text, clear) a session's label."""
    text = label.strip() if label else ""
    conn = connect(path, create=False)
    try:
        cur = conn.execute("UPDATE sessions SET label = ? WHERE id = ?", (text or None, session))
        if cur.rowcount == 0:
            raise no_session(path, session)
    finally:
        conn.close()


def delete_session(path: Path, session: int) -> Deleted:
    """Delete a session, its events and its rejects.

    Refuses a session that has not ended while the collector that writes it still runs (any
    session, not only the newest: an import or a second collector may have started a newer one).
    One left open by a collector that was killed can be deleted.
    """
    conn = connect(path, create=False)
    try:
        row = conn.execute(
            "SELECT ended_at, meta FROM sessions WHERE id = ?", (session,)
        ).fetchone()
        if row is None:
            raise no_session(path, session)
        ended_at, meta_text = row
        if ended_at is None and writer_alive(_meta(meta_text)):
            raise SessionError(
                f"session {session} has not ended: a collector is still writing it; stop it first"
            )
        return _delete(conn, [session])
    finally:
        conn.close()


def _meta(text: str | None) -> dict[str, Any]:
    try:
        meta = json.loads(text or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _delete(conn: sqlite3.Connection, sessions: Sequence[int]) -> Deleted:
    events = rejects = 0
    for session in sessions:
        events += _delete_slices(conn, "events", session)
        rejects += _delete_slices(conn, "rejects", session)
        rollups.delete_session(conn, session)
        conn.execute("DELETE FROM sessions WHERE id = ?", (session,))
    return Deleted(len(sessions), events, rejects)


def _delete_slices(conn: sqlite3.Connection, table: str, session: int) -> int:
    deleted = 0
    while True:
        # The (session_id, id) index finds each slice; autocommit makes each its own transaction.
        cur = conn.execute(
            f"DELETE FROM {table} WHERE id IN"
            f" (SELECT id FROM {table} WHERE session_id = ? LIMIT {DELETE_SLICE})",
            (session,),
        )
        deleted += cur.rowcount
        if cur.rowcount < DELETE_SLICE:
            return deleted


# --- retention -----------------------------------------------------------------------------------


def prune_sessions(
    path: Path, older_than: float, *, now: float | None = None, ids: list[int] | None = None
) -> Pruned:
    """Delete the sessions that ended more than `older_than` seconds ago; reclaim the space.

    For `[store] retention` (`config.store.retention`, seconds). A missing store is not an error
    (nothing to prune). Returns how many sessions and events were deleted; `ids`, when given,
    gets the deleted sessions' ids (the collector names them).
    """
    if older_than <= 0:
        raise SessionError("retention must be more than 0 seconds")
    if not path.exists():
        return Pruned(0, 0)
    cutoff = (time.time() if now is None else now) - older_than
    conn = connect(path, create=False)
    try:
        old = [
            int(sid)
            for (sid,) in conn.execute(
                "SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ? ORDER BY id",
                (cutoff,),
            )
        ]
        if not old:
            return Pruned(0, 0)
        deleted = _delete(conn, old)
        if ids is not None:
            ids.extend(old)
        log.info(
            "retention: deleted %d sessions (%d events) that ended before %s",
            deleted.sessions,
            deleted.events,
            time.strftime("%Y-%m-%d %H:%M", time.localtime(cutoff)),
        )
        reclaim_space(conn)
        return Pruned(deleted.sessions, deleted.events)
    finally:
        conn.close()


def reclaim_space(conn: sqlite3.Connection) -> bool:
    """After a large delete: empty the write-ahead log; VACUUM if most of the file is free pages.

    Returns True if it vacuumed. Free pages are reused for new events either way, so a store under
    a steady retention stays about one retention period big without vacuuming; the WAL, though,
    keeps the size of the delete's largest transaction until it is truncated.
    """
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    vacuumed = False
    if pages and free / pages > VACUUM_FREE_FRACTION:
        try:
            conn.execute("VACUUM")
            vacuumed = True
        except sqlite3.OperationalError as exc:  # busy readers: the space is reused anyway
            log.warning("could not vacuum the store: %s", exc)
    with contextlib.suppress(sqlite3.OperationalError):
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return vacuumed


# --- a store file of its own ---------------------------------------------------------------------


def export_store(
    source: Path,
    target: Path,
    *,
    sessions: Sequence[int] | None,
    where: str = "1",
    params: Sequence[Any] = (),
    force: bool = False,
    progress: Callable[[int, float | None], None] | None = None,
) -> Exported:
    """Copy `sessions` (None: all) into a new store file `target`: their sessions rows, their
    events matching `where` (ids unchanged), and their rejects.

    The file is written beside `target` under a temporary name and moved into place when complete,
    so `target` is never a partial store. It is refused if it exists, unless `force`. The copy is
    one read transaction of the source: a collector writing to it meanwhile does not tear it.
    A session still running is copied as it stands and ended at its last event in the copy.
    """
    check_export_target(source, target)
    if target.exists() and not force:
        raise SessionError(f"{target}: already exists; pass --force to replace it")
    with Reader(source) as reader:  # StoreError for a source that is not a usable store
        source_uri = reader.uri
        # The source is read as it is (never migrated): a store of schema 2 has no `absent`.
        source_columns = (
            EVENT_COLUMNS if reader.schema_version >= ABSENT_VERSION else EVENT_COLUMNS_V2
        )
        if sessions is None:
            sessions = [s.id for s in reader.sessions()]
        else:
            for sid in sessions:
                reader.resolve_session(sid)  # NoSuchSession
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        events, rejects = _copy(
            source, source_uri, source_columns, partial, sessions, where, params, progress
        )
        if force:
            os.replace(partial, target)
        else:
            _move_into_place(partial, target)
        return Exported(list(sessions), events, rejects, target.stat().st_size)
    finally:
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def check_export_target(source: Path, target: Path) -> None:
    """Refuse an export that would write over the store it reads, or a file SQLite keeps beside
    it (its -wal: replacing that loses the commits in it), whatever name it goes by."""
    if is_store_file(source, target):
        raise SessionError(
            f"{target}: is the store being exported ({source}) or one of its files; write the"
            " export somewhere else"
        )


def _copy(
    source: Path,
    source_uri: str,
    source_columns: str,
    target: Path,
    sessions: Sequence[int],
    where: str,
    params: Sequence[Any],
    progress: Callable[[int, float | None], None] | None,
) -> tuple[int, int]:
    try:
        conn = connect(target, create=True)
    except StoreError as exc:
        raise SessionError(str(exc)) from None
    try:
        # The URI the Reader opened it with: read-only where it cannot be written beside.
        conn.execute("ATTACH DATABASE ? AS src", (source_uri,))
        conn.execute("BEGIN")
        marks = ", ".join("?" * len(sessions))
        in_sessions = f"session_id IN ({marks})"
        conn.execute(
            f"INSERT INTO main.sessions ({_SESSION_COLUMNS})"
            " SELECT id, label, started_at,"
            "  coalesce(ended_at, (SELECT max(received_at) FROM src.events e"
            "   WHERE e.session_id = s.id), started_at),"
            "  source,"
            "  json_set(coalesce(meta, '{}'), '$.exported',"
            "   json_object('from', ?, 'at', ?, 'was_running', json(iif(ended_at IS NULL,"
            "   'true', 'false'))))"
            f" FROM src.sessions s WHERE id IN ({marks}) ORDER BY id",
            (str(source), time.time(), *sessions),
        )
        first, last = conn.execute(
            f"SELECT coalesce(min(id), 1), coalesce(max(id), 0) FROM src.events WHERE {in_sessions}",
            tuple(sessions),
        ).fetchone()
        events = 0
        # A store older than SOURCE_VERSION (read, never migrated, by a viewer) has no `source`.
        src_columns = (
            source_columns
            if has_source_column(conn, "src")
            else source_columns.replace(", source", ", NULL")
        )
        for low in range(first, last + 1, COPY_SLICE):
            high = min(last, low + COPY_SLICE - 1)
            # NOT INDEXED: walk the rowid range; the session and the filter are tested per row.
            cur = conn.execute(
                f"INSERT INTO main.events ({EVENT_COLUMNS}) SELECT {src_columns}"
                f" FROM src.events NOT INDEXED WHERE id BETWEEN ? AND ? AND {in_sessions}"
                f" AND ({where})",
                (low, high, *sessions, *params),
            )
            events += cur.rowcount
            if progress is not None:
                progress(events, (high - first + 1) / (last - first + 1))
        rollups.add_range(conn, 1)  # the new file's own: every event in it was just copied
        rejects = conn.execute(
            f"INSERT INTO main.rejects ({_REJECT_COLUMNS}) SELECT {_REJECT_COLUMNS}"
            f" FROM src.rejects WHERE {in_sessions}",
            tuple(sessions),
        ).rowcount
        conn.execute("COMMIT")
        conn.execute("DETACH DATABASE src")
        # One self-contained file to attach to a bug report: no -wal beside it. A collector that
        # later writes into it turns WAL back on when it opens it.
        conn.execute("PRAGMA journal_mode = DELETE")
    except sqlite3.Error as exc:
        raise SessionError(f"{target}: cannot write the export ({exc})") from None
    finally:
        conn.close()
    if progress is not None:
        progress(events, 1.0)
    return events, rejects


def _move_into_place(partial: Path, target: Path) -> None:
    """Rename, unless `target` appeared meanwhile: a file is never clobbered without --force."""
    try:
        os.link(partial, target)
    except FileExistsError:
        raise SessionError(f"{target}: already exists; pass --force to replace it") from None
    except OSError:  # a file system without hard links: check, then rename
        if target.exists():
            raise SessionError(f"{target}: already exists; pass --force to replace it") from None
        os.replace(partial, target)
