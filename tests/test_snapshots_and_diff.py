"""Tracking snapshots, `diff` and `plan infer`, on sessions recorded through a real collector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from eventtui.config import load_config
from eventtui.plan import Plan
from eventtui.shapes import segments, walk
from eventtui.store import Reader
from eventtui.tracking import diff, infer, snapshot
from tests.conftest import eventtui, recv_until_ack, started_collector


async def record(db: Path, events: list[dict[str, Any]]) -> int:
    """One session recorded through a real collector: the events sent, acked, the collector stopped."""
    c = await started_collector(db)
    try:
        async with connect(c.ws_url) as ws:
            await ws.send(json.dumps(events))
            await recv_until_ack(ws, 1)
    finally:
        await c.stop()
    with Reader(db) as reader:
        return reader.resolve_session(None)


def track(name: str, **properties: Any) -> dict[str, Any]:
    return {"event": name, "properties": properties}


BASELINE = [
    track("app_opened", source="push"),
    track("signup", plan="free", referrer="ad"),
    track("page_viewed", path="/"),
    track("checkout_completed", total=10.5, currency="EUR", cart={"items": 2, "coupon": "X"}),
    track("signup", plan="pro", referrer="ad"),
    track("checkout_completed", total=3, currency="EUR", cart={"items": 1, "coupon": "Y"}),
    track("search", query="shoes"),
]

# Each way a candidate can differ, once: search missing; refund_issued new; signup.referrer
# removed; checkout total retyped (number -> string); cart.coupon no longer always present;
# plan outside its domain ("team"); a new property (page_viewed.title); page_viewed now first.
CANDIDATE = [
    track("page_viewed", path="/", title="Home"),
    track("app_opened", source="push"),
    track("signup", plan="team"),
    track("checkout_completed", total="10.50", currency="EUR", cart={"items": 2, "coupon": "X"}),
    track("signup", plan="pro"),
    track("checkout_completed", total="3", currency="EUR", cart={"items": 1}),
    track("refund_issued", amount=5),
]


@pytest.fixture
async def sessions(db: Path) -> tuple[int, int]:
    return await record(db, BASELINE), await record(db, CANDIDATE)


def run(db: Path, *args: str, cwd: Path | None = None) -> Any:
    return eventtui(*args, "--db", str(db), cwd=cwd)


async def test_snapshot_of_a_session_is_small_stable_and_complete(
    db: Path, sessions: tuple[int, int], tmp_path: Path
) -> None:
    base, _ = sessions
    out = tmp_path / "tracking.snap.json"
    done = run(db, "snapshot", str(base), "-o", str(out))
    assert done.returncode == 0, done.stderr
    first = out.read_bytes()
    again = run(db, "snapshot", str(base))
    assert again.stdout.encode() == first  # deterministic: same session, same bytes
    snap = json.loads(first)
    assert snap["order"] == ["app_opened", "signup", "page_viewed", "checkout_completed", "search"]
    signup = snap["events"]["signup"]
    assert signup["count"] == 2
    assert signup["properties"]["properties.plan"] == {
        "types": ["string"],
        "always": True,
        "values": ["free", "pro"],
    }
    checkout = snap["events"]["checkout_completed"]["properties"]
    assert checkout["properties.total"] == {"types": ["number"], "always": True}
    assert checkout["properties.cart.coupon"]["always"] is True
    assert snap["total"] == len(BASELINE)


async def test_diff_reports_each_difference_once(db: Path, sessions: tuple[int, int]) -> None:
    base, cand = sessions
    done = run(db, "diff", str(base), str(cand), "--json")
    assert done.returncode == 1, done.stderr
    changes = json.loads(done.stdout)["changes"]
    found = sorted((c["kind"], c["name"], c["path"]) for c in changes)
    assert found == sorted(
        [
            ("missing_name", "search", None),
            ("new_name", "refund_issued", None),
            ("removed_property", "signup", "properties.referrer"),
            ("changed_type", "checkout_completed", "properties.total"),
            ("no_longer_always", "checkout_completed", "properties.cart.coupon"),
            ("values_outside_domain", "signup", "properties.plan"),
            ("added_property", "page_viewed", "properties.title"),
            ("order_changed", None, None),
        ]
    )
    retyped = next(c for c in changes if c["kind"] == "changed_type")
    assert (retyped["before"], retyped["after"]) == (["number"], ["string"])
    assert json.loads(done.stdout)["regressions"] == 3
    text = run(db, "diff", str(base), str(cand))
    assert text.returncode == 1
    assert " search " in text.stdout and "| missing" in text.stdout
    assert "! properties.total: type number → string" in text.stdout
    assert "values outside the recorded ones: 'team'" in text.stdout


async def test_counts_are_compared_only_with_a_tolerance(db: Path, tmp_path: Path) -> None:
    base = await record(db, [track("a"), track("b")])
    cand = await record(db, [track("a"), track("a"), track("a"), track("b")])
    same = run(db, "diff", str(base), str(cand), "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["changes"] == []
    loose = run(db, "diff", str(base), str(cand), "--json", "--count-tolerance", "50%")
    kinds = [
        (c["kind"], c["name"], c["before"], c["after"]) for c in json.loads(loose.stdout)["changes"]
    ]
    assert kinds == [("count_changed", "a", 1, 3)]
    assert loose.returncode == 0  # a count is a change, not a regression


async def test_snapshot_export_and_session_agree(
    db: Path, sessions: tuple[int, int], tmp_path: Path
) -> None:
    base, _ = sessions
    snap, export = tmp_path / "base.snap.json", tmp_path / "base.jsonl"
    assert run(db, "snapshot", str(base), "-o", str(snap)).returncode == 0
    assert run(db, "export", str(base), "-o", str(export)).returncode == 0
    for left in (str(base), str(snap), str(export)):
        for right in (str(base), str(snap), str(export)):
            done = run(db, "diff", left, right)
            assert (done.returncode, done.stdout) == (0, "no differences\n"), (left, right)


async def test_update_rewrites_the_baseline(
    db: Path, sessions: tuple[int, int], tmp_path: Path
) -> None:
    base, cand = sessions
    snap = tmp_path / "t.snap.json"
    run(db, "snapshot", str(base), "-o", str(snap))
    updated = run(db, "diff", str(snap), str(cand), "--update")
    assert updated.returncode == 0 and "updated" in updated.stderr
    assert run(db, "diff", str(snap), str(cand)).stdout == "no differences\n"
    refused = run(db, "diff", str(base), str(cand), "--update")
    assert refused.returncode == 2 and "--update rewrites a snapshot file" in refused.stderr


async def test_inferred_plan_validates_its_session(
    db: Path, sessions: tuple[int, int], tmp_path: Path
) -> None:
    base, _ = sessions
    done = run(db, "plan", "infer", str(base), "-o", "plan", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '[plan.events."signup"]' in done.stdout
    schema = json.loads((tmp_path / "plan" / "signup.json").read_text())
    assert schema["properties"]["plan"] == {"type": "string", "enum": ["free", "pro"]}
    assert schema["required"] == ["plan", "referrer"]
    config_file = tmp_path / "eventtui.toml"
    config_file.write_text((tmp_path / "plan" / "plan.toml").read_text())
    plan = Plan.from_config(load_config(config_file))
    with Reader(db) as reader:
        rows = reader.query(session=base)
    assert rows and all(plan.check(r.name, r.properties) == [] for r in rows)
    # ... and it catches the candidate's retyped total.
    assert plan.check("checkout_completed", {"total": "3", "currency": "EUR"})
    # The whole check agrees: a collector with this plan would store the session as valid.
    checked = run(db, "check", "--session", str(base), "--config", str(config_file), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"hello\n", "line 1: not a tracking snapshot or a JSON Lines export"),
        (b'{"not": "an event"}\n', "line 1: not an event"),
        (b"", "holds no events"),
        (
            b'{"format": "eventtui-snapshot", "version": 99, "events": {}}',
            "written by a newer eventtui",
        ),
        (
            b'{"format": "eventtui-snapshot", "version": 1, "events": 3}',
            "not a valid tracking snapshot",
        ),
    ],
)
def test_a_bad_baseline_is_one_line_and_exit_2(
    tmp_path: Path, db: Path, content: bytes, says: str
) -> None:
    bad = tmp_path / "base.json"
    bad.write_bytes(content)
    for args in (("diff", str(bad), str(bad)), ("snapshot", str(bad), "-o", str(tmp_path / "o"))):
        done = run(db, *args)
        assert done.returncode == 2
        assert says in done.stderr and len(done.stderr.splitlines()) == 1, done.stderr
    assert not (tmp_path / "o").exists()


async def test_unknown_session_and_file_are_exit_2(
    db: Path, sessions: tuple[int, int], tmp_path: Path
) -> None:
    for args in (
        ("snapshot", "99", "-o", str(tmp_path / "o")),
        ("diff", "99"),
        ("diff", "nope.json"),
        ("plan", "infer", "99", "-o", str(tmp_path / "o")),
        ("diff", "1", "2", "--count-tolerance", "lots"),
    ):
        done = run(db, *args)
        assert done.returncode == 2, args
        assert len(done.stderr.splitlines()) == 1 and "error" in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()


# --- properties of the pure parts -----------------------------------------------------------------

_keys = st.text(min_size=0, max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)
_events = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c.d", "é"]), st.dictionaries(_keys, _json, max_size=4)),
    max_size=12,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_events)
def test_diff_of_a_snapshot_with_itself_is_empty(events: list[tuple[str, dict[str, Any]]]) -> None:
    snap = snapshot.from_events(events)
    assert diff.diff(snap, snap).changes == ()
    # Written and read back, it is the same snapshot, byte for byte.
    again = snapshot.from_events(events)
    assert snapshot.dumps(snap) == snapshot.dumps(again)
    reread = json.loads(snapshot.dumps(snap))
    assert reread == snap
    assert diff.diff(reread, snap, tolerance=0).changes == ()


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(_keys, _json, max_size=4))
def test_every_walked_path_spells_back_to_its_keys(properties: dict[str, Any]) -> None:
    for path, _ in walk(properties):
        keys = segments(path)
        node: Any = properties
        for key in keys:
            if key is None:
                assert isinstance(node, list) and node
                node = node[0] if node else None
                break  # elements share a path; the first one stands for them
            assert isinstance(node, dict) and key in node
            node = node[key]


@settings(max_examples=100, deadline=None)
@given(_events)
def test_inferred_schemas_accept_the_events_they_came_from(
    events: list[tuple[str, dict[str, Any]]],
) -> None:
    from jsonschema import Draft202012Validator

    snap = snapshot.from_events(events)
    plan = infer.infer(snap, folder="plan")
    for name, properties in events:
        schema = json.loads(plan.schemas[name][1])
        errors = list(Draft202012Validator(schema).iter_errors(properties))
        assert not errors, (name, properties, schema, [e.message for e in errors])
