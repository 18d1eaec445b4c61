"""Snapshot tests: the screen as users see it, with time frozen and the terminal size fixed.

The app gets a `StaticFeed` (fixed rows and status) and a frozen `clock`, so ages, rates and
sparklines are the same on every run; TZ is UTC so the time column is too.
Update after a deliberate change with `pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, ClassVar

import pytest
from textual.pilot import Pilot

from eventtui.monitor import PII, TYPE_CHANGED, Monitor
from eventtui.monitor.counters import Counters
from eventtui.store import EventRow
from eventtui.tui.app import EventApp
from eventtui.tui.feeds import StaticFeed
from eventtui.tui.messages import FeedStatus
from eventtui.tui.states import (
    BASELINE_CHANGED,
    BASELINE_MISSING,
    NO_STATE,
    MonitorStates,
    StateMark,
)

NOW = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC
STATUS = FeedStatus(
    mode="watch",
    collecting=True,
    addresses=("ws://127.0.0.1:8765", "http://127.0.0.1:8766"),
    clients=2,
    session=3,
    stored=12_345,
    size_bytes=4_567_890,
    refused=2,
)


pytestmark = pytest.mark.usefixtures("utc")


def row(
    id: int,
    name: str,
    ago: float,
    properties: dict[str, Any] | str | None = None,
    *,
    user: str | None = "u1042",
    errors: list[str] | None = None,
) -> EventRow:
    props = properties if isinstance(properties, str) else json.dumps(properties or {})
    return EventRow(
        id=id,
        session_id=3,
        received_at=NOW - ago,
        sent_at=None,
        name=name,
        type="track",
        user_id=user,
        anonymous_id=None if user else "anon-7f3a",
        message_id=f"m{id}",
        client="ws:127.0.0.1:50412",
        properties=props,
        context=json.dumps({"library": {"name": "web", "version": "2.1"}}),
        valid=not errors,
        errors=json.dumps(errors) if errors else None,
        extra=None,
    )


def traffic() -> list[EventRow]:
    rows = []
    names = ["page_view", "search", "page_view", "feature_used", "page_view"]
    for i in range(60):
        ago = 1500 - i * 25
        name = names[i % len(names)]
        props: dict[str, Any] = {"path": f"/docs/{i}"} if name == "page_view" else {"query": "sso"}
        rows.append(row(i + 1, name, ago, props, user=f"u{1000 + i % 7}"))
    rows += [
        row(61, "heartbeat", 95, {"service": "web", "uptime_s": 60}, user=None),
        row(62, "checkout_started", 12, {"cart_total": 98.0, "items": 2, "currency": "EUR"}),
        row(63, "coupon_applied", 11, {"coupon": "SPRING10"}),
        row(
            64,
            "checkout_completed",
            10,
            {"plan": "team", "cart_total": "98.00", "currency": "EUR", "coupon": "SPRING10"},
            errors=["properties.cart_total: '98.00' is not of type 'number'"],
        ),
        row(65, "sign_up", 4, {"method": "github", "plan": "pro"}),
        row(66, "page_view", 1, {"path": "/pricing", "title": "Pricing", "referrer": "google"}),
    ]
    return rows


class FixedStates:
    """States as the monitor would report them, fixed for the picture."""

    STATES: ClassVar[dict[str, StateMark]] = {
        "heartbeat": StateMark("missing", "✖", 3, "error"),
        "checkout_completed": StateMark("invalid", "✗", 3, "error"),
        "search": StateMark("late", "◷", 2, "warning"),
        "sign_up": StateMark("learning", "·", 0, "muted"),
    }

    def __init__(self) -> None:
        self.counters = Counters()

    def observe_many(self, events: Iterable[Any]) -> None:
        self.counters.observe_many(events)

    def state_of(self, name: str, now: float) -> StateMark:
        return self.STATES.get(name, NO_STATE)

    def names(self) -> list[str]:
        return ["heartbeat", "trial_started"]


def make_app(rows: list[EventRow]) -> EventApp:
    return EventApp(StaticFeed(rows, STATUS), clock=lambda: NOW, states=FixedStates())


def settled(count: int, keys: Iterable[str] = ()) -> Any:
    """A run_before that waits for `count` rows on screen, then presses `keys`."""

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, EventApp)
        deadline = time.monotonic() + 5
        while len(app.stream.rows) < count or app.status_bar.status is None:
            assert time.monotonic() < deadline, "rows never arrived"
            await pilot.pause(0.02)
        await pilot.press(*keys)
        app.filter_bar.input.cursor_blink = False
        await pilot.pause(0.15)  # one paint tick after the last key

    return run_before


def test_wide_screen_with_a_selected_invalid_event(snap_compare: Any) -> None:
    rows = traffic()
    app = make_app(rows)
    # Three rows up from the newest: the invalid checkout, its errors in the payload pane.
    assert snap_compare(app, terminal_size=(160, 45), run_before=settled(len(rows), ["up"] * 3))


def test_narrow_screen_following(snap_compare: Any) -> None:
    rows = traffic()
    assert snap_compare(make_app(rows), terminal_size=(100, 30), run_before=settled(len(rows)))


def test_hostile_event_data_renders_as_plain_text(snap_compare: Any) -> None:
    deep = '{"d":' * 1000 + '"bottom"' + "}" * 1000  # json.dumps itself cannot go this deep
    rows = [
        row(1, "[@click=app.quit]quit[/]", 30, {"[bold]key": "[link=https://evil]x[/link]"}),
        row(2, "esc\x1b[31mred\x1b]52;c;aGk=\x07", 20, {"osc": "\x1b]8;;https://e\x1b\\x"}),
        row(3, "n" * 10_000, 10, {"nul": "a\x00b", "bidi": "abc\u202edcba"}, user="\u202eevil"),
        row(4, "deep", 5, deep),
    ]
    app = make_app(rows)
    assert snap_compare(app, terminal_size=(160, 45), run_before=settled(4, ["up", "up"]))


def test_paused_with_new_events_and_a_filter_error(snap_compare: Any) -> None:
    rows = traffic()

    async def run_before(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, EventApp)
        await settled(len(rows) - 3, [])(pilot)
        await pilot.press("space")
        app.stream.add(rows[-3:])  # three arrive while paused
        await pilot.press("slash", *"plan>", "enter")
        app.filter_bar.input.cursor_blink = False
        await pilot.pause(0.15)

    app = EventApp(StaticFeed(rows[:-3], STATUS), clock=lambda: NOW, states=FixedStates())
    assert snap_compare(app, terminal_size=(160, 45), run_before=run_before)


def test_help_screen(snap_compare: Any) -> None:
    assert snap_compare(make_app([]), terminal_size=(100, 30), press=["question_mark"])


_MARKS = MonitorStates(Monitor(started_at=NOW))  # the real words and signs of the real states


class TrackingStates(FixedStates):
    """The tracking marks beside the monitor's ✖ missing: each must read apart at 80x24, where
    the state column is one sign wide."""

    STATES: ClassVar[dict[str, StateMark]] = {
        "heartbeat": StateMark("missing", "✖", 3, "error"),
        "trial_started": BASELINE_MISSING,
        "checkout_completed": BASELINE_CHANGED,
        "checkout_started": _MARKS.mark(TYPE_CHANGED),
        "sign_up": _MARKS.mark(PII),
    }


def test_tracking_marks_at_80x24(snap_compare: Any) -> None:
    rows = traffic()
    rows[-2] = row(
        65,
        "sign_up",
        4,
        {"method": "github", "contact": "ada@example.com"},
        errors=None,
    )._replace(errors=json.dumps(["pii: properties.contact: email address"]))
    app = EventApp(StaticFeed(rows, STATUS), clock=lambda: NOW, states=TrackingStates())
    assert snap_compare(app, terminal_size=(80, 24), run_before=settled(len(rows), ["up", "up"]))


def test_80x24_keeps_names_help_and_quit(snap_compare: Any) -> None:
    """80x24: names keep their width (the state word gives way to its sign), the footer goes to
    two rows rather than losing "? Help" and "q Quit"."""
    rows = traffic()
    assert snap_compare(make_app(rows), terminal_size=(80, 24), run_before=settled(len(rows)))


def test_100x30_with_a_selected_invalid_event(snap_compare: Any) -> None:
    rows = traffic()
    app = make_app(rows)
    assert snap_compare(app, terminal_size=(100, 30), run_before=settled(len(rows), ["up"] * 3))


async def test_at_80_columns_every_key_and_every_name_shows() -> None:
    rows = traffic()
    app = make_app(rows)
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(len(rows))(pilot)
        await pilot.pause(0.2)  # the footer recomposes after the first refresh
        keys = {
            key.description
            for key in app.screen.query("FooterKey")
            if key.region.width and key.region.right <= 80 and key.region.y < 24
        }
        assert {"Help", "Quit", "Filter", "Anomalies"} <= keys, keys
        shown = app.counters_panel
        lines = ["".join(s.text for s in shown.render_line(y)) for y in range(1, 9)]
        # The longest names show whole or nearly: no two rows alike ("check…" three times).
        assert any("coupon_applied " in line for line in lines), lines
        names = [line[2:].split()[0] for line in lines if line.strip()]
        assert len(set(names)) == len(names), names
