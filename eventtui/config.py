"""Configuration: a TOML file turned into frozen msgspec Structs.

Every key is documented in `config.example.toml`. Unknown keys, wrong types and values out of their
range are errors that name the file, the key and the line. Paths in a config file are relative to
that file.

May import: msgspec, tomllib, filters (to check `where`), model (the event-name limit), pii (to
check `[plan] forbid` patterns).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import msgspec

# The filter grammar is pure (it imports nothing of ours): checking `where` here makes a bad
# filter a config error at load, naming the file and line, instead of a failure much later.
from eventtui.filters import FilterError, compile_filter
from eventtui.model import MAX_NAME_CHARS
from eventtui.pii import check_pattern

DEFAULT_PORT: Final = 8765
CONFIG_FILE_NAME: Final = "eventtui.toml"
PII_MODES: Final = ("off", "warn", "fail")
# A config file is a page of text. Reading it with a bound keeps `--config /dev/zero` (or a huge
# file named by mistake) from reading until memory runs out.
CONFIG_LIMIT: Final = 4 * 1024 * 1024
# 5200 weeks, about 100 years: longer is a mistake, and a bound keeps `now + every` (and any time
# shown from it) inside what datetime can hold; "9" * 400 + "d" was a float of inf.
MAX_DURATION: Final = 5200 * 604800.0
# The themes the TUI offers: Textual's built-in ones (EventApp registers none of its own). The core
# must not import Textual, so the list is kept here; tests/test_config.py fails when they drift.
KNOWN_THEMES: Final = (
    "ansi-dark",
    "ansi-light",
    "atom-one-dark",
    "atom-one-light",
    "catppuccin-frappe",
    "catppuccin-latte",
    "catppuccin-macchiato",
    "catppuccin-mocha",
    "dracula",
    "flexoki",
    "gruvbox",
    "monokai",
    "nord",
    "rose-pine",
    "rose-pine-dawn",
    "rose-pine-moon",
    "solarized-dark",
    "solarized-light",
    "textual-dark",
    "textual-light",
    "tokyo-night",
)


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, the key and the line."""


class Duration(float):
    """Seconds, written in config as "30s", "5m", "2h", "14d" or a plain number of seconds."""


_DURATION: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(text: str | float) -> float:
    """A duration as seconds, finite and at most MAX_DURATION; raises ValueError naming the problem.

    0 is a duration: whether it makes sense is the caller's to say (a grace of 0 does, an
    expectation `every` 0 does not).
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        if isinstance(text, float) and not math.isfinite(text):
            raise ValueError(f"{text} is not a finite duration")
        if text < 0:
            raise ValueError("a duration cannot be negative")
        seconds = float(min(text, MAX_DURATION + 1))  # an int too big for a float is too long
    else:
        match = _DURATION.fullmatch(str(text))
        if not match:
            raise ValueError(
                f'{json.dumps(str(text), ensure_ascii=False)} is not a duration like "30s", "5m", "2h" or "14d"'
            )
        # A run of 400 digits is a float of inf: "too long" below, as any other long one.
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_DURATION:
        raise ValueError('too long: at most "5200w" (about 100 years)')
    return seconds


def port_problem(port: int) -> str | None:
    """Why `port` cannot be listened on, or None."""
    if 0 <= port <= 65535:
        return None
    return f"{port} is not a port (0 to 65535; 0 picks a free one)"


def host_problem(host: str) -> str | None:
    """Why `host` is not an address to listen on, or None.

    The empty string would make asyncio listen on every interface: exactly what the default is
    there to prevent, so it must be asked for by name.
    """
    if host.strip():
        return None
    return 'empty; "0.0.0.0" listens on every interface, "127.0.0.1" (the default) on this machine only'


def http_port_problem(port: int, http_port: int | None) -> str | None:
    """Why the HTTP port cannot default to `port` + 1, or None."""
    if http_port is None and port == 65535:
        return "65535 leaves no port for HTTP (the default is port + 1)"
    return None


class CollectorConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    # None: the websocket port + 1.
    http_port: int | None = None
    max_message_bytes: int = 4 * 1024 * 1024
    max_event_bytes: int = 512 * 1024
    max_connections: int = 64
    allowed_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    token: str | None = None


class StoreConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str | None = None
    retention: Duration | None = None


class UIConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    theme: str = "textual-dark"
    columns: tuple[str, ...] = ("time", "name", "user", "properties")
    bell: bool = False


class Expectation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    event: str
    every: Duration | None = None
    grace: Duration | None = None
    where: str | None = None
    # "At least N per minute": a rate floor instead of (or beside) a dead-man's switch.
    min_rate: float | None = None


class PlanEvent(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # A JSON Schema file (relative to the config file) or the schema inline.
    schema: str | dict[str, Any] | None = None
    description: str | None = None


class PlanConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    strict: bool = False
    events: dict[str, PlanEvent] = msgspec.field(default_factory=dict)
    # Property paths no event may carry (`properties.password`, `*.ssn`): such an event is invalid.
    forbid: tuple[str, ...] = ()
    # Personal data found by the built-in detectors: "off" (not looked for), "warn" (flagged, the
    # default) or "fail" (flagged, and `check` fires).
    pii: str = "warn"
    # A property whose type changes (number -> string) makes `check` fire, not only warn.
    strict_types: bool = False


# `[[alert]] format`: the body a webhook gets (README.md, "Page on-call").
ALERT_FORMATS: Final = ("json", "slack")


class Alert(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A webhook posted when an anomaly starts firing and when it resolves (eventtui.oncall)."""

    url: str
    format: str = "json"


class StreamConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """[stream]: NATS JetStream instead of (collectors) or beside (viewers, sink) a store file."""

    # nats://HOST:PORT, or several comma-separated (any node of a cluster will do); `--stream`
    # overrides. None: no stream, the SQLite store as always.
    url: str | None = None
    name: str = "EVENTTUI"
    # Used only when a collector creates the stream (it leaves an existing one as it is).
    replicas: int = 1
    max_age: Duration = Duration(7 * 86400)
    # How long events may wait for the stream's publish ack (retried meanwhile) before their
    # clients are told they were not stored.
    ack_timeout: Duration = Duration(30)
    # How long the first connection may take before the command gives up (exit 2).
    connect_timeout: Duration = Duration(5)


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    collector: CollectorConfig = CollectorConfig()
    store: StoreConfig = StoreConfig()
    stream: StreamConfig = StreamConfig()
    ui: UIConfig = UIConfig()
    expect: tuple[Expectation, ...] = ()
    plan: PlanConfig = PlanConfig()
    alert: tuple[Alert, ...] = ()
    # The file this came from (None for defaults); relative paths in it are resolved against it.
    source: str | None = None

    def resolve(self, path: str) -> Path:
        """A path from this config, relative to the config file's folder.

        Never raises for a symlink loop (`Path.resolve` does, on Python 3.11): opening the path
        is where that is found, and said.
        """
        base = Path(self.source).parent if self.source else Path.cwd()
        return Path(os.path.realpath(base / Path(path).expanduser()))


def find_config(explicit: str | None) -> Path | None:
    """The config file to use: `--config`, else `EVENTTUI_CONFIG`, else ./eventtui.toml if present."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("EVENTTUI_CONFIG")
    if env:
        return Path(env)
    local = Path.cwd() / CONFIG_FILE_NAME
    return local if local.is_file() else None


def load_config(path: Path | None) -> Config:
    """Read and check a config file; None gives the defaults."""
    if path is None:
        return Config()
    try:
        # Not only regular files: `--config <(...)` (a pipe) is a fair way to pass one.
        with path.open("rb") as file:
            data = file.read(CONFIG_LIMIT + 1)
        text = data.decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
    if len(data) > CONFIG_LIMIT:
        raise ConfigError(f"{path}: config file is over {CONFIG_LIMIT // 2**20} MiB")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    if "source" in raw:
        raise ConfigError(f'{path}, line {_line_of(text, ["source"])}: unknown key "source"')
    try:
        config = msgspec.convert(raw, Config, dec_hook=_decode_custom)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(path, text, str(exc))) from None
    _check_values(config, path, text)
    config = msgspec.structs.replace(config, source=os.path.realpath(path))
    _check_expectations(config, path, text)
    _check_plan_files(config, path, text)
    _check_alerts(config, path, text)
    return config


def alert_url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook, or None. Never quotes the URL: its path or query is often
    the secret (a Slack incoming webhook's is), so only its scheme is named."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a URL"
    if parts.scheme.lower() not in ("http", "https"):
        shown = f'"{parts.scheme}:"' if parts.scheme else "no scheme"
        return f"must be an http:// or https:// URL (this one has {shown})"
    if not parts.hostname:
        return "has no host name"
    if any(c.isspace() or ord(c) < 32 for c in url):
        return "holds spaces or control characters"
    return None


def _check_alerts(config: Config, path: Path, text: str) -> None:
    for index, alert in enumerate(config.alert):
        key, problem = "url", alert_url_problem(alert.url)
        if problem is None and alert.format not in ALERT_FORMATS:
            shown = json.dumps(alert.format, ensure_ascii=False)
            key, problem = "format", f"unknown format {shown}; one of: {', '.join(ALERT_FORMATS)}"
        if problem:
            line = _nth_table_key_line(text, "alert", index, key)
            where = f"{path}, line {line}" if line else str(path)
            raise ConfigError(f"{where}: alert[{index}].{key}: {problem}")


def _nth_table_key_line(text: str, table: str, index: int, key: str) -> int | None:
    """Line of `key = ...` in the index-th `[[table]]`, else of that header."""
    header = _nth_header_line(text, table, index)
    if header is None:
        return None
    assignment = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=')
    for number, line in enumerate(text.splitlines()[header:], start=header + 1):
        if re.match(r"^\s*\[", line):
            break
        if assignment.match(line):
            return number
    return header


def _decode_custom(type_: type, value: Any) -> Any:
    if type_ is Duration:
        # A ValueError (not ValidationError) here lets msgspec add the key path to the message.
        return Duration(parse_duration(value))
    raise NotImplementedError


def _check_expectations(config: Config, path: Path, text: str) -> None:
    for index, expect in enumerate(config.expect):
        problem = None
        if not 0 < len(expect.event) <= MAX_NAME_CHARS:
            problem = (
                f"the event name must be 1 to {MAX_NAME_CHARS} characters (the collector refuses"
                " any other, so this expectation could never be met)"
            )
        elif expect.every is None and expect.min_rate is None:
            problem = 'needs "every" (a deadline) or "min_rate" (events per minute), or both'
        elif expect.every is not None and expect.every <= 0:
            problem = '"every" must be longer than 0s'
        elif expect.min_rate is not None and not 0 < expect.min_rate <= 100_000:
            problem = '"min_rate" must be above 0 and at most 100000 per minute'
        elif expect.where is not None:
            try:
                compile_filter(expect.where)
            except FilterError as exc:
                problem = f'"where" is not a valid filter: {exc}'
        if problem:
            line = _nth_header_line(text, "expect", index)
            where = f"{path}, line {line}" if line else str(path)
            raise ConfigError(f'{where}: expect[{index}] (event "{expect.event}"): {problem}')


def _nth_header_line(text: str, table: str, index: int) -> int | None:
    """Line of the index-th `[[table]]` header."""
    seen = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if re.match(rf"^\s*\[\[\s*{re.escape(table)}\s*\]\]", line):
            seen += 1
            if seen == index:
                return number
    return None


def _check_values(config: Config, path: Path, text: str) -> None:
    """Values of the right type but out of their range: the first one found, by key and line."""
    for keys, problem in _value_problems(config):
        line = _line_of(text, keys)
        where = f"{path}, line {line}" if line else str(path)
        raise ConfigError(f"{where}: {'.'.join(keys)}: {problem}")


def _value_problems(config: Config) -> Iterator[tuple[list[str], str]]:
    collector = config.collector
    host = host_problem(collector.host)
    if host:
        yield ["collector", "host"], host
    for key, port in (("port", collector.port), ("http_port", collector.http_port)):
        problem = None if port is None else port_problem(port)
        if problem:
            yield ["collector", key], problem
    problem = http_port_problem(collector.port, collector.http_port)
    if problem:
        yield ["collector", "port"], f"{problem}; set http_port"
    for key, value, unit in (
        ("max_message_bytes", collector.max_message_bytes, "a size in bytes"),
        ("max_event_bytes", collector.max_event_bytes, "a size in bytes"),
        ("max_connections", collector.max_connections, "a number of connections"),
    ):
        if value < 1:
            yield ["collector", key], f"{value} is not {unit} (1 or more)"
    if collector.token is not None:
        if not collector.token:
            yield (
                ["collector", "token"],
                "empty; leave the key out to accept clients without a token, or set a secret",
            )
        elif collector.token != collector.token.strip():
            yield (
                ["collector", "token"],
                "spaces around it cannot be sent in an Authorization header; remove them",
            )
    if "" in collector.allowed_hosts:
        yield ["collector", "allowed_hosts"], "an empty name; list host names, or leave it empty"
    if "" in collector.allowed_origins:
        yield (
            ["collector", "allowed_origins"],
            'an empty origin; list origins like "https://example.com" ("*" allows every site)',
        )
    if config.store.path is not None and not config.store.path.strip():
        yield ["store", "path"], "empty; leave the key out for the default store"
    if config.store.retention is not None and config.store.retention <= 0:
        yield (
            ["store", "retention"],
            "must be longer than 0s (leave the key out to keep everything)",
        )
    yield from _stream_problems(config.stream)
    if config.ui.theme not in KNOWN_THEMES:
        yield (
            ["ui", "theme"],
            f"unknown theme {json.dumps(config.ui.theme, ensure_ascii=False)}; one of: "
            + ", ".join(KNOWN_THEMES),
        )
    if config.plan.pii not in PII_MODES:
        yield (
            ["plan", "pii"],
            f"{json.dumps(config.plan.pii, ensure_ascii=False)} is not one of: {', '.join(PII_MODES)}",
        )
    for pattern in config.plan.forbid:
        problem = check_pattern(pattern)
        if problem:
            yield ["plan", "forbid"], f"{json.dumps(pattern, ensure_ascii=False)}: {problem}"
    paths: list[tuple[list[str], object]] = [(["store", "path"], config.store.path)]
    paths += [
        (["plan", "events", name, "schema"], event.schema)
        for name, event in config.plan.events.items()
    ]
    for keys, file_name in paths:
        if isinstance(file_name, str) and "\0" in file_name:
            yield keys, "a file name cannot hold a NUL character"


def stream_url_problem(url: str) -> str | None:
    """Why `url` (one or more comma-separated nats:// URLs) names no stream server, or None."""
    for part in url.split(","):
        match = re.fullmatch(r"(nats|tls)://([^\s/:]+|\[[0-9a-fA-F:]+\]):(\d{1,5})/?", part.strip())
        if not match or not 0 < int(match.group(3)) <= 65535:
            return f'"{part.strip()}" is not a nats://HOST:PORT URL'
    return None


def stream_name_problem(name: str) -> str | None:
    """JetStream stream names: letters, digits, - and _ (they also prefix the subjects)."""
    if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
        return None
    return f'"{name}" is not a stream name (1 to 64 letters, digits, "-" or "_")'


def _stream_problems(stream: StreamConfig) -> Iterator[tuple[list[str], str]]:
    if stream.url is not None:
        problem = stream_url_problem(stream.url)
        if problem:
            yield ["stream", "url"], problem
    problem = stream_name_problem(stream.name)
    if problem:
        yield ["stream", "name"], problem
    if stream.replicas not in (1, 2, 3, 4, 5):
        yield ["stream", "replicas"], f"{stream.replicas} is not 1 to 5 (JetStream's limit)"
    for key, value in (
        ("max_age", stream.max_age),
        ("ack_timeout", stream.ack_timeout),
        ("connect_timeout", stream.connect_timeout),
    ):
        if value <= 0:
            yield ["stream", key], "must be longer than 0s"


def _check_plan_files(config: Config, path: Path, text: str) -> None:
    """Each schema file exists and is a regular file; the plan reads it (with a bound) when built."""
    for name, event in config.plan.events.items():
        if not isinstance(event.schema, str):
            continue
        target = config.resolve(event.schema)
        try:
            mode = os.stat(target).st_mode
        except FileNotFoundError:
            problem = f'no file "{event.schema}" (looked at {target})'
        except OSError as exc:
            problem = f'cannot read "{event.schema}" ({exc.strerror or exc}; looked at {target})'
        else:
            if stat.S_ISREG(mode):
                continue
            kind = file_kind(mode)
            problem = f'"{event.schema}" is {kind}, not a regular file (looked at {target})'
        line = _line_of(text, ["plan", "events", name, "schema"])
        raise ConfigError(f"{path}, line {line}: plan.events.{name}.schema: {problem}")


def file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message: "a directory", "a FIFO", ..."""
    for test, kind in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


_PATH_IN_ERROR: Final = re.compile(r"`\$((?:\.[^.`\[]+|\[\d+\])*)`")


def _explain(path: Path, text: str, message: str) -> str:
    """Turn msgspec's "... - at `$.collector.port`" into "FILE, line N: collector.port: ..."."""
    match = _PATH_IN_ERROR.search(message)
    keys = re.findall(r"\.([^.\[]+)|\[(\d+)\]", match.group(1)) if match else []
    parts = [name or f"[{index}]" for name, index in keys]
    detail = message.split(" - at ")[0]
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", detail, re.DOTALL)
    if unknown:
        parts.append(unknown.group(1))
        detail = f'unknown key "{unknown.group(1)}"'
    key = ".".join(p for p in parts if not p.startswith("[")) or "(top level)"
    line = _line_of(text, [p for p in parts if not p.startswith("[")])
    where = f"{path}, line {line}" if line else str(path)
    return f"{where}: {key}: {detail}"


def _line_of(text: str, keys: list[str]) -> int | None:
    """Best-effort line of a dotted key: the last key's assignment under the right table header."""
    if not keys:
        return None
    last = keys[-1]
    table = ".".join(keys[:-1])
    current = ""
    fallback = None
    assignment = re.compile(rf'^\s*"?{re.escape(last)}"?\s*=')
    for number, line in enumerate(text.splitlines(), start=1):
        header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?", line)
        if header:
            current = header.group(1).replace('"', "")
            if current == ".".join(keys):
                fallback = fallback or number
            continue
        if assignment.match(line):
            if current == table:
                return number
            fallback = fallback or number
    return fallback
