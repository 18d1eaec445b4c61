"""Learned type drift: the monitor learns each path's types per name and flags a new one; `check`
reports it as a warning, or fails with `[plan] strict_types = true`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eventtui.monitor import PII, TYPE_CHANGED, Monitor
from eventtui.store import EventRow
from tests.conftest import eventtui
from tests.test_snapshots_and_diff import record, track


def row(name: str, properties: dict[str, Any], at: float, errors: str | None = None) -> EventRow:
    return EventRow(
        1, 1, at, None, name, "track", None, None, None, None, json.dumps(properties), "{}", True,
        errors, None,
    )  # fmt: skip


def test_a_new_type_for_a_known_path_is_flagged_with_its_history() -> None:
    monitor = Monitor(started_at=0.0)
    monitor.observe_many(
        [
            row("checkout", {"total": 10, "cart": {"id": "a"}}, 1.0),
            row("checkout", {"total": 12.5, "cart": {"id": "b"}, "coupon": None}, 2.0),
            row("checkout", {"total": 12.5, "cart": {"id": "b"}, "coupon": "X"}, 2.5),
        ]
    )
    # New keys, int vs float, and a first value after nulls: no drift.
    assert monitor.state_of("checkout", 3.0) != TYPE_CHANGED
    monitor.observe_many([row("checkout", {"total": "10.50", "cart": None}, 4.0)])
    assert monitor.state_of("checkout", 5.0) == TYPE_CHANGED
    drifts = [(d.path, d.before, d.after, d.since) for d in monitor.drift.drifts_of("checkout")]
    assert drifts == [
        ("properties.total", ("number",), "string", 4.0),
        ("properties.cart", ("object",), "null", 4.0),
    ]
    (anomaly,) = [a for a in monitor.evaluate(5.0) if a.state == TYPE_CHANGED]
    assert not anomaly.firing and anomaly.started_at == 4.0
    assert anomaly.detail == "properties.cart: object → null (+1 more)"
    # Learned: the same new type again is no new drift; the flag ends after the window.
    monitor.observe_many([row("checkout", {"total": "3"}, 6.0)])
    assert len(monitor.drift.drifts_of("checkout")) == 2
    assert monitor.state_of("checkout", 4.0 + 15 * 60 + 1) != TYPE_CHANGED
    assert [e.state for e in monitor.episodes()] == [TYPE_CHANGED]


def test_light_rows_teach_nothing_and_pii_flags_count() -> None:
    monitor = Monitor(started_at=0.0)
    light = row("a", {}, 1.0)._replace(properties="")
    monitor.observe_many([light, light])
    assert monitor.drift.drifts_of("a") == []
    monitor.observe_many([row("b", {"c": "x@y.io"}, 2.0, '["pii: properties.c: email address"]')])
    assert monitor.state_of("b", 3.0) == PII
    (anomaly,) = [a for a in monitor.evaluate(3.0) if a.state == PII]
    assert anomaly.detail == "1 event with personal data" and not anomaly.firing


async def test_check_reports_type_changes_and_strict_types_fails(db: Path, tmp_path: Path) -> None:
    await record(db, [track("checkout", total=10), track("checkout", total="10")])
    warned = eventtui("check", "--db", str(db), "--session", "1")
    assert warned.returncode == 0, warned.stdout + warned.stderr
    assert "type changes (a warning)" in warned.stdout
    assert "properties.total" in warned.stdout and "number" in warned.stdout
    config = tmp_path / "eventtui.toml"
    config.write_text("[plan]\nstrict_types = true\n")
    failed = eventtui("check", "--db", str(db), "--session", "1", "--config", str(config), "--json")
    assert failed.returncode == 1
    report = json.loads(failed.stdout)
    assert [
        (c["event"], c["path"], c["before"], c["after"]) for c in report["plan"]["type_changes"]
    ] == [("checkout", "properties.total", ["number"], "string")]
    assert any(a["state"] == TYPE_CHANGED for a in report["anomalies"])
