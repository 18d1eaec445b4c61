"""The `source` column (schema version 4): each event's protocol, recorded, filterable, and a
store written before it still read by every viewer and migrated by the next collector."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils

from eventtui import filters, model
from eventtui.explain import Explainer
from eventtui.filters import FilterError, compile_filter
from eventtui.model import decode_frame
from eventtui.store import SCHEMA_VERSION, Reader, Submission, Writer, connect, schema
from eventtui.store.schema import APPLICATION_ID
from eventtui.store.sessions import export_store
from eventtui.transfer import export_events, import_events


def _v2_store(path: Path) -> None:
    """A store as eventtui wrote it at schema version 2, holding one session and one event."""
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    for step in range(2):
        schema.MIGRATIONS[step](db, None)
    conn.execute("PRAGMA user_version = 2")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "INSERT INTO sessions (id, started_at, ended_at, source, meta) VALUES (1, 1.0, 2.0, 'collect', '{}')"
    )
    conn.execute(
        "INSERT INTO events (session_id, received_at, name, type, user_id, message_id, client,"
        " properties, context) VALUES (1, 1.5, 'old_event', 'track', 'u1', 'm-old', 'ws:1', '{\"a\": 1}', '{}')"
    )
    conn.close()


def test_a_version_2_store_is_read_by_viewers_without_being_changed(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _v2_store(path)

    with Reader(path) as reader:
        (row,) = reader.query()
        assert (row.name, row.user_id, row.source) == ("old_event", "u1", None)
        compiled = compile_filter("source:posthog")
        assert reader.query(compiled.where, compiled.params) == []
        assert reader.events_after(0)[0].source is None
        out = io.BytesIO()
        assert export_events(reader, out=out) == 1
    line = json.loads(out.getvalue())
    assert "source" not in line["eventtui"]  # not recorded: not invented
    # A copy of its sessions (`eventtui export --store`) reads it too.
    exported = export_store(path, tmp_path / "copy.db", sessions=None)
    assert exported.events == 1
    with Reader(tmp_path / "copy.db") as reader:
        assert [(r.name, r.source) for r in reader.query()] == [("old_event", None)]
    # Reading left the store at version 2, with its columns as they were.
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    assert "source" not in [c[1] for c in conn.execute("PRAGMA table_info(events)")]
    conn.close()


def test_the_query_command_reads_a_version_2_store(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _v2_store(path)
    run = [sys.executable, "-m", "eventtui", "query", "--db", str(path), "--json"]
    done = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == "old_event"
    done = subprocess.run([*run, "source:segment"], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout) == (0, "")


def test_a_version_2_store_migrates_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _v2_store(path)
    writer = Writer(path, source="test")
    writer.start()
    frame = decode_frame(b'{"event": "new_event"}', binary=False, client="t", source="segment")
    writer.submit(Submission(frame.events))
    writer.close()

    conn = connect(path, create=False)
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    conn.close()
    with Reader(path) as reader:
        assert [(r.name, r.source) for r in reader.query()] == [
            ("old_event", None),
            ("new_event", "segment"),
        ]
        compiled = compile_filter("source:segment")
        assert [r.name for r in reader.query(compiled.where, compiled.params)] == ["new_event"]
        compiled = compile_filter("-source:segment")
        assert [r.name for r in reader.query(compiled.where, compiled.params)] == ["old_event"]


def test_export_and_import_keep_the_source(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    writer = Writer(path, source="test")
    writer.start()
    frame = decode_frame(b'{"event": "from_posthog"}', binary=False, client="t", source="posthog")
    plain = decode_frame(b'{"event": "plain"}', binary=False, client="t")
    writer.submit(Submission([*frame.events, *plain.events]))
    writer.close()
    exported = tmp_path / "out.jsonl"
    with Reader(path) as reader, exported.open("wb") as out:
        export_events(reader, out=out)
    # A plain object (no "eventtui" key) imported is "import"; an export's own line keeps its own.
    exported.write_text(exported.read_text() + '{"event": "hand_written"}\n')

    target = tmp_path / "t.db"
    import_events(exported, db=target)
    with Reader(target) as reader:
        assert [(r.name, r.source) for r in reader.query()] == [
            ("from_posthog", "posthog"),
            ("plain", "eventtui"),
            ("hand_written", "import"),
        ]


def test_the_filter_knows_every_source_the_model_records() -> None:
    assert filters.SOURCES == model.SOURCES


def test_an_unknown_source_is_a_filter_error_naming_the_choices() -> None:
    with pytest.raises(FilterError) as caught:
        compile_filter("source:postog")
    assert "source must be one of eventtui, segment, posthog" in str(caught.value)
    assert "'postog'" in str(caught.value)


def test_explain_names_the_source_an_event_came_in() -> None:
    (event,) = decode_frame(b'{"event": "a"}', binary=False, client="t", source="mixpanel").events
    assert Explainer("source:posthog").reasons(event) == ["source is 'mixpanel', wanted 'posthog'"]
    assert Explainer("source:mixpanel").reasons(event) == []
