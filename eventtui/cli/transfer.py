"""`export` and `import`: sessions as JSON Lines (or a store file of their own), and back.

May import: progress, store, transfer, cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from eventtui.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, db_path, filter_arg
from eventtui.cli.output import clean, count
from eventtui.config import Config
from eventtui.store import Reader


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from eventtui.progress import ProgressBar
    from eventtui.store.sessions import check_export_target, export_store

    path = db_path(args, config)
    where, params = filter_arg(args.filter)
    to_stdout = args.output in (None, "-")
    if not to_stdout:
        check_export_target(path, Path(args.output))  # SessionError, a StoreError
    with Reader(path) as reader:
        session = reader.resolve_session(args.session, allow_all=True)
    which = "every session" if session is None else f"session {session}"
    if args.format == "sqlite":
        if to_stdout:
            raise UsageError("--format sqlite writes a store file: name it with -o FILE")
        target = Path(args.output)
        with ProgressBar("export") as bar:
            done = export_store(
                path,
                target,
                sessions=None if session is None else [session],
                where=where,
                params=params,
                force=args.force,
                progress=bar,
            )
        print(
            f"exported {done.events:,} events and {done.rejects:,} rejects of {which} to"
            f" {target} (a store: eventtui replay --db {target})",
            file=sys.stderr,
        )
        return EXIT_OK
    from eventtui.transfer import export_events

    # On the same terminal as the output, a progress line would be drawn into the data.
    bar = ProgressBar(
        "export", enabled=sys.stderr.isatty() and not (to_stdout and sys.stdout.isatty())
    )
    with Reader(path) as reader, bar:
        if to_stdout:
            try:
                count = export_events(
                    reader, out=sys.stdout.buffer, session=session, where=where, params=params,
                    progress=bar,
                )  # fmt: skip
                sys.stdout.flush()
            except BrokenPipeError:  # `| head`: the reader has what it wanted
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return EXIT_OK
            name = "stdout"
        else:
            target = Path(args.output)
            count = _write_new_file(
                target,
                args.force,
                lambda out: export_events(
                    reader, out=out, session=session, where=where, params=params, progress=bar
                ),
            )
            name = str(target)
    print(f"exported {count:,} events of {which} to {name}", file=sys.stderr)
    return EXIT_OK


def _write_new_file(target: Path, force: bool, write: Callable[[BinaryIO], int]) -> int:
    """Write through a temporary file moved into place when complete: never a half-written file,
    and an existing one only replaced with --force."""
    if target.exists() and not force:
        raise UsageError(f"{target}: already exists; pass --force to replace it")
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
    try:
        with partial.open("wb") as out:
            result = write(out)
        if not force and target.exists():
            raise UsageError(f"{target}: already exists; pass --force to replace it")
        os.replace(partial, target)
        return result
    except OSError as exc:
        raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from None
    finally:
        partial.unlink(missing_ok=True)


def cmd_import(args: argparse.Namespace, config: Config) -> int:
    from eventtui.progress import ProgressBar
    from eventtui.transfer import ImportRefused, import_events

    path = db_path(args, config)
    name = "stdin" if args.file == "-" else args.file
    source: Path | BinaryIO = sys.stdin.buffer if args.file == "-" else Path(args.file)
    try:
        with ProgressBar("import") as bar:
            result = import_events(
                source, db=path, label=args.label, progress=bar, new_ids=args.new_ids
            )
    except ImportRefused as exc:
        message = str(exc)
        raise UsageError(message if message.startswith(name) else f"{name}: {message}") from None
    shown = 100
    for bad in result.refused[:shown]:
        where = name + (f":{bad.line}" if bad.line is not None else "")
        where += f" [{bad.item}]" if bad.item is not None else ""
        print(clean(f"{where}: refused: {bad.reason}"), file=sys.stderr)
    if len(result.refused) > shown:
        print(
            f"... and {len(result.refused) - shown:,} more refused lines (all kept in the"
            f" rejects of session {result.session_id})",
            file=sys.stderr,
        )
    if not result.session_id:  # every event already stored: nothing was, not even a session
        print(
            clean(
                f"eventtui: nothing imported: all {result.events:,} events of {name} are already"
                f" in {path} (same messageId); pass --new-ids to store them again as new events"
            ),
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    labelled = f" ({result.label})" if result.label else ""
    line = (
        f"imported {result.imported:,} of {result.events:,} events into session"
        f" {result.session_id}{labelled} of {path}"
    )
    if result.duplicates:
        line += (
            f"; {count(result.duplicates, 'duplicate')} not stored again (messageId already stored)"
        )
    if result.refused:
        line += f"; {len(result.refused):,} lines refused"
    print(clean(line))
    return EXIT_PROBLEMS if result.refused else EXIT_OK
