"""Pure parts of the TUI: the sanitiser, the JSON view, row formatting, counters. No event loop."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from eventtui.monitor.counters import OTHER, Counters
from eventtui.text import UNSAFE, clean
from eventtui.tui.jsonview import DISPLAY_LIMITS, hanging, to_json, to_text
from eventtui.tui.rows import age, name_style, summarize
from eventtui.tui.sanitize import clean_text, fit, padded, shown
from eventtui.tui.widgets.counters import ordered, sparkline
from tests.conftest import until

HOSTILE = (
    "[@click=app.quit]",
    "[/]",
    "[bold]x[/bold]",
    "\x1b[31mred\x1b[0m",
    "\x1b]52;c;aGVsbG8=\x07",  # OSC 52: write the clipboard
    "\x1b]8;;https://evil.example\x1b\\link\x1b]8;;\x1b\\",  # OSC 8 hyperlink
    "nul\x00byte",
    "\x9b31m",  # C1 CSI
    "abc\u202edcba",  # bidi override
    "zero\u200bwidth",
    "line\u2028sep",
    "\ud800lone",
)


def _unsafe_categories() -> set[str]:
    return {"Cc", "Cf", "Cs", "Zl", "Zp"}


def test_unsafe_set_covers_every_control_format_and_separator_character() -> None:
    wanted = _unsafe_categories()
    missing = [
        hex(cp)
        for cp in range(0x110000)
        if unicodedata.category(chr(cp)) in wanted and not UNSAFE.match(chr(cp))
    ]
    assert missing == []


def test_unsafe_set_leaves_ordinary_text_alone() -> None:
    for text in ("checkout_completed", "Café crème ☕", "製品", "emoji 🎉", "tab-free"):
        assert clean(text) == text


@pytest.mark.parametrize("text", HOSTILE)
def test_clean_leaves_no_control_characters(text: str) -> None:
    out = clean(text)
    assert not UNSAFE.search(out)
    assert "\x1b" not in out and "\x00" not in out


def test_clean_shows_escapes_visibly() -> None:
    assert clean("a\x1bb") == "a\\x1bb"
    assert clean("a\nb\tc") == "a\\nb\\tc"
    assert clean("x\u202ey") == "x\\u202ey"
    assert clean("\ud800") == "\ufffd"
    assert clean("\U000e0041") == "\\U000e0041"


def test_clean_json_keeps_json_valid() -> None:
    value = {"k\u202e": "a\x7fb\x9b\u2028c\U000e0041"}
    text = clean(json.dumps(value, ensure_ascii=False), json=True)
    assert not UNSAFE.search(text)
    assert json.loads(text) == value


def test_clean_text_is_never_markup() -> None:
    text = clean_text("[@click=app.quit]quit[/] [bold]x")
    assert text.plain == "[@click=app.quit]quit[/] [bold]x"
    assert not text.spans  # nothing was styled: markup was not parsed


def test_rendered_hostile_text_carries_no_escape_sequences() -> None:
    console = Console(file=None, force_terminal=True, width=200, color_system=None)
    for raw in HOSTILE:
        with console.capture() as capture:
            console.print(clean_text(raw))
        assert "\x1b]" not in capture.get()
        assert "\x00" not in capture.get()


def test_fit_cuts_by_cells_with_an_ellipsis() -> None:
    assert fit("short", 10) == "short"
    assert fit("x" * 10_000, 10) == "x" * 9 + "…"
    assert cell_len(fit("日本語日本語", 5)) <= 5
    assert fit("日本語日本語", 5).endswith("…")
    assert fit("anything", 0) == ""


def test_shown_handles_a_ten_thousand_character_name() -> None:
    name = "n" * 10_000
    out = shown(name, 20)
    assert cell_len(out) == 20 and out.endswith("…")
    assert cell_len(padded("ab", 6)) == 6


def test_shown_marks_a_cut_even_when_zero_width_characters_fit() -> None:
    text = "a" + "\u0301" * 500 + "tail"
    assert shown(text, 8).endswith("…")


@given(st.text())
def test_sanitiser_properties(text: str) -> None:
    out = clean(text)
    assert not UNSAFE.search(out)
    if not UNSAFE.search(text):
        assert out == text
    # Encodable for any terminal: no lone surrogates survive.
    out.encode("utf-8")
    assert clean_text(text).plain == out


@given(st.text(), st.integers(min_value=1, max_value=80))
def test_shown_fits_its_cells(text: str, cells: int) -> None:
    out = shown(text, cells)
    assert cell_len(out) <= cells
    assert not UNSAFE.search(out)


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
        ),
        max_leaves=30,
    )
)
def test_copy_json_round_trips_and_is_safe(value: object) -> None:
    text = to_json(value)
    assert not UNSAFE.search(text.replace("\n", ""))  # only the printer's own line breaks
    assert json.loads(text) == json.loads(json.dumps(value))


def test_json_view_survives_thousand_deep_nesting() -> None:
    value: object = "bottom"
    for _ in range(1000):
        value = {"d": [value]}
    text, truncated = to_text(value)
    assert truncated
    assert "nested deeper than" in text.plain
    assert text.plain.count("\n") < 200
    # The copy is complete, however deep (json.loads itself cannot read 2,000 levels back).
    copy = to_json(value)
    assert copy.count('"bottom"') == 1
    assert copy.count("{") == copy.count("}") == 1000


def test_json_view_caps_long_strings_and_total_size() -> None:
    text, truncated = to_text({"s": "x" * 100_000})
    assert truncated and "+99,000 chars" in text.plain
    big = {f"k{i}": "v" * 1000 for i in range(500)}
    text, truncated = to_text(big)
    assert truncated
    assert len(text.plain) < (DISPLAY_LIMITS.max_chars or 0) + 2_000


def test_json_view_never_parses_markup() -> None:
    text, _ = to_text({"[@click=app.quit]": "[bold]x[/]"})
    assert '"[@click=app.quit]": "[bold]x[/]"' in text.plain


def test_summary_is_short_and_clean() -> None:
    assert summarize('{"plan":"pro","cart_total":49.5,"coupon":null}') == (
        "plan=pro cart_total=49.5 coupon=null"
    )
    assert summarize('{"q":"two words","n":{"a":1},"l":[1,2]}') == 'q="two words" n={…1} l=[…2]'
    assert summarize("{}") == ""
    assert "\x1b" not in summarize(json.dumps({"x": "\x1b]52;c;aGk=\x07"}))
    assert len(summarize(json.dumps({f"k{i}": i for i in range(10_000)}), 50)) < 80


def test_name_colour_is_stable_across_processes() -> None:
    code = "from eventtui.tui.rows import name_style; print(name_style('checkout_completed').color.name)"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    }
    assert len(outputs) == 1
    assert outputs.pop().strip() == name_style("checkout_completed").color.name  # type: ignore[union-attr]


def test_age_is_short() -> None:
    assert [age(s) for s in (0, 59, 60, 3599, 3600, 86400 * 3)] == [
        "0s",
        "59s",
        "1m",
        "59m",
        "1h",
        "3d",
    ]


class _E:
    def __init__(self, name: str, at: float, valid: bool = True) -> None:
        self.name, self.received_at, self.valid = name, at, valid


def test_counters_total_rate_spark_and_last_seen() -> None:
    counters = Counters()
    now = 1_000_000.0
    counters.observe_many([_E("a", now - 120 + i) for i in range(10)])  # two minutes ago
    counters.observe_many([_E("a", now - 5), _E("a", now - 1, valid=False), _E("b", now - 3)])
    stats = counters.by_name["a"]
    assert stats.total == 12 and stats.invalid == 1
    assert stats.last_seen == now - 1
    assert stats.rate_per_minute(now) == 2
    spark = stats.spark(now)
    assert len(spark) == 30 and sum(spark) == 12
    assert counters.events_per_second(now, window=5) == pytest.approx(3 / 5)


def test_counters_cap_names_from_clients() -> None:
    counters = Counters(max_names=10)
    counters.observe_many([_E(f"n{i}", 1.0) for i in range(1000)])
    assert len(counters.by_name) == 11
    assert counters.by_name[OTHER].total == 990


def test_counters_order_puts_states_first_then_the_sort_key() -> None:
    from eventtui.tui.states import NO_STATE, StateMark

    class States:
        def observe_many(self, events: object) -> None: ...
        def state_of(self, name: str, now: float) -> StateMark:
            return StateMark("missing", "✖", 3, "error") if name == "quiet" else NO_STATE

        def names(self) -> list[str]:
            return ["quiet"]

    counters = Counters()
    now = 100.0
    counters.observe_many([_E("busy", now - 1) for _ in range(5)] + [_E("a_slow", now - 2)])
    rows = ordered(counters, "rate", now, States(), ["quiet"])
    assert [s.name for s, _ in rows] == ["quiet", "busy", "a_slow"]
    rows = ordered(counters, "name", now, States(), ["quiet"])
    assert [s.name for s, _ in rows] == ["quiet", "a_slow", "busy"]


def test_sparkline_scales_and_keeps_gaps() -> None:
    assert sparkline([0, 1, 2, 4]) == " ▂▄█"
    assert sparkline([0, 0]) == "  "


def test_monitor_states_show_a_quiet_expected_event_once_and_loudly() -> None:
    from eventtui.config import Duration, Expectation
    from eventtui.monitor import Monitor
    from eventtui.tui.states import MonitorStates

    start = 1_000_000.0
    expect = Expectation(event="heartbeat", every=Duration(10), grace=Duration(10))
    states = MonitorStates(Monitor([expect], started_at=start))
    states.observe_many([_E("heartbeat", start + 1)])
    ok = states.state_of("heartbeat", start + 5)  # a declared expectation that holds says so
    assert (ok.label, ok.symbol, ok.tone) == ("ok", "●", "muted")
    assert list(states.names()) == ["heartbeat"]
    late = states.state_of("heartbeat", start + 15)
    assert (late.label, late.symbol, late.tone) == ("late", "◷", "warning")
    missing = states.state_of("heartbeat", start + 40)
    assert (missing.label, missing.symbol, missing.tone) == ("missing", "✖", "error")
    assert missing.severity > late.severity
    alerts = states.alerts(start + 40)
    assert [severity for severity, _ in alerts] == ["error"]
    assert alerts[0][1].startswith("heartbeat: missing")
    assert states.alerts(start + 41) == []  # said once per episode

    counters = Counters()
    counters.observe_many(
        [_E("busy", start + 39) for _ in range(50)] + [_E("heartbeat", start + 1)]
    )
    order = [s.name for s, _ in ordered(counters, "rate", start + 40, states)]
    assert order == ["heartbeat", "busy"]


def test_headless_commands_never_load_textual() -> None:
    code = (
        "import sys, eventtui.cli, eventtui.demo\n"
        "assert 'textual' not in sys.modules, 'textual was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@given(st.text(min_size=1, max_size=60))
def test_enter_on_any_counter_filters_exactly_that_name(name: str) -> None:
    from eventtui.filters import compile_filter
    from eventtui.tui.app import name_filter

    compiled = compile_filter(name_filter(name))
    assert compiled.where == "name = ?" and compiled.params == (name,)


def test_help_lists_every_filter_and_never_runs_an_example_into_its_words() -> None:
    from eventtui.tui.screens.help import FILTERS, help_text

    text = help_text().plain
    for example, does in FILTERS:
        assert f"{example}  " in text and does in text  # "invalidpresence" ran together
    for term in ("session:3", "context.locale", "(a OR b)", "ctrl+u"):
        assert term in text


async def test_the_footer_says_resume_while_paused() -> None:
    from eventtui.tui.app import EventApp
    from eventtui.tui.feeds import StaticFeed

    app = EventApp(StaticFeed([]))
    async with app.run_test(size=(100, 30)) as pilot:

        def keys() -> set[str]:
            return {str(k.description) for k in app.screen.query("FooterKey")}

        await until(lambda: "Pause" in keys(), what="the footer")
        await pilot.press("space")
        await until(lambda: "Resume" in keys() and "Pause" not in keys(), what="Resume")
        await pilot.press("space")
        await until(lambda: "Pause" in keys() and not app.stream.paused, what="Pause again")


def test_a_joiner_between_emoji_is_kept_and_escaped_elsewhere() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean(f"family {family}") == f"family {family}"
    assert clean("a\u200db") == "a\\u200db"  # look-alike names stay distinct
    assert clean("x\u200d\U0001f469") == "x\\u200d\U0001f469"
    assert clean("\U0001f468\u200d\u200d\U0001f469") == "\U0001f468\\u200d\\u200d\U0001f469"


def test_a_long_line_wraps_under_its_own_indentation() -> None:
    value = "ü" * 30 + "界" * 10 + "x" * 60  # wide characters count two cells
    text = Text(f'  "note": "{value}",\n  "n": 1')
    lines = hanging(text, 40).plain.split("\n")
    assert all(cell_len(line) <= 40 for line in lines), lines
    assert lines[0].startswith('  "note": "') and lines[-1] == '  "n": 1'
    continued = lines[1:-1]
    assert continued and all(line.startswith("    ") and line[4] != " " for line in continued)
    # Nothing lost or added but the indentation.
    assert lines[0] + "".join(line[4:] for line in continued) == f'  "note": "{value}",'
    # Short lines, and panes too narrow to indent in, are left as they are.
    assert hanging(Text("  short"), 40).plain == "  short"
    assert hanging(Text("x" * 30), 11).plain == "x" * 30


def test_a_long_line_breaks_after_a_space_when_it_can() -> None:
    """The payload header wrapped "· session 1" as "sessi" / "on 1" at 100 columns."""
    line = "08:59:31.590 · user anon-1b0e03 · session 12"
    lines = hanging(Text(line), 40).plain.split("\n")
    assert lines == ["08:59:31.590 · user anon-1b0e03 · ", "  session 12"]
    # A word longer than the room still breaks at the edge, and nothing is lost.
    value = "word " * 3 + "x" * 70
    lines = hanging(Text(f'  "v": "{value}"'), 40).plain.split("\n")
    assert all(cell_len(line) <= 40 for line in lines), lines
    assert lines[0] + "".join(line[4:] for line in lines[1:]) == f'  "v": "{value}"'
    assert lines[0].endswith("word ")
