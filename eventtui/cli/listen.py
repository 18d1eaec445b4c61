"""`watch`, `demo`, `collect` and `open`: the commands that listen, or show a store as it grows.

The TUI is imported lazily, inside the commands that show it, so headless commands never load
Textual.

May import: collector, store, tui (lazily), cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from eventtui.cli.common import (
    EXIT_OK,
    EXIT_STORE_LOST,
    EXIT_USAGE,
    db_path,
    listen_config,
)
from eventtui.cli.output import count
from eventtui.config import Config
from eventtui.store import Writer


def cmd_collect(args: argparse.Namespace, config: Config) -> int:
    config = listen_config(args, config)
    return asyncio.run(_collect(config, db_path(args, config), args.label))


async def _collect(config: Config, path: Path, label: str | None) -> int:
    from eventtui.collector import Collector, PortInUse

    collector = Collector(config, path, source="collect", label=label)
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
    print(f"session {collector.session_id} in {path}", flush=True)
    await stop.wait()
    await collector.stop()
    return stopped(collector.writer, collector.session_id, "stopped: stored")


def stopped(writer: Writer, session: int, stored: str, where: str = "") -> int:
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
    line = (
        f"{stored} {count(stats.events, 'event')} ({count(stats.duplicates, 'duplicate')}, "
        f"{stats.rejects:,} refused) in session {session}{where}"
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

    config = listen_config(args, config)
    path = db_path(args, config)
    try:
        ran = run_watch(config, path, label=args.label, demo=demo)
    except PortInUse as exc:
        print(f"eventtui: error: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    code = stopped(ran.writer, ran.session, "stored", f" of {ran.path}")
    return ran.return_code or code


def cmd_open(args: argparse.Namespace, config: Config) -> int:
    from eventtui.tui.launch import run_open

    return run_open(config, db_path(args, config))
