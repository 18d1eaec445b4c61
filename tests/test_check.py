"""`eventtui check`: exit codes and reports as cron and CI see them, and the judging behind them.

Stores are real SQLite files written through `Writer`, with `received_at` chosen by the test, so time
is under control: the CLI runs at the wall clock (events are placed relative to it, with tens of
seconds of slack), the in-process tests pass `now` explicitly. Nothing sleeps.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from eventtui.checking import CheckResult, check_session, check_window, render_text
from eventtui.cli import main
from eventtui.config import Config, load_config
from eventtui.model import normalise
from eventtui.monitor import INVALID, LATE, LOW_RATE, MISSING, RECOVERED, UNPLANNED, Plan
from eventtui.store import NoSuchSession, Reader
from tests.conftest import write_session

ENV = {k: v for k, v in os.environ.items() if not k.startswith("EVENTTUI_")}

HEARTBEAT = """
[[expect]]
event = "heartbeat"
every = "30s"
grace = "60s"
"""
PLAN = """
[plan]
strict = {strict}

[plan.events.signup]
schema = {{ type = "object", required = ["plan"], properties = {{ plan = {{ enum = ["free", "pro"] }} }} }}

[plan.events.heartbeat]
"""

Event = tuple[float, dict[str, Any]]


def hb(at: float) -> Event:
    return at, {"event": "heartbeat"}


def signup(at: float, plan: str = "pro") -> Event:
    return at, {"event": "signup", "properties": {"plan": plan}}


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "check.toml"
    path.write_text(text)
    return path


def record(
    db: Path,
    events: Iterable[Event],
    *,
    config: Config | None = None,
    source: str = "collect",
    label: str | None = None,
    started_at: float | None = None,
    ended_at: float | None = None,
    running: bool = False,
) -> int:
    """One session of `events`, checked against `config`'s plan as the collector would check them."""
    plan = Plan.from_config(config) if config is not None and config.plan.events else None
    rows = []
    for at, obj in events:
        row = normalise(obj, client="test", received_at=at)
        errors = plan.check(row.name, row.properties) if plan is not None else []
        if errors:
            row = row._replace(valid=False, errors=json.dumps(errors))
        rows.append(row)
    session = write_session(db, rows, source=source, label=label)
    # The writer stamps the session with the wall clock; the test decides what it was.
    with sqlite3.connect(db) as conn:
        if started_at is not None:
            conn.execute("UPDATE sessions SET started_at = ? WHERE id = ?", (started_at, session))
        if running or ended_at is not None:
            conn.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (ended_at, session))
    conn.close()
    return session


def table_row(out: str, event: str) -> list[str]:
    """The words of the anomaly row for `event` in a text report."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("state "))
    return next(line.split() for line in lines[start + 1 :] if event in line.split())


def check(db: Path, config: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    options = ["--db", str(db)] + (["--config", str(config)] if config else [])
    return subprocess.run(
        [sys.executable, "-m", "eventtui", "check", *options, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=ENV,
        cwd=db.parent,
    )


# --- the command line ------------------------------------------------------------------------------


def test_heartbeat_gone_for_an_hour_is_missing_even_in_a_short_window(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    now = time.time()
    record(db, [hb(now - 3600 - 30 * i) for i in range(5)], started_at=now - 7200, running=True)
    result = check(db, write_config(tmp_path, HEARTBEAT), "--window", "5m")
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"store {db} · last 5m (")
    assert lines[0].endswith("· 0 events checked")
    row = table_row(result.stdout, "heartbeat")
    assert row[:3] == ["✖", "missing", "heartbeat"]
    assert row[4].startswith("1h") and row[5] == "ago"  # last seen: an hour ago, not the window's
    assert " ".join(row[6:]) == "expected every 30s; missing after 1m30s"
    assert lines[-1] == "FAIL: 1 firing"
    assert "\x1b[" not in result.stdout  # not a tty: no colour


def test_late_only_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    now = time.time()
    # Late after 30s, missing after 90s: 45s ago leaves 45s of slack for the subprocess to start.
    record(db, [hb(now - 105), hb(now - 75), hb(now - 45)])
    result = check(db, write_config(tmp_path, HEARTBEAT))
    assert result.returncode == 0, result.stdout + result.stderr
    assert table_row(result.stdout, "heartbeat")[:3] == ["◷", "late", "heartbeat"]
    assert result.stdout.splitlines()[-1] == "OK: nothing firing"
    assert "3 events checked" in result.stdout


def test_an_event_breaking_its_schema_fails_with_a_sample_error(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    path = write_config(tmp_path, PLAN.format(strict="false"))
    now = time.time()
    record(
        db, [signup(now - 60), signup(now - 50, "gold"), signup(now - 40)], config=load_config(path)
    )
    result = check(db, path)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "✗ invalid  signup" in out
    violations = out.split("plan violations\n")[1].splitlines()
    assert violations[0].split() == ["event", "invalid", "sample", "error"]
    assert violations[1].split()[:2] == ["signup", "1"]
    assert "properties.plan: 'gold' is not one of ['free', 'pro']" in violations[1]
    assert out.splitlines()[-1] == "FAIL: 1 firing"


def test_unplanned_with_a_strict_plan_is_reported_but_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    path = write_config(tmp_path, PLAN.format(strict="true"))
    now = time.time()
    record(db, [signup(now - 30), (now - 20, {"event": "mystery"})], config=load_config(path))
    result = check(db, path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "? unplanned  mystery" in result.stdout
    assert "unplanned (not in the strict plan): mystery" in result.stdout
    assert "signup" not in result.stdout
    assert result.stdout.splitlines()[-1] == "OK: nothing firing"


def test_json_is_one_documented_object(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    path = write_config(tmp_path, HEARTBEAT + PLAN.format(strict="true"))
    now = time.time()
    events = [hb(now - 600), signup(now - 60, "gold"), (now - 30, {"event": "mystery"})]
    record(db, events, config=load_config(path), started_at=now - 3600, running=True)
    result = check(db, path, "--json")
    assert result.returncode == 1, result.stderr
    assert len(result.stdout.splitlines()) == 1
    report = json.loads(result.stdout)
    assert list(report) == [
        "ok",
        "checked_at",
        "store",
        "window",
        "events",
        "expectations",
        "anomalies",
        "plan",
    ]
    assert report["ok"] is False
    assert report["store"] == str(db)
    assert report["events"] == 3  # the heartbeat 10 minutes ago is inside the 15-minute window
    assert report["expectations"] == 1
    window = report["window"]
    assert window["seconds"] == 900.0
    assert window["to"] == report["checked_at"] == pytest.approx(now, abs=30)
    assert window["to"] - window["from"] == pytest.approx(900.0)
    states = [(a["event"], a["state"], a["severity"], a["firing"]) for a in report["anomalies"]]
    assert states == [
        ("heartbeat", "missing", "firing", True),
        ("signup", "invalid", "firing", True),
        ("mystery", "unplanned", "warning", False),
    ]
    missing = report["anomalies"][0]
    assert set(missing) == {
        "kind",
        "event",
        "where",
        "state",
        "severity",
        "firing",
        "started_at",
        "last_seen",
        "detail",
    }
    assert missing["kind"] == "declared"
    assert missing["where"] is None
    assert missing["last_seen"] == pytest.approx(now - 600)
    assert missing["started_at"] == pytest.approx(now - 600 + 90)
    assert report["plan"]["invalid"] == {"signup": 1}
    assert report["plan"]["unplanned"] == ["mystery"]
    assert "'gold' is not one of" in report["plan"]["sample_errors"]["signup"]


def test_session_is_judged_on_its_own_clock(tmp_path: Path) -> None:
    """CI after an end-to-end run: a day-old session, judged from its start to its end."""
    db = tmp_path / "events.db"
    config = write_config(tmp_path, HEARTBEAT)
    t0 = time.time() - 86400
    steady = record(db, [hb(t0 + s) for s in range(5, 300, 20)], started_at=t0, ended_at=t0 + 300)
    stopped = record(
        db, [hb(t0 + 1000 + s) for s in range(5, 100, 20)], started_at=t0 + 1000, ended_at=t0 + 1300
    )
    ok = check(db, config, "--session", str(steady))
    assert ok.returncode == 0, ok.stdout
    assert (
        f"session {steady} (" in ok.stdout and "judged at its end) · 15 events checked" in ok.stdout
    )
    # As the README has CI pick it: the newest session is the last line of `sessions --json`.
    listed = subprocess.run(
        [sys.executable, "-m", "eventtui", "sessions", "--json", "--db", str(db)],
        capture_output=True,
        text=True,
        env=ENV,
        check=True,
    )
    assert json.loads(listed.stdout.splitlines()[-1])["id"] == stopped
    failed = check(db, config, "--session", str(stopped), "--json")
    assert failed.returncode == 1, failed.stdout
    report = json.loads(failed.stdout)
    assert "window" not in report
    assert report["session"] == {
        "id": stopped,
        "label": None,
        "from": pytest.approx(t0 + 1000),
        "to": pytest.approx(t0 + 1300),
        "running": False,
    }
    [anomaly] = report["anomalies"]
    assert (anomaly["state"], anomaly["started_at"]) == ("missing", pytest.approx(t0 + 1085 + 90))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one heartbeat, for the checks that fail before judging anything."""
    db = tmp_path_factory.mktemp("store") / "events.db"
    record(db, [hb(time.time())])
    folder = db.parent
    (folder / "where.toml").write_text(
        '[[expect]]\nevent = "signup"\nevery = "1m"\nwhere = "plan="\n'
    )
    (folder / "schema.toml").write_text('[plan.events.signup]\nschema = { type = "thing" }\n')
    return db


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "soon"], '--window: "soon" is not a duration like "30s"'),
        (["--db", "{tmp}/missing.db"], "missing.db: no such store"),
    ],
)
def test_errors_are_one_line_and_exit_2(store: Path, args: list[str], message: str) -> None:
    result = check(store, None, *[a.format(tmp=store.parent) for a in args])
    assert result.returncode == 2, result.stdout
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("eventtui: error: ")
    assert message in line


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--window", "0"], "--window: must be more than 0 seconds"),
        (["--window=-5m"], '--window: "-5m" is not a duration'),
        (["--session", "99"], "no session 99 in"),
        (
            ["--config", "{tmp}/where.toml"],
            'where.toml, line 1: expect[0] (event "signup"): "where" is not a valid filter',
        ),
        (["--config", "{tmp}/schema.toml"], "plan.events.signup: inline schema: not a valid"),
    ],
)
def test_more_errors_exit_2_in_process(
    store: Path,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(store.parent)  # no ./eventtui.toml of the developer's
    for name in ("EVENTTUI_DB", "EVENTTUI_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    argv = ["check", "--db", str(store), *[a.format(tmp=store.parent) for a in args]]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("eventtui: error: ")
    assert message in line


def test_window_and_session_together_is_a_usage_error(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--db", str(store), "--window", "5m", "--session", "1"])
    assert exit_.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_hostile_event_names_print_inert(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    path = write_config(tmp_path, PLAN.format(strict="true"))
    name = "evil\x1b]52;c;aGk=\x07\u202ename"
    record(db, [(time.time() - 10, {"event": name})], config=load_config(path))
    result = check(db, path)
    assert result.returncode == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "\u202e" not in result.stdout
    assert "evil\\x1b]52;c;aGk=\\x07\\u202ename" in result.stdout
    with Reader(db) as reader:
        as_json = json.dumps(
            check_window(reader, load_config(path), window=900, now=time.time()).as_json()
        )
    assert (
        as_json.isascii() and "\x1b" not in as_json
    )  # escaped as \u001b, decoded back by any reader
    assert json.loads(as_json)["plan"]["unplanned"] == [name]


# --- the judging, in process, with `now` given ----------------------------------------------------

T0 = 1_700_000_040.0


def config_of(tmp_path: Path, text: str) -> Config:
    return load_config(write_config(tmp_path, text))


def window_check(db: Path, config: Config, now: float, window: float = 900.0) -> CheckResult:
    with Reader(db) as reader:
        return check_window(reader, config, window=window, now=now)


def states(result: CheckResult) -> list[tuple[str, str]]:
    return [(a.event, a.state) for a in result.anomalies]


def record_heartbeats(db: Path) -> Path:
    """Heartbeats every 10s from T0 to T0+300, in a collector session that started at T0."""
    record(db, [hb(T0 + s) for s in range(0, 301, 10)], started_at=T0, running=True)
    return db


@pytest.fixture(scope="module")
def heartbeats(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`record_heartbeats`, shared by the tests that only read it."""
    return record_heartbeats(tmp_path_factory.mktemp("heartbeats") / "events.db")


@pytest.mark.parametrize(
    ("after_last", "expected"),
    [
        (10, []),
        (30, []),  # exactly `every`: not yet late
        (31, [("heartbeat", LATE)]),
        (90, [("heartbeat", LATE)]),
        (91, [("heartbeat", MISSING)]),
        (3 * 86400, [("heartbeat", MISSING)]),
    ],
)
def test_deadlines_count_from_the_last_stored_event(
    heartbeats: Path, tmp_path: Path, after_last: float, expected: list[tuple[str, str]]
) -> None:
    now = T0 + 300 + after_last
    result = window_check(heartbeats, config_of(tmp_path, HEARTBEAT), now, window=60.0)
    assert states(result) == expected
    assert result.ok is (not expected or expected[0][1] != MISSING)
    if expected:
        assert result.last_seen[("heartbeat", None)] == T0 + 300


def test_a_gap_inside_the_window_shows_as_recovered_and_passes(tmp_path: Path) -> None:
    heartbeats = record_heartbeats(tmp_path / "events.db")
    record(heartbeats, [hb(T0 + 500)])  # 200s after the previous one: it was missing for 110s
    result = window_check(heartbeats, config_of(tmp_path, HEARTBEAT), T0 + 520)
    assert states(result) == [("heartbeat", RECOVERED)]
    assert result.ok
    assert "arrived again after 3m20s" in result.anomalies[0].detail


def test_a_never_seen_event_is_due_from_the_collectors_start(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    record(db, [hb(T0 - 5000)], started_at=T0 - 5000, ended_at=T0 - 4000)
    record(db, [], started_at=T0, running=True)
    record(db, [hb(T0 + 10)], source="import", started_at=T0 + 50)  # not a collector
    config = config_of(tmp_path, '[[expect]]\nevent = "signup"\nevery = "30s"\n')
    assert states(window_check(db, config, T0 + 59)) == [("signup", LATE)]
    missing = window_check(db, config, T0 + 61)
    assert states(missing) == [("signup", MISSING)]
    assert missing.anomalies[0].started_at == T0 + 60
    assert ("signup", None) not in missing.last_seen
    # Long after the collector started, the deadline counts from the window's start.
    later = window_check(db, config, T0 + 10_000, window=900.0)
    assert later.anomalies[0].started_at == T0 + 10_000 - 900 + 60


def test_where_counts_only_matching_events(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    events = [signup(T0, "pro")] + [signup(T0 + s, "free") for s in range(100, 2000, 100)]
    record(db, events, started_at=T0, running=True)
    config = config_of(tmp_path, '[[expect]]\nevent = "signup"\nevery = "5m"\nwhere = "plan=pro"\n')
    result = window_check(db, config, T0 + 2000)
    assert states(result) == [("signup", MISSING)]
    assert result.anomalies[0].where == "plan=pro"
    assert result.last_seen[("signup", "plan=pro")] == T0  # found before the window, by the filter
    record(db, [signup(T0 + 1990, "pro")])
    assert states(window_check(db, config, T0 + 2000)) == [("signup", RECOVERED)]


def test_a_rate_floor_is_judged_over_its_own_minute_with_a_shorter_window(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    record(db, [(T0 + s, {"event": "order"}) for s in range(0, 120, 10)], started_at=T0)
    config = config_of(tmp_path, '[[expect]]\nevent = "order"\nmin_rate = 2\n')
    assert states(window_check(db, config, T0 + 150, window=30.0)) == []
    low = window_check(db, config, T0 + 200, window=30.0)
    assert states(low) == [("order", LOW_RATE)]
    assert low.events == 0 and not low.ok


def test_the_plan_verdict_covers_the_window_only(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    config = config_of(tmp_path, PLAN.format(strict="false"))
    record(db, [signup(T0, "gold"), signup(T0 + 100, "gold"), signup(T0 + 200)], config=config)
    inside = window_check(db, config, T0 + 150, window=120.0)
    assert inside.invalid == {"signup": 1}  # T0 + 100 only: T0 is before the window
    assert states(inside) == [("signup", INVALID)]
    assert inside.anomalies[0].detail == "1 invalid event"
    after = window_check(db, config, T0 + 300, window=120.0)
    assert (after.invalid, states(after), after.ok) == ({}, [], True)


def test_rate_history_before_the_window_never_counts_as_invalid(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    config = config_of(
        tmp_path,
        PLAN.format(strict="false") + '[[expect]]\nevent = "signup"\nmin_rate = 0.1\n',
    )
    record(db, [signup(T0, "gold"), signup(T0 + 500)], config=config)
    result = window_check(db, config, T0 + 520, window=60.0)  # the floor's window is 10 minutes
    assert (result.invalid, states(result), result.ok) == ({}, [], True)


def test_an_imported_session_is_judged_over_its_events(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    config = config_of(tmp_path, HEARTBEAT)
    # Imported a day after the events happened: its own start and end say nothing about them.
    session = record(
        db,
        [hb(T0 + s) for s in range(0, 301, 10)],
        source="import",
        started_at=T0 + 86400,
        ended_at=T0 + 86410,
    )
    with Reader(db) as reader:
        result = check_session(reader, config, session, now=T0 + 90_000)
    assert (result.scope.start, result.scope.end) == (T0, T0 + 300)
    assert result.ok and states(result) == []


def test_a_cut_off_session_ends_at_its_last_event_and_a_running_one_now(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    config = config_of(tmp_path, HEARTBEAT)
    cut = record(db, [hb(T0 + s) for s in range(0, 200, 10)], started_at=T0, running=True)
    live = record(db, [hb(T0 + 1000)], started_at=T0 + 1000, running=True)
    with Reader(db) as reader:
        cut_off = check_session(reader, config, cut, now=T0 + 5000)
        running = check_session(reader, config, live, now=T0 + 1200)
    assert cut_off.scope.end == T0 + 190 and not cut_off.scope.running
    assert states(cut_off) == []
    assert running.scope.end == T0 + 1200 and running.scope.running
    assert states(running) == [("heartbeat", MISSING)]
    assert "still running" in render_text(running, clean=str)


def test_invalid_events_anywhere_in_a_session_fail_it(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    config = config_of(tmp_path, PLAN.format(strict="true"))
    events = [signup(T0, "gold"), signup(T0 + 3000), (T0 + 3500, {"event": "mystery"})]
    session = record(db, events, config=config, started_at=T0, ended_at=T0 + 3600)
    with Reader(db) as reader:
        result = check_session(reader, config, session, now=T0 + 10_000)
    assert result.invalid == {"signup": 1} and result.unplanned == ("mystery",)
    assert states(result) == [("signup", INVALID), ("mystery", UNPLANNED)]
    assert not result.ok


def test_unknown_session_is_the_stores_no_such_session(heartbeats: Path, tmp_path: Path) -> None:
    with Reader(heartbeats) as reader, pytest.raises(NoSuchSession, match="no session 7"):
        check_session(reader, config_of(tmp_path, HEARTBEAT), 7, now=T0)


def test_text_report_colours_only_beside_symbols_and_words(
    heartbeats: Path, tmp_path: Path
) -> None:
    result = window_check(heartbeats, config_of(tmp_path, HEARTBEAT), T0 + 1000)
    plain = render_text(result, clean=str)
    coloured = render_text(result, clean=str, color=True)
    ascii_only = render_text(result, clean=str, unicode=False)
    assert "\x1b[" not in plain
    assert "\x1b[1;31m✖ missing" in coloured and "\x1b[1;31mFAIL: 1 firing\x1b[0m" in coloured
    assert "X missing" in ascii_only and ascii_only.isascii()


def test_check_stays_headless() -> None:
    code = "import sys, eventtui.checking\nassert 'textual' not in sys.modules\n"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60, env=ENV)


def test_a_check_with_nothing_declared_says_so(heartbeats: Path) -> None:
    """A cron job that lost its --config should not read as a healthy system."""
    text = render_text(window_check(heartbeats, Config(), T0 + 5000), clean=str)
    assert "note: the config declares no [[expect]] and no [plan]" in text
    assert text.endswith("OK: nothing firing\n")


def test_check_of_a_demo_session_applies_the_demos_heartbeat_as_replay_does(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    now = time.time()
    # The demo's heartbeat stops after a minute; its session went on for ten.
    session = record(
        db,
        [hb(now - 600 + 10 * i) for i in range(6)] + [(now - 5, {"event": "page_view"})],
        source="demo",
        started_at=now - 600,
        ended_at=now,
    )
    result = check(db, None, "--session", str(session))
    assert result.returncode == 1, result.stdout + result.stderr
    row = table_row(result.stdout, "heartbeat")
    assert row[:3] == ["✖", "missing", "heartbeat"]
