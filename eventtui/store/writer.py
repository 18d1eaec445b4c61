"""The writer: the one way into the store, with its write connection in a process of its own.

Producers (the collector, import) `submit` batches from any thread. A sender thread pipes them to
the writer process (`store.writer_process`), which writes whatever has queued up in one transaction
and reports each commit; a receiver thread turns reports into `Commit`s for the listeners. Only then
may anyone acknowledge: an ack sent after a `Commit` means the events are committed.

Why a process: SQLite's per-row work in a thread competed with websocket parsing for the GIL;
in its own process it runs on the other core (benchmarks/ingest.py measures both).

A writer process that dies (kill -9, the OOM killer) is noticed by the receiver thread: whatever
it had been given and not reported as committed is refused (its clients get errors, never acks),
and a new process continues the same session, within a restart policy (`RESTART_LIMIT`); past it,
the writer stays down, `failure` says why, and `close` ends the session itself.

May import: sqlite3, msgspec, model, store.schema, store.writer_process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sqlite3
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol

import msgspec

from eventtui.model import StoredEvent
from eventtui.store.liveness import live_writer_mark
from eventtui.store.schema import StoreError, connect

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

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
    """What one transaction did; `error` is set if it failed.

    A failed transaction stored nothing, except when the writer process died (`unconfirmed`): it
    may have committed the rows before it could report, so they are neither acknowledged nor
    known to be lost (a client resends them; messageId dedupe keeps them once).
    """

    tickets: list[Any]
    inserted: int
    duplicates: int
    rejects: int
    last_event_id: int
    error: str | None = None
    unconfirmed: bool = False


@dataclass(slots=True)
class WriterStats:
    events: int = 0
    duplicates: int = 0
    rejects: int = 0
    commits: int = 0
    last_event_id: int = 0
    # Events submitted while no writer process was alive, or in flight when one died: refused to
    # their clients (never acknowledged), maybe stored if the process died between its commit
    # and its report.
    refused_events: int = 0


class EventWriter(Protocol):
    """What a collector needs of its writer: `Writer` here, or a stream publisher
    (`eventtui.stream`) that acknowledges after the stream's publish ack instead of a commit."""

    path: Path
    session_id: int
    stats: WriterStats
    restarts: int
    meta: dict[str, Any]
    pending_bytes: int

    @property
    def problem(self) -> str | None: ...

    @property
    def failure(self) -> str | None: ...

    def add_listener(self, listener: Callable[[Commit], None]) -> None: ...

    def start(self) -> int: ...

    def submit(self, submission: Submission) -> None: ...

    def close(self, timeout: float = 30.0) -> None: ...


# The restart policy: at most `restart_limit` restarts within `restart_window` seconds, the n-th
# of them after `restart_delays[n]` (the last delay repeats). A writer that dies again and again
# (a disk gone, a store that cannot be opened any more) is then left dead, and the collector
# says so instead of spinning.
RESTART_LIMIT: Final = 3
RESTART_WINDOW: Final = 60.0
RESTART_DELAYS: Final = (0.1, 0.5, 2.0)


@dataclass(eq=False)
class _Child:
    """One writer process and what talks to it: its pipes, its queue, its sender thread."""

    process: subprocess.Popen[bytes]
    inbox: Connection
    outbox: Connection
    outgoing: queue.SimpleQueue[bytes | None] = field(default_factory=queue.SimpleQueue)
    threads: list[threading.Thread] = field(default_factory=list)

    def exit_reason(self) -> str:
        """How it ended, once its report pipe is closed: "signal 9", "exit status 1"."""
        try:
            code = self.process.wait(5)
        except subprocess.TimeoutExpired:  # its pipe closed, yet it runs: stop it for good
            self.process.kill()
            self.process.wait()
            return "it stopped answering"
        return f"signal {-code}" if code < 0 else f"exit status {code}"


@dataclass
class Writer:
    """The store's single writer (see the module docstring). Same use from any thread.

    If the writer process dies (kill -9, out of memory), what was in flight is refused and a new
    process continues the same session, within the restart policy above; each restart is logged.
    `problem` says why nothing can be stored right now; `failure`, why nothing will be any more.
    """

    path: Path
    source: str
    label: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    max_batch_rows: int = MAX_BATCH_ROWS
    restart_limit: int = RESTART_LIMIT
    restart_window: float = RESTART_WINDOW
    restart_delays: tuple[float, ...] = RESTART_DELAYS
    lock_wait: float = LOCK_WAIT_SECONDS
    # Continue this session, even if it has ended, instead of starting one (a sink's restart
    # continues each collector's session); None: a new session.
    reopen: int | None = None

    def __post_init__(self) -> None:
        self.session_id = 0
        self.stats = WriterStats()
        self.restarts = 0
        self._listeners: list[Callable[[Commit], None]] = []
        # Tickets wait here in submission order, each with its submission's size in bytes and
        # number of events; each commit report says how many it covers.
        self._tickets: deque[tuple[Any, int, int]] = deque()
        self.pending_bytes = 0  # submitted and not yet committed (or failed)
        self._lock = threading.Lock()
        self._child: _Child | None = None
        # Set while no writer process is alive (`problem`); `_failure` once none will be again.
        self._down: str | None = None
        self._failure: str | None = None
        self._closing = threading.Event()
        self._recent_restarts: deque[float] = deque()  # when each restart began (monotonic)
        self._ended = False
        self._supervisor: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        """The writer process's id, while one runs."""
        child = self._child
        return child.process.pid if child is not None and self._down is None else None

    @property
    def problem(self) -> str | None:
        """Why nothing can be stored now (the writer is restarting, or dead), else None."""
        return self._down

    @property
    def failure(self) -> str | None:
        """How the writer died past the restart policy, if it did: nothing can be stored since."""
        return self._failure

    def add_listener(self, listener: Callable[[Commit], None]) -> None:
        """Call `listener` (in the receiver thread) after every transaction; keep it short."""
        self._listeners.append(listener)

    def start(self) -> int:
        """Start the writer process, open the store, record the session; returns its id.

        Raises StoreError if the store cannot be used.
        """
        child, self.session_id, self.stats.last_event_id = self._spawn(
            resume=self.reopen, reopen=self.reopen is not None
        )
        self._install(child)
        self._supervisor = threading.Thread(
            target=self._supervise, name="eventtui-writer-receive", daemon=True
        )
        self._supervisor.start()
        return int(self.session_id)

    def submit(self, submission: Submission) -> None:
        """Queue rows for the next transaction; thread-safe, never blocks on the disk."""
        payload = _encode([
            KIND_ROWS,
            submission.events,
            [(r.received_at, r.client, r.reason, r.raw) for r in submission.rejects],
        ])  # fmt: skip
        with self._lock:
            down = self._down
            if down is None and self._child is not None:
                self._tickets.append((submission.ticket, len(payload), len(submission.events)))
                self.pending_bytes += len(payload)
                self._child.outgoing.put(payload)
                return
            self.stats.refused_events += len(submission.events)
        self._notify(Commit([submission.ticket], 0, 0, 0, self.stats.last_event_id, down))

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued so far, end the session, stop the writer process.

        With no writer process alive (it died past the restart policy, or while restarting), the
        session is ended here, by a short update of its own.
        """
        if self._supervisor is None:
            return
        with self._lock:
            self._closing.set()  # wakes a restart that is waiting out its delay
            child = self._child if self._down is None else None
            if child is not None:
                child.outgoing.put(_encode([KIND_STOP, self._final_meta()]))
                child.outgoing.put(None)
        self._supervisor.join(timeout)
        if self._supervisor.is_alive() and self._child is not None:
            log.error("the writer process for %s did not stop; killing it", self.path)
            self._child.process.kill()
            self._supervisor.join(timeout)
        self._supervisor = None
        if self._child is not None:
            for thread in self._child.threads:
                thread.join(timeout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.process.wait(timeout)
        if not self._ended:
            self._end_session()

    # --- the writer process ----------------------------------------------------------------------

    def _spawn(self, resume: int | None, reopen: bool = False) -> tuple[_Child, int, int]:
        """A writer process with the store open and the session recorded (or, with `resume`,
        found again): (child, session id, last event id). Raises StoreError."""
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        args = json.dumps({
            "path": str(self.path), "source": self.source, "label": self.label,
            "meta": json.dumps({**self.meta, **live_writer_mark()}), "max_rows": self.max_batch_rows,
            "lock_wait": self.lock_wait,
            "inbox": to_child_r, "outbox": from_child_w, "resume": resume, "reopen": reopen,
        })  # fmt: skip
        process = subprocess.Popen(
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
        # Here, not at the top: viewers import this package and never start a writer (multiprocessing
        # costs their start-up ~8 ms, benchmarks/startup.py).
        from multiprocessing.connection import Connection

        child = _Child(
            process,
            Connection(from_child_r, writable=False),
            Connection(to_child_w, readable=False),
        )
        crashed = False
        try:
            first = _decode(child.inbox.recv_bytes())
        except (EOFError, OSError):
            crashed = True
            first = ["error", f"{self.path}: the writer process failed to start"]
        if first[0] == "error":
            assert process.stderr is not None
            said = process.stderr.read().decode("utf-8", "replace").strip().splitlines()
            process.stderr.close()
            process.wait()
            child.inbox.close()
            child.outbox.close()
            message = first[1] + (f" ({said[-1]})" if crashed and said else "")
            raise StoreError(message)
        _, session_id, last_event_id = first
        return child, int(session_id), int(last_event_id)

    def _install(self, child: _Child, *, restarted: bool = False) -> None:
        """Make `child` the writer: start its sender and stderr threads, accept submissions."""
        for target, name in (
            (self._send, "eventtui-writer-send"),
            (self._relay_stderr, "eventtui-writer-stderr"),
        ):
            thread = threading.Thread(target=target, args=(child,), name=name, daemon=True)
            thread.start()
            child.threads.append(thread)
        with self._lock:
            self.restarts += restarted
            self._child = child
            self._down = None
            if self._closing.is_set():  # close() came while this one started: stop it in order
                child.outgoing.put(_encode([KIND_STOP, self._final_meta()]))
                child.outgoing.put(None)

    def _final_meta(self) -> dict[str, Any]:
        return {**self.meta, "writer_restarts": self.restarts} if self.restarts else self.meta

    # --- threads ---------------------------------------------------------------------------------

    def _send(self, child: _Child) -> None:
        try:
            while (payload := child.outgoing.get()) is not None:
                child.outbox.send_bytes(payload)
        except OSError as exc:
            if self._child is child and self._down is None:
                log.debug("lost the writer process for %s: %s", self.path, exc)
        finally:
            child.outbox.close()

    def _supervise(self) -> None:
        """The receiver thread: reports of the running writer; on its death, the restarts."""
        while True:
            child = self._child
            assert child is not None
            if self._receive(child):
                return  # the session is ended
            death = f"the store writer for {self.path} died ({child.exit_reason()})"
            self._lost(child, f"{death}; restarting it")
            if not self._restart(death):
                return

    def _receive(self, child: _Child) -> bool:
        """Turn the child's reports into Commits; True once it ended the session, False if it
        died first."""
        stats = self.stats
        try:
            while True:
                report = _decode(child.inbox.recv_bytes())
                if report[0] == "closed":
                    stats.duplicates = report[1]
                    self._ended = True
                    return True
                _, count, inserted, duplicates, rejects, last_id, error = report
                with self._lock:
                    done = [self._tickets.popleft() for _ in range(count)]
                    self.pending_bytes -= sum(size for _, size, _ in done)
                tickets = [ticket for ticket, _, _ in done]
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
            return False
        finally:
            child.inbox.close()

    def _lost(self, child: _Child, reason: str) -> None:
        """`child` is gone: refuse what it was given and had not reported, take nothing more."""
        with self._lock:
            self._down = reason
            lost = list(self._tickets)
            self._tickets.clear()
            self.pending_bytes = 0
            self.stats.refused_events += sum(events for _, _, events in lost)
            child.outgoing.put(None)  # its sender stops; what it still held is dropped
        if lost:
            self._notify(
                Commit([t for t, _, _ in lost], 0, 0, 0, self.stats.last_event_id, reason, True)
            )

    def _restart(self, death: str) -> bool:
        """A new writer process for the same session, within the restart policy; False if none."""
        recent = self._recent_restarts
        last_error: str | None = None
        while True:
            now = time.monotonic()
            while recent and now - recent[0] > self.restart_window:
                recent.popleft()
            if len(recent) >= self.restart_limit or self._closing.is_set():
                break
            delays = self.restart_delays or (0.0,)
            if self._closing.wait(delays[min(len(recent), len(delays) - 1)]):
                break
            recent.append(time.monotonic())
            try:
                child, _, last_id = self._spawn(resume=self.session_id)
            except StoreError as exc:
                last_error = str(exc)
                log.error("%s; could not restart it: %s", death, exc)
                with self._lock:
                    self._down = f"{death}; could not restart it ({exc}); trying again"
                continue
            self.stats.last_event_id = max(self.stats.last_event_id, last_id)
            self._install(child, restarted=True)
            log.warning("%s; restarted, session %d continues", death, self.session_id)
            return True
        if self._closing.is_set():
            return False  # stopping anyway: close() ends the session
        if last_error is not None:
            self._failure = f"{death} and could not be restarted ({last_error})"
        else:
            self._failure = (
                f"{death} and was not restarted ({len(recent)} restarts in the last"
                f" {self.restart_window:.0f} s)"
            )
        with self._lock:
            self._down = f"{self._failure}: nothing more can be stored in session {self.session_id}"
        log.error("%s", self._down)
        return False

    def _end_session(self) -> None:
        """End the session with no writer process left: a short update of its own."""
        meta = {**self._final_meta(), "duplicates": self.stats.duplicates}
        try:
            conn = connect(self.path, create=False)
            try:
                conn.execute(
                    "UPDATE sessions SET ended_at = ?,"
                    " meta = json_patch(coalesce(meta, '{}'), ?) WHERE id = ? AND ended_at IS NULL",
                    (time.time(), json.dumps(meta), self.session_id),
                )
            finally:
                conn.close()
        except (StoreError, sqlite3.Error) as exc:
            log.error("could not end session %d in %s: %s", self.session_id, self.path, exc)
        self._ended = True

    def _relay_stderr(self, child: _Child) -> None:
        assert child.process.stderr is not None
        with child.process.stderr as stream:
            for line in stream:
                log.warning("store writer: %s", line.decode("utf-8", "replace").rstrip())

    def _notify(self, commit: Commit) -> None:
        for listener in self._listeners:
            try:
                listener(commit)
            except Exception:  # a listener's bug must not stop the writer
                log.exception("commit listener failed")
