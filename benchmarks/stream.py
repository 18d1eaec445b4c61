"""Stream benchmark: collectors publishing to NATS JetStream, beside the single-machine SQLite path.

    uv run python benchmarks/stream.py            # 200k events per throughput figure
    uv run python benchmarks/stream.py --quick    # 40k

Figures, each beside the SQLite path measured in the same run (4 clients, 100-event frames, acked
events/s from first send to last ack; `eventtui collect` writing its store file):
  1. 1 collector -> a 1-node stream (R1): acked events/s (an ack waits for JetStream's publish ack).
  2. 2 collectors -> a 3-node cluster (R3, a quorum of 2 holds every event before its ack).
  3. the sink draining that R3 stream into a store: events/s.
  4. end-to-end latency, publish -> visible in `watch` (in the mirror store the TUI reads), p50/p99,
     events sent one per frame at 500/s, beside the ack latency of the SQLite path at the same pace.
  5. 1, 2 and 3 collectors -> R1: how throughput grows with collectors on this 2-core machine.

Every server (nats-server nodes, collectors, the sink) runs as its own process, as on many machines,
but here they share 2 cores with the load generator: the figures say what one process costs, and
what the ratios predict for N machines is written in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from nats_cluster import Cluster  # noqa: E402

from eventtui.config import StreamConfig  # noqa: E402
from eventtui.store import Reader  # noqa: E402
from eventtui.stream.mirror import Mirror  # noqa: E402

CLIENTS = 4
PER_FRAME = 100


def event(i: int, client: int, tag: str) -> dict[str, Any]:
    return {
        "event": ("page_view", "signup", "checkout_completed", "heartbeat")[i % 4],
        "userId": f"user-{i % 977}",
        "messageId": f"{tag}-{client}-{i}",
        "properties": {"path": f"/p/{i % 50}", "plan": "pro", "total": i % 300 + 0.5, "n": i},
        "context": {"library": {"name": "bench", "version": "1"}},
    }


class Collect:
    def __init__(self, db: Path, *extra: str) -> None:
        cmd = [sys.executable, "-m", "eventtui", "collect", "--port", "0", "--http-port", "0"]
        self.proc = subprocess.Popen(
            [*cmd, "--db", str(db), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().split()[2]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.communicate(timeout=60)


# --- load generator (a child process) --------------------------------------------------------------


async def _client(url: str, frames: list[str]) -> None:
    async with connect(url, compression=None, max_size=None) as ws:
        total = len(frames)

        async def read_acks() -> None:
            async for message in ws:
                reply = json.loads(message)
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                if reply.get("ack", 0) >= total:
                    return

        reader = asyncio.create_task(read_acks())
        for frame in frames:
            await ws.send(frame)
        await reader


def _load(urls: list[str], per_client: list[list[str]], out: Any) -> None:
    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(
            *(_client(urls[i % len(urls)], frames) for i, frames in enumerate(per_client))
        )
        return time.perf_counter() - start

    out.send(asyncio.run(main()))


def throughput(urls: list[str], events: int, tag: str) -> float:
    per_client = []
    for c in range(CLIENTS):
        evs = [event(i, c, tag) for i in range(events // CLIENTS)]
        per_client.append(
            [json.dumps(evs[i : i + PER_FRAME]) for i in range(0, len(evs), PER_FRAME)]
        )
    parent, child = mp.Pipe()
    proc = mp.Process(target=_load, args=(urls, per_client, child))
    proc.start()
    while not parent.poll(0.5):
        if not proc.is_alive():  # a client got an error (printed above): no figure
            raise SystemExit(f"the load generator failed (exit {proc.exitcode})")
    seconds = parent.recv()
    proc.join()
    return events / seconds


# --- figures ---------------------------------------------------------------------------------------


def sqlite_path(folder: Path, events: int, tag: str) -> float:
    collector = Collect(folder / f"sqlite-{tag}.db")
    try:
        return throughput([collector.url], events, tag)
    finally:
        collector.stop()


def stream_config(folder: Path, url: str, replicas: int) -> Path:
    path = folder / f"stream-r{replicas}.toml"
    path.write_text(f'[stream]\nurl = "{url}"\nreplicas = {replicas}\n')
    return path


def stream_path(
    folder: Path, url: str, replicas: int, collectors: int, events: int, tag: str
) -> float:
    config = stream_config(folder, url, replicas)
    started = [
        Collect(folder / f"unused-{tag}-{i}.db", "--config", str(config)) for i in range(collectors)
    ]
    try:
        return throughput([c.url for c in started], events, tag)
    finally:
        for c in started:
            c.stop()


def sink_rate(folder: Path, url: str, events: int) -> float:
    db = folder / "sink.db"
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "eventtui", "sink", "--stream", url, "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    while True:
        with Reader(db) as reader:
            if reader.count_events() >= events:
                break
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    return events / seconds


async def _paced(
    url: str, count: int, rate: float, tag: str, sent: dict[str, float]
) -> list[float]:
    """Send `count` single-event frames at `rate`; the ack latency of each (ms)."""
    acks: list[float] = []
    async with connect(url, compression=None) as ws:
        for i in range(count):
            mid = f"{tag}-{i}"
            sent[mid] = time.perf_counter()
            await ws.send(json.dumps({"event": "ping", "messageId": mid}))
            json.loads(await ws.recv())
            acks.append((time.perf_counter() - sent[mid]) * 1000)
            await asyncio.sleep(max(0.0, sent[mid] + 1 / rate - time.perf_counter()))
    return acks


def latency_to_watch(folder: Path, url: str, count: int) -> list[float]:
    """Publish -> visible in the mirror store the TUI reads (`watch --stream`), in ms."""
    config = stream_config(folder, url, 1)
    collector = Collect(folder / "unused-latency.db", "--config", str(config))
    mirror = Mirror(StreamConfig(url=url), folder / "watch.db", since=time.time(), follow=True)
    mirror.start()
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = False

    def watch() -> None:
        # The TUI's feed: read rows after a cursor, as often as it can (it is woken by a poll).
        cursor = 0
        with Reader(mirror.path) as reader:
            while not done:
                rows = reader.events_after(cursor)
                now = time.perf_counter()
                for row in rows:
                    cursor = row.id
                    if row.message_id in sent:
                        seen[row.message_id] = now
                time.sleep(0.002)

    import threading

    thread = threading.Thread(target=watch)
    thread.start()
    try:
        asyncio.run(_paced(collector.url, count, 500, "lat", sent))
        deadline = time.monotonic() + 10
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        done = True
        thread.join()
        mirror.close()
        collector.stop()
    return [(seen[m] - sent[m]) * 1000 for m in sent if m in seen]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    events = 40_000 if args.quick else 200_000
    print(f"load before: {os.getloadavg()[0]:.2f}; {events:,} events per throughput figure")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        r1 = Cluster(folder / "r1", size=1).start()
        r3 = Cluster(folder / "r3", size=3).start()
        try:
            base = sqlite_path(folder, events, "s1")
            one = stream_path(folder, r1.url, 1, 1, events, "r1")
            print(
                f"1. 1 collector -> R1: {one:,.0f} ev/s beside SQLite {base:,.0f} ev/s: {one / base:.2f}x"
            )
            base = sqlite_path(folder, events, "s2")
            two = stream_path(folder, r3.url, 3, 2, events, "r3")
            print(
                f"2. 2 collectors -> R3: {two:,.0f} ev/s beside SQLite {base:,.0f} ev/s: {two / base:.2f}x"
            )
            sink = sink_rate(folder, r3.url, events)
            print(
                f"3. sink R3 -> store: {sink:,.0f} ev/s beside SQLite {base:,.0f} ev/s: {sink / base:.2f}x"
            )
            count = 1000 if args.quick else 3000
            lat = latency_to_watch(folder, r1.url, count)
            sqlite = Collect(folder / "lat-base.db")
            try:
                acks = asyncio.run(_paced(sqlite.url, count, 500, "base", {}))
            finally:
                sqlite.stop()
            print(
                f"4. publish -> visible in watch, p50 {pct(lat, 0.5):.1f} ms, p99 {pct(lat, 0.99):.1f} ms"
                f" ({len(lat)}/{count} seen) beside the SQLite path's ack p50"
                f" {pct(acks, 0.5):.1f} ms, p99 {pct(acks, 0.99):.1f} ms"
            )
            rates = []
            for n in (1, 2, 3):
                rates.append(stream_path(folder, r1.url, 1, n, events, f"n{n}"))
                print(
                    f"5. {n} collector(s) -> R1: {rates[-1]:,.0f} ev/s, {rates[-1] / rates[0]:.2f}x of one"
                )
            print(f"   median of the three: {statistics.median(rates):,.0f} ev/s")
        finally:
            r1.stop()
            r3.stop()
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
