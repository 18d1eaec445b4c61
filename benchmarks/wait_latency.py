"""Test API latency: from the commit of an awaited event to `/api/wait` answering, beside a
Snowplow-Micro-style test that polls every 100 ms, at idle and while 10k events/s arrive.

    uv run python benchmarks/wait_latency.py            # 200 samples per figure
    uv run python benchmarks/wait_latency.py --quick    # 50

The collector runs in this process (its own thread and loop, as the pytest plugin runs it), so
that its writer's commit reports can be timed: a listener records when each report reaches the
collector (the moment it knows the rows are committed). The load, when there is one, comes from a
subprocess: 100-event websocket frames paced to 10,000 events/s, its acks read as they come.

A sample: take `/api/cursor`, open the wait (or start polling), send one marker event over a
websocket of its own, and measure from the commit report of the transaction that holds the marker
to the moment the answer (or the poll that first sees it) reaches the test. Waits and polls
alternate sample by sample, so both see the same load. Goal: p99 < 20 ms for the wait.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventtui.collector import Collector  # noqa: E402
from eventtui.collector.thread import CollectorThread  # noqa: E402
from eventtui.config import Config  # noqa: E402
from eventtui.store import Commit  # noqa: E402

POLL_SECONDS = 0.1  # Snowplow Micro suites poll /micro/good about this often
RATE = 10_000
PER_FRAME = 100


# --- the load: a subprocess ---------------------------------------------------------------------


async def load(url: str, rate: int, seconds: float) -> None:
    frame = json.dumps(
        [{"event": "load", "properties": {"i": i, "path": "/p"}} for i in range(PER_FRAME)]
    )
    async with connect(url, compression=None, max_queue=None) as ws:

        async def drain() -> None:
            async for _ in ws:
                pass

        reader = asyncio.create_task(drain())
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent = 0
        while (now := loop.time()) - start < seconds:
            due = int((now - start) * rate / PER_FRAME) + 1
            while sent < due:
                await ws.send(frame)
                sent += 1
            await asyncio.sleep(PER_FRAME / rate / 2)
        reader.cancel()


# --- the measurement ----------------------------------------------------------------------------


class CommitTimes:
    """When each commit report reached the collector, by the last event id it covers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reports: list[tuple[int, float]] = []

    def __call__(self, commit: Commit) -> None:
        if commit.inserted:
            with self.lock:
                self.reports.append((commit.last_event_id, time.perf_counter()))

    def of(self, event_id: int) -> float:
        with self.lock:
            return next(t for last, t in self.reports if last >= event_id)


async def sample(
    http: aiohttp.ClientSession, ws: Any, url: str, commits: CommitTimes, n: int, poll: bool
) -> float:
    """Seconds from the marker's commit report to the test seeing it."""
    async with http.get(f"{url}/api/cursor") as r:
        after = (await r.json())["last_id"]
    params = {"filter": f"name:marker n={n}", "after": str(after)}
    if poll:
        send = asyncio.create_task(ws.send(json.dumps({"event": "marker", "properties": {"n": n}})))
        # Polls start at a random phase relative to the event, as they do in a real suite.
        await asyncio.sleep(random.uniform(0, POLL_SECONDS))
        while True:
            async with http.get(f"{url}/api/events", params=params) as r:
                body = await r.json()
            seen = time.perf_counter()
            if body["events"]:
                break
            await asyncio.sleep(POLL_SECONDS)
        await send
    else:

        async def wait() -> tuple[dict[str, Any], float]:
            async with http.get(f"{url}/api/wait", params={**params, "timeout": "10s"}) as r:
                assert r.status == 200, await r.text()
                return await r.json(), time.perf_counter()

        waiting = asyncio.create_task(wait())
        await asyncio.sleep(0.02)  # the wait is open before the event is sent
        await ws.send(json.dumps({"event": "marker", "properties": {"n": n}}))
        body, seen = await waiting
    event_id = body["events"][0]["eventtui"]["id"]
    return seen - commits.of(event_id)


async def measure(
    collector: Collector, commits: CommitTimes, samples: int
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"wait": [], "poll": []}
    url = collector.http_url or ""
    async with aiohttp.ClientSession() as http, connect(collector.ws_url, compression=None) as ws:

        async def drain() -> None:
            async for _ in ws:
                pass

        reader = asyncio.create_task(drain())
        for n in range(samples * 2):
            kind = "poll" if n % 2 else "wait"
            out[kind].append(await sample(http, ws, url, commits, n, kind == "poll"))
        reader.cancel()
    return out


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[q - 1]
        if len(values) > 1
        else values[0]
    )


def run(samples: int, under_load: bool) -> tuple[dict[str, list[float]], float]:
    with tempfile.TemporaryDirectory() as folder:
        collector = Collector(Config(), Path(folder) / "events.db", source="bench")
        commits = CommitTimes()
        collector.writer.add_listener(commits)
        thread = CollectorThread(collector)
        thread.start(port=0, http_port=0)
        loader = None
        try:
            if under_load:
                # Enough load for the whole measurement (waits ~30 ms, polls ~150 ms a sample).
                seconds = 3 + samples * 0.25
                loader = subprocess.Popen(
                    [sys.executable, __file__, "--load", collector.ws_url, str(RATE), str(seconds)]
                )
                time.sleep(1.5)  # let the load settle
            before, started = collector.writer.stats.events, time.perf_counter()
            figures = asyncio.run(measure(collector, commits, samples))
            rate = (collector.writer.stats.events - before) / (time.perf_counter() - started)
        finally:
            if loader is not None:
                loader.kill()
                loader.wait()
            thread.stop()
    return figures, rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--load", nargs=3, metavar=("URL", "RATE", "SECONDS"))
    args = parser.parse_args()
    if args.load:
        url, rate, seconds = args.load
        asyncio.run(load(url, int(rate), float(seconds)))
        return
    samples = 50 if args.quick else 200
    print(f"load average before: {os.getloadavg()[0]:.2f}; {samples} samples per figure")
    print(
        f"{'':34} {'wait p50':>9} {'p99':>7}   {'100 ms poll p50':>15} {'p99':>7}   {'p50 ratio':>9}"
    )
    for label, under_load in (("idle", False), (f"{RATE // 1000}k events/s", True)):
        figures, rate = run(samples, under_load)
        w, p = figures["wait"], figures["poll"]
        ms = [percentile(v, q) * 1000 for v in (w, p) for q in (50, 99)]
        print(
            f"{label + f' (measured {rate:,.0f}/s)':34} {ms[0]:7.2f}ms {ms[1]:5.2f}ms"
            f"   {ms[2]:13.1f}ms {ms[3]:5.1f}ms   {ms[2] / ms[0]:8.0f}x"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
