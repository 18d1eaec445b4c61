"""HTTP ingest benchmark: durable events/s over HTTP beside the websocket figure from the same run.

    uv run python benchmarks/http_ingest.py             # 200,000 events per figure, 3 rounds
    uv run python benchmarks/http_ingest.py --quick     # 40,000 events, 1 round

Both figures use an `eventtui collect` subprocess on a fresh store and 4 clients sending 100-event
batches, from a load generator in its own process (so the collector gets the other core):
  - HTTP: Segment-style `POST /v1/batch` bodies, one request in flight per client (as an SDK's
    upload thread does); a 200 means committed.
  - websocket: 100-event frames, up to 2,000 unacked frames per client; an ack means committed.
Rounds interleave the two; the medians and the ratio HTTP/ws are printed (goal >= 0.5). Every run
checks that the store holds every event before it counts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CLIENTS = 4
PER_BATCH = 100
WS_WINDOW = 2000


def event(i: int, client: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": ("page_view", "signup", "checkout_completed", "heartbeat")[i % 4],
        "userId": f"user-{i % 977}",
        "messageId": f"{client}-{i}",
        "timestamp": "2026-11-26T04:00:00.000Z",
        "properties": {"path": f"/p/{i % 50}", "plan": "pro", "total": i % 300 + 0.5, "n": i},
        "context": {"library": {"name": "bench", "version": "1"}},
    }


def batches(n_events: int, client: int, wrap: bool) -> list[bytes]:
    """One client's share of the events, `PER_BATCH` to a body; `wrap`: as `{"batch": [...]}`."""
    share = [event(i, client) for i in range(n_events // CLIENTS)]
    chunks = [share[i : i + PER_BATCH] for i in range(0, len(share), PER_BATCH)]
    return [json.dumps({"batch": c} if wrap else c).encode() for c in chunks]


class Collector:
    """`eventtui collect` in a subprocess, on a fresh store."""

    def __init__(self, db: Path) -> None:
        self.db = db
        command = ["eventtui", "collect", "--db", str(db), "--port", "0", "--http-port", "0"]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *command],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        assert self.proc.stdout is not None
        # "listening on ws://127.0.0.1:P and http://127.0.0.1:Q"
        words = self.proc.stdout.readline().split()
        self.ws_url, self.http_url = words[2], words[4]

    def stored(self) -> int:
        from eventtui.store import Reader

        with Reader(self.db) as reader:
            return reader.count_events()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=60)


# --- load generator (runs in a child process) -----------------------------------------------------


async def _http_client(url: str, bodies: list[bytes]) -> None:
    headers = {"Content-Type": "application/json", "Authorization": "Basic YmVuY2g6"}
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for body in bodies:
            async with session.post(f"{url}/v1/batch", data=body) as response:
                answer = await response.json()
                if response.status != 200 or answer["refused"]:
                    raise RuntimeError(f"HTTP {response.status}: {answer}")


async def _ws_client(url: str, frames: list[bytes]) -> None:
    async with connect(url, compression=None, max_size=None) as ws:
        space = asyncio.Semaphore(WS_WINDOW)
        total = len(frames)

        async def read_acks() -> None:
            acked = 0
            async for message in ws:
                reply = json.loads(message)
                if "ack" not in reply:
                    raise RuntimeError(f"websocket refused: {reply}")
                for _ in range(reply["ack"] - acked):
                    space.release()
                acked = reply["ack"]
                if acked >= total:
                    return

        reader = asyncio.create_task(read_acks())
        for frame in frames:
            await space.acquire()
            await ws.send(frame.decode())
        await reader


def _load(kind: str, url: str, per_client: list[list[bytes]], out: Any) -> None:
    client = _http_client if kind == "http" else _ws_client

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(client(url, bodies) for bodies in per_client))
        return time.perf_counter() - start

    out.send(asyncio.run(main()))


def measure(kind: str, n_events: int, tmp: Path) -> float:
    """Durable events/s for one transport: first send until the last event is committed."""
    per_client = [batches(n_events, c, wrap=kind == "http") for c in range(CLIENTS)]
    expected = n_events // CLIENTS * CLIENTS
    collector = Collector(tmp / f"{kind}-{time.monotonic_ns()}.db")
    url = collector.http_url if kind == "http" else collector.ws_url
    try:
        parent, child = mp.Pipe()
        proc = mp.Process(target=_load, args=(kind, url, per_client, child))
        proc.start()
        seconds = parent.recv()
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"the {kind} load generator failed")
        stored = collector.stored()
        if stored != expected:
            raise RuntimeError(
                f"{kind}: {stored:,} events stored after every answer, not {expected:,}"
            )
    finally:
        collector.stop()
    return expected / seconds


def run_http(n_events: int = 200_000, rounds: int = 3) -> dict[str, Any]:
    """HTTP and websocket durable events/s (medians of interleaved rounds) and their ratio."""
    figures: dict[str, list[float]] = {"http": [], "ws": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for kind in ("http", "ws"):
                figures[kind].append(measure(kind, n_events, Path(tmp)))
    http, ws = statistics.median(figures["http"]), statistics.median(figures["ws"])
    return {
        "events": n_events,
        "clients": CLIENTS,
        "per_batch": PER_BATCH,
        "rounds": rounds,
        "http_events_per_s": http,
        "ws_events_per_s": ws,
        "ratio": http / ws,
        "all": figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="40,000 events, one round")
    parser.add_argument("--events", type=int, help="events per figure (default 200,000)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    n = args.events or (40_000 if args.quick else 200_000)
    result = run_http(n, rounds=1 if args.quick else 3)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{n:,} events, {CLIENTS} clients, {PER_BATCH}-event batches, {result['rounds']} round(s)"
    )
    print(f"{'figure':44} {'events/s':>12}")
    print(f"{'HTTP POST /v1/batch, 200 after commit':44} {result['http_events_per_s']:>12,.0f}")
    print(f"{'websocket frames, ack after commit':44} {result['ws_events_per_s']:>12,.0f}")
    print(f"{'ratio HTTP/ws':44} {result['ratio']:>12.2f}   goal >= 0.50")


if __name__ == "__main__":
    main()
