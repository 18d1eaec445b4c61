"""`sink`: write a JetStream stream into a store file until stopped (README, "More than one machine").

May import: stream, store, cli.common, cli.listen.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from eventtui.cli.common import UsageError, db_path, stream_config
from eventtui.cli.listen import stopped
from eventtui.config import Config


def cmd_sink(args: argparse.Namespace, config: Config) -> int:
    config = stream_config(args, config)
    if not config.stream.url:
        raise UsageError("sink needs a stream: --stream nats://HOST:PORT or [stream] url")
    return asyncio.run(_sink(args, config))


async def _sink(args: argparse.Namespace, config: Config) -> int:
    from eventtui.store import Writer
    from eventtui.stream import Sink

    path = db_path(args, config)
    label = args.label or f"stream {config.stream.name}"
    writer = Writer(path, source="sink", label=label, meta={"stream": config.stream.name})
    sink = Sink(config.stream, writer, durable=args.durable)
    await sink.connect()  # StreamError: one line, exit 2 (before the store is touched)
    try:
        session = await asyncio.to_thread(writer.start)
    except BaseException:
        await sink.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"sinking stream {config.stream.name} at {config.stream.url} as {args.durable}"
        f" into session {session} of {path}",
        flush=True,
    )
    try:
        await sink.run(stop)
    finally:
        await sink.close()
        await asyncio.to_thread(writer.close)
    return stopped(writer, session, "stopped: stored", f" of {path}")
