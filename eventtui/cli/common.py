"""What every command shares: exit codes, the usage error, and the options that name things.

May import: config, filters, store.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import msgspec

from eventtui.config import Config, http_port_problem
from eventtui.store import default_db_path

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_STORE_LOST = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input from the command line or a file it names; exit 2 with this one line."""


def db_path(args: argparse.Namespace, config: Config) -> Path:
    """--db, else $EVENTTUI_DB, else [store] path, else the per-user data file."""
    if args.db:
        return Path(args.db)
    if os.environ.get("EVENTTUI_DB"):
        return Path(os.environ["EVENTTUI_DB"])
    if config.store.path:
        return config.resolve(config.store.path)
    return default_db_path()


def listen_config(args: argparse.Namespace, config: Config) -> Config:
    """The config with --host/--port/--http-port applied."""
    changes = {
        key: value
        for key, value in (("host", args.host), ("port", args.port), ("http_port", args.http_port))
        if value is not None
    }
    if not changes:
        return config
    collector = msgspec.structs.replace(config.collector, **changes)
    if http_port_problem(collector.port, collector.http_port):
        raise UsageError(
            f"--port {collector.port} leaves no port for HTTP (the default is port + 1);"
            " set --http-port"
        )
    return msgspec.structs.replace(config, collector=collector)


def stream_config(args: argparse.Namespace, config: Config) -> Config:
    """The config with --stream applied (the commands that have it)."""
    url = getattr(args, "stream", None)
    if not url:
        return config
    return msgspec.structs.replace(config, stream=msgspec.structs.replace(config.stream, url=url))


def filter_arg(text: str | None) -> tuple[str, tuple[object, ...]]:
    """A --filter as (where, params); a bad one is a usage error pointing at the term."""
    from eventtui.filters import FilterError, compile_filter

    try:
        compiled = compile_filter(text or "")
    except FilterError as exc:
        raise UsageError(f"filter: {exc}") from None
    return compiled.where, compiled.params
