"""Config: defaults, every documented key, and errors naming file, key and line."""

from __future__ import annotations

import math
import os
import subprocess
from pathlib import Path

import pytest

from eventtui.config import (
    CONFIG_LIMIT,
    KNOWN_THEMES,
    Config,
    ConfigError,
    load_config,
    parse_duration,
)
from eventtui.plan import MAX_SCHEMA_BYTES
from tests.conftest import eventtui

EXAMPLE = Path(__file__).parent.parent / "config.example.toml"


def test_defaults_without_a_file() -> None:
    config = load_config(None)
    assert config == Config()
    assert (config.collector.host, config.collector.port) == ("127.0.0.1", 8765)


def test_the_example_config_loads_and_sets_every_section(tmp_path: Path) -> None:
    config = load_config(EXAMPLE)
    assert config.collector.port == 8765
    assert config.expect and config.expect[0].event == "heartbeat"
    assert config.plan.events


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[collector]\nprot = 1\n", 'line 2: collector.prot: unknown key "prot"'),
        (
            "[collector]\nport = 1\n\n[ui]\ntheme = 3\n",
            "line 5: ui.theme: Expected `str`, got `int`",
        ),
        ("colour = 1\n", 'line 1: colour: unknown key "colour"'),
        (
            '[[expect]]\nevent = "a"\nevery = "soon"\n',
            'line 3: expect.every: "soon" is not a duration like "30s", "5m", "2h" or "14d"',
        ),
        ('[[expect]]\nevery = "5m"\n', "expect: Object missing required field `event`"),
        ('[store]\nretention = "14 days"\n', "line 2: store.retention"),
        ("[collector\n", "not valid TOML"),
        (
            '[[expect]]\nevent = "a"\nevery = "1m"\n\n[[expect]]\nevent = "b"\n',
            'line 5: expect[1] (event "b"): needs "every" (a deadline) or "min_rate"',
        ),
        (
            '[[expect]]\nevent = "a"\nmin_rate = 0\n',
            'line 1: expect[0] (event "a"): "min_rate" must be above 0',
        ),
        ('[[expect]]\nevent = "a"\nevery = 0\n', '"every" must be longer than 0s'),
        (
            '[[expect]]\nevent = "a"\nevery = "1m"\nwhere = "plan>="\n',
            'line 1: expect[0] (event "a"): "where" is not a valid filter',
        ),
        (
            '[plan.events.signup]\nschema = "missing.json"\n',
            'line 2: plan.events.signup.schema: no file "missing.json"',
        ),
    ],
)
def test_errors_name_file_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "eventtui.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "signup.json").write_text('{"type": "object"}')
    path = tmp_path / "conf" / "eventtui.toml"
    path.write_text(
        '[store]\npath = "data/events.db"\n[plan.events.signup]\nschema = "signup.json"\n'
    )
    config = load_config(path)
    assert config.resolve(config.store.path or "") == tmp_path / "conf" / "data" / "events.db"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("14d", 1209600), ("250ms", 0.25), (45, 45)],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "nope.toml")


# --- hostile values: each is one line naming the file, the key and the line ------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[collector]\nport = 70000\n", "line 2: collector.port: 70000 is not a port"),
        ("[collector]\nport = -1\n", "line 2: collector.port: -1 is not a port"),
        ("[collector]\nhttp_port = 65536\n", "line 2: collector.http_port: 65536 is not a port"),
        (
            "[collector]\nport = 65535\n",
            "line 2: collector.port: 65535 leaves no port for HTTP (the default is port + 1)",
        ),
        ('[collector]\nhost = ""\n', 'line 2: collector.host: empty; "0.0.0.0"'),
        ("[collector]\nmax_message_bytes = -1\n", "line 2: collector.max_message_bytes: -1"),
        ("[collector]\nmax_message_bytes = 0\n", "collector.max_message_bytes: 0 is not"),
        ("[collector]\nmax_event_bytes = 0\n", "line 2: collector.max_event_bytes: 0 is not"),
        ("[collector]\nmax_connections = 0\n", "line 2: collector.max_connections: 0 is not"),
        ('[collector]\ntoken = ""\n', "line 2: collector.token: empty"),
        ('[collector]\ntoken = " secret"\n', "line 2: collector.token: spaces around it"),
        ('[collector]\nallowed_hosts = [""]\n', "line 2: collector.allowed_hosts: an empty name"),
        ('[collector]\nallowed_origins = [""]\n', "line 2: collector.allowed_origins: an empty"),
        ('[store]\npath = ""\n', "line 2: store.path: empty"),
        ('[store]\nretention = "0s"\n', "line 2: store.retention: must be longer than 0s"),
        ("[store]\nretention = nan\n", "line 2: store.retention: nan is not a finite duration"),
        ('[ui]\ntheme = "no-such-theme"\n', 'line 2: ui.theme: unknown theme "no-such-theme"'),
        ('[[expect]]\nevent = "a"\nevery = inf\n', "line 3: expect.every: inf is not a finite"),
        (
            '[[expect]]\nevent = "a"\nevery = "1m"\ngrace = nan\n',
            "line 4: expect.grace: nan is not a finite duration",
        ),
        (
            '[[expect]]\nevent = "a"\nevery = "' + "9" * 400 + 'd"\n',
            "line 3: expect.every: too long",
        ),
        ('[[expect]]\nevent = "a"\nevery = "5201w"\n', "line 3: expect.every: too long"),
        ('[[expect]]\nevent = ""\nevery = "1m"\n', 'line 1: expect[0] (event ""): the event name'),
        ('[store]\npath = "a\\u0000b"\n', "line 2: store.path: a file name cannot hold a NUL"),
        (
            '[plan.events.e]\nschema = "a\\u0000b"\n',
            "line 2: plan.events.e.schema: a file name cannot hold a NUL",
        ),
    ],
)
def test_hostile_values_name_file_key_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "eventtui.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path}, ")
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "text",
    [
        "[collector]\nport = 0\nhttp_port = 65535\n",
        "[collector]\nport = 65535\nhttp_port = 0\n",
        '[collector]\nhost = "0.0.0.0"\nmax_message_bytes = 1\nmax_event_bytes = 1\n',
        '[collector]\nmax_connections = 1\ntoken = "s3cret"\n',
        '[[expect]]\nevent = "a"\nevery = "250ms"\ngrace = 0\n',
        '[store]\nretention = "5200w"\n',
    ],
)
def test_edges_of_the_ranges_are_accepted(tmp_path: Path, text: str) -> None:
    path = tmp_path / "eventtui.toml"
    path.write_text(text)
    load_config(path)


def test_durations_are_finite() -> None:
    for bad in (math.inf, math.nan, -1, "9" * 400, "5201w"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_known_themes_are_the_ones_the_tui_offers() -> None:
    """The core keeps its own list (it must not import Textual); this keeps it from drifting."""
    from eventtui.tui.app import EventApp
    from eventtui.tui.feeds import StaticFeed

    assert set(KNOWN_THEMES) == set(EventApp(StaticFeed([])).available_themes)


def test_config_file_is_read_with_a_bound(tmp_path: Path) -> None:
    path = tmp_path / "big.toml"
    path.write_text("# padding\n" * (CONFIG_LIMIT // 10 + 1))
    with pytest.raises(ConfigError, match=r"big.toml: config file is over 4 MiB"):
        load_config(path)


def test_schema_path_that_is_a_symlink_loop(tmp_path: Path) -> None:
    (tmp_path / "loop.json").symlink_to("loop.json")
    path = tmp_path / "eventtui.toml"
    path.write_text('[plan.events.signup]\nschema = "loop.json"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f'{path}, line 2: plan.events.signup.schema: cannot read "loop.json" '
        f"(Too many levels of symbolic links; looked at {tmp_path / 'loop.json'})"
    )


def test_schema_path_that_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.json")
    path = tmp_path / "eventtui.toml"
    path.write_text('[plan.events.signup]\nschema = "fifo.json"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value) == (
        f'{path}, line 2: plan.events.signup.schema: "fifo.json" is a FIFO, not a regular file '
        f"(looked at {tmp_path / 'fifo.json'})"
    )


# --- through the real command line ------------------------------------------------------------------


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("eventtui: error: ")
    return line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[collector]\nport = 70000\n", "line 2: collector.port: 70000 is not a port"),
        ('[collector]\nhost = ""\n', "line 2: collector.host: empty"),
        ('[collector]\ntoken = ""\n', "line 2: collector.token: empty"),
        ("[collector]\nmax_connections = 0\n", "line 2: collector.max_connections"),
        ('[ui]\ntheme = "nope"\n', 'line 2: ui.theme: unknown theme "nope"'),
        ('[[expect]]\nevent = "a"\nevery = "1m"\ngrace = nan\n', "line 4: expect.grace"),
        # A key is printed as text: a control character in it neither acts nor breaks the line.
        ('[collector]\n"a\\u001b[2Jb\\nc" = 1\n', 'unknown key "a\\x1b[2Jb\\nc"'),
    ],
)
@pytest.mark.parametrize("command", ["collect", "check"])
def test_hostile_config_through_the_cli(
    tmp_path: Path, command: str, text: str, expected: str
) -> None:
    config = tmp_path / "eventtui.toml"
    config.write_text(text)
    extra = ["--port", "0", "--http-port", "0"] if command == "collect" else []
    result = eventtui(command, "--config", str(config), "--db", str(tmp_path / "e.db"), *extra)
    line = one_error_line(result)
    assert line.startswith(f"eventtui: error: {config}")
    assert expected in line
    assert "\x1b" not in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--port", "70000"], "--port: 70000 is not a port (0 to 65535; 0 picks a free one)"),
        (["--port", "0", "--http-port", "70000"], "--http-port: 70000 is not a port"),
        (["--port", "-1"], "--port: -1 is not a port"),
        (["--port", "65535"], "--port 65535 leaves no port for HTTP"),
        (["--host", "", "--port", "0"], '--host: empty; "0.0.0.0" listens on every interface'),
    ],
)
def test_listen_options_are_checked(tmp_path: Path, args: list[str], expected: str) -> None:
    result = eventtui("collect", "--db", str(tmp_path / "e.db"), *args, cwd=tmp_path)
    assert expected in one_error_line(result)
    assert not (tmp_path / "e.db").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["query", "--limit", "-1"], "--limit: -1 is not 0 (all) or a positive number"),
        (["query", "--limit", "9" * 20], "--limit: 99999999999999999999 is too large"),
        (["query", "--session", "9" * 20], "--session: 99999999999999999999 is not a session id"),
        (["check", "--session", "0"], "--session: 0 is not a session id"),
        (["sessions", "label", "9" * 20, "x"], "SESSION: 99999999999999999999 is not a session"),
        (["sessions", "delete", "9" * 20, "--yes"], "SESSION: 99999999999999999999 is not a"),
        (["replay", "9" * 20, "--to-url", "ws://127.0.0.1:9"], "SESSION: 999999"),
        (["replay", "--max-gap", "9" * 400, "--to-url", "ws://127.0.0.1:9"], "too long"),
        (["check", "--window", "9" * 400], "--window: too long"),
    ],
)
def test_numeric_options_are_checked(tmp_path: Path, args: list[str], expected: str) -> None:
    result = eventtui(*args, "--db", str(tmp_path / "e.db"), cwd=tmp_path)
    assert expected in one_error_line(result)


@pytest.mark.parametrize(
    ("session", "expected"),
    [
        ("9" * 20, "no session 99999999999999999999 in {db}"),
        ("0", "no session 0 in {db}"),
        ("\u00b2", "session must be a number (see `eventtui sessions`) or \"all\"; got '\u00b2'"),
    ],
)
def test_export_checks_its_session_argument(tmp_path: Path, session: str, expected: str) -> None:
    db = tmp_path / "e.db"
    events = tmp_path / "e.jsonl"
    events.write_text('{"event": "a"}\n')
    assert eventtui("import", str(events), "--db", str(db), cwd=tmp_path).returncode == 0
    result = eventtui("export", session, "--db", str(db), cwd=tmp_path)
    assert one_error_line(result).startswith("eventtui: error: " + expected.format(db=db))


def test_plan_schema_that_is_a_symlink_loop_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "loop.json").symlink_to("loop.json")
    config = tmp_path / "eventtui.toml"
    config.write_text('[plan.events.signup]\nschema = "loop.json"\n')
    result = eventtui("check", "--config", str(config), "--db", str(tmp_path / "e.db"))
    assert "plan.events.signup.schema: cannot read" in one_error_line(result)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("fifo", "a FIFO, not a regular file"),
        ("/dev/zero", "a character device, not a regular file"),
        ("big", "over the 4 MiB limit for a schema file"),
    ],
)
def test_a_schema_reference_reads_only_small_regular_files(
    tmp_path: Path, target: str, expected: str
) -> None:
    if target == "fifo":
        os.mkfifo(tmp_path / "common.json")
    elif target == "big":
        (tmp_path / "common.json").write_text(" " * MAX_SCHEMA_BYTES + "{}")
    else:
        (tmp_path / "common.json").symlink_to(target)
    (tmp_path / "order.json").write_text('{"properties": {"id": {"$ref": "common.json"}}}')
    config = tmp_path / "eventtui.toml"
    config.write_text('[plan.events.order]\nschema = "order.json"\n')
    result = eventtui(
        "collect", "--config", str(config), "--db", str(tmp_path / "e.db"), "--port", "0",
        "--http-port", "0", memory=2 * 1024**3,
    )  # fmt: skip
    line = one_error_line(result)
    assert line == (
        f'eventtui: error: plan.events.order: schema file "{tmp_path}/order.json": cannot resolve'
        f' "$ref" "common.json" ({tmp_path}/common.json: {expected})'
    )
