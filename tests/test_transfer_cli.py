"""`eventtui export`, `import` and `replay --to-url` as a user runs them: subprocesses, real files,
a real collector.

The round trips: JSON Lines out and back in; a session exported as a store file of its own that
`sessions`, `query` and `replay` open with `--db`, and re-sent from there to a collector.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from pathlib import Path

import pytest

from eventtui.model import normalise
from eventtui.store import Reader, Reject, Submission, Writer
from tests.conftest import Collect, eventtui, write_session

T0 = 1_714_000_000.0


def record(path: Path, events: list[dict[str, object]], *, label: str, rejects: int = 0) -> int:
    rows = [normalise(e, client="ws:test", received_at=T0 + i * 0.01) for i, e in enumerate(events)]
    refused = [Reject(T0, "ws:test", "not valid JSON", b"{oops") for _ in range(rejects)]
    return write_session(path, rows, label=label, rejects=refused)


def checkout(i: int, **more: object) -> dict[str, object]:
    return {
        "event": "checkout" if i % 2 else "page_view",
        "userId": f"u{i}",
        "messageId": f"m-{i}",
        "properties": {"i": i, "total": i * 10},
        "context": {"ip": "10.0.0.1"},
        **more,
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    """Two sessions: an older one, and the newest (the default of export and replay). Shared by
    the tests of this module, which only read it."""
    db = tmp_path_factory.mktemp("store") / "events.db"
    older = record(db, [{"event": "old", "messageId": "o-1"}], label="older")
    newest = record(
        db, [checkout(i) for i in range(30)] + [{"event": "x", "traits": {"t": 1}}],
        label="bug 123", rejects=2,
    )  # fmt: skip
    return db, older, newest


def query_json(db: Path, *args: str) -> list[dict[str, object]]:
    result = eventtui("query", "--db", str(db), "--json", "--limit", "0", *args)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def payloads(events: list[dict[str, object]]) -> list[dict[str, object]]:
    """Query output without what a store numbers its own way."""
    return [{k: v for k, v in e.items() if k not in ("id", "session")} for e in events]


# --- JSON Lines ------------------------------------------------------------------------------------


def test_export_defaults_to_the_newest_session_and_round_trips_through_import(
    store: tuple[Path, int, int], tmp_path: Path
) -> None:
    db, _, newest = store
    out = tmp_path / "bug.jsonl"
    exported = eventtui("export", "--db", str(db), "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert exported.stderr == f"exported 31 events of session {newest} to {out}\n"
    assert exported.stdout == ""
    assert len(out.read_bytes().splitlines()) == 31
    copy = tmp_path / "copy.db"
    imported = eventtui("import", str(out), "--label", "from bug", "--db", str(copy))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == f"imported 31 of 31 events into session 1 (from bug) of {copy}\n"
    assert payloads(query_json(copy)) == payloads(query_json(db, "--session", str(newest)))
    # The same file again: every event has a messageId already stored.
    again = eventtui("import", str(out), "--db", str(copy))
    assert again.returncode == 0
    assert "imported 1 of 31 events into session 2 (bug.jsonl)" in again.stdout
    assert "30 duplicates not stored again" in again.stdout


def test_export_to_stdout_all_sessions_and_a_filter(store: tuple[Path, int, int]) -> None:
    db, older, newest = store
    everything = eventtui("export", "all", "--db", str(db))
    assert everything.returncode == 0, everything.stderr
    sessions = [json.loads(x)["eventtui"]["session_id"] for x in everything.stdout.splitlines()]
    assert sessions == [older] + [newest] * 31
    assert everything.stderr == "exported 32 events of every session to stdout\n"
    filtered = eventtui(
        "export", str(newest), "--db", str(db), "--filter", "name:checkout total>=200"
    )
    names = [json.loads(x)["properties"]["i"] for x in filtered.stdout.splitlines()]
    assert names == [21, 23, 25, 27, 29]
    negated = eventtui("export", "--db", str(db), "--filter=-name:checkout")
    assert len(negated.stdout.splitlines()) == 16


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "9"], "no session 9 in {db} (`eventtui sessions` lists them)"),
        (["export", "latest"], "session must be a number (see `eventtui sessions`) or \"all\"; got 'latest'"),
        (["export", "--filter", "total>="], "filter: "),
        (["export", "--format", "sqlite"], "--format sqlite writes a store file: name it with -o FILE"),
        (["replay", "--speed", "1000", "--to-url", "ws://127.0.0.1:9"], "speed 1000 is out of range"),
        (["replay", "--max-gap", "soon"], '"soon" is not a duration'),
        (["replay", "--new-ids"], "--new-ids goes with --to-url"),
        (["replay", "7", "--to-url", "ws://127.0.0.1:9"], "no session 7 in {db}"),
        (["replay", "--to-url", "ws://127.0.0.1:9"], "cannot connect to ws://127.0.0.1:9"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line_and_exit_2(
    store: tuple[Path, int, int], args: list[str], message: str
) -> None:
    db, _, _ = store
    result = eventtui(*args, "--db", str(db))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("eventtui: error: " + message.format(db=db)), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_export_never_overwrites_without_force(
    store: tuple[Path, int, int], tmp_path: Path
) -> None:
    db, _, _ = store
    out = tmp_path / "bug.jsonl"
    out.write_text("keep me\n")
    refused = eventtui("export", "--db", str(db), "-o", str(out))
    assert refused.returncode == 2
    assert refused.stderr == f"eventtui: error: {out}: already exists; pass --force to replace it\n"
    assert out.read_text() == "keep me\n"
    assert eventtui("export", "--db", str(db), "-o", str(out), "--force").returncode == 0
    assert len(out.read_text().splitlines()) == 31
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bug.jsonl"]  # no leftovers


def test_import_reports_bad_lines_by_number_and_exits_1(tmp_path: Path) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text(
        '{"event": "ok"}\nnot json\n\n[{"event": "a"}, {"nope": 1}]\n{"event": "b"}\n'
    )
    db = tmp_path / "events.db"
    result = eventtui("import", str(source), "--db", str(db))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{source}:2: refused: not valid JSON: JSON is malformed: invalid character (byte 4)",
        f'{source}:4 [2]: refused: the event name ("event") is missing',
    ]
    assert result.stdout == (
        f"imported 3 of 3 events into session 1 (events.jsonl) of {db}; 2 lines refused\n"
    )
    with Reader(db) as reader:
        assert [r["reason"] for r in reader.rejects()] == [
            'line 4, item 2: the event name ("event") is missing',
            "line 2: not valid JSON: JSON is malformed: invalid character (byte 4)",
        ]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "{file}: cannot read (No such file or directory)"),
        ("id,name\n1,checkout\n", "{file}: no event among the first 2 lines or items: not an event file"),
        ("", "{file}: the input holds no events"),
    ],
)  # fmt: skip
def test_import_of_unreadable_input_exits_2_and_writes_nothing(
    tmp_path: Path, content: str | None, message: str
) -> None:
    source = tmp_path / "input.jsonl"
    if content is not None:
        source.write_text(content)
    db = tmp_path / "events.db"
    result = eventtui("import", str(source), "--db", str(db))
    assert result.returncode == 2
    assert result.stderr.startswith("eventtui: error: " + message.format(file=source))
    assert len(result.stderr.strip().splitlines()) == 1
    assert not db.exists()


def test_import_from_stdin(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    result = eventtui(
        "import", "-", "--label", "piped", "--db", str(db),
        input=b'{"event": "a", "timestamp": 1714000000}\n{"event": "b"}\n',
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"imported 2 of 2 events into session 1 (piped) of {db}\n"


# --- a store file of its own -----------------------------------------------------------------------


def test_sqlite_export_is_a_store_every_command_opens(
    store: tuple[Path, int, int], tmp_path: Path
) -> None:
    db, _, newest = store
    bug = tmp_path / "bug-123.db"
    result = eventtui("export", "--db", str(db), "--format", "sqlite", "-o", str(bug))
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"exported 31 events and 2 rejects of session {newest} to {bug}"
        f" (a store: eventtui replay --db {bug})\n"
    )
    # One self-contained file: no write-ahead log beside it, nothing left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bug-123.db"]
    with sqlite3.connect(bug) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    listed = eventtui("sessions", "--json", "--db", str(bug))
    (copied,) = [json.loads(x) for x in listed.stdout.splitlines()]
    original = next(
        json.loads(x)
        for x in eventtui("sessions", "--json", "--db", str(db)).stdout.splitlines()
        if json.loads(x)["id"] == newest
    )
    assert copied == original  # same id, label, times, counts
    # Ids are kept, so "event #12" in the bug report is event #12 in the file.
    assert query_json(bug) == query_json(db, "--session", str(newest))
    with Reader(bug) as reader, Reader(db) as source:
        assert reader.rejects() == source.rejects(session=newest)
    # Never over an existing file, unless --force.
    again = eventtui("export", "--db", str(db), "--format", "sqlite", "-o", str(bug))
    assert again.returncode == 2
    assert again.stderr == f"eventtui: error: {bug}: already exists; pass --force to replace it\n"
    forced = eventtui(
        "export", str(newest), "--db", str(db), "--format", "sqlite", "-o", str(bug), "--force",
        "--filter", "name:checkout",
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert {e["event"] for e in query_json(bug)} == {"checkout"}
    assert len(query_json(bug)) == 15


def test_sqlite_export_of_a_running_session_ends_it_at_its_last_event(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    writer = Writer(db, source="collect", label="live")
    session = writer.start()
    rows = [normalise({"event": "e"}, client="t", received_at=T0 + i) for i in range(3)]
    committed = threading.Event()
    writer.add_listener(lambda commit: committed.set())
    writer.submit(Submission(rows))
    try:
        assert committed.wait(10)
        bug = tmp_path / "live.db"
        result = eventtui("export", "--db", str(db), "--format", "sqlite", "-o", str(bug))
        assert result.returncode == 0, result.stderr
    finally:
        writer.close()
    with Reader(bug) as reader:
        (copied,) = reader.sessions()
    assert (copied.id, copied.label, copied.ended_at, copied.events) == (session, "live", T0 + 2, 3)
    assert copied.meta["exported"]["was_running"] is True


def test_replay_to_url_from_an_exported_file(store: tuple[Path, int, int], tmp_path: Path) -> None:
    db, _, newest = store
    bug = tmp_path / "bug.db"
    assert eventtui("export", "--db", str(db), "--format", "sqlite", "-o", str(bug)).returncode == 0
    target = tmp_path / "target.db"
    collect = Collect(target)
    try:
        result = eventtui(
            "replay", "--db", str(bug), "--to-url", collect.ws_url, "--speed", "max",
            "--filter", "name:checkout OR name:x",
        )  # fmt: skip
        code, _ = collect.stop()
    finally:
        collect.close()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar when stderr is not a terminal
    assert result.stdout.startswith(
        f"re-sent 16 events of session {newest} to {collect.ws_url} in "
    )
    assert "s at max; 16 acknowledged; 0 refused; an event whose messageId" in result.stdout
    assert code == 0
    sent = payloads(query_json(target))
    wanted = [e for e in payloads(query_json(bug)) if e["event"] in ("checkout", "x")]
    # Re-sent as the producer sent them: what the new store derives (received_at) differs.
    assert [{k: v for k, v in e.items() if k != "received_at"} for e in sent] == [
        {k: v for k, v in e.items() if k != "received_at"} for e in wanted
    ]


def test_import_into_the_same_store_says_what_to_do_and_new_ids_store_it_again(
    tmp_path: Path,
) -> None:
    """The README's example: export a session, import it into the same store."""
    db = tmp_path / "events.db"
    record(db, [checkout(i) for i in range(6)], label="original")
    out = tmp_path / "bug.jsonl"
    assert (
        eventtui("export", "1", "--filter", "checkout", "-o", str(out), "--db", str(db)).returncode
        == 0
    )
    again = eventtui("import", str(out), "--label", "from Ada", "--db", str(db))
    assert again.returncode == 1
    assert again.stdout == ""
    assert again.stderr == (
        f"eventtui: nothing imported: all 3 events of {out} are already in {db} (same"
        " messageId); pass --new-ids to store them again as new events\n"
    )
    with Reader(db) as reader:
        assert [s.id for s in reader.sessions()] == [1]  # no empty session left behind
    fresh = eventtui("import", str(out), "--label", "from Ada", "--new-ids", "--db", str(db))
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout == f"imported 3 of 3 events into session 2 (from Ada) of {db}\n"
    copies = query_json(db, "--session", "2")
    ids = [str(e["messageId"]) for e in copies]
    suffix = ids[0].removeprefix("m-1")
    assert re.fullmatch(r"~import-[0-9a-f]{8}", suffix)
    assert ids == [f"m-{i}{suffix}" for i in (1, 3, 5)]
