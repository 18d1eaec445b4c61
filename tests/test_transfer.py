"""Export and import against real stores: the round trip, the formats, and what is refused."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventtui.filters import compile_filter
from eventtui.model import StoredEvent, decode_frame
from eventtui.progress import ProgressBar
from eventtui.store import Reader
from eventtui.transfer import (
    CHUNK_EVENTS,
    META_KEY,
    BadLine,
    ImportRefused,
    export_events,
    import_events,
)
from tests.conftest import write_session

T0 = 1_714_000_000.0

# Every kind of event the store can hold, each here for a reason.
VARIED: list[dict[str, Any]] = [
    {
        "event": "checkout_started",
        "userId": "42",
        "messageId": "m-1",
        "timestamp": T0 + 0.123456,  # sub-millisecond: `timestamp` alone would lose it
        "properties": {"cart": {"total": 120.5, "items": [{"sku": "a", "qty": 2}]}, "plan": "pro"},
        "context": {"ip": "10.0.0.1", "library": {"name": "analytics.js"}},
    },
    {"type": "page", "name": "Home", "properties": {"path": "/"}, "anonymousId": "anon-1"},
    {"type": "screen", "name": "Réglages", "userId": 7},  # a number id is stored as text
    {"type": "identify", "userId": "42", "traits": {"email": "ada@example.com", "vip": True}},
    {"type": "group", "groupId": "g1", "traits": {"name": "Acme"}},
    {"type": "alias", "previousId": "anon-1", "userId": "42"},
    {
        "event": "unicode ✓",
        "properties": {"text": "日本語 — עברית 😀", "quote": 'say "hi"\n\ttab', "nul": "\x00"},
    },
    {"event": "bad_time", "timestamp": "yesterday-ish"},  # stored with valid = 0 and its error
    {"event": "no_props", "properties": None, "context": None, "timestamp": "2024-04-25T10:00:00Z"},
    # A producer field named like our key: kept under `eventtui.shadowed`, put back on import.
    {"event": "collides", "eventtui": {"mine": 1}, "zeta": [1, 2], "messageId": "m-2"},
    {"event": "deep", "properties": {"a": [[[[[[{"b": [1, 2, 3]}]]]]]], "l": [{}] * 70}},
]


def _stored_events(received_at: float) -> list[StoredEvent]:
    frame = decode_frame(
        json.dumps(VARIED).encode(), binary=False, client="ws:127.0.0.1:5000", received_at=0
    )
    assert not frame.refusals
    events = [e._replace(received_at=received_at + i) for i, e in enumerate(frame.events)]
    # Broken against the tracking plan: valid = 0 with the validator's errors.
    planned = events[0]._replace(
        message_id="m-3", valid=False, errors='["cart.total: -1 is less than 0"]'
    )
    return [*events, planned]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, int]:
    path = tmp_path_factory.mktemp("source") / "events.db"
    first = write_session(path, _stored_events(T0))
    plain = [e._replace(message_id=None) for e in _stored_events(T0 + 100)[:3]]
    second = write_session(path, plain)
    return path, first, second


def _export(db: Path, **kwargs: Any) -> bytes:
    out = io.BytesIO()
    with Reader(db) as reader:
        count = export_events(reader, out=out, **kwargs)
    data = out.getvalue()
    assert data.count(b"\n") == count
    return data


def _without_ids(line: bytes) -> bytes:
    obj = msgspec.json.decode(line)
    obj[META_KEY]["id"] = obj[META_KEY]["session_id"] = 0
    return msgspec.json.encode(obj)


def _rows(db: Path) -> list[tuple[Any, ...]]:
    """Every column but id and session_id, in id order."""
    with Reader(db) as reader:
        return [tuple(e)[2:] for e in reader.query()]


# --- export ------------------------------------------------------------------------------------


def test_export_import_export_is_identical_but_for_ids(
    source: tuple[Path, int, int], tmp_path: Path
) -> None:
    db, _, _ = source
    first = _export(db)
    exported = tmp_path / "events.jsonl"
    exported.write_bytes(first)
    target = tmp_path / "copy.db"
    write_session(target, [])  # an earlier session, so ids and session ids really differ
    result = import_events(exported, db=target, label="copy")
    assert result.complete and result.refused == []
    assert result.imported == result.events == len(first.splitlines())
    second = _export(target)
    assert first != second  # the ids differ...
    assert [_without_ids(x) for x in first.splitlines()] == [
        _without_ids(x) for x in second.splitlines()
    ]  # ...and nothing else does
    assert _rows(target) == _rows(db)  # the stored rows too, column by column


def test_export_line_is_the_payload_plus_our_key(source: tuple[Path, int, int]) -> None:
    db, _, _ = source
    lines = _export(db).splitlines()
    with Reader(db) as reader:
        rows = reader.query()
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        obj = msgspec.json.decode(line)
        meta = obj[META_KEY]
        if "shadowed" in meta:
            obj[META_KEY] = meta.pop("shadowed")  # the producer's own field, in its place
        else:
            del obj[META_KEY]
        assert list(obj.items()) == list(row.payload().items())
        assert meta == {
            "id": row.id,
            "session_id": row.session_id,
            "received_at": row.received_at,
            "sent_at": row.sent_at,
            "client": row.client,
            "valid": row.valid,
            "errors": row.error_list() or None,
            "source": row.source,
        }


def test_export_filter_and_session(source: tuple[Path, int, int]) -> None:
    db, first, second = source
    compiled = compile_filter("checkout OR name:Home")
    lines = _export(db, where=compiled.where, params=compiled.params).splitlines()
    names = [msgspec.json.decode(x).get("event", "Home") for x in lines]
    assert names == ["checkout_started", "Home", "checkout_started", "checkout_started", "Home"]
    only_second = _export(db, session=second, where=compiled.where, params=compiled.params)
    sessions = {msgspec.json.decode(x)[META_KEY]["session_id"] for x in only_second.splitlines()}
    assert sessions == {second}
    assert len(only_second.splitlines()) == 2
    assert _export(db, session=first + second + 1) == b""


def test_export_to_a_text_stream(source: tuple[Path, int, int]) -> None:
    db, _, _ = source
    out = io.StringIO()
    with Reader(db) as reader:
        export_events(reader, out=out)
    assert out.getvalue().encode() == _export(db)


def test_export_progress_ends_at_one(source: tuple[Path, int, int]) -> None:
    db, _, _ = source
    calls: list[tuple[int, float | None]] = []
    with Reader(db) as reader:
        count = export_events(reader, out=io.BytesIO(), progress=lambda n, f: calls.append((n, f)))
    assert calls[-1] == (count, 1.0)
    assert [n for n, _ in calls] == sorted(n for n, _ in calls)


# --- import ------------------------------------------------------------------------------------


def test_plain_objects_import(tmp_path: Path) -> None:
    lines = [
        {"event": "a", "timestamp": T0, "properties": {"x": 1}},
        {"event": "b"},
        {"event": "c", "timestamp": "garbage"},
    ]
    data = "\r\n".join(json.dumps(x) for x in lines).encode()
    db = tmp_path / "plain.db"
    result = import_events(io.BytesIO(b"\xef\xbb\xbf" + data), db=db, label="plain")
    assert (result.events, result.imported, result.refused) == (3, 3, [])
    with Reader(db) as reader:
        rows = reader.query()
        (session,) = reader.sessions()
    assert [r.name for r in rows] == ["a", "b", "c"]
    assert rows[0].received_at == rows[0].sent_at == T0  # its timestamp stands for receipt
    assert rows[1].sent_at is None and rows[1].received_at > T0  # received now
    assert not rows[2].valid and "timestamp" in rows[2].error_list()[0]
    assert {r.client for r in rows} == {"import"}
    assert (session.label, session.source, session.events) == ("plain", "import", 3)
    assert session.meta["import"]["finished"] is True


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(json.dumps([{"event": "a"}, {"event": 5}, {"event": "c"}], indent=2))
    db = tmp_path / "array.db"
    result = import_events(path, db=db)
    assert (result.events, result.imported) == (2, 2)
    assert result.label == "events.json"
    assert result.refused == [BadLine(None, 2, result.refused[0].reason)]
    assert "must be a string" in str(result.refused[0])


def test_bad_lines_are_refused_by_number_and_recorded(tmp_path: Path) -> None:
    lines = [
        b'{"event": "good1"}',  # 1
        b"not json",  # 2
        b"",  # 3: blank lines are skipped, not refused, and still counted
        b'{"event": ""}',  # 4
        b'[{"event": "good2"}, {"nope": 1}]',  # 5: an array on a line, its 2nd item bad
        b'{"event": "x", "eventtui": {"received_at": "noon"}}',  # 6: our key, malformed
        b'{"event": "bad", "properties": [1]}',  # 7
        b'{"event": "good4"}',  # 8
    ]
    db = tmp_path / "bad.db"
    result = import_events(io.BytesIO(b"\n".join(lines) + b"\n"), db=db)
    assert [(b.line, b.item) for b in result.refused] == [
        (2, None),
        (4, None),
        (5, 2),
        (6, None),
        (7, None),
    ]
    assert (result.events, result.imported, result.complete) == (3, 3, False)
    summary = result.summary()
    assert "imported 3 of 3 events" in summary
    assert "5 refused, not imported" in summary
    for bad in result.refused:
        assert str(bad) in summary
    with Reader(db) as reader:
        assert [r.name for r in reader.query()] == ["good1", "good2", "good4"]
        rejects = reader.rejects()
        (session,) = reader.sessions()
    assert sorted(r["reason"] for r in rejects) == sorted(str(b) for b in result.refused)
    assert any(r["raw"] == b"not json" for r in rejects)
    assert session.meta["import"] == {
        "started_at": pytest.approx(session.started_at, abs=5),
        "finished": True,
        "events": 3,
        "refused": 5,
    }


@pytest.mark.parametrize(
    "data",
    [b"", b"\n\n  \n", b"[]", b"id,name\n1,checkout\n", b"\x00\x01\x02"],
    ids=["empty", "blank", "empty-array", "csv", "binary"],
)
def test_input_without_events_is_refused_whole(tmp_path: Path, data: bytes) -> None:
    db = tmp_path / "none.db"
    with pytest.raises(ImportRefused) as info:
        import_events(io.BytesIO(data), db=db)
    assert "\n" not in str(info.value)
    assert not db.exists()  # no session, no file: nothing was written


def test_refused_whole_lists_the_lines(tmp_path: Path) -> None:
    with pytest.raises(ImportRefused) as info:
        import_events(io.BytesIO(b"nope\n{}\n"), db=tmp_path / "x.db")
    assert [b.line for b in info.value.refused] == [1, 2]
    assert "line 1: not valid JSON" in str(info.value)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImportRefused, match="cannot read"):
        import_events(tmp_path / "missing.jsonl", db=tmp_path / "x.db")


def test_reimport_counts_duplicates(source: tuple[Path, int, int], tmp_path: Path) -> None:
    db, _, _ = source
    exported = tmp_path / "events.jsonl"
    exported.write_bytes(_export(db))
    target = tmp_path / "dup.db"
    first = import_events(exported, db=target)
    again = import_events(exported, db=target)
    with_ids = sum(1 for x in exported.read_bytes().splitlines() if b'"messageId"' in x)
    assert with_ids == 3
    assert again.events == first.events
    assert (again.imported, again.duplicates) == (first.imported - with_ids, with_ids)
    assert "3 duplicates not stored again" in again.summary()


def test_the_collectors_rules_and_reasons_apply(tmp_path: Path) -> None:
    deep = b'{"event": "d", "properties": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}"
    lines = [
        b'{"event": "s", "properties": {"t": "a\\ud800b"}}',  # lone surrogate: kept as U+FFFD
        b'{"event": "b", "properties": [1]}',
        deep,
        b'{"batch": [{"event": "in_batch"}], "context": {"shared": 1}}',
    ]
    db = tmp_path / "rules.db"
    result = import_events(io.BytesIO(b"\n".join(lines)), db=db)
    assert [str(b) for b in result.refused] == [
        'line 2: "properties" must be an object, not an array',
        "line 3: nesting is deeper than 64 levels",
    ]
    with Reader(db) as reader:
        rows = reader.query()
    assert [r.name for r in rows] == ["s", "in_batch"]
    assert json.loads(rows[0].properties) == {"t": "a\ufffdb"}
    assert json.loads(rows[1].context) == {"shared": 1}


def test_import_in_chunks_reports_progress(tmp_path: Path) -> None:
    count = CHUNK_EVENTS * 2 + 10
    path = tmp_path / "many.jsonl"
    path.write_bytes(b"".join(b'{"event": "e%d"}\n' % i for i in range(count)))
    calls: list[tuple[int, float | None]] = []
    result = import_events(
        path, db=tmp_path / "many.db", progress=lambda n, f: calls.append((n, f))
    )
    assert result.imported == count
    assert [n for n, _ in calls] == [CHUNK_EVENTS, 2 * CHUNK_EVENTS, count, count]
    fractions = [f for _, f in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_an_interrupted_import_is_marked_unfinished(tmp_path: Path) -> None:
    path = tmp_path / "many.jsonl"
    path.write_bytes(b"".join(b'{"event": "e%d"}\n' % i for i in range(CHUNK_EVENTS * 3)))
    db = tmp_path / "cut.db"

    def interrupt(events: int, fraction: float | None) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_events(path, db=db, progress=interrupt)
    with Reader(db) as reader:
        (session,) = reader.sessions()
    assert session.ended_at is not None  # the writer was closed in order...
    assert session.meta["import"]["finished"] is False  # ...and the session says it is partial
    assert session.events == CHUNK_EVENTS


# --- progress display --------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_progress_bar_is_silent_when_piped() -> None:
    stream = _Terminal(tty=False)
    with ProgressBar("export", stream=stream) as bar:
        bar(10, 0.5)
        bar(20, 1.0)
    assert stream.getvalue() == ""


def test_progress_bar_draws_on_a_terminal_and_clears() -> None:
    stream = _Terminal(tty=True)
    with ProgressBar("import", stream=stream, min_interval=0) as bar:
        bar(5_000, 0.5)
        bar(10_000, None)
    text = stream.getvalue()
    assert "import" in text and "50%" in text and "10,000 events" in text
    assert text.endswith("\r")
    last = text.rstrip("\r").rsplit("\r", 1)[-1]
    assert last.strip() == ""  # the line was erased
