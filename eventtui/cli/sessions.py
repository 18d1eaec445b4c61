"""`sessions`: list the recorded sessions; label or delete one.

May import: monitor (durations), store, cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from eventtui.cli.common import EXIT_OK, UsageError, db_path
from eventtui.cli.output import clean, fmt_time, table
from eventtui.config import Config
from eventtui.store import Reader


def cmd_sessions(args: argparse.Namespace, config: Config) -> int:
    from eventtui.monitor import format_duration

    if args.action == "label":
        return _label_session(args, config)
    if args.action == "delete":
        return _delete_session(args, config)
    now = time.time()
    with Reader(db_path(args, config)) as reader:
        sessions = reader.sessions()
    if args.json:
        for s in sessions:
            # Seconds from start to end, or to now while it runs (`ended_at` is null then).
            duration = (s.ended_at if s.ended_at is not None else now) - s.started_at
            print(json.dumps({**s.as_json(), "duration": round(duration, 3)}))
        return EXIT_OK
    rows = [
        [
            str(s.id),
            s.label or "",
            s.source,
            fmt_time(s.started_at),
            fmt_time(s.ended_at) if s.ended_at else "running",
            format_duration(max(0.0, (s.ended_at or now) - s.started_at)),
            f"{s.events:,}",
            f"{s.rejects:,}",
        ]
        for s in sessions
    ]
    table(
        ["id", "label", "source", "start", "end", "duration", "events", "rejects"], rows, sys.stdout
    )
    return EXIT_OK


def _label_session(args: argparse.Namespace, config: Config) -> int:
    from eventtui.store.sessions import label_session

    label_session(db_path(args, config), args.session, args.label)
    text = args.label.strip()
    said = f"label set to {json.dumps(text, ensure_ascii=False)}" if text else "label cleared"
    print(clean(f"session {args.session}: {said}"))
    return EXIT_OK


def _delete_session(args: argparse.Namespace, config: Config) -> int:
    from eventtui.store.sessions import delete_session

    path = db_path(args, config)
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"not deleting session {args.session}: stdin is not a terminal to confirm"
                " on; pass --yes"
            )
        with Reader(path) as reader:
            session = reader.session(args.session)
        named = f" ({session.label})" if session.label else ""
        question = (
            f"Delete session {args.session}{named}: {session.events:,} events and"
            f" {session.rejects:,} rejects, from {path}? This cannot be undone. [y/N] "
        )
        # On stderr: stdout may be piped while the user answers at the terminal.
        print(clean(question), end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()  # "" at end of input: no
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted", file=sys.stderr)
            return EXIT_OK
    deleted = delete_session(path, args.session)
    print(f"deleted session {args.session}: {deleted.events:,} events, {deleted.rejects:,} rejects")
    return EXIT_OK
