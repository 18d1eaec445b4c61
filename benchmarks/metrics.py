"""On-call benchmark: what `GET /metrics` costs ingest, and what one scrape costs.

    uv run python benchmarks/metrics.py            # 3 interleaved rounds (about 3 minutes)
    uv run python benchmarks/metrics.py --quick    # smaller counts, one round

Figures (medians of the rounds; the three collectors take turns within each round):
  1. durable events/s from 4 clients, single-event frames and 100-event frames, for a collector
     scraped every second (by a separate process, as Prometheus would) beside
     - the same collector, not scraped, and
     - a collector without the on-call extension at all (no tap, no /metrics: as before it).
     Goal: scraped >= 0.95x of the one without the extension. Throughput on a shared machine
     swings by tens of percent from run to run, so the collector process's own CPU time per event
     (user + system, the store writer not included) is printed beside it: the steadier figure.
  2. one scrape of /metrics with 2,000 event names counted (the name cap) and 4 expectations,
     beside one with 4 names: milliseconds per scrape over HTTP, and the bytes of the exposition.

The load generator is benchmarks/ingest.py's, in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ingest import throughput  # noqa: E402

CONFIG = """
[[expect]]
event = "heartbeat"
every = "30s"
[[expect]]
event = "signup"
every = "1m"
[[expect]]
event = "checkout_completed"
min_rate = 1
[[expect]]
event = "page_view"
every = "10s"
"""

# A collector as `eventtui collect` runs it, with or without the on-call extension.
SERVER = """
import asyncio, signal, sys
from pathlib import Path
from eventtui.collector import Collector
from eventtui.config import load_config
from eventtui.oncall import OnCall

async def main():
    config = load_config(Path(sys.argv[2]))
    extensions = [OnCall(config)] if sys.argv[3] == "oncall" else []
    c = Collector(config, Path(sys.argv[1]), extensions=extensions)
    await c.start(port=0, http_port=0)
    print("listening on", c.ws_url, "and", c.http_url, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await c.stop()

asyncio.run(main())
"""

SCRAPER = """
import sys, time, urllib.request
url = sys.argv[1]
while True:
    started = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()
    time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
"""


class Server:
    def __init__(self, db: Path, config: Path, oncall: bool) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(db), str(config), "oncall" if oncall else "none"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        words = self.proc.stdout.readline().split()
        self.url, self.http = words[2], words[4]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=60)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of one process (not its children: the store writer is measured apart)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(kind: str, tmp: Path, config: Path, events: int, per_frame: int) -> tuple[float, float]:
    """Durable events/s, and the collector process's CPU microseconds per event meanwhile."""
    server = Server(tmp / f"{kind}-{per_frame}-{time.monotonic_ns()}.db", config, kind != "none")
    scraper = None
    if kind == "scraped":
        scraper = subprocess.Popen([sys.executable, "-c", SCRAPER, f"{server.http}/metrics"])
    try:
        before = cpu_seconds(server.proc.pid)
        rate = throughput(server.url, events, per_frame, bare=False)
        return rate, (cpu_seconds(server.proc.pid) - before) / events * 1e6
    finally:
        if scraper is not None:
            scraper.terminate()
            scraper.wait()
        server.stop()


def scrape_ms(names: int, tmp: Path, config: Path, scrapes: int) -> tuple[float, int]:
    """Median milliseconds per GET /metrics, and the body's bytes, with `names` names counted."""
    server = Server(tmp / f"scrape-{names}.db", config, True)
    try:
        import json

        body = json.dumps([{"event": f"name-{i:04d}"} for i in range(names)]).encode()
        request = urllib.request.Request(
            f"{server.http}/events", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as r:
            r.read()
        times = []
        size = 0
        for _ in range(scrapes):
            started = time.perf_counter()
            with urllib.request.urlopen(f"{server.http}/metrics", timeout=30) as r:
                size = len(r.read())
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times), size
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts, one round")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    single_n = 100_000 if args.quick else 200_000
    batch_n = 400_000 if args.quick else 1_000_000
    kinds = ("none", "unscraped", "scraped")
    figures: dict[tuple[str, int], list[float]] = {(k, f): [] for k in kinds for f in (1, 100)}
    cpu: dict[tuple[str, int], list[float]] = {(k, f): [] for k in kinds for f in (1, 100)}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        config = tmp / "eventtui.toml"
        config.write_text(CONFIG)
        for r in range(rounds):
            for per_frame, n in ((1, single_n), (100, batch_n)):
                # Rotate who goes first, so that a trend in the machine's load favours nobody.
                order = kinds[r % 3 :] + kinds[: r % 3]
                for kind in order:
                    rate, micros = run(kind, tmp, config, n, per_frame)
                    figures[(kind, per_frame)].append(rate)
                    cpu[(kind, per_frame)].append(micros)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{k}/{f} {v[-1]:,.0f}/s" for (k, f), v in figures.items()),
                flush=True,
            )
        few = scrape_ms(4, tmp, config, 50)
        many = scrape_ms(2_000, tmp, config, 50)
    med = {key: statistics.median(v) for key, v in figures.items()}
    med_cpu = {key: statistics.median(v) for key, v in cpu.items()}
    print()
    print(f"{'figure':58} {'ours':>12} {'baseline':>12} {'ratio':>7} goal")
    for per_frame, label in ((1, "single-event frames"), (100, "100-event frames")):
        scraped = med[("scraped", per_frame)]
        for base, note in (
            ("none", ">= 0.95 (no on-call extension)"),
            ("unscraped", "(not scraped)"),
        ):
            baseline = med[(base, per_frame)]
            print(
                f"{label + ', scraped every 1 s, events/s':58} {scraped:>12,.0f} "
                f"{baseline:>12,.0f} {scraped / baseline:>7.2f} {note}"
            )
    for per_frame, label in ((1, "single-event frames"), (100, "100-event frames")):
        scraped = med_cpu[("scraped", per_frame)]
        baseline = med_cpu[("none", per_frame)]
        print(
            f"{label + ', collector CPU us/event, scraped':58} {scraped:>12.2f} "
            f"{baseline:>12.2f} {scraped / baseline:>7.2f} (no on-call extension; lower is better)"
        )
    print(
        f"{'GET /metrics with 2,000 names, ms (bytes)':58} {many[0]:>12.1f} {few[0]:>12.1f} "
        f"{many[0] / few[0]:>7.1f} (4 names); {many[1]:,} vs {few[1]:,} bytes"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.set_event_loop_policy(None)
    main()
