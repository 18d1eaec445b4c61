"""`send`: JSON events from a file or stdin to a collector, waiting for the acks.

May import: sender, cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path

from eventtui.cli.common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError
from eventtui.cli.output import clean, count
from eventtui.config import Config


def cmd_send(args: argparse.Namespace, config: Config) -> int:
    from eventtui.sender import SendError, send_frames, with_token

    url = args.url or f"ws://127.0.0.1:{config.collector.port}"
    url = with_token(url, config.collector.token)
    lines = list(_read_lines(args.file))
    frames = [line for _, line in lines]
    try:
        result = asyncio.run(send_frames(url, frames))
    except SendError as exc:
        # The collector's words (a close reason, an HTTP body, a bad reply) are a peer's text.
        print(f"eventtui: error: {clean(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    source = "stdin" if args.file == "-" else args.file
    for frame, index, reason in result.errors:
        line_no = lines[frame - 1][0]  # the sender checked that the frame was sent
        where = f"{source}:{line_no}" + (f" [{index}]" if index is not None else "")
        print(clean(f"{where}: refused: {reason}"), file=sys.stderr)
    refused = len(result.errors)
    print(
        f"sent {count(result.frames, 'frame')}; {result.acked:,} acknowledged;"
        f" {count(refused, 'event')} refused"
    )
    return EXIT_PROBLEMS if refused else EXIT_OK


def _read_lines(name: str) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line; a file that is one JSON array is one frame."""
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"{name}: cannot read ({exc.strerror})") from None
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()
