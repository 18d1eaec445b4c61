"""A 10M-event soak: ingest in batches, collector memory flat, then `open` and `query` at 1M and 10M.

    uv run python benchmarks/soak.py                  # 10M events (several minutes, ~4 GB of disk)
    uv run python benchmarks/soak.py --events 3000000

One `eventtui collect` (a subprocess, as a user runs it) takes 100-event websocket frames from 4
clients (the load generator of benchmarks/ingest.py, in its own process), 1M events at a time.
After each million: durable events/s of that million, the collector's RSS and peak RSS, and the
writer process's RSS. At 1M and at the end, while the collector idles: `eventtui open` on the store
(first rows and settled, measured in tmux as benchmarks/open.py measures them, once the last
events are past the counters' one-minute rate window) and
`eventtui query name:signup --limit 100` (wall time of the whole command). The figures at the end
are printed beside those at 1M: the goal is cost flat in store size.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import ingest  # benchmarks/ingest.py: the collector subprocess and the load generator
import open as open_bench  # benchmarks/open.py: first rows and settled in tmux

STEP = 1_000_000
PER_FRAME = 100
# Seconds to wait after the last event before timing the viewers (see `viewers`).
QUIET = 65.0


def frames(chunk: int, client: int, events: int) -> list[str]:
    """This client's part of one million, with message ids unique across the whole soak."""
    base = chunk * STEP + client * events
    evs = [ingest.event(base + i, client) for i in range(events)]
    for e, i in zip(evs, range(base, base + events), strict=True):
        e["messageId"] = f"soak-{i}"
    return [json.dumps(evs[i : i + PER_FRAME]) for i in range(0, events, PER_FRAME)]


def send_million(url: str, chunk: int) -> float:
    per_client = [frames(chunk, c, STEP // ingest.CLIENTS) for c in range(ingest.CLIENTS)]
    return STEP / ingest._seconds_in_child(ingest._load, url, per_client, False)


def query_seconds(db: Path) -> float:
    eventtui = str(Path(sys.executable).parent / "eventtui")
    start = time.perf_counter()
    subprocess.run(
        [eventtui, "query", "name:signup", "--limit", "100", "--db", str(db)],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def viewers(db: Path) -> tuple[float, float, float]:
    # As an on-call engineer opens a store the next day: past the counters' one-minute rate window,
    # whose figures (and the screen) otherwise change every second while the last events age.
    time.sleep(QUIET)
    eventtui = str(Path(sys.executable).parent / "eventtui")
    with open_bench.tmux_server():
        first, settled = open_bench.measure([eventtui, "open", "--db", str(db)])
    return first, settled, min(query_seconds(db) for _ in range(3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    chunks = max(1, args.events // STEP)
    print(f"load average {os.getloadavg()[0]:.1f}; {chunks}M events in 100-event frames")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        db = Path(tmp) / "soak.db"
        server = ingest.Server("ours", db)
        at_1m: tuple[float, float, float] | None = None
        try:
            print(f"{'events':>12} {'events/s':>10} {'RSS MB':>8} {'peak MB':>8} {'writer MB':>10}")
            for chunk in range(chunks):
                rate = send_million(server.url, chunk)
                print(
                    f"{(chunk + 1) * STEP:>12,} {rate:>10,.0f} {server.rss_mb():>8.1f}"
                    f" {server.peak_rss_mb():>8.1f} {server.writer_rss_mb():>10.1f}",
                    flush=True,
                )
                if chunk == 0:
                    at_1m = viewers(db)
            at_end = viewers(db)
        finally:
            server.stop()
        assert at_1m is not None
        size = db.stat().st_size / 2**30
        print(f"\nstore: {size:.2f} GiB")
        print(f"{'':28} {'at 1M':>8} {f'at {chunks}M':>8} {'ratio':>6}")
        for label, one, end in zip(
            ("open: first rows (s)", "open: settled (s)", "query name:signup --limit 100 (s)"),
            at_1m,
            at_end,
            strict=True,
        ):
            print(f"{label:28} {one:8.2f} {end:8.2f} {end / one:6.2f}x")


if __name__ == "__main__":
    main()
