"""`query`: stored events matching a filter, as lines or JSON Lines.

May import: store, cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import json

from eventtui.cli.common import EXIT_OK, db_path, filter_arg
from eventtui.cli.output import clean, fmt_time
from eventtui.config import Config
from eventtui.store import Reader


def cmd_query(args: argparse.Namespace, config: Config) -> int:
    where, params = filter_arg(" ".join(args.filter))
    with Reader(db_path(args, config)) as reader:
        limit = args.limit or None
        events = reader.query(where, params, session=args.session, limit=limit, newest_first=True)
    events.reverse()
    for event in events:
        if args.json:
            print(
                json.dumps(
                    {
                        "id": event.id,
                        "session": event.session_id,
                        "received_at": event.received_at,
                        "source": event.source,
                        "valid": event.valid,
                        # As export writes it: null when there are none.
                        "errors": event.error_list() or None,
                        **event.payload(),
                    },
                    ensure_ascii=False,
                )
            )
        else:
            props = event.properties if len(event.properties) <= 80 else event.properties[:79] + "…"
            user = event.user_id or event.anonymous_id or "-"
            mark = "" if event.valid else "  INVALID"
            print(clean(f"{fmt_time(event.received_at)}  {event.name}  {user}  {props}{mark}"))
    return EXIT_OK
