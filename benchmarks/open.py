"""`eventtui open` on a big store beside toolong on the same events, as a person sees them.

    uv run python benchmarks/open.py                 # 1M events, 3 alternating rounds
    uv run python benchmarks/open.py --flat          # also 3M events: is settled flat in size?
    uv run python benchmarks/open.py --events 100000 --rounds 1   # a quick look
    uv run python benchmarks/open.py --bytecode      # both with their modules' bytecode compiled

Both run in tmux at 160x45, polled every 20 ms with `capture-pane`, from the moment the command is
started (interpreter start-up, imports and the store's or file's first read all count):
- **first rows**: the first screen that shows 5 lines holding an event name;
- **settled**: the last change of the screen before it stays the same for 2 s (eventtui: rows,
  counters and states filled in; toolong: its scan of the whole file done).
The peer is toolong (Textualize's log viewer, also a Textual app) on the same events exported as
JSON Lines (`eventtui export`), installed on the fly into a temporary virtual environment with uv.
With `--bytecode` both run with compiled bytecode (as after `uv sync --compile-bytecode`, or pip's
default install), written beforehand under a `PYTHONPYCACHEPREFIX` of their own by one unmeasured
run each; without it both compile every module at each launch, as under
`PYTHONDONTWRITEBYTECODE=1` (these machines). The store is built as `benchmarks/query.py` builds it (synthetic, realistic events, one session,
with the rollups a collector keeps) and reused between runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import query  # benchmarks/query.py: the same store

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventtui.store import Reader  # noqa: E402
from eventtui.transfer import export_events  # noqa: E402

NAMES = tuple(query.NAMES)
POLL = 0.02
STILL = 2.0
LIMIT = 60.0
# A server of its own: other tmux users on the machine neither see nor stop these sessions.
TMUX = ("tmux", "-L", "eventtui-bench-open")


def store(events: int, cache: Path) -> tuple[Path, Path]:
    """The store and its JSON Lines export, built once per size."""
    db = cache / f"eventtui-open-{events}.db"
    jsonl = cache / f"eventtui-open-{events}.jsonl"
    if not db.exists() or not jsonl.exists():
        t = time.perf_counter()
        query.build(db, events)
        with Reader(db) as reader, jsonl.open("wb") as out:
            export_events(reader, out=out)
        print(f"built {events:,} events in {time.perf_counter() - t:.0f} s: {db}, {jsonl}")
    return db, jsonl


def toolong(cache: Path) -> Path:
    venv = cache / "eventtui-bench-toolong"
    tl = venv / "bin" / "tl"
    if not tl.exists():
        subprocess.run(["uv", "venv", "-q", str(venv)], check=True)
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(venv / "bin" / "python"), "toolong"],
            check=True,
        )
    return tl


@contextlib.contextmanager
def tmux_server() -> Iterator[None]:
    """Keep the benchmark's tmux server up: it exits with its last session, and a command started
    while it exits fails ("server exited unexpectedly")."""
    subprocess.run([*TMUX, "new", "-d", "-s", "keep", "sleep 86400"], check=True)
    try:
        yield
    finally:
        subprocess.run([*TMUX, "kill-server"], capture_output=True)


def capture(session: str) -> str:
    return subprocess.run(
        [*TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def measure(command: list[str]) -> tuple[float, float]:
    """(first rows, settled) in seconds since the command was started."""
    session = f"bench-open-{os.getpid()}"
    start = time.perf_counter()
    subprocess.run(
        [*TMUX, "new", "-d", "-s", session, "-x", "160", "-y", "45", *command], check=True
    )
    first = None
    last_screen, last_change = "", 0.0
    try:
        while (now := time.perf_counter() - start) < LIMIT:
            screen = capture(session)
            if screen != last_screen:
                last_screen, last_change = screen, now
            if (
                first is None
                and sum(any(n in line for n in NAMES) for line in screen.splitlines()) >= 5
            ):
                first = now
            if first is not None and now - last_change >= STILL:
                break
            time.sleep(POLL)
    finally:
        subprocess.run([*TMUX, "kill-session", "-t", session], capture_output=True)
    if first is None:
        raise SystemExit(
            f"no rows on screen within {LIMIT:.0f} s: {' '.join(command)}\n{last_screen}"
        )
    return first, last_change


def compare(
    events: int, cache: Path, tl: Path, rounds: int, bytecode: Path | None = None
) -> dict[str, float]:
    db, jsonl = store(events, cache)
    ours_cmd = [str(Path(sys.executable).parent / "eventtui"), "open", "--db", str(db)]
    peer_cmd = [str(tl), str(jsonl)]
    if bytecode is not None:
        for name, command in (("ours", ours_cmd), ("peer", peer_cmd)):
            prefix = [
                "env",
                "-u",
                "PYTHONDONTWRITEBYTECODE",
                f"PYTHONPYCACHEPREFIX={bytecode / name}",
            ]
            command[:0] = prefix
            measure(command)  # unmeasured: writes the bytecode
    ours: list[tuple[float, float]] = []
    peer: list[tuple[float, float]] = []
    for _ in range(rounds):
        ours.append(measure(ours_cmd))
        peer.append(measure(peer_cmd))
    result = {
        "first": statistics.median(o[0] for o in ours),
        "settled": statistics.median(o[1] for o in ours),
        "peer_first": statistics.median(p[0] for p in peer),
        "peer_settled": statistics.median(p[1] for p in peer),
    }
    print(
        f"{events:>10,} events  first rows {result['first']:.2f} s vs toolong "
        f"{result['peer_first']:.2f} s ({result['first'] / result['peer_first']:.2f}x)   "
        f"settled {result['settled']:.2f} s vs {result['peer_settled']:.2f} s "
        f"({result['settled'] / result['peer_settled']:.2f}x)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--flat", action="store_true", help="also 3x the events: settled ratio")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument(
        "--bytecode", action="store_true", help="both with bytecode compiled beforehand"
    )
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is needed: apt-get install tmux")
    tl = toolong(args.cache)
    with tmux_server():
        run(args, tl)


def run(args: argparse.Namespace, tl: Path) -> None:
    print(
        f"load average {os.getloadavg()[0]:.1f}; medians of {args.rounds} alternating rounds;"
        f" bytecode {'compiled beforehand' if args.bytecode else 'compiled at each launch'}"
    )
    with tempfile.TemporaryDirectory(prefix="eventtui-bench-pyc-") as folder:
        bytecode = Path(folder) if args.bytecode else None
        base = compare(args.events, args.cache, tl, args.rounds, bytecode)
        if args.flat:
            big = compare(args.events * 3, args.cache, tl, args.rounds, bytecode)
            print(
                f"flat: settled on {args.events * 3:,} / on {args.events:,}"
                f" = {big['settled'] / base['settled']:.2f}x"
            )


if __name__ == "__main__":
    main()
