"""The `eventtui` command line's grammar: every command, its arguments and their checks.

The whole surface in one place (README.md, "Commands"); each command's handler lives in the
module of its family (`COMMANDS` in `eventtui.cli`). A bad argument is one line and exit 2.

May import: config, cli.common, cli.output.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

from eventtui import __version__
from eventtui.cli.common import EXIT_USAGE
from eventtui.cli.output import clean
from eventtui.config import DEFAULT_PORT, host_problem, port_problem, stream_url_problem
from eventtui.store import MAX_INT64  # a session id or a limit past it cannot even be asked about


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as for every other exit 2 (README, "Commands"); `--help` shows the usage.
        self.exit(EXIT_USAGE, f"eventtui: error: {clean(message)}\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    problem = port_problem(port)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return port


def _host(text: str) -> str:
    problem = host_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _session_id(text: str) -> int:
    """A session id: what `eventtui sessions` lists (a positive integer SQLite can hold)."""
    try:
        session = int(text)
    except ValueError:
        session = 0
    if not 1 <= session <= MAX_INT64:
        raise argparse.ArgumentTypeError(
            f"{text} is not a session id (`eventtui sessions` lists them)"
        )
    return session


def _limit(text: str) -> int:
    try:
        limit = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if limit < 0:
        raise argparse.ArgumentTypeError(f"{limit} is not 0 (all) or a positive number")
    if limit > MAX_INT64:
        raise argparse.ArgumentTypeError(f"{limit} is too large (0 means all)")
    return limit


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db", metavar="PATH", help="store file (default: $EVENTTUI_DB or the per-user data file)"
    )
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $EVENTTUI_CONFIG or ./eventtui.toml)",
    )


def _listen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", type=_host, help="address to listen on (default 127.0.0.1; 0.0.0.0: every one)"
    )
    parser.add_argument(
        "--port", type=_port, help=f"websocket port (default {DEFAULT_PORT}; 0 picks a free one)"
    )
    parser.add_argument(
        "--http-port", type=_port, help="HTTP port (default: the websocket port + 1)"
    )


def _baseline(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--baseline",
        metavar="FILE",
        help="a tracking snapshot (or export) to compare with: regressed names show ∅ or ≠",
    )


def _stream_url(text: str) -> str:
    problem = stream_url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _stream(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--stream",
        metavar="URL",
        type=_stream_url,
        help=f"NATS JetStream: {what} (nats://HOST:PORT[,nats://...]; default [stream] url)",
    )


def _stream_viewer(parser: argparse.ArgumentParser, until: bool = False) -> None:
    _stream(parser, "read it instead of the store file")
    parser.add_argument(
        "--since",
        metavar="WHEN",
        help='with --stream: from this long ago ("30m", "2h") or this time (default 1h)',
    )
    if until:
        parser.add_argument(
            "--until", metavar="WHEN", help="with --stream: up to this long ago, or this time"
        )


def _common_after_action(parser: argparse.ArgumentParser) -> None:
    """--db and --config after a sub-action (`sessions delete 3 --db x`); absent, they leave the
    values given before the action alone."""
    parser.add_argument("--db", metavar="PATH", default=argparse.SUPPRESS, help="store file")
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS, help="config file")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="eventtui", description="Watch product-analytics events live in the terminal."
    )
    parser.add_argument("--version", action="version", version=f"eventtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    for name, help_ in (
        ("watch", "collector + TUI in one process (the default)"),
        ("demo", "watch, plus a built-in app sending realistic demo traffic"),
        ("collect", "headless collector"),
    ):
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p)
        _listen(p)
        p.add_argument("--label", help="label for this session")
        _stream(p, "publish events there instead of the store file")
        if name != "collect":
            _baseline(p)

    p = sub.add_parser("open", help="TUI on an existing store, following it live")
    _common(p)
    _baseline(p)
    _stream_viewer(p)

    p = sub.add_parser("send", help="send JSON events to a collector and wait for the acks")
    _common(p)
    p.add_argument(
        "file", nargs="?", default="-", help="JSON events, one per line or arrays (default: stdin)"
    )
    p.add_argument("--url", help=f"collector websocket URL (default ws://127.0.0.1:{DEFAULT_PORT})")

    p = sub.add_parser(
        "sessions",
        help="list recorded sessions; label or delete one",
        description="List recorded sessions (without an ACTION), or label or delete one.",
    )
    _common(p)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    a = actions.add_parser("label", help="set a session's label (empty text clears it)")
    _common_after_action(a)
    a.add_argument("session", type=_session_id, metavar="SESSION")
    a.add_argument("label", metavar="TEXT")
    a = actions.add_parser("delete", help="delete a session, its events and its rejects")
    _common_after_action(a)
    a.add_argument("session", type=_session_id, metavar="SESSION")
    a.add_argument(
        "--yes", action="store_true", help="do not ask (required when stdin is not a terminal)"
    )

    p = sub.add_parser(
        "rejects",
        help="what the collector refused, and why",
        description="List what the collector refused (the rejects table): when, from which"
        " client, why, and the start of what was sent. Oldest first; the newest --limit.",
    )
    _common(p)
    p.add_argument("--session", type=_session_id, metavar="S", help="only this session's")
    p.add_argument(
        "--limit", type=_limit, default=100, metavar="N", help="the newest N (default 100; 0: all)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per line")

    p = sub.add_parser(
        "export",
        help="write a session's events as JSON Lines, or as a store file of its own",
        description="Write a session's events as JSON Lines (one event per line; `import` reads"
        " it back), or with --format sqlite as a standalone store file that every command opens"
        " with --db.",
    )
    _common(p)
    p.add_argument(
        "session", nargs="?", metavar="SESSION", help='session id (default: the newest; "all")'
    )
    p.add_argument(
        "--filter", metavar="Q", help="only matching events (one starting with -: --filter=-Q)"
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write to FILE (default: stdout; sqlite needs one)"
    )
    p.add_argument("--format", choices=("jsonl", "sqlite"), default="jsonl", help="default jsonl")
    p.add_argument("--force", action="store_true", help="replace FILE if it exists")

    p = sub.add_parser(
        "import",
        help="load JSON Lines (ours, or plain event objects) as a new session",
        description="Load JSON Lines (an export, or plain event objects) or a JSON array as a new"
        " session. Exit 1 when some lines were refused (they are listed, and kept in the"
        " session's rejects), 2 when the input cannot be read or holds no events.",
    )
    _common(p)
    p.add_argument("file", metavar="FILE", help="the file to load (- for stdin)")
    p.add_argument("--label", help="session label (default: the file name)")
    p.add_argument(
        "--new-ids",
        action="store_true",
        help="give every messageId a suffix of this run, so that events already in the store"
        " (an export imported back into it) are stored again",
    )

    p = sub.add_parser(
        "replay",
        help="replay a session in the TUI, or re-send it to a collector (--to-url)",
        description="Replay a recorded session in the TUI on a virtual clock, or with --to-url"
        " re-send it headless to a collector at the recorded pace.",
    )
    _common(p)
    p.add_argument(
        "session",
        nargs="?",
        type=_session_id,
        metavar="SESSION",
        help="session id (default: the newest)",
    )
    p.add_argument("--speed", default="1", help="0.1 to 100 (times the recorded pace), or max")
    p.add_argument("--max-gap", metavar="D", help="play silences longer than D (5s, 1m, ...) as D")
    p.add_argument(
        "--filter",
        metavar="Q",
        help="replay only matching events (one starting with -: --filter=-Q)",
    )
    p.add_argument("--to-url", metavar="URL", help="re-send to this collector instead (ws://...)")
    _stream_viewer(p, until=True)
    p.add_argument(
        "--new-ids",
        action="store_true",
        help="with --to-url: suffix each messageId, so the store the session came from stores"
        " the events again instead of counting them as duplicates",
    )

    p = sub.add_parser("query", help="print matching stored events")
    _common(p)
    p.add_argument(
        "filter", nargs="*", help="filter (see README; a filter starting with - follows --)"
    )
    p.add_argument("--session", type=_session_id, help="only this session")
    p.add_argument(
        "--limit",
        type=_limit,
        default=100,
        help="at most N events, newest last (default 100; 0 for all)",
    )
    p.add_argument("--json", action="store_true", help="JSON Lines, one event per line")
    _stream_viewer(p, until=True)

    p = sub.add_parser(
        "check",
        help="evaluate expectations and the tracking plan; exit 1 when something is firing",
        description="Evaluate expectations and the tracking plan now (over the last --window) or"
        " over one recorded session. Exit 0 ok, 1 an anomaly is firing (missing, low rate,"
        " invalid events), 2 error.",
    )
    _common(p)
    p.add_argument("--json", action="store_true", help="one JSON object (see README)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument(
        "--window", metavar="D", help="plan violations over the last D (default 15m; 30s, 1h, ...)"
    )
    scope.add_argument(
        "--session",
        type=_session_id,
        metavar="S",
        help="check recorded session S on its own clock",
    )
    _stream_viewer(p)

    p = sub.add_parser(
        "sink",
        help="write a stream into a store file, exactly once, until stopped",
        description="A durable JetStream consumer: writes every event of the stream into the"
        " store file (--db), acknowledging to the stream only after the commit, so each event is"
        " stored once; a restart goes on where the last run stopped.",
    )
    _common(p)
    _stream(p, "the stream to read")
    p.add_argument(
        "--durable",
        metavar="NAME",
        default="eventtui-sink",
        help="the consumer's name on the stream: one per store (default eventtui-sink)",
    )
    p.add_argument(
        "--label",
        help="write every collector's events into one session with this label (default: a"
        " session per collector, labelled after it, continued by the next run)",
    )

    _tracking(sub)
    return parser


def _tracking(sub: argparse._SubParsersAction[_Parser]) -> None:
    """snapshot, diff, plan infer (README, "Catch tracking regressions in CI")."""
    source = "a session id, a tracking snapshot or a JSON Lines export"
    p = sub.add_parser(
        "snapshot",
        help="write a session's tracking (names, property types, values) as a reviewable file",
        description="Write a session's tracking as a small, stable JSON file: per event name its"
        " count, each property path's types, whether it was always present, its values when"
        " few, and the order names first appeared. The same session gives the same bytes.",
    )
    _common(p)
    p.add_argument(
        "session", nargs="?", metavar="SESSION", help=f"{source} (default: the newest session)"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")

    p = sub.add_parser(
        "diff",
        help="compare tracking with a baseline; exit 1 on a regression",
        description="Compare the tracking of CANDIDATE with BASELINE (each a session id, a"
        " snapshot or a JSON Lines export). Exit 0 no regression, 1 regressions (names missing,"
        " properties removed or retyped), 2 usage.",
    )
    _common(p)
    p.add_argument("baseline", metavar="BASELINE", help=source)
    p.add_argument(
        "candidate", nargs="?", metavar="CANDIDATE", help=f"{source} (default: the newest session)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object (see README)")
    p.add_argument(
        "--count-tolerance",
        metavar="T",
        help="report counts that changed by more than T (25%% or 0.25); default: only none vs some",
    )
    p.add_argument(
        "--update", action="store_true", help="rewrite BASELINE (a snapshot file) with CANDIDATE"
    )

    p = sub.add_parser("plan", help="tracking-plan tools: infer")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser, required=True)
    a = actions.add_parser(
        "infer",
        help="write JSON Schemas and [plan.events] TOML from what a session sent",
        description="Write one JSON Schema per event name (types, required keys, small enums)"
        " and plan.toml, the [plan.events] tables that use them, into a folder.",
    )
    _common(a)
    a.add_argument(
        "session", nargs="?", metavar="SESSION", help=f"{source} (default: the newest session)"
    )
    a.add_argument("-o", "--output", metavar="DIR", default="plan", help="folder (default: plan)")
    a.add_argument("--force", action="store_true", help="replace files that exist")
