"""`check`: expectations and the tracking plan judged once; exit 1 when something is firing.

May import: checking, demo (a demo session's expectations), store, cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from eventtui.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, db_path
from eventtui.cli.output import clean
from eventtui.config import Config
from eventtui.store import Reader


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    from eventtui.checking import CheckError, check_session, check_window, parse_window, render_text

    now = time.time()
    rollups = None
    try:
        window = parse_window(args.window)
        with Reader(db_path(args, config)) as reader:
            if args.session is not None:
                if reader.session(args.session).source == "demo":
                    from eventtui.demo import demo_config

                    # As replay judges it: the demo's expected heartbeat and plan apply.
                    config = demo_config(config)
                result = check_session(reader, config, args.session, now=now)
            else:
                rollups = getattr(args, "stream_rollups", None)  # --stream: summed rollups
                seen = rollups.last_seen() if rollups is not None else None
                result = check_window(reader, config, window=window, now=now, seen=seen)
    except CheckError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        report = result.as_json()
        if rollups is not None:
            report["stream"] = stream_summary(rollups, now)
        print(json.dumps(report))
    else:
        out = sys.stdout
        color = out.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        encoding = out.encoding or "ascii"
        try:
            "✖◷✗▼✓".encode(encoding)
            unicode = True
        except (UnicodeEncodeError, LookupError):
            unicode = False
        text = render_text(result, clean=clean, color=color, unicode=unicode)
        if not unicode:
            # An event name this terminal cannot show is escaped, not a crash halfway through.
            text = text.encode(encoding, "backslashreplace").decode(encoding)
        out.write(text)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def stream_summary(rollups: Any, now: float) -> dict[str, Any]:
    """`check --stream --json`'s "stream": per-name counts summed over every collector's rollups."""
    minute = rollups.per_minute(now)
    return {
        "collectors": len(rollups.collectors),
        "names": {
            name: {
                "count": total.count,
                "invalid": total.invalid,
                "per_minute": minute.get(name, 0),
                "last_seen": total.last_seen,
            }
            for name, total in sorted(rollups.names.items())
        },
    }
