"""The payload is what the producer sent: no defaults added, an unreadable timestamp kept.

Events decoded as the collector decodes them (both the fast path and the full one), stored in a
real store, read back by the CLI in subprocesses and by the TUI's payload and copy functions.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from eventtui.model import decode_frame
from eventtui.store import SCHEMA_VERSION, Reader
from eventtui.tui.widgets.payload import copy_text
from eventtui.tui.widgets.payload import payload_of as pane_payload
from tests.conftest import eventtui, write_session

SENT: list[dict[str, Any]] = [
    {"event": "yesterday-ish", "timestamp": "yesterday", "properties": {"a": 1}},
    {"event": "bare"},
    {"event": "page_view", "type": "page", "context": {}},
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    rows = []
    for obj in SENT:
        # One frame each: the plain ones take the fast path, the unreadable time the full one.
        frame = decode_frame(json.dumps(obj).encode(), binary=False, client="t", received_at=1.0)
        assert frame.refusals == []
        rows.extend(frame.events)
    # And an array (the fast path for batches).
    frame = decode_frame(json.dumps([{"event": "in_batch"}]).encode(), binary=False, client="t")
    rows.extend(frame.events)
    write_session(path, rows)
    return path


def test_payload_and_copy_show_the_event_as_sent(db: Path) -> None:
    with Reader(db) as reader:
        rows = reader.query()
    assert [row.payload() for row in rows] == [*SENT, {"event": "in_batch"}]
    assert json.loads(copy_text(rows[0])) == SENT[0]
    assert pane_payload(rows[1]) == {"event": "bare"}  # what the payload pane draws
    # The columns keep their defaults, so that filters and SQL stay simple.
    assert (rows[1].type, rows[1].properties, rows[1].context) == ("track", "{}", "{}")
    assert (rows[0].sent_at, rows[0].valid) == (None, False)


def test_export_query_and_search_show_the_original(db: Path) -> None:
    exported = eventtui("export", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [{k: v for k, v in e.items() if k != "eventtui"} for e in lines][:3] == SENT
    found = eventtui("query", "--json", '"yesterday"', "--db", str(db))
    assert found.returncode == 0, found.stderr
    (hit,) = [json.loads(line) for line in found.stdout.splitlines()]
    assert (hit["event"], hit["timestamp"]) == ("yesterday-ish", "yesterday")


def test_a_store_of_schema_2_is_read_as_it_is_and_migrated_by_a_writer(
    db: Path, tmp_path: Path
) -> None:
    with sqlite3.connect(db) as conn:
        # Back to schema 2: without `absent` (v3), `source` (v4) and the rollups (v5).
        conn.execute("ALTER TABLE events DROP COLUMN absent")
        conn.execute("ALTER TABLE events DROP COLUMN source")
        conn.executescript("DROP TABLE name_totals; DROP TABLE name_minutes")
        conn.execute("PRAGMA user_version = 2")
    conn.close()
    with Reader(db) as reader:
        rows = reader.query()
    # Schema 2 did not know what was absent: the defaults show, as they did.
    assert rows[1].payload() == {"event": "bare", "type": "track", "properties": {}, "context": {}}
    copied = tmp_path / "copy.db"
    result = eventtui("export", "--format", "sqlite", "-o", str(copied), "--db", str(db))
    assert result.returncode == 0, result.stderr
    write_session(db, [])  # a writer migrates the store
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()
    with Reader(copied) as reader:
        assert len(reader.query()) == 4
