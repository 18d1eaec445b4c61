"""Benchmark: the real TUI, headless, following a store that is written at 2k, 10k and 30k events/s.

    uv run python benchmarks/tui.py            # idle baseline, then 2k, 10k, 30k/s
    uv run python benchmarks/tui.py --quick    # shorter phases
    uv run python benchmarks/tui.py --million  # run the 30k/s phase until 1M events are stored
    uv run python benchmarks/tui.py --screen   # only commit-to-screen: idle, 100, 1k, 10k/s

What runs: `EventApp` over a `StoreFeed`, wired as `eventtui watch` wires it (the writer's commit
signal wakes the feed), inside `App.run_test` at 160x45. A load thread submits batches to the
store's `Writer` every 10 ms. The app paints through Textual's compositor; headless Textual skips
turning the update into terminal bytes, so this app does that too (`_display` below) to pay what a
real terminal costs, minus the write itself.

Measured per phase:
- keypress-to-screen latency: a key is injected as the terminal driver would (not via Pilot,
  which waits for idleness); latency is the time to the first screen update after the key's
  effect (`s` re-sorts the counters, ↑/↓ move the selection);
- screen updates per second, and stream paints per second (ticks that moved rows on screen);
- stream lag: how old the newest row on screen is when a frame goes out;
- CPU share of the TUI (process CPU minus the load thread's own), peak and current RSS;
- commit to screen, last: from the writer's commit report (when a client gets its ack) to the
  first frame whose newest stream row is that commit's newest, at a few events a second ("idle",
  3/s), 100, 1k and 10k/s, the stream following and no key pressed (p50, p99, max).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import resource
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import RenderableType
from textual import events
from textual.screen import Screen

from eventtui.model import StoredEvent
from eventtui.store import Commit, Submission, Writer
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StoreFeed
from eventtui.tui.widgets.stream import EventStream

NAMES = [
    "page_view",
    "search",
    "feature_used",
    "checkout_started",
    "checkout_completed",
    "sign_up",
    "heartbeat",
    "coupon_applied",
]


# When a key's effect was applied (the state a frame must show); see `phase`.
EFFECT = [0.0]
_move_cursor = EventStream._move_cursor


def _timed_move_cursor(self: EventStream, index: int | None) -> None:
    _move_cursor(self, index)
    EFFECT[0] = time.perf_counter()


_follow = EventStream.follow


def _timed_follow(self: EventStream) -> None:
    _follow(self)
    EFFECT[0] = time.perf_counter()


EventStream._move_cursor = _timed_move_cursor  # type: ignore[method-assign]
EventStream.follow = _timed_follow  # type: ignore[method-assign]


class BenchApp(EventApp):
    """EventApp that records when each frame goes out, and pays for turning it into bytes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[float] = []
        self.frame_lag: list[float] = []
        # Commits not yet on screen: (last event id, when the commit was reported); and, for
        # each, how long until a frame showed its newest row (commit to screen).
        self.commits: deque[tuple[int, float]] = deque()
        self.to_screen: list[float] = []
        # The baseline: paint new rows only at the 10 Hz tick, as before rows painted on arrival.
        self.tick_only = False

    def _paint_soon(self) -> None:
        if not self.tick_only:
            super()._paint_soon()

    def action_cycle_sort(self) -> None:
        super().action_cycle_sort()
        EFFECT[0] = time.perf_counter()

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        # Textual private API, used on purpose: headless runs skip this encoding step.
        if renderable is not None and not self._batch_count:
            render = getattr(renderable, "render_segments", None)
            if render is not None:
                render(self.console)
            now = time.perf_counter()
            self.frames.append(now)
            stream = self.stream if self.is_mounted else None  # type: ignore[truthy-function]
            if stream is not None and stream.latest is not None and not stream.holding:
                self.frame_lag.append(time.time() - stream.latest.received_at)
                shown, commits = stream.latest.id, self.commits
                while commits and commits[0][0] <= shown:
                    self.to_screen.append(now - commits.popleft()[1])
        super()._display(screen, renderable)


@dataclass
class Load:
    """Submits `rate` events/s to the writer from its own thread, in 10 ms batches."""

    writer: Writer
    rate: int = 0
    submitted: int = 0
    cpu: float = 0.0
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        rng = random.Random(1)
        self.templates = [
            StoredEvent(
                received_at=0.0,
                sent_at=None,
                name=rng.choice(NAMES),
                type="track",
                user_id=f"u{rng.randrange(1000)}",
                anonymous_id=None,
                message_id=None,
                client="bench",
                properties=f'{{"path":"/p/{i}","plan":"pro","cart_total":{i % 300}.5}}',
                context='{"library":{"name":"bench"}}',
                valid=i % 97 != 0,
                errors=None if i % 97 else '["cart_total: not a number"]',
                extra=None,
            )
            for i in range(1000)
        ]
        self.thread = threading.Thread(target=self._run, name="bench-load", daemon=True)

    def _run(self) -> None:
        cpu0 = time.thread_time()
        tick = 0.01
        next_at = time.perf_counter()
        carry = 0.0
        templates = self.templates
        index = 0
        while not self.stop.is_set():
            next_at += tick
            if self.rate:
                carry += self.rate * tick
                n = int(carry)
                carry -= n
                now = time.time()
                batch = []
                for _ in range(n):
                    batch.append(templates[index]._replace(received_at=now))
                    index = (index + 1) % len(templates)
                self.writer.submit(Submission(batch))
                self.submitted += n
            delay = next_at - time.perf_counter()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.perf_counter()  # behind: don't try to catch up in a burst
            self.cpu = time.thread_time() - cpu0


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size in MB."""
    current = peak = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                current = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    return current, peak or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def phase(
    app: BenchApp, load: Load, rate: int, seconds: float, stored: list[int], until_events: int = 0
) -> dict[str, Any]:
    load.rate = rate
    await asyncio.sleep(1.0)  # settle at the new rate
    driver = app._driver
    assert driver is not None
    frames0 = len(app.frames)
    stream_paints0 = app.stream_paints
    stream_paints_following = 0
    following_wall = 0.0
    lag0 = len(app.frame_lag)
    cpu0, load_cpu0, wall0 = time.process_time(), load.cpu, time.perf_counter()
    events0 = stored[0]
    latencies: list[float] = []
    gc_pauses0 = len(GC_PAUSES)
    # Each key changes what is on screen: `s` re-sorts the counters while the stream streams;
    # ↑ selects the newest row (the stream holds still), ↓ moves, `f` follows again.
    keys = ["s", "up", "up", "down", "f"]
    i = 0
    while True:
        elapsed = time.perf_counter() - wall0
        if until_events:
            if stored[0] >= until_events or elapsed > 600:
                break
        elif elapsed >= seconds:
            break
        # The first 40% of the phase presses only `s`, so the stream keeps following and its
        # paint rate can be measured; then the keys that hold the stream come in too.
        following = elapsed < 0.4 * (10.0 if until_events else seconds)
        if following:
            key = "s"
            if not app.stream.following:
                driver.send_message(events.Key("f", "f"))
                await asyncio.sleep(0.05)
        else:
            if not following_wall:
                following_wall = elapsed
                stream_paints_following = app.stream_paints - stream_paints0
            key = keys[i % len(keys)]
            i += 1
        before = (app.sort_key, app.stream.cursor, app.stream.following)
        sent = time.perf_counter()
        EFFECT[0] = 0.0
        driver.send_message(events.Key(key, key if len(key) == 1 else None))
        # The effect first (applied by the app), then the first frame that went out after it.
        while EFFECT[0] == 0.0 and time.perf_counter() - sent < 2:
            await asyncio.sleep(0.0005)
        changed_at = EFFECT[0] or time.perf_counter()
        while (not app.frames or app.frames[-1] < changed_at) and time.perf_counter() - sent < 2:
            await asyncio.sleep(0.0005)
        shown = next((f for f in app.frames[-50:] if f >= changed_at), time.perf_counter())
        latencies.append(shown - sent)
        assert (app.sort_key, app.stream.cursor, app.stream.following) != before, key
        if DEBUG and latencies[-1] > 0.2:
            print(
                f"slow key {key!r}: {latencies[-1] * 1000:.0f} ms, effect after {(changed_at - sent) * 1000:.0f} ms"
            )
        await asyncio.sleep(0.15)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0 - (load.cpu - load_cpu0)
    current, peak = rss_mb()
    lags = app.frame_lag[lag0:]
    pauses = GC_PAUSES[gc_pauses0:]
    return {
        "gc max ms": max(pauses, default=0.0) * 1000,
        "gc ms/s": sum(pauses) * 1000 / wall,
        "rate": rate,
        "stored/s": (stored[0] - events0) / wall,
        "key p50 ms": percentile(latencies, 50) * 1000,
        "key p99 ms": percentile(latencies, 99) * 1000,
        "frames/s": (len(app.frames) - frames0) / wall,
        "paints/s": stream_paints_following / following_wall if following_wall else float("nan"),
        "lag p50 ms": percentile(lags, 50) * 1000 if rate else float("nan"),
        "lag p99 ms": percentile(lags, 99) * 1000 if rate else float("nan"),
        "tui cpu %": 100 * cpu / wall,
        "rss MB": current,
        "peak MB": peak,
        "stored": stored[0],
        "keys": len(latencies),
    }


# Commit-to-screen phases: "idle" is a few events a second (one now and then, as a developer
# clicking through an app sends them), then steady traffic.
SCREEN_RATES = (3, 100, 1_000, 10_000)


async def to_screen(app: BenchApp, load: Load, rate: int, seconds: float) -> list[float]:
    """Commit-to-screen latencies at `rate` events/s, the stream following, no keys pressed."""
    load.rate = rate
    if not app.stream.following:
        app._driver.send_message(events.Key("f", "f"))  # type: ignore[union-attr]
    await asyncio.sleep(1.0)
    app.commits.clear()
    start = len(app.to_screen)
    await asyncio.sleep(seconds)
    return app.to_screen[start:]


DEBUG = bool(__import__("os").environ.get("BENCH_DEBUG"))
GC_PAUSES: list[float] = []
GC_BY_GENERATION: dict[int, list[float]] = {0: [], 1: [], 2: []}
_gc_started = [0.0, 0.0]


def _on_gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
        _gc_started[1] = time.thread_time()
    else:
        GC_PAUSES.append(time.perf_counter() - _gc_started[0])
        GC_BY_GENERATION[info["generation"]].append(time.thread_time() - _gc_started[1])


async def keys(
    app: BenchApp,
    load: Load,
    seconds: float,
    stored: list[int],
    results: list[dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    """Keypress-to-screen and the rest, idle, at 2k, 10k and 30k/s, idle again."""
    results.append({**await phase(app, load, 0, seconds, stored), "rate": "idle"})
    for rate in (2_000, 10_000, 30_000):
        until = 1_000_000 if args.million and rate == 30_000 else 0
        results.append(await phase(app, load, rate, seconds, stored, until))
        print(_header() if len(results) == 2 else "", _row(results[-1]), sep="\n", flush=True)
    load.rate = 0
    await asyncio.sleep(1.0)
    gc.collect()
    results.append({**await phase(app, load, 0, seconds, stored), "rate": "idle after"})
    if args.census:
        from collections import Counter

        census = Counter(type(o).__name__ for o in gc.get_objects())
        print("tracked objects:", len(gc.get_objects()), census.most_common(12))
        for generation, cpu in GC_BY_GENERATION.items():
            print(
                f"gen{generation}: {len(cpu)} collections, cpu max"
                f" {max(cpu, default=0) * 1000:.1f} ms, total {sum(cpu) * 1000:.0f} ms"
            )


async def main(args: argparse.Namespace) -> None:
    gc.callbacks.append(_on_gc)
    folder = Path(tempfile.mkdtemp(prefix="eventtui-bench-"))
    path = folder / "bench.db"
    writer = Writer(path, source="bench")
    feed = StoreFeed(path, mode="watch", poll_interval=1.0)
    writer.add_listener(feed.on_commit)
    stored = [0]

    def count(commit: Commit) -> None:
        stored[0] += commit.inserted
        if commit.inserted:  # the app reads these only while its stream follows
            app.commits.append((commit.last_event_id, time.perf_counter()))

    writer.add_listener(count)
    writer.start()
    feed.session = writer.session_id
    shipped_interval = feed.min_interval
    load = Load(writer)
    load.thread.start()
    from eventtui.config import Config
    from eventtui.tui.launch import monitor_states

    # As `eventtui watch` runs it: with the monitor judging every event.
    app = BenchApp(feed, states=monitor_states(Config(), time.time()), tune_gc=not args.default_gc)
    results: list[dict[str, Any]] = []
    seconds = 5 if args.quick else args.seconds
    async with app.run_test(size=(160, 45)):
        load.rate = 2_000  # some rows on screen, so the idle baseline has something to select
        await asyncio.sleep(1.0)
        if not args.screen:
            await keys(app, load, seconds, stored, results, args)
        load.rate = 0
        await asyncio.sleep(1.0)
        # Baseline and shipped, one rate after the other, so both see the same machine load.
        screen = []
        for rate in SCREEN_RATES:
            app.tick_only, feed.min_interval = True, 1 / 30
            base = await to_screen(app, load, rate, seconds)
            app.tick_only, feed.min_interval = False, shipped_interval
            screen.append((base, await to_screen(app, load, rate, seconds)))
    load.stop.set()
    load.thread.join()
    writer.close()
    if results:
        print()
        print(_header())
        for result in results:
            print(_row(result))
    print()
    print(
        "commit to screen (the stream following; a commit counts once a frame shows its newest row)"
    )
    print("baseline: rows painted at the 10 Hz tick only, the feed pausing 33 ms between batches")
    print(
        f"{'rate':>10} {'commits':>10} {'p50 ms':>10} {'p99 ms':>10} {'max ms':>10}"
        f" {'base p50':>10} {'base p99':>10} {'p99 ratio':>10}"
    )
    for rate, (base, times) in zip(SCREEN_RATES, screen, strict=True):
        p99, base_p99 = percentile(times, 99), percentile(base, 99)
        print(
            f"{rate:>10,} {len(times):>10,} {percentile(times, 50) * 1000:>10.1f}"
            f" {p99 * 1000:>10.1f} {max(times, default=0.0) * 1000:>10.1f}"
            f" {percentile(base, 50) * 1000:>10.1f} {base_p99 * 1000:>10.1f}"
            f" {p99 / base_p99:>10.2f}"
        )
    print(f"\nstore: {path} ({stored[0]:,} events); machine: {_machine()}")


COLUMNS = [
    ("rate", "{:>10,}"),
    ("stored/s", "{:>10,.0f}"),
    ("key p50 ms", "{:>10.1f}"),
    ("key p99 ms", "{:>10.1f}"),
    ("frames/s", "{:>10.1f}"),
    ("paints/s", "{:>10.1f}"),
    ("lag p50 ms", "{:>10.0f}"),
    ("lag p99 ms", "{:>10.0f}"),
    ("tui cpu %", "{:>10.0f}"),
    ("gc max ms", "{:>10.1f}"),
    ("gc ms/s", "{:>10.1f}"),
    ("rss MB", "{:>10.0f}"),
    ("peak MB", "{:>10.0f}"),
    ("stored", "{:>10,}"),
]


def _header() -> str:
    return " ".join(f"{name:>10}" for name, _ in COLUMNS)


def _row(result: dict[str, Any]) -> str:
    return " ".join(
        f"{result[name]:>10}" if isinstance(result[name], str) else fmt.format(result[name])
        for name, fmt in COLUMNS
    )


def _machine() -> str:
    import os
    import platform

    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each phase")
    parser.add_argument("--quick", action="store_true", help="5-second phases")
    parser.add_argument(
        "--default-gc", action="store_true", help="leave CPython's GC thresholds (for comparison)"
    )
    parser.add_argument(
        "--screen", action="store_true", help="only commit-to-screen (idle, 100, 1k, 10k/s)"
    )
    parser.add_argument("--census", action="store_true", help="count GC-tracked objects at the end")
    parser.add_argument(
        "--million", action="store_true", help="run the 30k/s phase until 1M events are stored"
    )
    asyncio.run(main(parser.parse_args()))
