"""Sessions as units: list, label, delete (with and without a terminal to confirm on), retention.

Real stores written by a real `Writer`; the CLI runs as a user runs it, in subprocesses (a
pseudo-terminal stands in for the user who answers the confirmation question).
"""

from __future__ import annotations

import json
import os
import pty
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eventtui.model import normalise
from eventtui.store import NoSuchSession, Reader, Reject, Writer
from eventtui.store.sessions import (
    SessionError,
    delete_session,
    label_session,
    prune_sessions,
)
from tests.conftest import Collect, eventtui, write_session

T0 = 1_714_000_000.0


def record(path: Path, count: int, *, label: str | None = None, rejects: int = 0) -> int:
    """A finished session of `count` events (and `rejects` refusals); returns its id."""
    run = secrets.token_hex(4)  # message ids of its own: none is a duplicate of another session's
    rows = [
        normalise(
            {"event": "page_view", "messageId": f"{run}-{i}", "properties": {"i": i}},
            client="test",
            received_at=T0 + i,
        )
        for i in range(count)
    ]
    refused = [Reject(T0, "test", "not valid JSON", b"nope") for _ in range(rejects)]
    return write_session(path, rows, label=label, rejects=refused)


def summary(path: Path, session: int) -> tuple[str | None, int, int]:
    with Reader(path) as reader:
        found = reader.session(session)
    return found.label, found.events, found.rejects


def counts(path: Path) -> dict[int, tuple[int, int]]:
    with Reader(path) as reader:
        return {s.id: (s.events, s.rejects) for s in reader.sessions()}


def test_sessions_json_keeps_its_keys_and_adds_duration(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    record(db, 3, label="first", rejects=1)
    running = Writer(db, source="collect")
    running.start()
    try:
        result = eventtui("sessions", "--json", "--db", str(db))
        table = eventtui("sessions", "--db", str(db))
    finally:
        running.close()
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(obj) for obj in lines] == [
        [
            "id", "label", "started_at", "ended_at", "source", "events", "rejects", "duplicates",
            "duration",
        ]
    ] * 2  # fmt: skip
    first, second = lines
    assert (first["label"], first["events"], first["rejects"]) == ("first", 3, 1)
    assert first["duration"] == pytest.approx(first["ended_at"] - first["started_at"], abs=1e-3)
    assert second["ended_at"] is None and second["duration"] >= 0  # running: so far
    header, row1, row2 = table.stdout.splitlines()
    assert header.split() == [
        "id", "label", "source", "start", "end", "duration", "events", "rejects",
    ]  # fmt: skip
    assert row1.split()[0:3] == ["1", "first", "test"]
    assert "running" in row2


def test_label_and_clear(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    session = record(db, 1)
    result = eventtui("sessions", "label", str(session), "bug 123: checkout ✓", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f'session {session}: label set to "bug 123: checkout ✓"\n'
    assert summary(db, session) == ("bug 123: checkout ✓", 1, 0)
    # --db before the action works as well as after it.
    assert eventtui("sessions", "--db", str(db), "label", str(session), " ").returncode == 0
    assert summary(db, session)[0] is None
    missing = eventtui("sessions", "label", "42", "x", "--db", str(db))
    assert missing.returncode == 2
    assert missing.stderr == (
        f"eventtui: error: no session 42 in {db} (`eventtui sessions` lists them)\n"
    )


def test_delete_needs_yes_without_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    keep = record(db, 2)
    gone = record(db, 3, rejects=2)
    refused = eventtui("sessions", "delete", str(gone), "--db", str(db))
    assert refused.returncode == 2
    assert refused.stderr == (
        f"eventtui: error: not deleting session {gone}: stdin is not a terminal to confirm on;"
        " pass --yes\n"
    )
    assert counts(db) == {keep: (2, 0), gone: (3, 2)}
    done = eventtui("sessions", "delete", str(gone), "--yes", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"deleted session {gone}: 3 events, 2 rejects\n"
    assert counts(db) == {keep: (2, 0)}
    again = eventtui("sessions", "delete", str(gone), "--yes", "--db", str(db))
    assert again.returncode == 2 and f"no session {gone}" in again.stderr


@pytest.mark.parametrize(("answer", "deleted"), [(b"y\n", True), (b"n\n", False), (b"\n", False)])
def test_delete_asks_on_a_terminal(tmp_path: Path, answer: bytes, deleted: bool) -> None:
    db = tmp_path / "events.db"
    session = record(db, 4, label="checkout")
    main, child = pty.openpty()
    try:
        os.write(main, answer)  # typed ahead: the terminal holds it until the question reads it
        result = eventtui("sessions", "delete", str(session), "--db", str(db), stdin=child)
    finally:
        os.close(child)
        os.close(main)
    assert result.returncode == 0, result.stderr
    # The question goes to stderr: stdout may be piped while the user answers at the terminal.
    assert result.stderr.startswith(
        f"Delete session {session} (checkout): 4 events and 0 rejects, from {db}?"
    )
    assert (session in counts(db)) is not deleted
    assert ("deleted session" in result.stdout) is deleted
    assert ("nothing deleted" in result.stderr) is not deleted


def test_a_running_session_is_not_deleted(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    record(db, 1)
    writer = Writer(db, source="collect")
    session = writer.start()
    try:
        with pytest.raises(SessionError, match="has not ended"):
            delete_session(db, session)
    finally:
        writer.close()
    assert delete_session(db, session).sessions == 1


def test_delete_in_slices_leaves_nothing_of_the_session(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    keep = record(db, 10)
    gone = record(db, 12_345, rejects=3)  # more than two DELETE_SLICEs
    deleted = delete_session(db, gone)
    assert (deleted.sessions, deleted.events, deleted.rejects) == (1, 12_345, 3)
    with sqlite3.connect(db) as conn:
        left = conn.execute(
            "SELECT (SELECT count(*) FROM events WHERE session_id = ?),"
            " (SELECT count(*) FROM rejects WHERE session_id = ?)",
            (gone, gone),
        ).fetchone()
    assert left == (0, 0)
    assert counts(db) == {keep: (10, 0)}
    with pytest.raises(NoSuchSession, match="no session"):
        label_session(db, gone, "x")


# --- retention -------------------------------------------------------------------------------------


def test_retention_prunes_sessions_that_ended_long_ago_and_never_a_running_one(
    tmp_path: Path,
) -> None:
    db = tmp_path / "events.db"
    old = [record(db, 100), record(db, 50)]
    with sqlite3.connect(db) as conn:  # as if they ended 20 days ago
        conn.execute(
            "UPDATE sessions SET ended_at = ? WHERE id IN (?, ?)", (time.time() - 20 * 86400, *old)
        )
    recent = record(db, 7)
    running = Writer(db, source="collect")
    live = running.start()
    try:
        assert prune_sessions(db, 14 * 86400) == (2, 150)
        assert prune_sessions(db, 14 * 86400) == (0, 0)  # nothing left that old
        # Far in the future, everything that has ended is old; the running session stays.
        sessions, events = prune_sessions(db, 60, now=time.time() + 86400)
        assert (sessions, events) == (1, 7)
        assert counts(db) == {live: (0, 0)}
    finally:
        running.close()
    assert recent not in counts(db)
    assert prune_sessions(tmp_path / "missing.db", 60) == (0, 0)
    with pytest.raises(SessionError, match="more than 0"):
        prune_sessions(db, 0)


def test_pruning_most_of_a_store_gives_the_space_back(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    big = record(db, 30_000)
    small = record(db, 100)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE sessions SET ended_at = 0 WHERE id = ?", (big,))
    before = db.stat().st_size
    assert prune_sessions(db, 86400) == (1, 30_000)
    after = db.stat().st_size
    wal = Path(f"{db}-wal")
    assert after < before / 5  # vacuumed: most of the file was free pages
    assert not wal.exists() or wal.stat().st_size == 0  # and the log truncated
    assert counts(db) == {small: (100, 0)}


def test_sessions_and_replay_never_import_textual() -> None:
    code = (
        "import sys, eventtui.store.sessions, eventtui.replay\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if 'textual' in m)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_running_session_that_is_not_the_newest_is_not_deleted(tmp_path: Path) -> None:
    """A collector writes session 1; an import adds session 2: session 1 is still refused."""
    db = tmp_path / "events.db"
    collector = Collect(db)
    try:
        events = tmp_path / "one.jsonl"
        events.write_text('{"event": "x"}\n')
        assert eventtui("import", str(events), "--db", str(db)).returncode == 0
        refused = eventtui("sessions", "delete", "1", "--yes", "--db", str(db))
        assert refused.returncode == 2
        assert refused.stderr == (
            "eventtui: error: session 1 has not ended: a collector is still writing it; stop it"
            " first\n"
        )
        assert 1 in counts(db)
    finally:
        collector.close()  # killed: the session stays open, its collector gone
    done = eventtui("sessions", "delete", "1", "--yes", "--db", str(db))
    assert done.returncode == 0, done.stderr
    assert 1 not in counts(db)
