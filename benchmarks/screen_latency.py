"""Commit to screen in a real terminal: `eventtui watch` in tmux, an event POSTed, the pane polled.

    uv run python benchmarks/screen_latency.py            # 40 probes at idle, 100, 1k, 10k events/s
    uv run python benchmarks/screen_latency.py --probes 20

As a person sees it (issue 13's method): `eventtui watch` runs in tmux at 160x45 on its own tmux
server; a load process sends steady websocket traffic (batches of 10 events, paced; 100 a batch at
10k/s); each probe POSTs one event with a name of its own to `/v1/track`, and the clock starts when
the 200 arrives (the event is committed). The pane is captured every 20 ms until the name shows,
in the stream or in the counters: from 1k events/s on, a row scrolls out of the stream within the
paint that brings it, and the counters panel is where a new name is seen. Figures: p50, p90 and
the slowest probe (p99 of 40 is the slowest) per rate. Goal: under 150 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

TMUX = ("tmux", "-L", "eventtui-bench-screen")
POLL = 0.02
RATES = (0, 100, 1000, 10_000)


def free_port_pair() -> int:
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as t:
            try:
                t.bind(("127.0.0.1", port + 1))
                return port
            except OSError:
                continue


def _load(url: str, rate: int, stop: Any) -> None:
    from websockets.asyncio.client import connect

    async def main() -> None:
        async with connect(url) as ws:
            n, start = 0, time.perf_counter()
            size = max(10, rate // 100)  # at most 100 frames a second: the client keeps up
            while not stop.is_set():
                batch = [{"event": "load", "properties": {"n": n + i}} for i in range(size)]
                await ws.send(json.dumps(batch))
                n += size
                # Paced: the next batch when it is due.
                await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
                while True:  # drain acks without waiting
                    try:
                        await asyncio.wait_for(ws.recv(), 0)
                    except TimeoutError:
                        break

    asyncio.run(main())


def capture() -> str:
    return subprocess.run(
        [*TMUX, "capture-pane", "-p", "-t", "watch"], capture_output=True, text=True
    ).stdout


def probe(http: str, name: str) -> float:
    body = json.dumps({"event": name, "userId": "probe"}).encode()
    request = urllib.request.Request(f"{http}/v1/track", body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        answer.read()
    start = time.perf_counter()
    while name not in capture():
        if time.perf_counter() - start > 5:
            return float("inf")
        time.sleep(POLL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=40)
    args = parser.parse_args()
    eventtui = str(Path(sys.executable).parent / "eventtui")
    port = free_port_pair()
    print(f"load average {os.getloadavg()[0]:.1f}; {args.probes} probes per rate; tmux 160x45")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "screen.db"
        subprocess.run(
            [*TMUX, "new", "-d", "-s", "watch", "-x", "160", "-y", "45",
             eventtui, "watch", "--db", str(db), "--port", str(port)],
            check=True,
        )  # fmt: skip
        try:
            http = f"http://127.0.0.1:{port + 1}"
            for _ in range(100):  # until the collector answers
                try:
                    urllib.request.urlopen(f"{http}/health", timeout=1).read()
                    break
                except OSError:
                    time.sleep(0.1)
            # And until the app has painted and settled: the collector answers before the TUI
            # has its first frame, and a probe then measured start-up, not commit to screen.
            for _ in range(100):
                if "Quit" in capture():
                    break
                time.sleep(0.1)
            time.sleep(1.0)
            for rate in RATES:
                stop = mp.Event()
                load = None
                if rate:
                    load = mp.Process(target=_load, args=(f"ws://127.0.0.1:{port}", rate, stop))
                    load.start()
                    time.sleep(1.0)  # steady before the first probe
                seconds = []
                for k in range(args.probes):
                    seconds.append(probe(http, f"probe_{rate}_{k}"))
                    time.sleep(0.2)
                stop.set()
                if load is not None:
                    load.join(5)
                ms = sorted(x * 1000 for x in seconds)
                p50, p90, worst = statistics.median(ms), ms[int(len(ms) * 0.9)], ms[-1]
                over = sum(x > 150 for x in ms)
                print(
                    f"{rate:>6} events/s   p50 {p50:6.0f} ms   p90 {p90:6.0f} ms   slowest"
                    f" {worst:6.0f} ms   over 150 ms: {over} of {len(ms)}",
                    flush=True,
                )
        finally:
            subprocess.run([*TMUX, "kill-server"], capture_output=True)


if __name__ == "__main__":
    main()
