"""The `eventtui` command line: parse arguments, call one function below, print, exit with a code.

One module per command family, each parsing nothing itself (`parser` holds the whole grammar),
calling one function of the core and printing through `output`:

- `listen`: watch, demo, collect, open       - `send`: send
- `sessions`: sessions [label|delete]        - `transfer`: export, import
- `replay`: replay                           - `query`: query
- `check`: check                             - `tracking`: snapshot, diff, plan infer
- `stream`: sink                              - `rejects`: rejects

Exit codes (README.md, "Commands"): 0 ok; 1 the check found problems (`check`, `send` with
rejections); 2 usage, config or input error, with one line on stderr saying what and where; 3 a
collector's store writer died and could not be restarted (one line: what was not stored).
The core is imported inside each handler: a command loads only what it runs (`send` starts
without the monitor or the TUI), and headless commands never load Textual.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from eventtui.cli import (
    check,
    listen,
    query,
    rejects,
    replay,
    send,
    sessions,
    stream,
    tracking,
    transfer,
)
from eventtui.cli.common import EXIT_OK, EXIT_USAGE, UsageError
from eventtui.cli.output import clean
from eventtui.cli.parser import build_parser
from eventtui.config import Config, ConfigError, find_config, load_config
from eventtui.store import StoreError

__all__ = ["COMMANDS", "main", "run"]

COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "watch": listen.cmd_watch,
    "demo": listen.cmd_demo,
    "open": stream.on_stream(listen.cmd_open, follow=True),
    "collect": listen.cmd_collect,
    "send": send.cmd_send,
    "sessions": sessions.cmd_sessions,
    "export": transfer.cmd_export,
    "import": transfer.cmd_import,
    "replay": stream.on_stream(replay.cmd_replay),
    "query": stream.on_stream(query.cmd_query),
    "check": stream.on_stream(check.cmd_check),
    "sink": stream.cmd_sink,
    "snapshot": tracking.cmd_snapshot,
    "diff": tracking.cmd_diff,
    "plan": tracking.cmd_plan,
    "rejects": rejects.cmd_rejects,
}


# Options of `eventtui` itself; any other option before a command is `watch`'s.
_TOP_LEVEL_OPTIONS = frozenset({"-h", "--help", "--version"})


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words and words[0].startswith("-") and words[0] not in _TOP_LEVEL_OPTIONS:
        # `eventtui --port 8775` is `eventtui watch --port 8775`, as the README says.
        words.insert(0, "watch")
    args = build_parser().parse_args(words)
    command = args.command or "watch"
    if args.command is None:
        args = build_parser().parse_args(["watch", *words])
    logging.basicConfig(level=logging.WARNING, format="eventtui: %(levelname)s: %(message)s")
    # The websockets library logs every refused handshake at INFO; our own warning says it once.
    logging.getLogger("websockets").setLevel(logging.ERROR)
    handler = COMMANDS[command]
    try:
        config = load_config(find_config(args.config))
        return handler(args, config)
    except (ConfigError, StoreError, UsageError) as exc:
        # Messages quote file names, keys and values as given: printed as text, never obeyed.
        print(f"eventtui: error: {clean(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `eventtui query ... | head`: the reader has what it wanted. No traceback; and stdout
        # goes nowhere from here, so that flushing it at exit cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
