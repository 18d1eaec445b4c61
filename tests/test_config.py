"""Config: defaults, every documented key, and errors naming file, key and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventtui.config import Config, ConfigError, load_config, parse_duration

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
