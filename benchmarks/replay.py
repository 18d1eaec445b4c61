"""Replay benchmark: pacing accuracy at 1x, replay throughput at max speed, re-send throughput.

    uv run python benchmarks/replay.py            # full run (about a minute)
    uv run python benchmarks/replay.py --quick    # smaller counts

Figures, each beside a baseline from the same run:
  1. pacing at 1x (`eventtui replay --to-url`, in-process, to `eventtui collect` in its own
     process): the median error of the gaps between consecutive events as the second store
     received them, against the recorded gaps. Goal < 5 ms. Baseline: an asyncio loop that only
     sleeps to the same schedule (the floor the event loop's timers allow).
  2. replay at max speed into the viewer pipeline, headless: the TUI's `ReplayFeed` posting
     `EventsCommitted` batches to a consumer that does what the app's handler does (counters,
     monitor, credit back), and the whole `EventApp` headless. Goal >= 200k events/s. Baseline:
     the same rows read straight from the store into the same consumer (no feed, no pacing).
     Also: the same consumer fed light rows (`fetch_rows(..., light=True)`: no payload) for all but
     the newest 10,000 events, a change proposed for the feed.
  3. re-send at max speed, as a user runs it: `eventtui replay --db S --to-url U --speed max` vs
     `eventtui send FILE --url U` of the same events (one per line), each into a fresh
     `eventtui collect`, rounds interleaved. Goal >= 0.5x.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import queue
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eventtui.config import Config, Duration, Expectation  # noqa: E402
from eventtui.model import normalise  # noqa: E402
from eventtui.monitor.factory import build_monitor  # noqa: E402
from eventtui.replay import (  # noqa: E402
    MAX_SPEED,
    ReplayClock,
    load_schedule,
    resend,
)
from eventtui.store import Reader, Submission, Writer  # noqa: E402
from eventtui.store.rows import event_rows  # noqa: E402
from eventtui.tui.messages import EventsCommitted  # noqa: E402
from eventtui.tui.states import MonitorStates  # noqa: E402

NAMES = [
    "page_view",
    "search",
    "feature_used",
    "checkout_started",
    "checkout_completed",
    "heartbeat",
]
CONFIG = Config(expect=(Expectation(event="heartbeat", every=Duration(30)),))


def build_store(path: Path, offsets: list[float], *, seed: int = 1) -> int:
    """One session with an event at each offset (seconds from now - span), realistic payloads."""
    rng = random.Random(seed)
    base = time.time() - (offsets[-1] if offsets else 0) - 60
    writer = Writer(path, source="bench", label="replay benchmark")
    session = writer.start()
    batch = []
    for i, offset in enumerate(offsets):
        name = rng.choice(NAMES)
        batch.append(
            normalise(
                {
                    "event": name,
                    "userId": f"u{rng.randrange(1000)}",
                    "messageId": f"bench-{session}-{i}",
                    "timestamp": base + offset,
                    "properties": {
                        "path": f"/p/{i % 300}",
                        "plan": rng.choice(["free", "pro", "team"]),
                        "cart_total": round(rng.random() * 300, 2),
                    },
                    "context": {"library": {"name": "bench", "version": "1.0"}, "ip": "10.0.0.1"},
                },
                client="ws:bench",
                received_at=base + offset,
            )
        )
        if len(batch) == 5000:
            writer.submit(Submission(batch))
            batch = []
    writer.submit(Submission(batch))
    writer.close()
    return session


class Collect:
    """`eventtui collect --port 0` in its own process (the machine's other core)."""

    def __init__(self, db: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "eventtui", "collect", "--port", "0", "--http-port", "0",
             "--db", str(db)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().split()
        self.url = line[2]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=60)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


# --- 1. pacing at 1x ------------------------------------------------------------------------------


def pacing_offsets(count: int, seed: int = 2) -> list[float]:
    """Gaps as a real app makes them: mostly a few ms to tens of ms, bursts at one instant, and
    pauses of a few hundred ms."""
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(count):
        out.append(t)
        roll = rng.random()
        if roll < 0.1:
            gap = 0.0  # a burst: several events in one instant
        elif roll < 0.97:
            gap = rng.expovariate(1 / 0.012)
        else:
            gap = rng.uniform(0.1, 0.5)
        t += gap
    return out


async def sleep_floor(offsets: list[float]) -> list[float]:
    """The baseline: only sleeping to the schedule; returns when each instant was reached."""
    start = time.monotonic()
    reached = []
    for offset in offsets:
        delay = start + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        reached.append(time.monotonic() - start)
    return reached


def gap_errors(actual: list[float], recorded: list[float]) -> list[float]:
    return [
        abs((b - a) - (y - x))
        for (a, b), (x, y) in zip(
            itertools.pairwise(actual), itertools.pairwise(recorded), strict=True
        )
    ]


def bench_pacing(tmp: Path, count: int) -> dict[str, Any]:
    offsets = pacing_offsets(count)
    source = tmp / "pacing.db"
    session = build_store(source, offsets)
    target = tmp / "pacing-target.db"
    collect = Collect(target)
    try:
        with Reader(source) as reader:
            schedule = load_schedule(reader, reader.session(session))
            result = asyncio.run(resend(reader, schedule, collect.url, record_times=True))
            recorded = list(schedule.times)
    finally:
        collect.stop()
    with Reader(target) as reader:
        received = [r.received_at for r in reader.query()]
    assert len(received) == count, (len(received), count)
    sent = [t for _, t in result.stats.sent_at]
    floor = asyncio.run(sleep_floor(offsets))
    received_errors = gap_errors(received, recorded)
    sent_errors = gap_errors(sent, recorded)
    floor_errors = gap_errors(floor, offsets)
    return {
        "events": count,
        "seconds": offsets[-1],
        "received": received_errors,
        "sent": sent_errors,
        "floor": floor_errors,
        "drift": (received[-1] - received[0]) - (recorded[-1] - recorded[0]),
    }


# --- 2. replay throughput into the viewer pipeline ------------------------------------------------


class Consumer:
    """What `EventApp.on_events_committed` does with a batch, minus drawing: the monitor (which
    keeps the counters)."""

    def __init__(self, started_at: float) -> None:
        self.states = MonitorStates(build_monitor(CONFIG, started_at=started_at))
        self.seen = 0

    def take(self, rows: Any) -> None:
        self.states.observe_many(rows)
        self.seen += len(rows)


def bench_feed(path: Path, session: int) -> tuple[float, int]:
    """The TUI's ReplayFeed at max speed into the consumer; returns (seconds, events)."""
    from eventtui.tui.feeds import ReplayFeed

    with Reader(path) as reader:
        schedule = load_schedule(reader, reader.session(session))
    timeline = schedule.timeline(max_gap=None, whole_session=False)
    clock = ReplayClock(timeline, speed=MAX_SPEED)
    feed = ReplayFeed(path, schedule, clock)
    consumer = Consumer(timeline.start)
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    started = time.perf_counter()
    thread = threading.Thread(target=feed.run, args=(inbox.put,), daemon=True)
    thread.start()
    while consumer.seen < len(schedule):
        message = inbox.get(timeout=60)
        if isinstance(message, EventsCommitted):
            consumer.take(message.rows)
            message.handled()
    elapsed = time.perf_counter() - started
    feed.stop()
    thread.join(10)
    return elapsed, consumer.seen


def bench_straight(path: Path, session: int) -> tuple[float, int]:
    """Baseline: the session's rows read straight from the store into the same consumer."""
    with Reader(path) as reader:
        started_at = reader.session(session).started_at
        consumer = Consumer(started_at)
        started = time.perf_counter()
        for page, _ in reader.pages(session=session, page_rows=2000):
            consumer.take(event_rows(page))
        return time.perf_counter() - started, consumer.seen


def bench_light(path: Path, session: int) -> tuple[float, int]:
    """What a feed could do for events the stream cannot keep (all but the newest 10,000 at max
    speed): read only what counters and monitor use (light rows), whole rows for the rest."""
    from eventtui.replay import fetch_rows

    with Reader(path) as reader:
        schedule = load_schedule(reader, reader.session(session))
        consumer = Consumer(schedule.times[0])
        total = len(schedule)
        keep_from = max(0, total - 10_000)
        started = time.perf_counter()
        for start in range(0, total, 2000):
            page = range(start, min(total, start + 2000))
            consumer.take(fetch_rows(reader, schedule, page, light=page.stop <= keep_from))
        return time.perf_counter() - started, consumer.seen


def bench_app(path: Path, session: int) -> tuple[float, int]:
    """The whole app, headless (`run_test`), replaying at max speed until every event is counted."""
    from eventtui.tui.app import EventApp
    from eventtui.tui.launch import run_replay

    built: list[EventApp] = []
    run_replay(CONFIG, path, session=session, speed=MAX_SPEED, run_app=built.append, tune_gc=True)
    app = built[0]
    total = app.playback.player.total  # type: ignore[union-attr]

    async def main() -> float:
        async with app.run_test(size=(160, 45)):
            started = time.perf_counter()
            while app.counters.everything.total < total:
                await asyncio.sleep(0.005)
            return time.perf_counter() - started

    return asyncio.run(main()), total


# --- 3. re-send vs send ---------------------------------------------------------------------------


def run_cli(*args: str) -> float:
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "eventtui", *args], capture_output=True, text=True, timeout=600
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"eventtui {' '.join(args)}: {result.stderr}")
    return elapsed


def bench_resend(tmp: Path, source: Path, session: int, count: int, rounds: int) -> dict[str, Any]:
    jsonl = tmp / "send.jsonl"
    with Reader(source) as reader, jsonl.open("w") as out:
        for page, _ in reader.pages(session=session):
            for row in event_rows(page):
                out.write(json.dumps(row.payload()) + "\n")
    send_s, replay_s = [], []
    for i in range(rounds):
        for kind in ("send", "replay"):
            collect = Collect(tmp / f"{kind}-{i}.db")
            try:
                if kind == "send":
                    send_s.append(run_cli("send", str(jsonl), "--url", collect.url))
                else:
                    replay_s.append(
                        run_cli(
                            "replay",
                            str(session),
                            "--db",
                            str(source),
                            "--to-url",
                            collect.url,
                            "--speed",
                            "max",
                        )
                    )
            finally:
                collect.stop()
    return {
        "send": count / statistics.median(send_s),
        "replay": count / statistics.median(replay_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    args = parser.parse_args()
    pacing_count = 300 if args.quick else 1500
    throughput_count = 50_000 if args.quick else 200_000
    resend_count = 20_000 if args.quick else 100_000
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        pacing = bench_pacing(tmp, pacing_count)
        big = tmp / "big.db"
        session = build_store(big, [i * 0.001 for i in range(throughput_count)])
        feed_s, feed_n = bench_feed(big, session)
        straight_s, straight_n = bench_straight(big, session)
        app_s, app_n = bench_app(big, session)
        light_s, light_n = bench_light(big, session)
        mid = tmp / "resend.db"
        resend_session = build_store(mid, [i * 0.001 for i in range(resend_count)], seed=3)
        resend_rates = bench_resend(tmp, mid, resend_session, resend_count, rounds)

    ms = 1000.0
    print()
    print(f"{'figure':62} {'ours':>10} {'baseline':>10} {'ratio':>7} goal")
    received, floor, sent = pacing["received"], pacing["floor"], pacing["sent"]
    print(
        f"{'1. pacing at 1x, median gap error, received (ms)':62}"
        f" {statistics.median(received) * ms:>10.2f} {statistics.median(floor) * ms:>10.2f}"
        f" {'':>7} < 5 ms"
    )
    print(
        f"{'   p90 / p99 / max gap error, received (ms)':62}"
        f" {pct(received, 90) * ms:>5.1f}/{pct(received, 99) * ms:.1f}/{max(received) * ms:.1f}"
    )
    print(
        f"{'   median gap error when sent (ms)':62} {statistics.median(sent) * ms:>10.2f}"
        f"   ({pacing['events']:,} events over {pacing['seconds']:.1f} s,"
        f" end-to-end drift {pacing['drift'] * ms:+.1f} ms)"
    )
    feed_rate, straight_rate, app_rate = feed_n / feed_s, straight_n / straight_s, app_n / app_s
    print(
        f"{'2. replay feed at max speed -> counters + monitor (events/s)':62}"
        f" {feed_rate:>10,.0f} {straight_rate:>10,.0f} {feed_rate / straight_rate:>7.2f}"
        " >= 200k/s"
    )
    print(
        f"{'   the whole app, headless (events/s)':62} {app_rate:>10,.0f}"
        f" {straight_rate:>10,.0f} {app_rate / straight_rate:>7.2f}"
    )
    light_rate = light_n / light_s
    print(
        f"{'   proposed: rows the stream cannot keep read light (events/s)':62}"
        f" {light_rate:>10,.0f} {straight_rate:>10,.0f} {light_rate / straight_rate:>7.2f}"
    )
    print(
        f"{'3. re-send at max speed vs eventtui send, CLI (events/s)':62}"
        f" {resend_rates['replay']:>10,.0f} {resend_rates['send']:>10,.0f}"
        f" {resend_rates['replay'] / resend_rates['send']:>7.2f} >= 0.5x"
    )


if __name__ == "__main__":
    main()
