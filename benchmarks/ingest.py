"""Ingest benchmark: durable events/s, ack latency and memory, each beside a baseline from the same run.

    uv run python benchmarks/ingest.py            # full run (a few minutes)
    uv run python benchmarks/ingest.py --quick    # smaller counts, one round

Figures (medians of the rounds, baselines interleaved with the measured runs):
  1. single-event frames from 4 clients: `eventtui collect` (acked = committed) vs a bare websockets
     server that only counts frames (same clients, same websockets settings). Goal >= 0.7x.
  2. 100-event frames from 4 clients: `eventtui collect` vs plain sqlite3 `executemany` of the same
     rows into the same `events` table (same schema and indexes) in 1,000-row transactions. Goal >= 0.5x.
  1b, 2b. the same two workloads from a pre-framed raw client (benchmarks/raw_client.py: frames
     built and masked before the clock starts), which is not the bottleneck that the websockets
     client is (~90-140k frames/s here): eventtui vs the bare server fed by the same client (goal
     >= 0.6x), and 100-event frames vs raw `executemany` (goal >= 0.8x). Printed beside 1b: raw
     `executemany` over the bare server, the most any collector that commits before it acks can
     reach on this machine.
  3. ack latency p50/p99 at a paced 10,000 events/s (goal p99 < 50 ms), beside the same pacing
     against the bare server (round-trip of a reply per frame).
  4. the collector's peak RSS while 1M events arrive, sampled every 250k (goal < 150 MB, flat);
     the writer process's RSS is reported beside it.
  5. 100-event frames with a tracking plan (a JSON Schema for every event name) vs the same
     collector without one. Goal >= 0.7x.
  6. HTTP batches of 100 events from 4 clients vs websocket 100-event frames (benchmarks/
     http_ingest.py, its own interleaved rounds). Goal >= 0.5x.

The load generator runs in its own process so the servers get the machine's other core. Both servers
get the same client send loop (`_client`): every frame as fast as the server takes it, with no window
of our own; eventtui's clients also read acks while sending, as a real client must.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
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
sys.path.insert(0, str(ROOT / "benchmarks"))

CLIENTS = 4

BARE_SERVER = """
import asyncio, sys
from websockets.asyncio.server import serve

async def count(ws):
    frames = 0
    async for message in ws:
        frames += 1
        if message == "done":
            await ws.send('{"ack": %d}' % frames)

async def main():
    async with serve(count, "127.0.0.1", 0, compression=None, max_size=2**22) as server:
        print("listening on ws://127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
"""


def event(i: int, client: int) -> dict[str, Any]:
    return {
        "event": ("page_view", "signup", "checkout_completed", "heartbeat")[i % 4],
        "userId": f"user-{i % 977}",
        "messageId": f"{client}-{i}",
        "timestamp": "2026-11-26T04:00:00.000Z",
        "properties": {"path": f"/p/{i % 50}", "plan": "pro", "total": i % 300 + 0.5, "n": i},
        "context": {"library": {"name": "bench", "version": "1"}},
    }


# --- servers -------------------------------------------------------------------------------------


PLAN = """
[plan.events.page_view]
schema = { type = "object", required = ["path"], properties = { path = { type = "string" }, n = { type = "integer" } } }
[plan.events.signup]
schema = { type = "object", required = ["plan"], properties = { plan = { enum = ["free", "pro", "team"] } } }
[plan.events.checkout_completed]
schema = { type = "object", required = ["total"], properties = { total = { type = "number", minimum = 0 }, plan = { type = "string" } } }
[plan.events.heartbeat]
schema = { type = "object", properties = { n = { type = "integer" } } }
"""


class Server:
    def __init__(self, kind: str, db: Path | None = None, config: Path | None = None) -> None:
        if kind == "bare":
            cmd = [sys.executable, "-c", BARE_SERVER]
        else:
            cmd = [
                sys.executable,
                "-m",
                "eventtui",
                "collect",
                "--port",
                "0",
                "--http-port",
                "0",
                "--db",
                str(db),
                *(["--config", str(config)] if config else []),
            ]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        self.url = line[2]

    def peak_rss_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmHWM") / 1024

    def rss_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmRSS") / 1024

    def writer_rss_mb(self) -> float:
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    children.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue  # a process that ended while we looked
        return sum(_status_kb(pid, "VmRSS") for pid in children) / 1024

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=60)


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# --- load generator (runs in a child process) -----------------------------------------------------


async def _client(url: str, frames: list[str], bare: bool) -> None:
    """The same client for both servers: send every frame as fast as the server takes them.

    Flow control is the server's: websockets' write buffer and TCP for the bare server, and for
    eventtui also its bound on unacknowledged frames per connection (it stops reading a client
    10,000 frames ahead of its acks). Only the end differs: the bare server answers a last
    "done" frame with its count; eventtui's last ack covers every frame (all committed).
    """
    async with connect(url, compression=None, max_size=None) as ws:
        if bare:
            for frame in frames:
                await ws.send(frame)
            await ws.send("done")
            await ws.recv()
            return
        total = len(frames)

        async def read_acks() -> None:
            # Read while sending: a client that does not read its acks is not read either.
            async for message in ws:
                if message.startswith('{"ack"') and json.loads(message)["ack"] >= total:
                    return

        reader = asyncio.create_task(read_acks())
        for frame in frames:
            await ws.send(frame)
        await reader


def _load(url: str, per_client: list[list[str]], bare: bool, out: Any) -> None:
    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(_client(url, frames, bare) for frames in per_client))
        return time.perf_counter() - start

    out.send(asyncio.run(main()))


def frames_of(events: int, per_frame: int) -> list[list[str]]:
    """Each client's frames: its share of `events`, one per frame or `per_frame` in an array."""
    per_client = []
    for c in range(CLIENTS):
        n = events // CLIENTS
        evs = [event(i, c) for i in range(n)]
        if per_frame == 1:
            per_client.append([json.dumps(e) for e in evs])
        else:
            per_client.append([json.dumps(evs[i : i + per_frame]) for i in range(0, n, per_frame)])
    return per_client


def _seconds_in_child(target: Any, *args: Any) -> float:
    """Run a load generator in its own process (the servers keep the other core); its seconds."""
    parent, child = mp.Pipe()
    proc = mp.Process(target=target, args=(*args, child))
    proc.start()
    seconds = float(parent.recv())
    proc.join()
    return seconds


def throughput(url: str, events: int, per_frame: int, bare: bool) -> float:
    """Events per second, from first send until the last frame is acked (or counted)."""
    return events / _seconds_in_child(_load, url, frames_of(events, per_frame), bare)


def _raw_load(url: str, per_client: list[bytes], frames: list[int], bare: bool, out: Any) -> None:
    from raw_client import run

    out.send(run(url, per_client, frames, bare))


def raw_throughput(url: str, events: int, per_frame: int, bare: bool) -> float:
    """As `throughput`, from the pre-framed raw client (benchmarks/raw_client.py): frames built and
    masked before the clock starts, so the client is not the bottleneck."""
    from raw_client import blob

    per_client = frames_of(events, per_frame)
    blobs, counts = [blob(frames) for frames in per_client], [len(f) for f in per_client]
    return events / _seconds_in_child(_raw_load, url, blobs, counts, bare)


# --- baseline: raw executemany --------------------------------------------------------------------


def executemany_rate(rows: int) -> float:
    from eventtui.model import decode_frame
    from eventtui.store import connect

    with tempfile.TemporaryDirectory() as tmp:
        conn = connect(Path(tmp) / "raw.db", create=True)
        conn.execute("INSERT INTO sessions (started_at, source) VALUES (0, 'bench')")
        frame = json.dumps([event(i, 0) for i in range(rows)]).encode()
        values = [(1, *e) for e in decode_frame(frame, binary=False, client="bench").events]
        sql = (
            "INSERT INTO events (session_id, received_at, sent_at, name, type, user_id, anonymous_id,"
            " message_id, client, properties, context, valid, errors, extra, absent, source)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        )
        start = time.perf_counter()
        for i in range(0, rows, 1000):
            conn.execute("BEGIN")
            conn.executemany(sql, values[i : i + 1000])
            conn.execute("COMMIT")
        seconds = time.perf_counter() - start
        conn.close()
    return rows / seconds


# --- latency at a fixed rate ----------------------------------------------------------------------


def _paced(url: str, rate: int, seconds: float, bare: bool, out: Any) -> None:
    async def client(c: int) -> list[float]:
        latencies: list[float] = []
        sent_at: list[float] = []
        async with connect(url, compression=None) as ws:
            done = asyncio.Event()
            total = int(rate / CLIENTS * seconds)

            async def reader() -> None:
                got = 0
                async for message in ws:
                    now = time.perf_counter()
                    n = json.loads(message)["ack"] if not bare else got + 1
                    for k in range(got, n):
                        latencies.append(now - sent_at[k])
                    got = n
                    if got >= total:
                        done.set()
                        return

            task = asyncio.create_task(reader())
            tick = 0.01
            per_tick = rate / CLIENTS * tick
            start = time.perf_counter()
            budget = 0.0
            i = 0
            while i < total:
                budget += per_tick
                while budget >= 1 and i < total:
                    sent_at.append(time.perf_counter())
                    # The bare server echoes "done" frames: one reply per frame, a fair round trip.
                    await ws.send("done" if bare else json.dumps(event(i, c)))
                    i += 1
                    budget -= 1
                await asyncio.sleep(max(0.0, start + (i / (rate / CLIENTS)) - time.perf_counter()))
            await asyncio.wait_for(done.wait(), 30)
            task.cancel()
        return latencies

    async def main() -> list[float]:
        results = await asyncio.gather(*(client(c) for c in range(CLIENTS)))
        return [x for r in results for x in r]

    out.send(asyncio.run(main()))


def latency(url: str, rate: int, seconds: float, bare: bool) -> tuple[float, float]:
    parent, child = mp.Pipe()
    proc = mp.Process(target=_paced, args=(url, rate, seconds, bare, child))
    proc.start()
    values = sorted(parent.recv())
    proc.join()
    p50 = values[len(values) // 2] * 1000
    p99 = values[int(len(values) * 0.99)] * 1000
    return p50, p99


# --- memory over 1M events ------------------------------------------------------------------------


def memory(total: int, step: int) -> list[tuple[int, float, float, float]]:
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server("ours", Path(tmp) / "mem.db")
        try:
            for done in range(step, total + 1, step):
                throughput(server.url, step, 100, bare=False)
                samples.append(
                    (done, server.rss_mb(), server.peak_rss_mb(), server.writer_rss_mb())
                )
        finally:
            server.stop()
    return samples


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts, one round")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    single_n = 40_000 if args.quick else 200_000
    batch_n = 200_000 if args.quick else 1_000_000
    keys = ("bare", "single", "raw", "batch", "plan", "bare_pre", "single_pre", "batch_pre")
    figures: dict[str, list[float]] = {k: [] for k in keys}
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as tmp:
            bare = Server("bare")
            figures["bare"].append(throughput(bare.url, single_n, 1, bare=True))
            bare.stop()
            ours = Server("ours", Path(tmp) / "a.db")
            figures["single"].append(throughput(ours.url, single_n, 1, bare=False))
            ours.stop()
            figures["raw"].append(executemany_rate(batch_n))
            ours = Server("ours", Path(tmp) / "b.db")
            figures["batch"].append(throughput(ours.url, batch_n, 100, bare=False))
            ours.stop()
            # The same servers fed by the pre-framed raw client: the server's own ceiling.
            bare = Server("bare")
            figures["bare_pre"].append(raw_throughput(bare.url, single_n, 1, bare=True))
            bare.stop()
            ours = Server("ours", Path(tmp) / "d.db")
            figures["single_pre"].append(raw_throughput(ours.url, single_n, 1, bare=False))
            ours.stop()
            ours = Server("ours", Path(tmp) / "e.db")
            figures["batch_pre"].append(raw_throughput(ours.url, batch_n, 100, bare=False))
            ours.stop()
            config = Path(tmp) / "plan.toml"
            config.write_text(PLAN)
            ours = Server("ours", Path(tmp) / "c.db", config)
            figures["plan"].append(throughput(ours.url, batch_n, 100, bare=False))
            ours.stop()
        print(
            f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in figures.items()),
            flush=True,
        )
    med = {k: statistics.median(v) for k, v in figures.items()}
    print()
    print(f"{'figure':58} {'ours':>12} {'baseline':>12} {'ratio':>7} goal")
    print(
        f"{'single-event frames, 4 clients, durable events/s':58} {med['single']:>12,.0f} "
        f"{med['bare']:>12,.0f} {med['single'] / med['bare']:>7.2f} >= 0.70 (bare count server)"
    )
    print(
        f"{'100-event frames, 4 clients, durable events/s':58} {med['batch']:>12,.0f} "
        f"{med['raw']:>12,.0f} {med['batch'] / med['raw']:>7.2f} >= 0.50 (raw executemany)"
    )
    print(
        f"{'single-event frames, pre-framed raw client, events/s':58} {med['single_pre']:>12,.0f} "
        f"{med['bare_pre']:>12,.0f} {med['single_pre'] / med['bare_pre']:>7.2f} >= 0.60 (bare count server, same client)"
    )
    # What SQLite alone takes, beside the bare server: no durable collector can pass this ratio.
    print(
        f"{'  the ceiling: raw executemany beside the bare server':58} {med['raw']:>12,.0f} "
        f"{med['bare_pre']:>12,.0f} {med['raw'] / med['bare_pre']:>7.2f}"
    )
    print(
        f"{'100-event frames, pre-framed raw client, events/s':58} {med['batch_pre']:>12,.0f} "
        f"{med['raw']:>12,.0f} {med['batch_pre'] / med['raw']:>7.2f} >= 0.80 (raw executemany)"
    )
    print(
        f"{'100-event frames with a tracking plan, durable events/s':58} {med['plan']:>12,.0f} "
        f"{med['batch']:>12,.0f} {med['plan'] / med['batch']:>7.2f} >= 0.70 (no plan)"
    )

    with tempfile.TemporaryDirectory() as tmp:
        bare = Server("bare")
        b50, b99 = latency(bare.url, 10_000, 3 if args.quick else 10, bare=True)
        bare.stop()
        ours = Server("ours", Path(tmp) / "lat.db")
        o50, o99 = latency(ours.url, 10_000, 3 if args.quick else 10, bare=False)
        ours.stop()
    print(
        f"{'ack latency at 10k events/s, p50 ms':58} {o50:>12.2f} {b50:>12.2f} {'':>7} (bare echo)"
    )
    print(
        f"{'ack latency at 10k events/s, p99 ms':58} {o99:>12.2f} {b99:>12.2f} {'':>7} goal < 50 ms"
    )

    total = 200_000 if args.quick else 1_000_000
    samples = memory(total, total // 4)
    for done, rss, peak, writer in samples:
        label = f"collector RSS after {done:,} events (MB; peak; writer)"
        print(f"{label:58} {rss:>12.1f} {peak:>12.1f} {writer:>7.1f}")
    print(
        f"{'collector peak RSS over the run, MB':58} {samples[-1][2]:>12.1f} {'':>12} {'':>7} goal < 150, flat"
    )

    from http_ingest import run_http

    http = run_http(50_000 if args.quick else 200_000, rounds=1 if args.quick else 3)
    print(
        f"{'HTTP batches of 100, 4 clients, durable events/s':58} {http['http_events_per_s']:>12,.0f} "
        f"{http['ws_events_per_s']:>12,.0f} {http['ratio']:>7.2f} >= 0.50 (websocket, same run)"
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
