"""The command line as a user runs it: real subprocesses, real ports, real files."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from eventtui.store import Reject
from tests.conftest import Collect, eventtui, write_session


def test_collect_prints_its_addresses_and_stops_cleanly(collect: Collect, tmp_path: Path) -> None:
    assert collect.first_line.startswith("listening on ws://127.0.0.1:")
    assert " and http://127.0.0.1:" in collect.first_line
    sent = eventtui("send", "--url", collect.ws_url, input=b'{"event": "hello"}\n')
    assert sent.returncode == 0, sent.stderr
    code, err = collect.stop(signal.SIGINT)
    assert code == 0, err
    assert "stored 1 event (0 duplicates" in err
    with sqlite3.connect(tmp_path / "events.db") as conn:
        (ended,) = conn.execute("SELECT ended_at FROM sessions").fetchone()
    assert ended is not None


def test_send_reports_rejections_with_line_numbers_and_exits_1(
    collect: Collect, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"event": "ok"}\n\n{"event": ""}\n[{"event": "a"}, {"properties": {}}]\nnot json\n'
    )
    result = eventtui("send", str(events), "--url", collect.ws_url)
    assert result.returncode == 1
    assert f"{events}:3: refused: the event name" in result.stderr
    assert f"{events}:4 [1]: refused: the event name" in result.stderr
    assert f"{events}:5: refused: not valid JSON" in result.stderr
    assert "sent 4 frames; 4 acknowledged; 3 events refused" in result.stdout


def test_send_to_nothing_is_a_usage_error(tmp_path: Path) -> None:
    result = eventtui("send", "--url", "ws://127.0.0.1:9", input=b'{"event": "x"}\n')
    assert result.returncode == 2
    assert result.stderr.startswith("eventtui: error: cannot connect to ws://127.0.0.1:9")
    assert len(result.stderr.strip().splitlines()) == 1


def test_sessions_and_query(collect: Collect, tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    lines = b'{"event": "signup", "userId": "u1", "properties": {"plan": "pro"}}\n{"event": "page_view"}\n'
    assert eventtui("send", "--url", collect.ws_url, input=lines).returncode == 0
    sessions = eventtui("sessions", "--json", "--db", str(db))
    assert sessions.returncode == 0
    (session,) = [json.loads(line) for line in sessions.stdout.splitlines()]
    assert session["events"] == 2 and session["ended_at"] is None
    table = eventtui("sessions", "--db", str(db))
    assert "running" in table.stdout and table.stdout.startswith("id")
    query = eventtui("query", "sign", "--json", "--db", str(db))
    assert query.returncode == 0, query.stderr
    (event,) = [json.loads(line) for line in query.stdout.splitlines()]
    assert (
        event["event"] == "signup"
        and event["userId"] == "u1"
        and event["properties"] == {"plan": "pro"}
    )
    plain = eventtui("query", "--db", str(db))
    assert [line.split()[2] for line in plain.stdout.splitlines()] == ["signup", "page_view"]


def test_query_prints_hostile_text_inert(collect: Collect, tmp_path: Path) -> None:
    hostile = json.dumps({"event": "evil\x1b]0;pwned\x07\x1b[2J", "properties": {"x": "\x1b[31m"}})
    assert eventtui("send", "--url", collect.ws_url, input=hostile.encode() + b"\n").returncode == 0
    out = eventtui("query", "--db", str(tmp_path / "events.db")).stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "evil\\x1b]0;pwned\\x07" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sessions", "--db", "{tmp}/missing.db"], "missing.db: no such store"),
        (
            ["sessions", "--db", "{tmp}/foreign.db"],
            "not an eventtui store (another application's SQLite file)",
        ),
        (["sessions", "--db", "{tmp}/text.db"], "not an eventtui store (not a SQLite file)"),
        (
            ["sessions", "--config", "{tmp}/bad.toml"],
            'bad.toml, line 2: collector.prot: unknown key "prot"',
        ),
        (
            ["sessions", "--config", "{tmp}/type.toml"],
            "type.toml, line 2: collector.port: Expected `int`, got `str`",
        ),
        (["query", "--db", "{tmp}/missing.db"], "no such store"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_errors_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    with sqlite3.connect(tmp_path / "foreign.db") as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    (tmp_path / "text.db").write_text("hello, not a database\n" * 10)
    (tmp_path / "bad.toml").write_text("[collector]\nprot = 1\n")
    (tmp_path / "type.toml").write_text('[collector]\nport = "eighty"\n')
    before = (tmp_path / "foreign.db").read_bytes()
    result = eventtui(*[a.format(tmp=tmp_path) for a in args])
    assert result.returncode == 2
    assert message in result.stderr
    assert (
        len([line for line in result.stderr.splitlines() if line.startswith("eventtui: error")])
        == 1
    )
    assert (tmp_path / "foreign.db").read_bytes() == before  # never modified


def test_port_in_use_is_one_clear_line(collect: Collect, tmp_path: Path) -> None:
    port = collect.ws_url.rsplit(":", 1)[1]
    result = eventtui("collect", "--port", port, "--db", str(tmp_path / "other.db"))
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"eventtui: error: port {port} on 127.0.0.1 is already in use; pick another with --port "
        "(0 picks a free one)"
    )


def test_kill_9_loses_no_acknowledged_frame(tmp_path: Path) -> None:
    """Under batched load, kill -9; every frame acked before the kill is in the store, intact."""
    db = tmp_path / "events.db"
    collect = Collect(db)
    acked_ids: set[str] = set()

    async def load() -> None:
        async with connect(collect.ws_url) as ws:
            frames: dict[int, list[str]] = {}

            async def reader() -> None:
                async for message in ws:
                    ack = json.loads(message).get("ack")
                    if ack:
                        for n in [n for n in frames if n <= ack]:
                            acked_ids.update(frames.pop(n))
                        if len(acked_ids) >= 20_000:
                            os.kill(collect.proc.pid, signal.SIGKILL)

            task = asyncio.create_task(reader())
            try:
                for n in range(1, 100_000):
                    ids = [f"{n}-{i}" for i in range(100)]
                    frames[n] = ids
                    await ws.send(
                        json.dumps(
                            [{"event": "load", "messageId": m, "properties": {"n": n}} for m in ids]
                        )
                    )
                    if task.done():
                        break
                    if n % 50 == 0:
                        await asyncio.sleep(0)
                await asyncio.wait_for(task, 30)
            except Exception:
                pass  # the connection dies with the process: that is the point
            task.cancel()

    asyncio.run(load())
    collect.close()
    assert collect.proc.returncode == -signal.SIGKILL
    assert len(acked_ids) >= 20_000
    restarted = Collect(db)  # opening the same file again recovers the WAL
    try:
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            stored = {row[0] for row in conn.execute("SELECT message_id FROM events")}
            assert conn.execute("SELECT count(*) FROM sessions").fetchone() == (2,)
    finally:
        code, _ = restarted.stop()
    assert acked_ids <= stored
    assert code == 0


def test_unusable_plan_schema_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"type": "objekt"}')
    (tmp_path / "eventtui.toml").write_text('[plan.events.signup]\nschema = "bad.json"\n')
    result = eventtui("collect", "--port", "0", "--db", str(tmp_path / "e.db"), cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("eventtui: error:") and "signup" in line and "bad.json" in line


def test_rejects_lists_what_was_refused_and_why(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    write_session(
        db,
        [],
        rejects=[
            Reject(1_714_000_000.0, "http:127.0.0.1:5", "not valid JSON", b"{oops\x1b[2J"),
            Reject(1_714_000_001.0, "ws:127.0.0.1:6", 'the event name ("event") is missing', b"{}"),
        ],
    )
    table = eventtui("rejects", "--db", str(db))
    assert table.returncode == 0, table.stderr
    header, first, second = table.stdout.splitlines()
    assert header.split() == ["id", "session", "received", "client", "reason", "raw"]
    assert "not valid JSON" in first and "{oops\\x1b[2J" in first  # escaped, never obeyed
    assert "\x1b" not in table.stdout
    assert "missing" in second
    lines = eventtui("rejects", "--json", "--limit", "1", "--db", str(db))
    assert lines.returncode == 0, lines.stderr
    (newest,) = [json.loads(line) for line in lines.stdout.splitlines()]
    assert newest == {
        "id": 2,
        "session": 1,
        "received_at": 1_714_000_001.0,
        "client": "ws:127.0.0.1:6",
        "reason": 'the event name ("event") is missing',
        "raw": "{}",
        "raw_bytes": 2,
    }


def test_eventtui_with_watch_options_is_watch(tmp_path: Path) -> None:
    """`eventtui --port N` is `eventtui watch --port N` (it was "invalid choice")."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = eventtui("--port", str(port), "--db", str(tmp_path / "e.db"))
    assert result.returncode == 2
    assert result.stderr == (
        f"eventtui: error: port {port} on 127.0.0.1 is already in use; pick another with --port"
        " (0 picks a free one)\n"
    )
    assert eventtui("--version").stdout.startswith("eventtui ")


def _free_port_pair() -> int:
    """A port P with P + 1 free too (the demo's websocket and HTTP ports)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise AssertionError("no two free ports in a row")


def test_demo_listens_on_the_configured_port_and_the_next_for_http(tmp_path: Path) -> None:
    """The README's curl to :8766 works: the demo takes the configured port (8765 by default) and
    HTTP on the next, when they are free (it took random ones every time)."""
    port = _free_port_pair()
    config = tmp_path / "eventtui.toml"
    config.write_text(f"[collector]\nport = {port}\n")
    db = tmp_path / "demo.db"
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventtui", "demo", "--config", str(config), "--db", str(db)],
        stdin=child,
        stdout=child,
        stderr=child,
        env={**os.environ, "TERM": "xterm-256color"},
    )
    os.close(child)
    try:
        deadline = time.monotonic() + 30
        listening: set[int] = set()
        while listening != {port, port + 1}:
            assert time.monotonic() < deadline, f"listening on {listening} only"
            assert proc.poll() is None, "the demo stopped"
            for p in (port, port + 1):
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", p)) == 0:
                        listening.add(p)
            with contextlib.suppress(OSError):
                os.read(main, 65536)  # keep the terminal drained
            time.sleep(0.1)
        os.write(main, b"q")
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                os.read(main, 65536)
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        os.close(main)
    assert proc.returncode == 0


def test_query_json_says_errors_as_export_does(tmp_path: Path) -> None:
    """One shape: `errors` is null for a valid event in `query --json` as in an export."""
    from eventtui.model import normalise

    db = tmp_path / "events.db"
    write_session(db, [normalise({"event": "ok"}, client="t", received_at=1.0)])
    (line,) = eventtui("query", "--json", "--db", str(db)).stdout.splitlines()
    (exported,) = eventtui("export", "--db", str(db)).stdout.splitlines()
    assert json.loads(line)["errors"] is None
    assert json.loads(exported)["eventtui"]["errors"] is None


def test_query_into_a_pipe_closed_early_exits_quietly(tmp_path: Path) -> None:
    """`eventtui query ... | head` ended with a BrokenPipeError traceback."""
    from eventtui.model import normalise

    db = tmp_path / "events.db"
    rows = [
        normalise({"event": "e", "properties": {"i": i}}, client="t", received_at=1.0 + i)
        for i in range(5_000)
    ]
    write_session(db, rows)
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventtui", "query", "--limit", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=30) == 0
    assert err == b""
