"""The writer process: owns the store's write connection, on the machine's other core.

Started by `store.writer.Writer` as `python -m eventtui.store.writer_process`, it reads batches of
rows (MessagePack, length-prefixed) from one pipe, writes whatever has queued up in one transaction
(group commit), and reports each commit on another pipe. It never decides anything about events;
it only stores them. Measured: as a thread in the collector, SQLite's per-row work competed with
websocket parsing for the GIL and capped ingest at 0.4-0.6x of a bare server (benchmarks/ingest.py).

A transaction takes the write lock first (BEGIN IMMEDIATE), so a lock held by another process is
met before any row is written. A lock that stays busy is retried, with backoff, for `lock_wait`
seconds; then, as for a full disk or an I/O error, the transaction is rolled back and reported
failed, and the next one starts afresh.

It ignores SIGINT and SIGTERM: the parent decides when to stop (it flushes and closes the pipe),
so a Ctrl-C in the terminal cannot drop a batch that is about to be acknowledged. When the parent
dies (kill -9), the pipe reaches EOF and this process commits what it has and exits.

May import: sqlite3, msgspec, store.schema.
"""

from __future__ import annotations

import contextlib
import functools
import json
import signal
import sqlite3
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Final

import msgspec

from eventtui.progress import ProgressBar
from eventtui.store import rollups
from eventtui.store.schema import StoreError, connect
from eventtui.store.writer import KIND_STOP

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


# The session id is our own integer, written into the statement so that executemany takes the
# decoded rows as they are.
_INSERT_EVENT: Final = (
    "INSERT OR IGNORE INTO events (session_id, received_at, sent_at, name, type, user_id,"
    " anonymous_id, message_id, client, properties, context, valid, errors, extra, absent,"
    " source) VALUES ({session:d}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_REJECT: Final = (
    "INSERT INTO rejects (session_id, received_at, client, reason, raw)"
    " VALUES ({session:d}, ?, ?, ?, ?)"
)


# The first pause between attempts after SQLite reports the lock busy without waiting, and the
# longest (the pause doubles each time).
RETRY_PAUSE: Final = 0.005
RETRY_PAUSE_MAX: Final = 0.1


def main(
    path: str,
    source: str,
    label: str | None,
    meta: str,
    max_rows: int,
    lock_wait: float,
    inbox: Connection,
    outbox: Connection,
    resume: int | None = None,
    reopen: bool = False,
) -> None:
    """`resume`: the id of a session to continue (the previous writer process died) instead of
    starting a new one; `reopen`: it may have ended (a sink restarted: its collector's session
    goes on), and is open again, written by this process."""
    duplicates_total = 0
    try:
        # A session continued is in a store already set up: if the file is gone, it stays gone.
        # The bar draws only on a terminal, and only if a long migration reports progress.
        with ProgressBar(f"{path}: upgrading the store") as bar:
            conn = connect(_path(path), create=resume is None, progress=bar)
        if resume is None:
            cur = conn.execute(
                "INSERT INTO sessions (label, started_at, source, meta) VALUES (?, ?, ?, ?)",
                (label, time.time(), source, meta),
            )
            session = int(cur.lastrowid or 0)
        else:
            if reopen:
                conn.execute(
                    "UPDATE sessions SET ended_at = NULL,"
                    " meta = json_patch(coalesce(meta, '{}'), ?) WHERE id = ?",
                    (meta, resume),
                )
            row = conn.execute(
                "SELECT coalesce(json_extract(meta, '$.duplicates'), 0) FROM sessions"
                " WHERE id = ? AND ended_at IS NULL",
                (resume,),
            ).fetchone()
            if row is None:
                raise StoreError(f"{path}: session {resume} is no longer open in this store")
            session, duplicates_total = resume, int(row[0])
        last_id = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
    except (StoreError, sqlite3.Error) as exc:
        message = (
            str(exc) if isinstance(exc, StoreError) else f"{path}: cannot start a session ({exc})"
        )
        outbox.send_bytes(_encode(["error", message]))
        return
    outbox.send_bytes(_encode(["ready", session, last_id]))
    _set_busy_timeout(conn, lock_wait)
    insert_event = _INSERT_EVENT.format(session=session)
    insert_reject = _INSERT_REJECT.format(session=session)
    final_meta: dict[str, Any] | None = None
    while final_meta is None:
        events: list[Any] = []
        rejects: list[Any] = []
        submissions = 0
        try:
            message = _decode(inbox.recv_bytes())
            while True:
                if message[0] == KIND_STOP:
                    final_meta = message[1]
                    break
                events.extend(message[1])
                rejects.extend(message[2])
                submissions += 1
                if len(events) + len(rejects) >= max_rows or not inbox.poll(0):
                    break
                message = _decode(inbox.recv_bytes())
        except (EOFError, OSError):
            final_meta = {}  # the parent is gone: keep what arrived, end the session
        if not submissions:
            continue
        report = _retrying(
            conn,
            lock_wait,
            functools.partial(_write, conn, session, insert_event, insert_reject, events, rejects),
        )
        duplicates_total += report[1]
        # OSError: the parent is gone; the rows are committed all the same.
        with contextlib.suppress(OSError):
            outbox.send_bytes(_encode(["commit", submissions, *report]))
    meta_obj = {**json.loads(meta), **(final_meta or {}), "duplicates": duplicates_total}
    try:
        conn.execute(
            "UPDATE sessions SET ended_at = ?, meta = ? WHERE id = ?",
            (time.time(), json.dumps(meta_obj), session),
        )
    except sqlite3.Error as exc:
        print(
            f"eventtui writer: could not close session {session} in {path}: {exc}", file=sys.stderr
        )
    conn.close()
    with contextlib.suppress(OSError):
        outbox.send_bytes(_encode(["closed", duplicates_total]))


def _write(
    conn: sqlite3.Connection,
    session: int,
    insert_event: str,
    insert_reject: str,
    events: list[Any],
    rejects: list[Any],
) -> list[Any]:
    """One transaction; returns [inserted, duplicates, rejects, last_event_id, None].

    Raises sqlite3.Error with the transaction rolled back.
    """
    try:
        before = conn.total_changes
        # IMMEDIATE: the write lock now, before any work, rather than at the first INSERT.
        conn.execute("BEGIN IMMEDIATE")
        if events:
            first_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0]
            conn.executemany(insert_event, events)
        inserted = conn.total_changes - before
        if inserted == len(events):
            if events:
                # The indexes of received_at, name and valid in _INSERT_EVENT's rows.
                rollups.add_rows(conn, session, events, received_at=0, name=2, valid=10)
        else:  # some were duplicates, skipped: only the stored rows know which
            rollups.add_range(conn, first_id)
        if rejects:
            conn.executemany(insert_reject, rejects)
        duplicates = len(events) - inserted
        if duplicates:
            conn.execute(
                "UPDATE sessions SET meta = json_set(coalesce(meta, '{}'), '$.duplicates',"
                " coalesce(json_extract(meta, '$.duplicates'), 0) + ?) WHERE id = ?",
                (duplicates, session),
            )
        last_id = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        conn.execute("COMMIT")
    except sqlite3.Error:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):  # the error that matters is the first one
                conn.execute("ROLLBACK")
        raise
    return [inserted, duplicates, len(rejects), last_id, None]


def _retrying(
    conn: sqlite3.Connection, lock_wait: float, transaction: Callable[[], list[Any]]
) -> list[Any]:
    """`transaction()`, tried again while the store is locked, for at most `lock_wait` seconds.

    Returns its report, or [0, 0, 0, 0, "store write failed: <why>"]. SQLite itself waits for
    the lock at BEGIN (`busy_timeout` is `lock_wait`; it polls 1 ms to 100 ms apart); this loop
    retries what SQLite reports busy without waiting (at COMMIT, in WAL recovery), within the
    same deadline.
    """
    deadline = time.monotonic() + lock_wait
    pause = RETRY_PAUSE
    try:
        while True:
            try:
                return transaction()
            except sqlite3.Error as exc:
                if not _busy(exc):
                    return [0, 0, 0, 0, f"store write failed: {exc}"]
                if time.monotonic() + pause >= deadline:
                    return [0, 0, 0, 0, f"store write failed: {exc} (waited {lock_wait:g} s)"]
            time.sleep(pause)
            pause = min(pause * 2, RETRY_PAUSE_MAX)
            _set_busy_timeout(conn, deadline - time.monotonic())
    finally:
        if pause != RETRY_PAUSE:  # it was shortened for a retry: the next transaction waits in full
            _set_busy_timeout(conn, lock_wait)


def _set_busy_timeout(conn: sqlite3.Connection, seconds: float) -> None:
    conn.execute(f"PRAGMA busy_timeout = {max(int(seconds * 1000), 0)}")


def _busy(exc: sqlite3.Error) -> bool:
    """Another connection holds the lock: worth trying again (unlike a full disk or an I/O error)."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF  # the primary code of an extended one
    return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _path(path: str) -> Any:
    from pathlib import Path

    return Path(path)


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    args = json.loads(sys.argv[1])
    main(
        args["path"],
        args["source"],
        args["label"],
        args["meta"],
        args["max_rows"],
        args["lock_wait"],
        Connection(args["inbox"], writable=False),
        Connection(args["outbox"], readable=False),
        args.get("resume"),
        bool(args.get("reopen")),
    )
