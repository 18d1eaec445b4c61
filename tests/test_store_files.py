"""Store files that are not what a reader expects: an empty file, a device, a store it may not
write beside (a read-only mount, another user's folder), and an export aimed at the store itself.

Real subprocesses of the CLI, real mounts (as root; skipped with the reason elsewhere), a real
second user (`setpriv`) where root would ignore the folder's permissions.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventtui.model import normalise
from eventtui.store import Submission, Writer
from tests.conftest import ENV, Collect, eventtui

T0 = 1_714_000_000.0

# Every command that reads a store, as a user types it ({tmp}: a folder to write outputs to).
# (`sessions label` opens it to write: the same refusal.)
READERS = [
    ["sessions"],
    ["sessions", "label", "1", "x"],
    ["query", "--json"],
    ["export", "all", "-o", "{tmp}/out.jsonl"],
    ["export", "--format", "sqlite", "-o", "{tmp}/out.db"],
    ["check"],
    ["replay"],
    ["replay", "--to-url", "ws://127.0.0.1:9"],
    ["open"],
]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("eventtui: error: "), result.stderr
    return lines[0]


def record(path: Path, names: list[str], *, label: str = "kept") -> int:
    writer = Writer(path, source="test", label=label)
    session = writer.start()
    rows = [
        normalise({"event": n, "messageId": f"{label}-{i}"}, client="t", received_at=T0 + i)
        for i, n in enumerate(names)
    ]
    writer.submit(Submission(rows))
    writer.close()
    return session


# --- an empty file, a device -----------------------------------------------------------------------


@pytest.mark.parametrize("args", READERS, ids=" ".join)
def test_an_empty_file_is_not_a_store_yet_and_stays_empty(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    result = eventtui(*[a.format(tmp=tmp_path) for a in args], "--db", str(db))
    line = one_error_line(result)
    assert line == (
        f"eventtui: error: {db}: the file is empty, not an eventtui store yet"
        f" (`eventtui collect --db {db}` sets one up)"
    )
    # No schema was created in it, and nothing beside it.
    assert db.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.db"]


@pytest.mark.parametrize("args", [*READERS, ["collect", "--port", "0"]], ids=" ".join)
def test_dev_null_is_not_a_store_and_nothing_is_written_beside_it(
    tmp_path: Path, args: list[str]
) -> None:
    journal = Path("/dev/null-journal")
    existed = journal.exists()
    try:
        result = eventtui(*[a.format(tmp=tmp_path) for a in args], "--db", "/dev/null")
        line = one_error_line(result)
        assert line == "eventtui: error: /dev/null: not a store file (a character device)"
        assert existed or not journal.exists()
    finally:
        if not existed:
            with contextlib.suppress(OSError):
                journal.unlink()


def test_a_collector_still_sets_up_an_empty_file(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    db.touch()
    collect = Collect(db)
    try:
        assert eventtui("send", "--url", collect.ws_url, input=b'{"event": "a"}\n').returncode == 0
        code, err = collect.stop()
    finally:
        collect.close()
    assert code == 0, err
    assert [e["event"] for e in query_json(db)] == ["a"]


def query_json(db: Path) -> list[dict[str, object]]:
    result = eventtui("query", "--json", "--limit", "0", "--db", str(db))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


# --- read-only: a mount, another user's folder ----------------------------------------------------


@contextlib.contextmanager
def read_only_view(folder: Path, at: Path) -> Iterator[Path]:
    """`folder` bind-mounted read-only at `at`: the files as a read-only mount shows them."""
    at.mkdir()
    bound = subprocess.run(["mount", "--bind", str(folder), str(at)], capture_output=True)
    if bound.returncode != 0:
        pytest.skip(f"cannot bind-mount here (needs root and mount): {bound.stderr.strip()!r}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(at)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.strip()!r}")
        with pytest.raises(OSError):
            (at / "probe").touch()
        yield at
    finally:
        subprocess.run(["umount", str(at)], check=True)


def read_everything(db: Path, tmp: Path) -> dict[str, object]:
    """What every viewer says about `db`; each must succeed."""
    out: dict[str, object] = {}
    sessions = eventtui("sessions", "--json", "--db", str(db))
    assert sessions.returncode == 0, sessions.stderr
    out["sessions"] = [
        (s["id"], s["label"], s["events"]) for s in map(json.loads, sessions.stdout.splitlines())
    ]
    out["query"] = [e["event"] for e in query_json(db)]
    exported = eventtui("export", "all", "--db", str(db))
    assert exported.returncode == 0, exported.stderr
    out["export"] = [json.loads(line)["event"] for line in exported.stdout.splitlines()]
    copy = tmp / f"copy-{len(list(tmp.iterdir()))}.db"
    as_store = eventtui("export", "all", "--db", str(db), "--format", "sqlite", "-o", str(copy))
    assert as_store.returncode == 0, as_store.stderr
    out["sqlite export"] = [e["event"] for e in query_json(copy)]
    check = eventtui("check", "--json", "--db", str(db))
    assert check.returncode == 0, check.stderr
    out["check"] = json.loads(check.stdout)["ok"]
    return out


def read_a_little(db: Path, tmp: Path) -> dict[str, object]:
    """A reader, and the export that ATTACHes the store to another connection."""
    copy = tmp / f"copy-{len(list(tmp.iterdir()))}.db"
    as_store = eventtui("export", "all", "--db", str(db), "--format", "sqlite", "-o", str(copy))
    assert as_store.returncode == 0, as_store.stderr
    return {
        "query": [e["event"] for e in query_json(db)],
        "sqlite export": [e["event"] for e in query_json(copy)],
    }


def test_a_store_on_a_read_only_mount_is_read(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record(src / "events.db", ["a", "b"], label="first")
    assert sorted(p.name for p in src.iterdir()) == ["events.db"]  # closed: no -wal, no -shm
    outputs = tmp_path / "out"
    outputs.mkdir()
    with read_only_view(src, tmp_path / "ro") as ro:
        said = read_everything(ro / "events.db", outputs)
    assert said == {
        "sessions": [(1, "first", 2)],
        "query": ["a", "b"],
        "export": ["a", "b"],
        "sqlite export": ["a", "b"],
        "check": True,
    }


def test_a_live_store_seen_through_a_read_only_mount_is_read_with_its_log(tmp_path: Path) -> None:
    """A collector writes the store; a read-only view of its folder reads every committed event,
    those still in the write-ahead log included."""
    src = tmp_path / "src"
    src.mkdir()
    collect = Collect(src / "events.db", "--label", "live")
    outputs = tmp_path / "out"
    outputs.mkdir()
    try:
        sent = eventtui("send", "--url", collect.ws_url, input=b'{"event": "a"}\n{"event": "b"}\n')
        assert sent.returncode == 0, sent.stderr
        assert (src / "events.db-wal").stat().st_size > 0
        with read_only_view(src, tmp_path / "ro") as ro:
            said = read_a_little(ro / "events.db", outputs)
        code, err = collect.stop()
    finally:
        collect.close()
    assert code == 0, err
    assert said == {"query": ["a", "b"], "sqlite export": ["a", "b"]}


def committed_in_log_only(folder: Path) -> Path:
    """A store whose last commits are only in its -wal, copied without its -shm (as a copy of a
    running store's folder can be)."""
    live = folder.parent / f"{folder.name}-live"
    live.mkdir()
    writer = Writer(live / "events.db", source="test", label="copied")
    writer.start()
    committed = threading.Event()
    writer.add_listener(lambda commit: committed.set())
    writer.submit(Submission([normalise({"event": "a"}, client="t", received_at=T0)]))
    try:
        assert committed.wait(10)
        folder.mkdir()
        for name in ("events.db", "events.db-wal"):
            shutil.copyfile(live / name, folder / name)
    finally:
        writer.close()
    assert (folder / "events.db-wal").stat().st_size > 0
    return folder / "events.db"


def test_a_read_only_store_whose_log_cannot_be_read_is_explained(tmp_path: Path) -> None:
    committed_in_log_only(tmp_path / "src")
    with read_only_view(tmp_path / "src", tmp_path / "ro") as ro:
        db = ro / "events.db"
        results = [eventtui(*args, "--db", str(db)) for args in (["sessions"], ["query"])]
        assert sorted(p.name for p in ro.iterdir()) == ["events.db", "events.db-wal"]
    for result in results:
        line = one_error_line(result)
        assert line == (
            f"eventtui: error: {db}: cannot be read here: its latest commits are in"
            f" events.db-wal, and SQLite needs to create events.db-shm beside it to read them,"
            f" but {ro} is on a read-only file system; copy both files to a folder you can"
            " write, or open it once where it can be written"
        )


def test_an_empty_log_without_its_index_is_read_from_the_store_file(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record(src / "events.db", ["a"], label="kept")
    (src / "events.db-wal").touch()  # left behind, empty: everything is in the store file
    outputs = tmp_path / "out"
    outputs.mkdir()
    with read_only_view(src, tmp_path / "ro") as ro:
        said = read_a_little(ro / "events.db", outputs)
    assert said == {"query": ["a"], "sqlite export": ["a"]}


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder in /tmp that another user can enter (pytest's tmp_path is private to root)."""
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("running a reader as another user needs root and setpriv")
    folder = Path(tempfile.mkdtemp(prefix="eventtui-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


def as_nobody(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI run as user `nobody`, who may read `cwd` but not write in it."""
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
         sys.executable, "-m", "eventtui", *args],
        capture_output=True, text=True, timeout=60, cwd=cwd,
        env={**ENV, "HOME": str(cwd)},
    )  # fmt: skip


def test_a_store_in_a_folder_this_user_cannot_write_is_read(shared_folder: Path) -> None:
    db = shared_folder / "events.db"
    record(db, ["a", "b"], label="theirs")
    probe = as_nobody("--version", cwd=shared_folder)
    if probe.returncode != 0:
        pytest.skip(f"user nobody cannot run this Python: {probe.stderr.strip()[-200:]!r}")
    cannot_write = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "touch", "probe"],
        cwd=shared_folder, capture_output=True,
    )  # fmt: skip
    assert cannot_write.returncode != 0  # the point of the test: nobody may not write here
    listed = as_nobody("sessions", "--json", "--db", str(db), cwd=shared_folder)
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(x)["label"] for x in listed.stdout.splitlines()] == ["theirs"]
    query = as_nobody("query", "--json", "--db", str(db), cwd=shared_folder)
    assert query.returncode == 0, query.stderr
    assert [json.loads(x)["event"] for x in query.stdout.splitlines()] == ["a", "b"]
    assert sorted(p.name for p in shared_folder.iterdir()) == ["events.db"]


def test_a_live_store_of_another_user_is_read(shared_folder: Path) -> None:
    db = shared_folder / "events.db"
    collect = Collect(db, "--label", "service")
    try:
        sent = eventtui("send", "--url", collect.ws_url, input=b'{"event": "a"}\n')
        assert sent.returncode == 0, sent.stderr
        query = as_nobody("query", "--json", "--db", str(db), cwd=shared_folder)
        code, err = collect.stop()
    finally:
        collect.close()
    assert code == 0, err
    if "cannot run" in query.stderr:
        pytest.skip(query.stderr)
    assert query.returncode == 0, query.stderr
    assert [json.loads(x)["event"] for x in query.stdout.splitlines()] == ["a"]


def test_writing_to_a_read_only_store_says_why(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    record(src / "events.db", ["a"])
    with read_only_view(src, tmp_path / "ro") as ro:
        db = ro / "events.db"
        label = eventtui("sessions", "label", "1", "x", "--db", str(db))
        collect = eventtui("collect", "--port", "0", "--db", str(db))
    for result in (label, collect):
        line = one_error_line(result)
        assert (
            line
            == f"eventtui: error: {db}: cannot write to the store: {ro} is on a read-only file system"
        )


# --- export onto the store itself -----------------------------------------------------------------


def test_export_onto_the_store_itself_is_refused(tmp_path: Path) -> None:
    """With a collector writing (so the -wal and -shm exist), `--force` included: the store, its
    log, its index, a symbolic link to it, a hard link to it; in both formats."""
    db = tmp_path / "events.db"
    (tmp_path / "link.db").symlink_to(db)
    collect = Collect(db)
    results = {}
    try:
        lines = b"".join(b'{"event": "e", "messageId": "m%d"}\n' % i for i in range(50))
        assert eventtui("send", "--url", collect.ws_url, input=lines).returncode == 0
        os.link(db, tmp_path / "hard.db")
        wal_head = (tmp_path / "events.db-wal").read_bytes()[:32]
        for target in ("events.db", "events.db-wal", "events.db-shm", "link.db", "hard.db"):
            for fmt in ("jsonl", "sqlite"):
                results[target, fmt] = eventtui(
                    "export", "--db", str(db), "--format", fmt, "-o", str(tmp_path / target),
                    "--force",
                )  # fmt: skip
        assert (tmp_path / "events.db-wal").read_bytes()[:32] == wal_head
        code, err = collect.stop(signal.SIGTERM)
    finally:
        collect.close()
    for (target, _), result in results.items():
        assert one_error_line(result) == (
            f"eventtui: error: {tmp_path / target}: is the store being exported ({db}) or one of"
            " its files; write the export somewhere else"
        )
    assert code == 0, err
    assert len(query_json(db)) == 50


def test_export_onto_the_log_name_of_a_closed_store_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    record(db, ["a"])
    assert not (tmp_path / "events.db-wal").exists()
    result = eventtui("export", "--db", str(db), "-o", str(tmp_path / "events.db-wal"))
    assert "is the store being exported" in one_error_line(result)
    assert not (tmp_path / "events.db-wal").exists()
