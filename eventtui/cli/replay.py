"""`replay`: a recorded session in the TUI on a virtual clock, or re-sent to a collector.

May import: config, progress, replay, sender, store, tui (lazily), cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from eventtui.cli.common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, UsageError, db_path, filter_arg
from eventtui.cli.output import clean
from eventtui.config import Config, parse_duration
from eventtui.store import Reader


def cmd_replay(args: argparse.Namespace, config: Config) -> int:
    from eventtui.replay import ReplayError, format_speed, load_schedule, parse_speed

    path = db_path(args, config)
    where, params = filter_arg(args.filter)
    try:
        speed = parse_speed(args.speed)
        max_gap = None if args.max_gap is None else parse_duration(args.max_gap)
    except ValueError as exc:  # ReplayError is one
        raise UsageError(f"{exc}") from None
    if max_gap is not None and max_gap <= 0:
        raise UsageError("--max-gap must be more than 0 seconds")
    if args.to_url is None:
        if args.new_ids:
            raise UsageError("--new-ids goes with --to-url")
        from eventtui.tui.launch import run_replay

        try:
            return run_replay(
                config,
                path,
                session=args.session,
                speed=speed,
                max_gap=max_gap,
                filter_text=args.filter or "",
            )
        except ReplayError as exc:
            raise UsageError(str(exc)) from None
    from eventtui.progress import ProgressBar
    from eventtui.replay import resend
    from eventtui.sender import SendError, with_token

    url = with_token(args.to_url, config.collector.token)
    with Reader(path) as reader:
        session = reader.session(reader.resolve_session(args.session))
        schedule = load_schedule(reader, session, where, params)
        if not len(schedule):
            matching = " matching the filter" if args.filter else ""
            raise UsageError(f"session {session.id} has no events{matching} to re-send")
        try:
            with ProgressBar("replay") as bar:
                result = asyncio.run(
                    resend(
                        reader,
                        schedule,
                        url,
                        speed=speed,
                        max_gap=max_gap,
                        new_ids=args.new_ids,
                        progress=bar,
                    )
                )
        except (SendError, ReplayError) as exc:
            print(f"eventtui: error: {clean(str(exc))}", file=sys.stderr)
            return EXIT_USAGE
    for event_id, reason in result.errors:
        print(clean(f"event #{event_id}: refused: {reason}"), file=sys.stderr)
    print(
        f"re-sent {result.events:,} events of session {session.id} to {args.to_url} in"
        f" {result.seconds:.1f}s at {format_speed(speed)}; {result.acked:,} acknowledged;"
        f" {len(result.errors):,} refused"
        + (
            ""
            if args.new_ids
            # An ack means committed, or already stored: the collector does not say which.
            else "; an event whose messageId the collector's store already holds is acknowledged"
            " and not stored again (--new-ids stores them anew)"
        )
    )
    return EXIT_PROBLEMS if result.errors else EXIT_OK
