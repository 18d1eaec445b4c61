"""Configuration: a TOML file turned into frozen msgspec Structs.

Every key is documented in `config.example.toml`. Unknown keys and wrong types are errors that name
the file, the key and the line. Paths in a config file are relative to that file.

May import: msgspec, tomllib, filters (to check `where`).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Final

import msgspec

# The filter grammar is pure (it imports nothing of ours): checking `where` here makes a bad
# filter a config error at load, naming the file and line, instead of a failure much later.
from eventtui.filters import FilterError, compile_filter

DEFAULT_PORT: Final = 8765
CONFIG_FILE_NAME: Final = "eventtui.toml"


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file, the key and the line."""


class Duration(float):
    """Seconds, written in config as "30s", "5m", "2h", "14d" or a plain number of seconds."""


_DURATION: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(text: str | float) -> float:
    """A duration as seconds; raises ValueError naming the expected form."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    match = _DURATION.fullmatch(str(text))
    if not match:
        raise ValueError(f'"{text}" is not a duration like "30s", "5m", "2h" or "14d"')
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


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


class Config(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    collector: CollectorConfig = CollectorConfig()
    store: StoreConfig = StoreConfig()
    ui: UIConfig = UIConfig()
    expect: tuple[Expectation, ...] = ()
    plan: PlanConfig = PlanConfig()
    # The file this came from (None for defaults); relative paths in it are resolved against it.
    source: str | None = None

    def resolve(self, path: str) -> Path:
        """A path from this config, relative to the config file's folder."""
        base = Path(self.source).parent if self.source else Path.cwd()
        return (base / Path(path).expanduser()).resolve()


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
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: config file is not UTF-8 text") from None
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
    config = msgspec.structs.replace(config, source=str(path.resolve()))
    _check_expectations(config, path, text)
    _check_plan_files(config, path, text)
    return config


def _decode_custom(type_: type, value: Any) -> Any:
    if type_ is Duration:
        # A ValueError (not ValidationError) here lets msgspec add the key path to the message.
        return Duration(parse_duration(value))
    raise NotImplementedError


def _check_expectations(config: Config, path: Path, text: str) -> None:
    for index, expect in enumerate(config.expect):
        problem = None
        if expect.every is None and expect.min_rate is None:
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


def _check_plan_files(config: Config, path: Path, text: str) -> None:
    for name, event in config.plan.events.items():
        if isinstance(event.schema, str) and not config.resolve(event.schema).is_file():
            line = _line_of(text, ["plan", "events", name, "schema"])
            raise ConfigError(
                f'{path}, line {line}: plan.events.{name}.schema: no file "{event.schema}" '
                f"(looked at {config.resolve(event.schema)})"
            )


_PATH_IN_ERROR: Final = re.compile(r"`\$((?:\.[^.`\[]+|\[\d+\])*)`")


def _explain(path: Path, text: str, message: str) -> str:
    """Turn msgspec's "... - at `$.collector.port`" into "FILE, line N: collector.port: ..."."""
    match = _PATH_IN_ERROR.search(message)
    keys = re.findall(r"\.([^.\[]+)|\[(\d+)\]", match.group(1)) if match else []
    parts = [name or f"[{index}]" for name, index in keys]
    detail = message.split(" - at ")[0]
    unknown = re.fullmatch(r"Object contains unknown field `(.+)`", detail)
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
