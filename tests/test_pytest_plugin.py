"""The pytest plugin, run as a user's suite runs it (pytester): found through its entry point, a
passing suite, failures a developer can act on, xdist workers each with their own collector, and
`--eventtui-url` for a collector that is already running."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eventtui.store import Reader
from tests.conftest import Collect

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def ini(pytester: pytest.Pytester) -> None:
    # The suites run in this process, where warnings are errors: pytest-asyncio (installed here)
    # warns when its loop scope is unset.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """The suite in this process (fast), without our own suite's other plugins: they cost
    xdist workers seconds to load, and the snapshot plugin's session-wide temporary folder does
    not survive a nested session."""
    return pytester.runpytest(
        *("-p", "no:cacheprovider", "-p", "no:textual-snapshot", "-p", "no:syrupy"),
        *("-p", "no:hypothesispytest"),
        *args,
    )


# The code under test in these suites: it tracks over HTTP, as an app would.
APP = """
import json
import urllib.request


def track(url, *events):
    request = urllib.request.Request(
        url + "/events", data=json.dumps(list(events)).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
"""


def test_a_passing_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        app=APP,
        test_suite="""
import pytest
from app import track


def test_wait_for_one(eventtui, eventtui_collector):
    track(eventtui_collector.http_url, {"event": "signup", "userId": "u1",
          "properties": {"plan": "pro", "cart": {"total": 98, "items": 2}}})
    [event] = eventtui.wait_for("name:signup", properties={"cart": {"total": 98}})
    assert (event.name, event.user_id, event.valid, event.errors) == ("signup", "u1", True, [])
    assert event.properties["plan"] == "pro" and event.context == {}
    assert event.raw["eventtui"]["id"] == event.id


def test_each_test_sees_only_its_own_events(eventtui):
    assert eventtui.events() == []


def test_counts_exact_and_at_least(eventtui, eventtui_collector):
    track(eventtui_collector.http_url, *({"event": "step", "properties": {"i": i}} for i in range(3)))
    assert len(eventtui.wait_for("name:step", count=2)) == 2
    assert len(eventtui.wait_for("name:step", count=3, exact=True)) == 3
    with pytest.raises(AssertionError, match="wanted exactly 2 events matching 'name:step'; 3 arrived"):
        eventtui.wait_for("name:step", count=2, exact=True)


def test_deep_match_is_strict_about_kinds(eventtui, eventtui_collector):
    track(eventtui_collector.http_url, {"event": "n", "properties": {"v": "98"}},
          {"event": "n", "properties": {"v": 98}})
    [event] = eventtui.wait_for("name:n", properties={"v": 98})
    assert event.properties["v"] == 98


def test_order(eventtui, eventtui_collector):
    track(eventtui_collector.http_url, {"event": "cart_viewed"}, {"event": "checkout_started"},
          {"event": "cart_viewed"}, {"event": "checkout_completed", "properties": {"total": 5}})
    started, completed = eventtui.wait_for_sequence(
        ["name:checkout_started", ("name:checkout_completed", {"total": 5})])
    assert started.id < completed.id
    with pytest.raises(AssertionError, match="step 2 of 2, after #"):
        eventtui.wait_for_sequence(["name:checkout_completed", "name:checkout_started"], timeout=0.2)


def test_no_event_and_all_valid(eventtui, eventtui_collector):
    eventtui.assert_no_event("name:error", within=0.1)
    eventtui.assert_all_valid()
    track(eventtui_collector.http_url, {"event": "error", "properties": {"code": 1}})
    with pytest.raises(AssertionError, match="an event matching 'name:error' arrived"):
        eventtui.assert_no_event("name:error", within=0.1)
    eventtui.assert_no_event("name:error", within=0.1, properties={"code": 2})
    track(eventtui_collector.http_url, {"event": "late", "timestamp": "yesterday-ish"})
    with pytest.raises(AssertionError, match="1 events broke the tracking plan"):
        eventtui.assert_all_valid()
""",
    )
    result = run(pytester)
    result.assert_outcomes(passed=6)


def test_a_failing_wait_says_what_came_instead(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        app=APP,
        test_fails="""
from app import track


def test_signup_is_tracked(eventtui, eventtui_collector):
    track(eventtui_collector.http_url,
          {"event": "signup", "properties": {"plan": "free"}},
          {"event": "Sign Up", "properties": {"plan": "pro"}},
          {"event": "page_view", "properties": {"path": "/welcome"}})
    eventtui.wait_for("name:signup", properties={"plan": "pro"}, timeout=0.3)
""",
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "E * eventtui: waited 0.3 s for 1 event matching 'name:signup'"
            " with properties {'plan': 'pro'}; 0 arrived.",
            "E * Nearest misses:",
            "E *   #* 'signup': properties.plan is 'free', wanted 'pro'",
            "E *   #* 'Sign Up': name 'Sign Up' ≠ 'signup' (it differs in separators)",
            "E * Events since the test began (3):",
            'E *   #* \'page_view\' {"path":"/welcome"}',
            "E * Store: */events.db (eventtui open --db *",
        ]
    )
    # The traceback points at the test's own line, not into the plugin.
    assert "pytest_plugin.py" not in result.stdout.str()


def test_xdist_workers_each_get_their_own_collector(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        app=APP,
        test_parallel="""
import json
import os
import pytest
from app import track


@pytest.mark.parametrize("n", range(6))
def test_isolated(n, eventtui, eventtui_collector, tmp_path_factory):
    track(eventtui_collector.http_url, {"event": "job", "properties": {"n": n}})
    [event] = eventtui.wait_for("name:job")
    assert event.properties == {"n": n}
    assert [e.properties["n"] for e in eventtui.events()] == [n]
    record = {"worker": os.environ.get("PYTEST_XDIST_WORKER"),
              "url": eventtui_collector.http_url, "db": str(eventtui_collector.db)}
    with open(os.environ["RECORD"], "a") as f:
        f.write(json.dumps(record) + "\\n")
""",
    )
    record = pytester.path / "record.jsonl"
    pytester._monkeypatch.setenv("RECORD", str(record))
    result = run(pytester, "-n", "2")
    result.assert_outcomes(passed=6)
    by_worker: dict[str, set[tuple[str, str]]] = {}
    for line in record.read_text().splitlines():
        seen = json.loads(line)
        by_worker.setdefault(seen["worker"], set()).add((seen["url"], seen["db"]))
    assert sorted(by_worker) == ["gw0", "gw1"]
    # One collector per worker, each with a store of its own.
    assert all(len(c) == 1 for c in by_worker.values())
    (url0, db0), (url1, db1) = (next(iter(c)) for c in by_worker.values())
    assert url0 != url1 and db0 != db1


def test_eventtui_url_uses_a_running_collector(pytester: pytest.Pytester, tmp_path: Path) -> None:
    collect = Collect(tmp_path / "events.db")
    try:
        http_url = collect.first_line.split()[4]
        pytester.makepyfile(
            app=APP,
            test_remote="""
from app import track


def test_remote(eventtui, eventtui_collector):
    assert eventtui_collector.db is None
    assert eventtui_collector.ws_url.startswith("ws://127.0.0.1:")
    track(eventtui_collector.http_url, {"event": "remote", "properties": {"ok": True}})
    eventtui.wait_for("name:remote", properties={"ok": True})
    eventtui.wait_for("name:nothing", timeout=0.1)
""",
        )
        result = run(pytester, f"--eventtui-url={http_url}")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["E * 'remote' {\"ok\":true}", f"E * Collector: {http_url} (events after id *)"]
        )
        with Reader(tmp_path / "events.db") as reader:
            assert [r.name for r in reader.query()] == ["remote"]
    finally:
        collect.close()


# --- README.md's example, as written -----------------------------------------------------------

README = Path(__file__).parent.parent / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text.split("## Assert on tracking in tests\n", 1)[1]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def readme_failure() -> list[str]:
    """The failure the README shows, as patterns for its lines (the store's path left open)."""
    section = README.read_text().split("## Assert on tracking in tests\n", 1)[1]
    block = section.split("the test fails with:\n\n```\n", 1)[1].split("```", 1)[0]
    patterns = []
    for line in block.splitlines():
        assert line.startswith("E   ")
        line = line[4:].replace("[", "[[]")
        if line.startswith("Store: "):
            line = "Store: */events.db (eventtui open --db *; this test's events have id > 0)"
        patterns.append("E  *" + line)
    return patterns


def test_the_readme_example_passes_as_written(pytester: pytest.Pytester) -> None:
    code = readme_example()
    assert code.startswith("# test_tracking.py")
    pytester.makepyfile(test_tracking=code)
    run(pytester).assert_outcomes(passed=1)


def test_the_readme_example_fails_as_the_readme_says(pytester: pytest.Pytester) -> None:
    code = readme_example()
    # The app sends the wrong plan; the wait is shortened (the README's takes the default 5 s).
    for old, new in (
        ('plan="pro")', 'plan="free")'),
        (
            'properties={"plan": "pro", "cart": {"total": 98}}',
            'properties={"plan": "pro", "cart": {"total": 98}}, timeout=0.5',
        ),
    ):
        assert old in code
        code = code.replace(old, new)
    pytester.makepyfile(test_tracking=code)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    expected = [line.replace("waited 5 s", "waited 0.5 s") for line in readme_failure()]
    result.stdout.fnmatch_lines(expected)
