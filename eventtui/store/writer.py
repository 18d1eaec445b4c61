"""The writer: the one way into the store, with its write connection in a process of its own.

Producers (the collector, import) `submit` batches from any thread. A sender thread pipes them to
the writer process (`store.writer_process`), which writes whatever has queued up in one transaction
and reports each commit; a receiver thread turns reports into `Commit`s for the listeners. Only then
may anyone acknowledge: an ack sent after a `Commit` means the events are committed.

Why a process: SQLite's per-row work in a thread competed with websocket parsing for the GIL;
in its own process it runs on the other core (benchmarks/ingest.py measures both).

May import: sqlite3, msgspec, model, store.schema, store.writer_process.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import msgspec

from eventtui.model import StoredEvent
from eventtui.store.schema import StoreError

log = logging.getLogger(__name__)

# One transaction holds at most this many rows; more waits for the next one. Large enough that
# SQLite's per-commit cost vanishes, small enough that a commit stays a few milliseconds.
MAX_BATCH_ROWS: Final = 5000

# How long a transaction waits for another process's write lock (retrying, with backoff) before it
# fails: long enough for a viewer's or a `sqlite3` shell's short write, short enough that an SDK
# (whose HTTP timeouts are 10 to 15 s) hears "500, store write failed" rather than timing out.
# Meanwhile the backlog bound stops the collector reading websocket clients.
LOCK_WAIT_SECONDS: Final = 5.0

# Messages to the writer process: [KIND_ROWS, events, rejects] or [KIND_STOP, meta].
KIND_ROWS: Final = 0
KIND_STOP: Final = 1

_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode


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


@dataclass
class Writer:
    """The store's single writer (see the module docstring). Same use from any thread."""

    path: Path
    source: str
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    max_batch_rows: int = MAX_BATCH_ROWS
    lock_wait: float = LOCK_WAIT_SECONDS

    def __post_init__(self) -> None:
        self.session_id = 0
        self.stats = WriterStats()
        self._listeners: list[Callable[[Commit], None]] = []
        # Tickets wait here in submission order, each with its submission's size in bytes; each
        # commit report says how many it covers.
        self._tickets: deque[tuple[Any, int]] = deque()
        self.pending_bytes = 0  # submitted and not yet committed (or failed)
        self._lock = threading.Lock()
        self._outgoing: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._failed: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []

    def add_listener(self, listener: Callable[[Commit], None]) -> None:
        """Call `listener` (in the receiver thread) after every transaction; keep it short."""
        self._listeners.append(listener)

    def start(self) -> int:
        """Start the writer process, open the store, record the session; returns its id.

        Raises StoreError if the store cannot be used.
        """
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        args = json.dumps({
            "path": str(self.path), "source": self.source, "label": self.label,
            "meta": json.dumps(self.meta), "max_rows": self.max_batch_rows,
            "lock_wait": self.lock_wait,
            "inbox": to_child_r, "outbox": from_child_w,
        })  # fmt: skip
        self._process = subprocess.Popen(
            [sys.executable, "-m", "eventtui.store.writer_process", args],
            pass_fds=(to_child_r, from_child_w),
            stdin=subprocess.DEVNULL,
            # Through our logging, never straight to the terminal: a TUI may own the screen.
            stderr=subprocess.PIPE,
            # Its own process group: a Ctrl-C in the terminal reaches only the parent, which
            # then flushes and stops the writer in order.
            start_new_session=True,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._inbox = Connection(from_child_r, writable=False)
        self._outbox = Connection(to_child_w, readable=False)
        crashed = False
        try:
            first = _decode(self._inbox.recv_bytes())
        except (EOFError, OSError):
            crashed = True
            first = ["error", f"{self.path}: the writer process failed to start"]
        if first[0] == "error":
            assert self._process.stderr is not None
            said = self._process.stderr.read().decode("utf-8", "replace").strip().splitlines()
            self._process.stderr.close()
            self._process.wait()
            self._inbox.close()
            self._outbox.close()
            message = first[1] + (f" ({said[-1]})" if crashed and said else "")
            raise StoreError(message)
        _, self.session_id, self.stats.last_event_id = first
        for target, name in (
            (self._send, "eventtui-writer-send"),
            (self._receive, "eventtui-writer-receive"),
            (self._relay_stderr, "eventtui-writer-stderr"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return int(self.session_id)

    def submit(self, submission: Submission) -> None:
        """Queue rows for the next transaction; thread-safe, never blocks on the disk."""
        payload = _encode([
            KIND_ROWS,
            submission.events,
            [(r.received_at, r.client, r.reason, r.raw) for r in submission.rejects],
        ])  # fmt: skip
        with self._lock:
            if self._failed is None:
                self._tickets.append((submission.ticket, len(payload)))
                self.pending_bytes += len(payload)
                self._outgoing.put(payload)
                return
        self._notify(Commit([submission.ticket], 0, 0, 0, self.stats.last_event_id, self._failed))

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, end the session, stop the writer process."""
        if self._process is None or not self._threads:
            return
        self._outgoing.put(_encode([KIND_STOP, self.meta]))
        self._outgoing.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.error("the writer process for %s did not stop; killing it", self.path)
            self._process.kill()
            self._process.wait()

    # --- threads ---------------------------------------------------------------------------------

    def _send(self) -> None:
        try:
            while (payload := self._outgoing.get()) is not None:
                self._outbox.send_bytes(payload)
        except OSError as exc:
            log.error("lost the writer process for %s: %s", self.path, exc)
        finally:
            self._outbox.close()

    def _receive(self) -> None:
        stats = self.stats
        try:
            while True:
                report = _decode(self._inbox.recv_bytes())
                if report[0] == "closed":
                    stats.duplicates = report[1]
                    return
                _, count, inserted, duplicates, rejects, last_id, error = report
                with self._lock:
                    done = [self._tickets.popleft() for _ in range(count)]
                    self.pending_bytes -= sum(size for _, size in done)
                tickets = [ticket for ticket, _ in done]
                if error is None:
                    stats.events += inserted
                    stats.duplicates += duplicates
                    stats.rejects += rejects
                    stats.commits += 1
                    stats.last_event_id = last_id
                else:
                    log.error("%s", error)
                self._notify(
                    Commit(
                        tickets,
                        inserted,
                        duplicates,
                        rejects,
                        last_id or stats.last_event_id,
                        error,
                    )
                )
        except (EOFError, OSError):
            self._fail(f"the store writer for {self.path} stopped unexpectedly")
        finally:
            self._inbox.close()

    def _relay_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        with self._process.stderr as stream:
            for line in stream:
                log.warning("store writer: %s", line.decode("utf-8", "replace").rstrip())

    def _fail(self, reason: str) -> None:
        """The writer process is gone: nothing pending was committed, and nothing more will be."""
        with self._lock:
            self._failed = reason
            tickets = [ticket for ticket, _ in self._tickets]
            self._tickets.clear()
            self.pending_bytes = 0
        log.error("%s", reason)
        if tickets:
            self._notify(Commit(tickets, 0, 0, 0, self.stats.last_event_id, reason))

    def _notify(self, commit: Commit) -> None:
        for listener in self._listeners:
            try:
                listener(commit)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("commit listener failed")
