"""The store: schema contract, migrations from every older version, refusing files that are not ours."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from eventtui.model import decode_frame
from eventtui.store import (
    SCHEMA_VERSION,
    EventRow,
    Reader,
    StoreError,
    Submission,
    Writer,
    connect,
)
from eventtui.store.schema import APPLICATION_ID

DESIGN_COLUMNS = {
    "sessions": ["id", "label", "started_at", "ended_at", "source", "meta"],
    "events": [
        "id",
        "session_id",
        "received_at",
        "sent_at",
        "name",
        "type",
        "user_id",
        "anonymous_id",
        "message_id",
        "client",
        "properties",
        "context",
        "valid",
        "errors",
    ],
    "rejects": ["id", "session_id", "received_at", "client", "reason", "raw"],
}


def test_schema_has_every_documented_column_and_index(tmp_path: Path) -> None:
    conn = connect(tmp_path / "s.db", create=True)
    for table, columns in DESIGN_COLUMNS.items():
        have = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
        assert have[: len(columns)] == columns
    indexes = {
        row[1]: [c[2] for c in conn.execute(f"PRAGMA index_info({row[1]})")]
        for row in conn.execute("PRAGMA index_list(events)")
    }
    assert ["name", "received_at"] in indexes.values()
    assert ["session_id", "id"] in indexes.values()
    assert any(cols == ["message_id"] for cols in indexes.values())  # UNIQUE
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("PRAGMA application_id").fetchone() == (APPLICATION_ID,)


def test_migrates_from_every_older_version(tmp_path: Path) -> None:
    """Version 0 is an empty file; each later version is built by its own migrations."""
    from eventtui.store import schema

    for start in range(SCHEMA_VERSION):
        path = tmp_path / f"v{start}.db"
        conn = sqlite3.connect(path, isolation_level=None)
        import sqlite_utils

        db = sqlite_utils.Database(conn)
        for step in range(start):
            schema.MIGRATIONS[step](db, None)
        conn.execute(f"PRAGMA user_version = {start}")
        if start:
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.close()
        migrated = connect(path, create=True)
        assert migrated.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        migrated.close()


def test_writer_and_reader_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = Writer(path, source="test", label="round trip")
    session = writer.start()
    frame = decode_frame(
        b'[{"event":"a","properties":{"k":"v"}},{"event":"b"}]', binary=False, client="t"
    )
    commits = []
    writer.add_listener(commits.append)
    writer.submit(Submission(frame.events, ticket="t1"))
    writer.close()
    assert commits[0].tickets == ["t1"] and commits[0].inserted == 2
    with Reader(path) as reader:
        assert [e.name for e in reader.events_after(0)] == ["a", "b"]
        assert reader.events_after(1)[0].name == "b"
        (s,) = reader.sessions()
        assert (s.id, s.label, s.source, s.events) == (session, "round trip", "test", 2)
        assert s.ended_at is not None


def test_every_read_gives_one_row_type_with_valid_a_bool(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = Writer(path, source="test")
    session = writer.start()
    frame = decode_frame(
        b'[{"event":"a"},{"event":"b","timestamp":"yesterday-ish"}]', binary=False, client="t"
    )
    writer.submit(Submission(frame.events))
    writer.close()
    with Reader(path) as reader:
        reads = {
            "events_after": reader.events_after(0),
            "event": [reader.event(1), reader.event(2)],
            "query": reader.query(session=session),
            "events_in": reader.events_in([1, 2]),
            "light_events": reader.light_events(session=session, to_id=2),
            "pages": [row for page, _ in reader.pages() for row in page],
        }
    for read, rows in reads.items():
        assert [(r[0], r[12]) for r in rows] == [(1, True), (2, False)], read
        assert all(type(r[12]) is bool for r in rows), read
        assert all(type(r) is EventRow for r in rows if read != "pages"), read


def test_foreign_sqlite_file_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    before = path.read_bytes()
    with pytest.raises(StoreError, match="not an eventtui store"):
        connect(path, create=True)
    assert path.read_bytes() == before


def test_corrupt_store_is_refused_and_untouched(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = Writer(path, source="test")
    writer.start()
    writer.close()  # the last connection to close checkpoints the WAL into the file
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xde\xad" * ((4096 - 100) // 2)  # the schema page
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="corrupt or unreadable"):
        connect(path, create=True)
    assert path.read_bytes() == bytes(data)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    connect(path, create=True).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="written by a newer eventtui"):
        Reader(path)


def test_reader_on_missing_store_does_not_create_it(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no such store"):
        Reader(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


def test_core_never_imports_textual() -> None:
    """Only eventtui/tui imports Textual: the collector and CLI stay light and headless."""
    code = (
        "import sys, eventtui.model, eventtui.config, eventtui.store, eventtui.collector, "
        "eventtui.collector.http, eventtui.sender, eventtui.cli\n"
        "import importlib.util\n"
        "for optional in ('eventtui.filters', 'eventtui.monitor', 'eventtui.replay', 'eventtui.transfer', 'eventtui.checking', 'eventtui.collector.validation'):\n"
        "    if importlib.util.find_spec(optional): __import__(optional)\n"
        "assert 'textual' not in sys.modules, sorted(m for m in sys.modules if m.startswith('textual'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
