"""`watch`, `demo`, `collect` and `open`: the commands that listen, or show a store as it grows.

The TUI is imported lazily, inside the commands that show it, so headless commands never load
Textual.

May import: collector, store, tracking, tui (lazily), cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from eventtui.cli.common import (
    EXIT_OK,
    EXIT_STORE_LOST,
    EXIT_USAGE,
    UsageError,
    db_path,
    listen_config,
    stream_config,
)
from eventtui.cli.output import count
from eventtui.config import Config
from eventtui.store import EventWriter

if TYPE_CHECKING:
    from eventtui.tracking.live import BaselineWatch


def cmd_collect(args: argparse.Namespace, config: Config) -> int:
    config = stream_config(args, listen_config(args, config))
    return asyncio.run(_collect(config, db_path(args, config), args.label))


async def _collect(config: Config, path: Path, label: str | None) -> int:
    from eventtui.collector import Collector, PortInUse
    from eventtui.oncall import OnCall

    # OnCall: GET /metrics and [[alert]] webhooks, judged by the collector itself (no TUI here).
    collector = Collector(config, path, source="collect", label=label, extensions=[OnCall(config)])
    try:
        await collector.start()
    except PortInUse as exc:
        print(f"eventtui: error: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http = f" and {collector.http_url}" if collector.http_url else ""
    print(f"listening on {collector.ws_url}{http}", flush=True)
    stream = config.stream
    if stream.url:
        print(f"publishing to stream {stream.name} at {stream.url}", flush=True)
    else:
        print(f"session {collector.session_id} in {path}", flush=True)
    await stop.wait()
    await collector.stop()
    if stream.url:
        return stopped(collector.writer, 0, "stopped: published", f"to stream {stream.name}")
    return stopped(collector.writer, collector.session_id, "stopped: stored")


def stopped(writer: EventWriter, session: int, stored: str, where: str = "") -> int:
    """The collector's last line: what it stored, or, if its writer died for good, what it lost.

    A collector whose writer could not be restarted never says "stored": it exits EXIT_STORE_LOST
    with one line counting what was refused (and so never acknowledged) and what the session holds.
    """
    stats = writer.stats
    if writer.failure is not None:
        print(
            f"eventtui: error: {writer.failure}: {count(stats.refused_events, 'event')} were"
            f" refused, never stored or acknowledged; session {session} holds the"
            f" {count(stats.events, 'event')} committed before",
            file=sys.stderr,
        )
        return EXIT_STORE_LOST
    # Session 0: a stream's publisher, which has no session; `where` names the stream.
    place = f"in session {session}{where}" if session else where
    line = (
        f"{stored} {count(stats.events, 'event')} ({count(stats.duplicates, 'duplicate')}, "
        f"{stats.rejects:,} refused) {place}"
    )
    if writer.restarts:
        times = "once" if writer.restarts == 1 else f"{writer.restarts} times"
        line += f"; the store writer was restarted {times}"
    if stats.refused_events:
        line += f"; {count(stats.refused_events, 'event')} refused while it was down"
    print(line, file=sys.stderr)
    return EXIT_OK


def cmd_watch(args: argparse.Namespace, config: Config) -> int:
    return _watch(args, config, demo=False)


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    # The configured ports (8765 and, for HTTP, the next one) as `watch` takes them; only when one
    # is taken does the demo take free ones, and say so (`run_watch`).
    return _watch(args, config, demo=True)


def _watch(args: argparse.Namespace, config: Config, *, demo: bool) -> int:
    from eventtui.collector import PortInUse
    from eventtui.tui.launch import run_watch

    config = stream_config(args, listen_config(args, config))
    if config.stream.url:
        # The collector publishes to the stream; the TUI follows it (cli/stream.py, "viewers").
        from eventtui.cli.stream import mirrored

        with mirrored(args, config, follow=True, create=True, sample=True) as mirror:
            ran = run_watch(config, mirror.path, label=args.label, demo=demo, stream=mirror)
        where = f"to stream {config.stream.name}"
        code = stopped(ran.writer, 0, "published", where)
        return ran.return_code or code
    path = db_path(args, config)
    baseline = _baseline(args.baseline)
    try:
        ran = run_watch(config, path, label=args.label, demo=demo, baseline=baseline)
    except PortInUse as exc:
        print(f"eventtui: error: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    code = stopped(ran.writer, ran.session, "stored", f" of {ran.path}")
    return ran.return_code or code


def cmd_open(args: argparse.Namespace, config: Config) -> int:
    from eventtui.tui.launch import run_open

    # With --stream, `--db` is a mirror of the stream (cli/stream.py `on_stream`).
    stream = getattr(args, "stream_mirror", None)
    return run_open(config, db_path(args, config), baseline=_baseline(args.baseline), stream=stream)


def _baseline(path: str | None) -> BaselineWatch | None:
    """`--baseline FILE`, read before anything starts: a bad file is one line and exit 2."""
    if path is None:
        return None
    from eventtui.tracking.live import BaselineWatch
    from eventtui.tracking.snapshot import SnapshotError, load

    try:
        return BaselineWatch(load(Path(path)), source=path)
    except SnapshotError as exc:
        raise UsageError(f"--baseline: {exc}") from None
