"""`rejects`: what the collector refused, and why (the `rejects` table), newest last.

May import: store, cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import json
import sys

from eventtui.cli.common import EXIT_OK, db_path
from eventtui.cli.output import fmt_time, table
from eventtui.config import Config
from eventtui.store import Reader

# Characters of the raw input shown in the table (the JSON has the whole kept copy, 4 KiB at most).
RAW_SHOWN = 60


def cmd_rejects(args: argparse.Namespace, config: Config) -> int:
    with Reader(db_path(args, config)) as reader:
        found = reader.rejects(session=args.session, limit=args.limit or 2**62)
    found.reverse()  # oldest first, as `query` prints
    if args.json:
        for r in found:
            raw = bytes(r["raw"] or b"")
            print(
                json.dumps(
                    {
                        "id": r["id"],
                        "session": r["session_id"],
                        "received_at": r["received_at"],
                        "client": r["client"],
                        "reason": r["reason"],
                        # As text (bytes that are not UTF-8 as U+FFFD), and how long it was.
                        "raw": raw.decode("utf-8", "replace"),
                        "raw_bytes": len(raw),
                    },
                    ensure_ascii=False,
                )
            )
        return EXIT_OK
    rows = []
    for r in found:
        text = bytes(r["raw"] or b"").decode("utf-8", "replace")
        shown = text if len(text) <= RAW_SHOWN else text[: RAW_SHOWN - 1] + "…"
        rows.append([
            str(r["id"]), str(r["session_id"]), fmt_time(r["received_at"]), r["client"] or "-",
            r["reason"], shown,
        ])  # fmt: skip
    if not rows:
        print("no rejects", file=sys.stderr)
        return EXIT_OK
    # `table` cleans every cell: what a client sent is shown as text, never obeyed.
    table(["id", "session", "received", "client", "reason", "raw"], rows, sys.stdout)
    return EXIT_OK
