"""The `eventtui` command line: parse arguments, wire the parts, turn errors into one line and an exit code.

Exit codes (README.md, "Commands"): 0 ok; 1 the check found problems (`check`, `send` with
rejections); 2 usage, config or input error, with one line on stderr saying what and where; 3 a
collector's store writer died and could not be restarted (one line: what was not stored).
The TUI is imported lazily so headless commands never load Textual.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, NoReturn, TextIO

from eventtui import __version__
from eventtui.config import (
    DEFAULT_PORT,
    Config,
    ConfigError,
    find_config,
    host_problem,
    http_port_problem,
    load_config,
    port_problem,
)
from eventtui.store import Reader, StoreError, Writer, default_db_path

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_STORE_LOST = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input from the command line or a file it names; exit 2 with this one line."""


# SQLite's integers: a session id or a limit past this cannot even be asked about.
_MAX_INT64 = 2**63 - 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, as for every other exit 2 (README, "Commands"); `--help` shows the usage.
        self.exit(EXIT_USAGE, f"eventtui: error: {_clean(message)}\n")


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
    if not 1 <= session <= _MAX_INT64:
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
    if limit > _MAX_INT64:
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

    p = sub.add_parser("open", help="TUI on an existing store, following it live")
    _common(p)

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
    return parser


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = args.command or "watch"
    if args.command is None:
        args = build_parser().parse_args(["watch", *(argv or sys.argv[1:])])
    logging.basicConfig(level=logging.WARNING, format="eventtui: %(levelname)s: %(message)s")
    # The websockets library logs every refused handshake at INFO; our own warning says it once.
    logging.getLogger("websockets").setLevel(logging.ERROR)
    handler = COMMANDS[command]
    try:
        config = load_config(find_config(args.config))
        return handler(args, config)
    except (ConfigError, StoreError, UsageError) as exc:
        # Messages quote file names, keys and values as given: printed as text, never obeyed.
        print(f"eventtui: error: {_clean(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


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
    import msgspec

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


# --- collect ---------------------------------------------------------------------------------------


def cmd_collect(args: argparse.Namespace, config: Config) -> int:
    config = listen_config(args, config)
    return asyncio.run(_collect(config, db_path(args, config), args.label))


async def _collect(config: Config, path: Path, label: str | None) -> int:
    from eventtui.collector import Collector, PortInUse

    collector = Collector(config, path, source="collect", label=label)
    try:
        await collector.start()
    except PortInUse as exc:
        print(f"eventtui: error: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    http = f" and {collector.http_url}" if collector.http_url else ""
    print(f"listening on {collector.ws_url}{http}", flush=True)
    print(f"session {collector.session_id} in {path}", flush=True)
    await stop.wait()
    await collector.stop()
    return _stopped(collector.writer, collector.session_id, "stopped: stored")


def _stopped(writer: Writer, session: int, stored: str, where: str = "") -> int:
    """The collector's last line: what it stored, or, if its writer died for good, what it lost.

    A collector whose writer could not be restarted never says "stored": it exits EXIT_STORE_LOST
    with one line counting what was refused (and so never acknowledged) and what the session holds.
    """
    stats = writer.stats
    if writer.failure is not None:
        print(
            f"eventtui: error: {writer.failure}: {_count(stats.refused_events, 'event')} were"
            f" refused, never stored or acknowledged; session {session} holds the"
            f" {_count(stats.events, 'event')} committed before",
            file=sys.stderr,
        )
        return EXIT_STORE_LOST
    line = (
        f"{stored} {stats.events:,} events ({stats.duplicates:,} duplicates, "
        f"{stats.rejects:,} refused) in session {session}{where}"
    )
    if writer.restarts:
        times = "once" if writer.restarts == 1 else f"{writer.restarts} times"
        line += f"; the store writer was restarted {times}"
    if stats.refused_events:
        line += f"; {_count(stats.refused_events, 'event')} refused while it was down"
    print(line, file=sys.stderr)
    return EXIT_OK


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


# --- send ------------------------------------------------------------------------------------------


def cmd_send(args: argparse.Namespace, config: Config) -> int:
    from eventtui.sender import SendError, send_frames, with_token

    url = args.url or f"ws://127.0.0.1:{config.collector.port}"
    url = with_token(url, config.collector.token)
    lines = list(_read_lines(args.file))
    frames = [line for _, line in lines]
    try:
        result = asyncio.run(send_frames(url, frames))
    except SendError as exc:
        # The collector's words (a close reason, an HTTP body, a bad reply) are a peer's text.
        print(f"eventtui: error: {_clean(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    source = "stdin" if args.file == "-" else args.file
    for frame, index, reason in result.errors:
        line_no = lines[frame - 1][0]  # the sender checked that the frame was sent
        where = f"{source}:{line_no}" + (f" [{index}]" if index is not None else "")
        print(_clean(f"{where}: refused: {reason}"), file=sys.stderr)
    refused = len(result.errors)
    print(
        f"sent {result.frames:,} frames; {result.acked:,} acknowledged; {refused:,} events refused"
    )
    return EXIT_PROBLEMS if refused else EXIT_OK


def _read_lines(name: str) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each non-blank line; a file that is one JSON array is one frame."""
    try:
        data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(f"{name}: cannot read ({exc.strerror})") from None
    for number, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


# --- sessions, query -------------------------------------------------------------------------------


def cmd_sessions(args: argparse.Namespace, config: Config) -> int:
    import time

    from eventtui.monitor import format_duration
    from eventtui.store import Reader

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
            _fmt_time(s.started_at),
            _fmt_time(s.ended_at) if s.ended_at else "running",
            format_duration(max(0.0, (s.ended_at or now) - s.started_at)),
            f"{s.events:,}",
            f"{s.rejects:,}",
        ]
        for s in sessions
    ]
    _table(
        ["id", "label", "source", "start", "end", "duration", "events", "rejects"], rows, sys.stdout
    )
    return EXIT_OK


def _label_session(args: argparse.Namespace, config: Config) -> int:
    from eventtui.store.sessions import label_session

    label_session(db_path(args, config), args.session, args.label)
    text = args.label.strip()
    said = f"label set to {json.dumps(text, ensure_ascii=False)}" if text else "label cleared"
    print(_printable(f"session {args.session}: {said}"))
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
        print(_printable(question), end="", file=sys.stderr, flush=True)
        answer = sys.stdin.readline()  # "" at end of input: no
        if answer.strip().lower() not in ("y", "yes"):
            print("nothing deleted", file=sys.stderr)
            return EXIT_OK
    deleted = delete_session(path, args.session)
    print(f"deleted session {args.session}: {deleted.events:,} events, {deleted.rejects:,} rejects")
    return EXIT_OK


# --- export, import, replay ------------------------------------------------------------------------


def _filter_arg(text: str | None) -> tuple[str, tuple[object, ...]]:
    """A --filter as (where, params); a bad one is a usage error pointing at the term."""
    from eventtui.filters import FilterError, compile_filter

    try:
        compiled = compile_filter(text or "")
    except FilterError as exc:
        raise UsageError(f"filter: {exc}") from None
    return compiled.where, compiled.params


def _session_arg(reader: Reader, text: str | None) -> int | None:
    """A SESSION argument: an id that exists, "all" (None), or omitted (the newest)."""
    return reader.resolve_session(text, allow_all=True)


def cmd_export(args: argparse.Namespace, config: Config) -> int:
    from eventtui.progress import ProgressBar
    from eventtui.store import Reader
    from eventtui.store.sessions import check_export_target, export_store

    path = db_path(args, config)
    where, params = _filter_arg(args.filter)
    to_stdout = args.output in (None, "-")
    if not to_stdout:
        check_export_target(path, Path(args.output))  # SessionError, a StoreError
    with Reader(path) as reader:
        session = _session_arg(reader, args.session)
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
    import secrets

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
            result = import_events(source, db=path, label=args.label, progress=bar)
    except ImportRefused as exc:
        message = str(exc)
        raise UsageError(message if message.startswith(name) else f"{name}: {message}") from None
    shown = 100
    for bad in result.refused[:shown]:
        where = name + (f":{bad.line}" if bad.line is not None else "")
        where += f" [{bad.item}]" if bad.item is not None else ""
        print(_printable(f"{where}: refused: {bad.reason}"), file=sys.stderr)
    if len(result.refused) > shown:
        print(
            f"... and {len(result.refused) - shown:,} more refused lines (all kept in the"
            f" rejects of session {result.session_id})",
            file=sys.stderr,
        )
    labelled = f" ({result.label})" if result.label else ""
    line = (
        f"imported {result.imported:,} of {result.events:,} events into session"
        f" {result.session_id}{labelled} of {path}"
    )
    if result.duplicates:
        line += f"; {result.duplicates:,} duplicates not stored again (messageId already stored)"
    if result.refused:
        line += f"; {len(result.refused):,} lines refused"
    print(_printable(line))
    return EXIT_PROBLEMS if result.refused else EXIT_OK


def cmd_replay(args: argparse.Namespace, config: Config) -> int:
    from eventtui.config import parse_duration
    from eventtui.replay import ReplayError, format_speed, load_schedule, parse_speed
    from eventtui.store import Reader

    path = db_path(args, config)
    where, params = _filter_arg(args.filter)
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
            print(f"eventtui: error: {_clean(str(exc))}", file=sys.stderr)
            return EXIT_USAGE
    for event_id, reason in result.errors:
        print(_printable(f"event #{event_id}: refused: {reason}"), file=sys.stderr)
    print(
        f"re-sent {result.events:,} events of session {session.id} to {args.to_url} in"
        f" {result.seconds:.1f}s at {format_speed(speed)}; {result.acked:,} acknowledged;"
        f" {len(result.errors):,} refused"
    )
    return EXIT_PROBLEMS if result.errors else EXIT_OK


def cmd_query(args: argparse.Namespace, config: Config) -> int:
    from eventtui.filters import FilterError, compile_filter
    from eventtui.store import Reader

    text = " ".join(args.filter)
    try:
        compiled = compile_filter(text)
    except FilterError as exc:
        raise UsageError(f"filter: {exc}") from None
    with Reader(db_path(args, config)) as reader:
        limit = args.limit or None
        events = reader.query(
            compiled.where, compiled.params, session=args.session, limit=limit, newest_first=True
        )
    events.reverse()
    for event in events:
        if args.json:
            print(
                json.dumps(
                    {
                        "id": event.id,
                        "session": event.session_id,
                        "received_at": event.received_at,
                        "valid": bool(event.valid),
                        "errors": event.error_list(),
                        **event.payload(),
                    },
                    ensure_ascii=False,
                )
            )
        else:
            props = event.properties if len(event.properties) <= 80 else event.properties[:79] + "…"
            user = event.user_id or event.anonymous_id or "-"
            mark = "" if event.valid else "  INVALID"
            print(
                _printable(f"{_fmt_time(event.received_at)}  {event.name}  {user}  {props}{mark}")
            )
    return EXIT_OK


# --- check ---------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, config: Config) -> int:
    import time

    from eventtui.checking import CheckError, check_session, check_window, parse_window, render_text
    from eventtui.store import Reader

    now = time.time()
    try:
        window = parse_window(args.window)
        with Reader(db_path(args, config)) as reader:
            if args.session is not None:
                result = check_session(reader, config, args.session, now=now)
            else:
                result = check_window(reader, config, window=window, now=now)
    except CheckError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        out = sys.stdout
        color = out.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        encoding = out.encoding or "ascii"
        try:
            "✖◷✗▼✓".encode(encoding)
            unicode = True
        except (UnicodeEncodeError, LookupError):
            unicode = False
        text = render_text(result, clean=_printable, color=color, unicode=unicode)
        if not unicode:
            # An event name this terminal cannot show is escaped, not a crash halfway through.
            text = text.encode(encoding, "backslashreplace").decode(encoding)
        out.write(text)
    return EXIT_OK if result.ok else EXIT_PROBLEMS


# --- watch, demo, open (the TUI; imported lazily so headless commands never load Textual) -------


def cmd_watch(args: argparse.Namespace, config: Config) -> int:
    return _watch(args, config, demo=False)


def cmd_demo(args: argparse.Namespace, config: Config) -> int:
    if args.port is None:
        args.port = 0  # the demo must start even when 8765 is taken; the status bar shows the port
    return _watch(args, config, demo=True)


def _watch(args: argparse.Namespace, config: Config, *, demo: bool) -> int:
    from eventtui.collector import PortInUse
    from eventtui.tui.launch import run_watch

    config = listen_config(args, config)
    path = db_path(args, config)
    try:
        ran = run_watch(config, path, label=args.label, demo=demo)
    except PortInUse as exc:
        print(f"eventtui: error: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    code = _stopped(ran.writer, ran.session, "stored", f" of {ran.path}")
    return ran.return_code or code


def cmd_open(args: argparse.Namespace, config: Config) -> int:
    from eventtui.tui.launch import run_open

    return run_open(config, db_path(args, config))


# --- helpers ---------------------------------------------------------------------------------------


def _fmt_time(epoch: float | None) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S") if epoch else "-"


def _clean(text: str) -> str:
    """A peer's or a user's text for the terminal, through the one sanitiser the TUI uses.

    `eventtui.tui.sanitize` imports Rich, never Textual (a test holds `send` to that); imported
    here, lazily, so commands that print none pay nothing. `_printable` below is the older
    second sanitiser, still used by query, sessions, import, replay and check: folding it into
    this one changes what those print, and is left to the CLI's reshaping.
    """
    from eventtui.tui.sanitize import clean

    return clean(text)


def _printable(text: str) -> str:
    """Event data printed to a terminal: control characters shown as escapes, never obeyed."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode() for ch in text
    )


def _table(headers: list[str], rows: list[list[str]], out: TextIO) -> None:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for row in rows:
        out.write(
            _printable("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            + "\n"
        )


COMMANDS: dict[str, Callable[[argparse.Namespace, Config], int]] = {
    "watch": cmd_watch,
    "demo": cmd_demo,
    "open": cmd_open,
    "collect": cmd_collect,
    "send": cmd_send,
    "sessions": cmd_sessions,
    "export": cmd_export,
    "import": cmd_import,
    "replay": cmd_replay,
    "query": cmd_query,
    "check": cmd_check,
}
