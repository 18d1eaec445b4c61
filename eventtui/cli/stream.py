"""`sink`: write a JetStream stream into a store file until stopped; `open`, `query`, `check` and
`replay` with --stream (README, "More than one machine").

May import: stream, store, cli.common, cli.listen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from eventtui.cli.common import UsageError, db_path, stream_config
from eventtui.cli.listen import stopped
from eventtui.config import Config

if TYPE_CHECKING:
    from eventtui.stream.mirror import Mirror  # imported lazily where it runs


def cmd_sink(args: argparse.Namespace, config: Config) -> int:
    config = stream_config(args, config)
    if not config.stream.url:
        raise UsageError("sink needs a stream: --stream nats://HOST:PORT or [stream] url")
    return asyncio.run(_sink(args, config))


async def _sink(args: argparse.Namespace, config: Config) -> int:
    from eventtui.store import Writer
    from eventtui.stream import Sink
    from eventtui.stream.sink import Sessions

    path = db_path(args, config)
    name = config.stream.name
    if args.label:  # one session, so labelled, for every collector's events
        store: Writer | Sessions = Writer(
            path, source="sink", label=args.label, meta={"stream": name}
        )
    else:  # a session per collector, labelled after it, continued by the next run
        store = Sessions(path, name, args.durable)
    sink = Sink(config.stream, store, durable=args.durable)
    await sink.connect()  # StreamError: one line, exit 2 (before the store is touched)
    try:
        if isinstance(store, Writer):
            where = f"session {await asyncio.to_thread(store.start)} of {path}"
        else:
            # The store set up (or refused, one line) before a message comes: a new store is
            # created here, and a bad path fails now rather than at the first event.
            await asyncio.to_thread(_check_store, path)
            where = f"{path}, a session per collector"
    except BaseException:
        await sink.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"sinking stream {name} at {config.stream.url} as {args.durable} into {where}", flush=True
    )
    try:
        await sink.run(stop)
    finally:
        await sink.close()
        await asyncio.to_thread(store.close)
    if isinstance(store, Writer):
        return stopped(store, store.session_id, "stopped: stored", f" of {path}")
    return _sessions_stopped(store, path)


def _check_store(path: Path) -> None:
    """Create the store if it is missing, or raise StoreError saying why it cannot be used."""
    from eventtui.store import connect

    connect(path, create=True).close()


def _sessions_stopped(store: Any, path: Path) -> int:
    """The sink's last line with a session per collector: what it stored, in which sessions."""
    from eventtui.cli.common import EXIT_OK, EXIT_STORE_LOST
    from eventtui.cli.output import count

    stats = store.stats
    sessions = ", ".join(str(s) for s in sorted(store.sessions.values())) or "none"
    if store.failure is not None:
        print(
            f"eventtui: error: {store.failure}: {count(stats.refused_events, 'event')} were"
            f" refused, never stored or acknowledged to the stream",
            file=sys.stderr,
        )
        return EXIT_STORE_LOST
    print(
        f"stopped: stored {count(stats.events, 'event')} ({count(stats.duplicates, 'duplicate')},"
        f" {stats.rejects:,} refused) in sessions {sessions} of {path}",
        file=sys.stderr,
    )
    return EXIT_OK


# --- viewers on a stream ---------------------------------------------------------------------------

# Without --since, a viewer on a stream reads the last hour of it.
DEFAULT_SINCE: Final = "1h"
Handler = Callable[[argparse.Namespace, Config], int]


def on_stream(handler: Handler, *, follow: bool = False) -> Handler:
    """`handler` as it is, or, with --stream, run on a store mirrored from the stream.

    The mirror (`stream.mirror`) copies the stream from --since up to --until, only the subjects
    of the names the command's filter pins, into a temporary store; the handler then reads that
    store as it reads any other (`--db` points at it), so its output is the same. `follow`: the
    mirror goes on copying while the handler runs (`open`).
    """

    def run(args: argparse.Namespace, config: Config) -> int:
        config = stream_config(args, config)
        if not config.stream.url:
            for flag in ("since", "until"):
                if getattr(args, flag, None) is not None:
                    raise UsageError(f"--{flag} goes with --stream (a stream, not a store file)")
            return handler(args, config)
        # A viewer that follows (`open`) shows the events in a screen: a sample of a busy stream.
        with mirrored(args, config, follow=follow, sample=follow) as mirror:
            args.db = str(mirror.path)
            args.stream_rollups = mirror.rollups  # `check` sums them across collectors
            args.stream_mirror = mirror  # `open`: counters from the rollups, the stream named
            return handler(args, config)

    return run


def _moment(text: str, flag: str, now: float) -> float:
    """A --since/--until: a duration before now ("1h"), or an ISO 8601 time."""
    from eventtui.config import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f'--{flag} {text}: not a duration ("30m", "2h") or a time ("2026-01-31T12:00")'
        ) from None
    return moment.timestamp()


@contextlib.contextmanager
def mirrored(
    args: argparse.Namespace,
    config: Config,
    *,
    follow: bool,
    create: bool = False,
    sample: bool = False,
) -> Iterator[Mirror]:
    """The stream from --since mirrored into a temporary store; `sample`: a sample of the events
    when there are more than a screen shows (the TUI's), never for one-shot commands."""
    from eventtui.stream.mirror import Mirror, pinned_names
    from eventtui.stream.sampling import SAMPLE_CAP

    now = time.time()
    since = _moment(getattr(args, "since", None) or DEFAULT_SINCE, "since", now)
    window = getattr(args, "window", None)
    if window:  # check: at least its window of the stream
        from eventtui.checking import CheckError, parse_window

        try:
            since = min(since, now - parse_window(window))
        except CheckError as exc:
            raise UsageError(str(exc)) from None
    until = getattr(args, "until", None)
    raw_filter = getattr(args, "filter", None)
    text = " ".join(raw_filter) if isinstance(raw_filter, list) else raw_filter or ""
    try:
        names = pinned_names(text)
    except ValueError:
        names = None  # the command itself says what is wrong with its filter
    with tempfile.TemporaryDirectory(prefix="eventtui-stream-") as folder:
        mirror = Mirror(
            config.stream,
            Path(folder) / "stream.db",
            since=since,
            until=None if until is None else _moment(until, "until", now),
            names=names,
            follow=follow,
            create=create,
            sample=SAMPLE_CAP if sample else None,
        )
        mirror.start()  # StreamError: one line, exit 2
        try:
            mirror.wait()
            yield mirror
        finally:
            mirror.close()
