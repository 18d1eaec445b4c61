"""The rollups (store/rollups.py) always equal GROUP BY over the events they summarise.

Events go in through the real writer process (both of its ways to count: every row inserted, and
batches where duplicates were skipped), sessions go out through `sessions delete` and retention,
and a store written before the rollups is migrated; after each step the rollup tables are compared
with the same aggregates computed from `events`.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import pytest

from eventtui.model import StoredEvent
from eventtui.store import Reader, Submission, Writer, connect
from eventtui.store.rollups import MIGRATION_SLICE
from eventtui.store.schema import ROLLUPS_VERSION
from eventtui.store.sessions import delete_session, prune_sessions

NAMES = ["page_view", "signup", "checkout_completed", "heartbeat", "ünïcode name"]

TOTALS_FROM_EVENTS = (
    "SELECT session_id, name, count(*), sum(valid = 0), min(received_at), max(received_at)"
    " FROM events GROUP BY 1, 2 ORDER BY 1, 2"
)
TOTALS = (
    "SELECT session_id, name, events, invalid, first_at, last_at FROM name_totals ORDER BY 1, 2"
)
MINUTES_FROM_EVENTS = (
    "SELECT session_id, name, CAST(received_at / 60 AS INTEGER), count(*) FROM events"
    " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
)
MINUTES = "SELECT session_id, name, minute, events FROM name_minutes ORDER BY 1, 2, 3"
BEFORE_ROLLUPS = (
    f"DROP TABLE name_totals; DROP TABLE name_minutes; PRAGMA user_version = {ROLLUPS_VERSION - 1}"
)


def assert_rollups_match(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute(TOTALS).fetchall() == conn.execute(TOTALS_FROM_EVENTS).fetchall()
        assert conn.execute(MINUTES).fetchall() == conn.execute(MINUTES_FROM_EVENTS).fetchall()


def event(rng: random.Random, at: float, message_id: str | None) -> StoredEvent:
    valid = rng.random() > 0.2
    return StoredEvent(
        received_at=at,
        sent_at=at,
        name=rng.choice(NAMES),
        type="track",
        user_id="u1",
        anonymous_id=None,
        message_id=message_id,
        client="test",
        properties="{}",
        context="{}",
        valid=valid,
        errors=None if valid else '["properties.total: required"]',
        extra=None,
    )


def write_session(path: Path, rng: random.Random, seen_ids: list[str], start: float) -> int:
    """A session of random batches spread over a few minutes; some repeat earlier message ids."""
    writer = Writer(path, source="test")
    session = writer.start()
    at = start
    for _ in range(rng.randint(1, 6)):
        batch = []
        for _ in range(rng.randint(1, 40)):
            at += rng.random() * 20  # several minutes per session
            if seen_ids and rng.random() < 0.15:
                message_id: str | None = rng.choice(seen_ids)  # a duplicate: stored once
            elif rng.random() < 0.2:
                message_id = None
            else:
                message_id = f"m{rng.getrandbits(48):x}"
                seen_ids.append(message_id)
            batch.append(event(rng, at, message_id))
        writer.submit(Submission(batch))
    writer.close()
    return session


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rollups_equal_group_by_after_random_inserts_deletes_and_prunes(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    path = tmp_path / "s.db"
    seen: list[str] = []
    start = 1_700_000_000.0
    sessions = [write_session(path, rng, seen, start + i * 600) for i in range(4)]
    assert_rollups_match(path)
    with sqlite3.connect(path) as conn:
        duplicates = conn.execute("SELECT sum(json_extract(meta, '$.duplicates')) FROM sessions")
        assert duplicates.fetchone()[0] > 0, "the duplicate path was not taken"

    delete_session(path, rng.choice(sessions[:-1]))
    assert_rollups_match(path)

    # Retention: everything that ended before now goes; a new session then starts from nothing.
    prune_sessions(path, 0.001, now=time.time() + 10)
    assert_rollups_match(path)
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM name_totals").fetchone() == (0,)
    write_session(path, rng, seen, start + 3600)
    assert_rollups_match(path)


def test_a_store_from_before_the_rollups_gets_them_on_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    rng = random.Random(7)
    seen: list[str] = []
    for i in range(2):
        write_session(path, rng, seen, 1_700_000_000.0 + i * 600)
    with sqlite3.connect(path) as conn:
        # Back to the version before: what a store written by the previous eventtui holds.
        conn.executescript(BEFORE_ROLLUPS)
    with Reader(path) as reader:
        assert not reader.rollups  # a viewer reads an old store without migrating it
        old_sessions = [(s.id, s.events) for s in reader.sessions()]
        old_names = reader.event_names()
    ticks: list[tuple[int, float | None]] = []
    connect(path, create=True, progress=lambda n, f: ticks.append((n, f))).close()
    assert ticks and ticks[-1][1] == 1.0
    assert_rollups_match(path)
    with Reader(path) as reader:
        assert reader.rollups
        assert [(s.id, s.events) for s in reader.sessions()] == old_sessions
        assert reader.event_names() == old_names


def test_migration_reports_progress_slice_by_slice(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    now = time.time()
    writer = Writer(path, source="test")
    writer.start()
    rows = [event(random.Random(i), now + i * 0.001, None) for i in range(MIGRATION_SLICE + 10)]
    writer.submit(Submission(rows))
    writer.close()
    with sqlite3.connect(path) as conn:
        conn.executescript(BEFORE_ROLLUPS)
    ticks: list[float | None] = []
    connect(path, create=True, progress=lambda n, f: ticks.append(f)).close()
    assert len(ticks) == 2 and ticks[-1] == 1.0
    assert_rollups_match(path)


def test_counters_from_rollups_equal_counters_from_events(tmp_path: Path) -> None:
    """What viewers read (Reader.name_counts) is the same from the rollups as from events, also
    when events were committed after the viewer's cursor."""
    path = tmp_path / "s.db"
    rng = random.Random(11)
    now = time.time()
    writer = Writer(path, source="test")
    session = writer.start()
    # The last 40 minutes, so minutes and seconds windows both have something to count.
    writer.submit(Submission([event(rng, now - 2400 + i * 2.4, None) for i in range(1000)]))
    writer.close()
    with Reader(path) as reader:
        last = reader.last_event_id()
        for to_id in (last, last - 37, last - 400):
            reader.rollups = True
            from_rollups = reader.name_counts(from_session=session, to_id=to_id, now=now)
            reader.rollups = False
            from_events = reader.name_counts(from_session=session, to_id=to_id, now=now)
            assert [(c.name, c.total, c.invalid) for c in from_rollups] == [
                (c.name, c.total, c.invalid) for c in from_events
            ]
            assert [list(c.seconds) for c in from_rollups] == [
                sorted(c.seconds) for c in from_events
            ]
            # The oldest minute of the window is whole in the rollups, partial in the scan.
            oldest = int((now - 31 * 60) // 60)
            assert [[m for m in c.minutes if m[0] > oldest] for c in from_rollups] == [
                sorted(m for m in c.minutes if m[0] > oldest) for c in from_events
            ]
        assert reader.count_events() == 1000
