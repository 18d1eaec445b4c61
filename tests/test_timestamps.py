"""Timestamps at and past the ends of what a datetime holds (years 1 to 9999 in UTC).

At ingest, a time whose UTC value falls outside them is unreadable: stored with `sent_at` empty,
`valid = 0` and the reason in `errors`. Readers of a store written before that rule (which holds
such `sent_at` values) show the raw number of seconds and never crash. Real collector, real CLI,
the TUI's payload pane under Pilot.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from eventtui.model import _fast_path, decode_frame, normalise
from eventtui.store import Submission, Writer
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from tests.conftest import Collect, eventtui

# (what a producer sends, what the error says)
OUT_OF_RANGE: list[tuple[Any, str]] = [
    (
        "9999-12-31T23:59:59-12:00",
        "timestamp: '9999-12-31T23:59:59-12:00' is outside the years 1 to 9999 in UTC",
    ),
    (
        "0001-01-01T00:00:00+01:00",
        "timestamp: '0001-01-01T00:00:00+01:00' is outside the years 1 to 9999 in UTC",
    ),
    (-62135596801, "timestamp: -62135596801 is outside the years 1 to 9999 in UTC"),
    (
        "9999-12-31T23:59:59.999999Z",  # as a float of seconds it rounds up to the year 10000
        "timestamp: '9999-12-31T23:59:59.999999Z' is outside the years 1 to 9999 in UTC",
    ),
]
# The ends themselves are readable.
IN_RANGE: list[tuple[Any, float]] = [
    ("9999-12-31T23:59:59Z", 253402300799.0),
    ("9999-12-31T23:59:59.999Z", 253402300799.999),
    ("9999-12-31T11:59:59-12:00", 253402300799.0),
    ("0001-01-01T00:00:00Z", -62135596800.0),
    ("0001-01-01T01:00:00+01:00", -62135596800.0),
    (-62135596800, -62135596800.0),
]


@pytest.mark.parametrize(("timestamp", "reason"), OUT_OF_RANGE)
@pytest.mark.parametrize("binary", [False, True], ids=["json", "msgpack"])
def test_out_of_range_times_are_stored_as_unreadable(
    timestamp: Any, reason: str, binary: bool
) -> None:
    obj = {"event": "e", "timestamp": timestamp}
    data = msgspec.msgpack.encode(obj) if binary else json.dumps(obj).encode()
    frame = decode_frame(data, binary=binary, client="c", received_at=1.0)
    assert frame.refusals == []
    (stored,) = frame.events
    assert (stored.sent_at, stored.valid, stored.errors) == (None, False, json.dumps([reason]))
    assert stored.as_dict() == {"event": "e", "timestamp": timestamp}  # kept as sent
    assert normalise(obj, client="c", received_at=1.0) == stored


@pytest.mark.parametrize(("timestamp", "seconds"), IN_RANGE)
def test_the_ends_of_the_range_are_readable(timestamp: Any, seconds: float) -> None:
    data = json.dumps({"event": "e", "timestamp": timestamp}).encode()
    (stored,) = decode_frame(data, binary=False, client="c", received_at=1.0).events
    assert (stored.sent_at, stored.valid, stored.errors) == (seconds, True, None)
    assert stored.as_dict()["timestamp"].startswith(("9999-12-31T23:59:59.", "0001-01-01T00:00"))


@pytest.mark.parametrize("timestamp", [t for t, _ in OUT_OF_RANGE + IN_RANGE])
def test_the_fast_path_agrees_at_the_ends(timestamp: Any) -> None:
    data = json.dumps([{"event": "e", "timestamp": timestamp}]).encode()
    fast = _fast_path(data, "c", 1.0, 512 * 1024)
    full = decode_frame(data, binary=False, client="c", received_at=1.0).events
    assert fast is None or fast == full


def test_out_of_range_times_through_the_collector_and_every_reader(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    collect = Collect(db)
    try:
        lines = "".join(
            json.dumps({"event": f"e{i}", "messageId": f"m{i}", "timestamp": t}) + "\n"
            for i, (t, _) in enumerate(OUT_OF_RANGE)
        )
        sent = eventtui("send", "--url", collect.ws_url, input=lines.encode())
        assert sent.returncode == 0, sent.stderr
        assert f"{len(OUT_OF_RANGE)} acknowledged; 0 events refused" in sent.stdout
        code, err = collect.stop()
    finally:
        collect.close()
    assert code == 0, err
    query = eventtui("query", "--json", "--db", str(db))
    assert query.returncode == 0, query.stderr
    events = [json.loads(line) for line in query.stdout.splitlines()]
    assert [(e["valid"], e["errors"], e.get("timestamp")) for e in events] == [
        (False, [reason], timestamp) for timestamp, reason in OUT_OF_RANGE
    ]
    exported = eventtui("export", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    lines_out = [json.loads(line) for line in exported.stdout.splitlines()]
    assert [(e["eventtui"]["sent_at"], e["eventtui"]["errors"]) for e in lines_out] == [
        (None, [reason]) for _, reason in OUT_OF_RANGE
    ]


# --- a store written before the rule --------------------------------------------------------------

# What an older eventtui stored for the three inputs of the report: seconds past either end.
OLD_SENT_AT = [253402343999.0, -62135600400.0, -62135596801.0]


@pytest.fixture
def old_store(tmp_path: Path) -> Path:
    """A store whose events hold out-of-range `sent_at` values, as an older version wrote them."""
    db = tmp_path / "old.db"
    writer = Writer(db, source="collect", label="old")
    writer.start()
    rows = [
        normalise(
            {"event": f"e{i}", "messageId": f"m{i}", "properties": {"i": i}},
            client="ws:test",
            received_at=1_714_000_000.0 + i,
        )._replace(sent_at=sent_at)
        for i, sent_at in enumerate(OLD_SENT_AT)
    ]
    writer.submit(Submission(rows))
    writer.close()
    with sqlite3.connect(db) as conn:
        assert [r[0] for r in conn.execute("SELECT sent_at FROM events ORDER BY id")] == OLD_SENT_AT
    return db


def test_cli_readers_show_the_raw_number(old_store: Path, tmp_path: Path) -> None:
    plain = eventtui("query", "--db", str(old_store))
    assert plain.returncode == 0, plain.stderr
    assert len(plain.stdout.splitlines()) == 3
    query = eventtui("query", "--json", "--db", str(old_store))
    assert query.returncode == 0, query.stderr
    assert [json.loads(x)["timestamp"] for x in query.stdout.splitlines()] == OLD_SENT_AT
    exported = eventtui("export", "--db", str(old_store), "-o", str(tmp_path / "old.jsonl"))
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(x) for x in (tmp_path / "old.jsonl").read_text().splitlines()]
    assert [(e["timestamp"], e["eventtui"]["sent_at"]) for e in lines] == [
        (s, s) for s in OLD_SENT_AT
    ]
    # Imported again, such a time follows today's rule: kept as unreadable, the event stored.
    again = tmp_path / "again.db"
    imported = eventtui("import", str(tmp_path / "old.jsonl"), "--db", str(again))
    assert imported.returncode == 0, imported.stderr
    second = eventtui("export", "--db", str(again))
    assert second.returncode == 0, second.stderr
    reimported = [json.loads(x) for x in second.stdout.splitlines()]
    assert [e["event"] for e in reimported] == ["e0", "e1", "e2"]
    # The unreadable time stays in the event, as sent.
    assert [(e["timestamp"], e["eventtui"]["sent_at"]) for e in reimported] == [
        (s, None) for s in OLD_SENT_AT
    ]
    assert [(e["eventtui"]["valid"], e["eventtui"]["errors"]) for e in reimported] == [
        (False, [f"timestamp: {s!r} is outside the years 1 to 9999 in UTC"]) for s in OLD_SENT_AT
    ]
    as_store = eventtui(
        "export", "--db", str(old_store), "--format", "sqlite", "-o", str(tmp_path / "c.db")
    )
    assert as_store.returncode == 0, as_store.stderr
    check = eventtui("check", "--json", "--db", str(old_store))
    assert check.returncode == 0, check.stderr


def test_replay_to_url_resends_an_old_store(old_store: Path, tmp_path: Path) -> None:
    target = tmp_path / "target.db"
    collect = Collect(target)
    try:
        result = eventtui(
            "replay", "--db", str(old_store), "--to-url", collect.ws_url, "--speed", "max"
        )
        code, err = collect.stop()
    finally:
        collect.close()
    assert result.returncode == 0, result.stderr
    assert "3 acknowledged; 0 refused" in result.stdout
    assert code == 0, err


async def test_the_payload_pane_shows_the_raw_number(old_store: Path) -> None:
    app = EventApp(StoreFeed(old_store, mode="open", poll_interval=0.05))
    async with app.run_test(size=(160, 45)) as pilot:
        deadline = time.monotonic() + 5
        while len(app.stream.rows) < 3:
            assert time.monotonic() < deadline, "the events never arrived"
            await asyncio.sleep(0.01)
        shown = []
        for _ in range(3):
            await pilot.press("up")
            await pilot.pause()
            assert app.payload.row is not None
            shown.append((app.payload.row.name, app.payload.rendered_text))
    for name, text in shown:
        sent_at = OLD_SENT_AT[int(name[1:])]
        assert "too deeply nested" not in text
        assert f'"timestamp": {sent_at}' in text, text
        assert '"properties": {' in text


def test_import_applies_the_rule_to_its_own_times(tmp_path: Path) -> None:
    """An import file's "eventtui" key carries times too: an out-of-range `sent_at` is kept as
    unreadable, an out-of-range `received_at` (the event's place in time) refuses the line."""
    lines = tmp_path / "in.jsonl"
    lines.write_text(
        json.dumps({"event": "far", "eventtui": {"sent_at": -1e15, "valid": True}})
        + "\n"
        + json.dumps({"event": "never", "eventtui": {"received_at": 253402343999.0}})
        + "\n"
        + json.dumps({"event": "ok", "eventtui": {"received_at": 1_714_000_000.0}})
        + "\n"
    )
    db = tmp_path / "in.db"
    result = eventtui("import", str(lines), "--db", str(db))
    assert result.returncode == 1, result.stderr
    assert result.stderr == (
        f'{lines}:2: refused: "eventtui.received_at": 253402343999.0 is outside the years 1 to'
        " 9999 in UTC\n"
    )
    plain = eventtui("query", "--db", str(db))
    assert plain.returncode == 0, plain.stderr
    query = eventtui("query", "--json", "--db", str(db))
    assert query.returncode == 0, query.stderr
    events = [json.loads(x) for x in query.stdout.splitlines()]
    assert [(e["event"], e["valid"], e["errors"], "timestamp" in e) for e in events] == [
        (
            "far",
            False,
            ["timestamp: -1000000000000000.0 is outside the years 1 to 9999 in UTC"],
            True,  # kept in the event as sent
        ),
        ("ok", True, None, False),
    ]
