"""`snapshot`, `diff` and `plan infer`: a session's tracking as a file, compared, made a plan.

A SOURCE (a `diff` side, a snapshot's session) is an existing file (a tracking snapshot or a JSON
Lines export) or a session id of the store; a SESSION is a session id (default: the newest).
Everything is computed before anything is written: a bad input writes nothing.

May import: tracking, store, cli.common, cli.output.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from eventtui.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, db_path
from eventtui.cli.output import clean
from eventtui.config import Config
from eventtui.store import Reader


def _source(text: str | None, args: argparse.Namespace, config: Config) -> dict[str, Any]:
    """A snapshot of a file or a stored session; UsageError/StoreError for anything else."""
    from eventtui.tracking import snapshot

    if text is not None:
        if Path(text).exists():  # a file wins over a session of the same number
            return _load_file(Path(text))
        if not text.strip().isdigit():
            raise UsageError(f"{text}: no such file, and not a session id (`eventtui sessions`)")
    with Reader(db_path(args, config)) as reader:
        session = reader.resolve_session(text)
        return snapshot.from_session(reader, session)


def _load_file(path: Path) -> dict[str, Any]:
    from eventtui.tracking import snapshot

    if path.is_dir():
        raise UsageError(f"{path}: is a folder, not a tracking snapshot or a JSON Lines export")
    try:
        return snapshot.load(path)
    except snapshot.SnapshotError as exc:
        raise UsageError(str(exc)) from None


def _print(text: str) -> None:
    """stdout, where a reader that stops early (`| head`) is not an error."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _write_atomically(target: Path, data: bytes) -> None:
    """Replace `target` with `data` whole, or leave it as it was."""
    folder = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=folder)
    except OSError as exc:
        raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UsageError(f"{target}: cannot write ({exc.strerror or exc})") from None


def cmd_snapshot(args: argparse.Namespace, config: Config) -> int:
    from eventtui.tracking import snapshot

    data = snapshot.dumps(_source(args.session, args, config))
    if args.output in (None, "-"):
        _print(data.decode())
    else:
        target = Path(args.output)
        if target.is_dir():
            raise UsageError(f"{target}: is a folder; name the snapshot file")
        _write_atomically(target, data)
        print(f"wrote {target}", file=sys.stderr)
    return EXIT_OK


def cmd_diff(args: argparse.Namespace, config: Config) -> int:
    from eventtui.tracking import diff, snapshot

    try:
        tolerance = diff.parse_tolerance(args.count_tolerance)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    baseline_file = Path(args.baseline)
    if args.update and not baseline_file.is_file():
        raise UsageError(f"{args.baseline}: --update rewrites a snapshot file; this is not one")
    base = _source(args.baseline, args, config)
    cand = _source(args.candidate, args, config)
    result = diff.diff(base, cand, tolerance=tolerance)
    if args.json:
        _print(json.dumps(result.as_json(), ensure_ascii=False) + "\n")
    else:
        _print(diff.render_text(result, clean=clean))
    if args.update:
        _write_atomically(baseline_file, snapshot.dumps(cand))
        print(f"updated {baseline_file}", file=sys.stderr)
        return EXIT_OK
    return EXIT_PROBLEMS if result.regressions else EXIT_OK


def cmd_plan(args: argparse.Namespace, config: Config) -> int:
    from eventtui.tracking import infer

    snap = _source(args.session, args, config)
    folder = Path(args.output)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a folder")
    plan = infer.infer(snap, folder=args.output)
    files = {folder / file_name: data for file_name, data in plan.schemas.values()}
    files[folder / "plan.toml"] = plan.toml.encode()
    clashes = [str(p) for p in files if p.exists()]
    if clashes and not args.force:
        raise UsageError(f"{clashes[0]}: already exists; pass --force to replace it")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{folder}: cannot create ({exc.strerror or exc})") from None
    for path, data in files.items():
        _write_atomically(path, data)
    _print(plan.toml)
    print(
        f"wrote {len(plan.schemas)} schema{'s' * (len(plan.schemas) != 1)} and"
        f" {folder / 'plan.toml'}; schema paths are relative to where eventtui.toml is",
        file=sys.stderr,
    )
    return EXIT_OK
