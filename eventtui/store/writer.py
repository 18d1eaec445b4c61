"""The writer thread: the one owner of the store's write connection.

Producers (the collector, import, demo) `submit` batches from any thread; the thread takes whatever
has queued up, writes it in one transaction with `executemany` (group commit: one fsync-free commit
covers every connection's frames), and only then reports the commit to its listeners. An ack sent
after that report means the events are committed.

May import: sqlite3, model, store.schema.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from eventtui.model import StoredEvent
from eventtui.store.schema import StoreError, connect

log = logging.getLogger(__name__)

# One transaction holds at most this many rows; more waits for the next one. Large enough that
# SQLite's per-commit cost vanishes, small enough that a commit stays a few milliseconds.
MAX_BATCH_ROWS: Final = 5000

# The session id is our own integer, written into the statement so that executemany can take the
# StoredEvent tuples as they are, without building a new tuple per row while holding the GIL.
_INSERT_EVENT: Final = (
    "INSERT OR IGNORE INTO events (session_id, received_at, sent_at, name, type, user_id,"
    " anonymous_id, message_id, client, properties, context, valid, errors, extra)"
    " VALUES ({session:d}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_REJECT: Final = (
    "INSERT INTO rejects (session_id, received_at, client, reason, raw) VALUES (?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class Reject:
    received_at: float
    client: str
    reason: str
    raw: bytes


@dataclass(slots=True)
class Submission:
    events: Sequence[StoredEvent]
    rejects: Sequence[Reject] = ()
    # Opaque to the writer: handed back to the listeners once this submission is committed.
    ticket: Any = None


@dataclass(frozen=True, slots=True)
class Commit:
    """What one transaction did; `error` is set (and nothing was stored) if it failed."""

    tickets: list[Any]
    inserted: int
    duplicates: int
    rejects: int
    last_event_id: int
    error: str | None = None


@dataclass(slots=True)
class WriterStats:
    events: int = 0
    duplicates: int = 0
    rejects: int = 0
    commits: int = 0
    last_event_id: int = 0


_STOP: Final = object()


@dataclass
class Writer:
    """Owns the write connection in its own thread; see the module docstring."""

    path: Path
    source: str
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    max_batch_rows: int = MAX_BATCH_ROWS

    def __post_init__(self) -> None:
        self.session_id = 0
        self.stats = WriterStats()
        self._queue: queue.SimpleQueue[Submission | object] = queue.SimpleQueue()
        self._listeners: list[Callable[[Commit], None]] = []
        self._ready = threading.Event()
        self._startup_error: StoreError | None = None
        self._thread = threading.Thread(target=self._run, name="eventtui-writer", daemon=True)

    def add_listener(self, listener: Callable[[Commit], None]) -> None:
        """Call `listener` in the writer thread after every transaction (keep it short)."""
        self._listeners.append(listener)

    def start(self) -> int:
        """Open the store, record the session; returns its id. Raises StoreError."""
        self._thread.start()
        self._ready.wait()
        if self._startup_error:
            raise self._startup_error
        return self.session_id

    def submit(self, submission: Submission) -> None:
        """Queue rows for the next transaction; thread-safe, never blocks."""
        self._queue.put(submission)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, end the session, close the connection."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # --- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            conn = connect(self.path, create=True)
            self.session_id = self._begin_session(conn)
        except StoreError as exc:
            self._startup_error = exc
            self._ready.set()
            return
        except sqlite3.Error as exc:
            self._startup_error = StoreError(f"{self.path}: cannot start a session ({exc})")
            self._ready.set()
            return
        self._ready.set()
        try:
            stopping = False
            while not stopping:
                batch: list[Submission] = []
                rows = 0
                item = self._queue.get()
                while True:
                    if item is _STOP:
                        stopping = True
                    else:
                        assert isinstance(item, Submission)
                        batch.append(item)
                        rows += len(item.events) + len(item.rejects)
                    if rows >= self.max_batch_rows:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self._write(conn, batch)
            self._end_session(conn)
        finally:
            conn.close()

    def _begin_session(self, conn: sqlite3.Connection) -> int:
        cur = conn.execute(
            "INSERT INTO sessions (label, started_at, source, meta) VALUES (?, ?, ?, ?)",
            (self.label, time.time(), self.source, json.dumps(self.meta)),
        )
        self.stats.last_event_id = conn.execute(
            "SELECT coalesce(max(id), 0) FROM events"
        ).fetchone()[0]
        return int(cur.lastrowid or 0)

    def _end_session(self, conn: sqlite3.Connection) -> None:
        meta = {**self.meta, "duplicates": self.stats.duplicates}
        try:
            conn.execute(
                "UPDATE sessions SET ended_at = ?, meta = ? WHERE id = ?",
                (time.time(), json.dumps(meta), self.session_id),
            )
        except sqlite3.Error as exc:
            log.error("could not close session %s in %s: %s", self.session_id, self.path, exc)

    def _write(self, conn: sqlite3.Connection, batch: list[Submission]) -> None:
        sid = self.session_id
        insert_event = _INSERT_EVENT.format(session=sid)
        event_rows = (
            batch[0].events if len(batch) == 1 else [e for sub in batch for e in sub.events]
        )
        reject_rows = [
            (sid, r.received_at, r.client, r.reason, r.raw) for sub in batch for r in sub.rejects
        ]
        tickets = [sub.ticket for sub in batch]
        try:
            before = conn.total_changes
            conn.execute("BEGIN")
            if event_rows:
                conn.executemany(insert_event, event_rows)
            inserted = conn.total_changes - before
            if reject_rows:
                conn.executemany(_INSERT_REJECT, reject_rows)
            duplicates = len(event_rows) - inserted
            if duplicates:
                conn.execute(
                    "UPDATE sessions SET meta = json_set(coalesce(meta, '{}'), '$.duplicates',"
                    " coalesce(json_extract(meta, '$.duplicates'), 0) + ?) WHERE id = ?",
                    (duplicates, sid),
                )
            last_id = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            log.error("store write failed in %s: %s", self.path, exc)
            self._notify(
                Commit(tickets, 0, 0, 0, self.stats.last_event_id, f"store write failed: {exc}")
            )
            return
        stats = self.stats
        stats.events += inserted
        stats.duplicates += duplicates
        stats.rejects += len(reject_rows)
        stats.commits += 1
        stats.last_event_id = last_id
        self._notify(Commit(tickets, inserted, duplicates, len(reject_rows), last_id))

    def _notify(self, commit: Commit) -> None:
        for listener in self._listeners:
            try:
                listener(commit)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("commit listener failed")
