"""The HTTP test API against a real collector on port 0, with a real HTTP client: cursors, events,
waits woken by the commit, timeout diagnoses with near misses, summaries, bad input, the guard."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from eventtui.collector import Collector
from tests.conftest import started_collector, until

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Collector]:
    c = await started_collector(tmp_path_factory.mktemp("api") / "events.db", http=True)
    yield c
    await c.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


class Api:
    """One collector's test API, as a test suite calls it."""

    def __init__(self, collector: Collector, session: aiohttp.ClientSession) -> None:
        self.collector = collector
        self.url = collector.http_url or ""
        self.session = session

    async def get(
        self, path: str, headers: dict[str, str] | None = None, **params: object
    ) -> tuple[int, Any]:
        query = {k: str(v) for k, v in params.items()}
        async with self.session.get(self.url + path, params=query, headers=headers) as response:
            assert response.content_type == "application/json"
            return response.status, await response.json()

    async def cursor(self) -> int:
        status, body = await self.get("/api/cursor")
        assert status == 200
        return int(body["last_id"])

    async def send(self, *events: dict[str, Any]) -> None:
        """POST events; returns once they are committed (the collector answers after commit)."""
        async with self.session.post(self.url + "/events", data=json.dumps(events)) as response:
            assert response.status == 200, await response.text()

    async def open_waits(self) -> int:
        return len(self.collector.http.api._waits)


@pytest.fixture
def api(shared: Collector, http: aiohttp.ClientSession) -> Api:
    return Api(shared, http)


def names(body: dict[str, Any]) -> list[str]:
    return [e["event"] for e in body["events"]]


async def test_a_wait_is_answered_by_the_commit_of_its_event(api: Api) -> None:
    after = await api.cursor()
    wait = asyncio.create_task(
        api.get("/api/wait", filter="name:signup", after=after, timeout="10s")
    )
    await until(lambda: wait.done() or api.collector.http.api._waits, what="the wait to open")
    assert not wait.done()

    await api.send({"event": "signup", "userId": "u1", "properties": {"plan": "pro"}})
    committed = time.monotonic()
    status, body = await wait
    latency = time.monotonic() - committed

    assert status == 200, body
    assert latency < 1.0, f"answered {latency:.3f} s after the commit (timeout 10 s)"
    [event] = body["events"]
    # As `eventtui export` writes it: the producer's event plus our own key.
    assert event["event"] == "signup" and event["userId"] == "u1"
    assert event["properties"] == {"plan": "pro"}
    assert event["eventtui"]["valid"] is True
    assert body["matched"] == 1 and body["last_id"] == event["eventtui"]["id"] > after


async def test_events_committed_before_the_wait_answer_it_at_once(api: Api) -> None:
    after = await api.cursor()
    await api.send({"event": "early", "properties": {"n": 1}}, {"event": "early"})
    started = time.monotonic()
    status, body = await api.get("/api/wait", filter="early", after=after, count=2, timeout="10s")
    assert status == 200
    assert time.monotonic() - started < 1.0
    assert names(body) == ["early", "early"]


async def test_a_wait_for_a_count_answers_only_once_that_many_match(api: Api) -> None:
    after = await api.cursor()
    wait = asyncio.create_task(
        api.get("/api/wait", filter="name:step", after=after, count=3, timeout="10s")
    )
    await api.send({"event": "step", "properties": {"i": 1}}, {"event": "other"})
    await api.send({"event": "step", "properties": {"i": 2}})
    # Two committed (a request through the same reader thread as the scans has been answered
    # since): still waiting.
    await api.cursor()
    assert not wait.done()
    await api.send(
        {"event": "step", "properties": {"i": 3}}, {"event": "step", "properties": {"i": 4}}
    )
    status, body = await wait
    assert status == 200
    assert [e["properties"]["i"] for e in body["events"]] == [1, 2, 3]
    assert body["last_id"] == body["events"][-1]["eventtui"]["id"]


async def test_a_timeout_says_what_came_instead_with_the_nearest_misses(api: Api) -> None:
    after = await api.cursor()
    await api.send(
        {"event": "sign_up", "properties": {"plan": "free"}},
        {"event": "signup", "properties": {"plan": "pro"}},
        {"event": "page_view", "properties": {"path": "/"}},
        {"event": "sign_up", "properties": {"plan": "free", "again": True}},
    )
    started = time.monotonic()
    status, body = await api.get(
        "/api/wait", filter="name:sign_up plan=pro", after=after, timeout="300ms"
    )
    assert 0.3 <= time.monotonic() - started < 2.0
    assert status == 408
    assert body["matched"] == 0 and body["events"] == []
    assert body["arrived"] == 4
    assert body["names"] == {"page_view": 1, "sign_up": 2, "signup": 1}
    misses = [(m["event"]["event"], m["why"], m["alike"]) for m in body["near_misses"]]
    # The same name with another plan first (the newest of two alike), then the similar name.
    assert misses == [
        ("sign_up", ["properties.plan is 'free', wanted 'pro'"], 1),
        ("signup", ["name 'signup' ≠ 'sign_up' (it differs in separators)"], 0),
    ]
    assert body["near_misses"][0]["event"]["properties"] == {"plan": "free", "again": True}
    assert body["store"] == str(api.collector.db_path)
    assert "\n" not in body["error"]
    assert body["error"].startswith("timed out after 0.3")
    assert "0 of 1 event matching 'name:sign_up plan=pro'" in body["error"]


async def test_near_misses_of_a_filter_without_a_name_are_the_closest_recent_events(
    api: Api,
) -> None:
    after = await api.cursor()
    await api.send(
        {"event": "a", "properties": {"plan": "free", "seats": 2}},
        {"event": "b", "properties": {"plan": "pro", "seats": 1}},
        {"event": "c"},
    )
    status, body = await api.get(
        "/api/wait", filter="plan=pro seats>=2", after=after, timeout="0.1"
    )
    assert status == 408
    whys = [m["why"] for m in body["near_misses"]]
    # Fewest failing terms first; among equals, the newest.
    assert whys == [
        ["properties.seats is 1, wanted >= 2"],
        ["properties.plan is 'free', wanted 'pro'"],
        ["properties.plan is missing, wanted 'pro'", "properties.seats is missing, wanted >= 2"],
    ]


async def test_two_concurrent_waits_each_see_only_what_came_after_their_cursor(api: Api) -> None:
    first_cursor = await api.cursor()
    await api.send({"event": "order", "properties": {"n": 1}})
    second_cursor = await api.cursor()
    assert second_cursor > first_cursor
    first = asyncio.create_task(
        api.get("/api/wait", filter="name:order", after=first_cursor, count=2, timeout="10s")
    )
    second = asyncio.create_task(
        api.get("/api/wait", filter="name:order", after=second_cursor, count=1, timeout="10s")
    )
    await until(lambda: len(api.collector.http.api._waits) >= 2, what="both waits to open")
    assert not first.done() and not second.done()

    await api.send({"event": "order", "properties": {"n": 2}})
    (status1, body1), (status2, body2) = await asyncio.gather(first, second)
    assert (status1, status2) == (200, 200)
    assert [e["properties"]["n"] for e in body1["events"]] == [1, 2]
    assert [e["properties"]["n"] for e in body2["events"]] == [2]


async def test_events_pages_through_matches_after_a_cursor(api: Api) -> None:
    after = await api.cursor()
    await api.send(*({"event": "paged", "properties": {"i": i}} for i in range(5)), {"event": "x"})
    status, body = await api.get("/api/events", filter="name:paged", after=after, limit=3)
    assert status == 200
    assert [e["properties"]["i"] for e in body["events"]] == [0, 1, 2]
    status, body = await api.get("/api/events", filter="name:paged", after=body["last_id"])
    assert [e["properties"]["i"] for e in body["events"]] == [3, 4]
    # Past the last match, the cursor is the committed high-water mark: nothing is read twice.
    assert body["last_id"] == await api.cursor()
    status, body = await api.get("/api/events", after=after)
    assert names(body) == ["paged"] * 5 + ["x"]


async def test_summary_counts_names_plan_violations_and_refusals(api: Api) -> None:
    status, cursor = await api.get("/api/cursor")
    await api.send(
        {"event": "ok"},
        {"event": "ok"},
        {"event": "late", "timestamp": "not a time"},  # stored, invalid
    )
    async with api.session.post(api.url + "/events", data=b"{not json") as response:
        assert response.status == 400
    status, body = await api.get(
        "/api/summary", after=cursor["last_id"], rejects_after=cursor["last_reject_id"]
    )
    assert status == 200
    assert body["names"] == {"late": {"count": 1, "invalid": 1}, "ok": {"count": 2, "invalid": 0}}
    assert body["events"] == 3 and body["invalid"] == 1
    [violation] = body["violations"]
    assert violation["name"] == "late" and "timestamp" in violation["errors"][0]
    assert body["refused"] == 1
    assert body["refusals"][0]["raw"] == "{not json"
    assert body["last_reject_id"] == cursor["last_reject_id"] + 1
    status, later = await api.get("/api/cursor")
    assert later == {"last_id": body["last_id"], "last_reject_id": body["last_reject_id"]}


@pytest.mark.parametrize(
    ("path", "params", "said"),
    [
        ("/api/wait", {"filter": "plan="}, "filter 'plan=' (column 1): a value is missing"),
        ("/api/events", {"filter": "(a"}, "filter '(' (column 1): this '(' is never closed"),
        ("/api/wait", {"after": "x"}, "after must be a whole number, an id from /api/cursor"),
        ("/api/wait", {"after": "-1"}, "after must be a whole number"),
        ("/api/wait", {"count": "0"}, "count must be a whole number, 1 to 10,000; got '0'"),
        ("/api/wait", {"timeout": "soon"}, 'timeout: "soon" is not a duration'),
        ("/api/wait", {"timeout": "0s"}, "timeout must be over 0 and at most 300s"),
        ("/api/wait", {"timeout": "1h"}, "timeout must be over 0 and at most 300s"),
        ("/api/events", {"limit": "5000"}, "limit must be a whole number, 1 to 1,000"),
        ("/api/events", {"cursor": "3"}, "unknown parameter 'cursor' for /api/events: it takes"),
        ("/api/summary", {"filter": "x"}, "unknown parameter 'filter' for /api/summary"),
        ("/api/cursor", {"after": "1"}, "unknown parameter 'after' for /api/cursor: it takes none"),
    ],
)
async def test_bad_input_is_a_400_with_one_line_naming_it(
    api: Api, path: str, params: dict[str, str], said: str
) -> None:
    status, body = await api.get(path, **params)
    assert status == 400
    assert body["ok"] is False
    assert said in body["error"]
    assert "\n" not in body["error"]


async def test_a_parameter_given_twice_is_a_400(api: Api) -> None:
    async with api.session.get(api.url + "/api/events?after=1&after=2") as response:
        assert response.status == 400
        assert (await response.json())["error"] == "parameter 'after' is given more than once"


async def test_the_api_has_the_ingestion_guard(api: Api) -> None:
    status, body = await api.get("/api/cursor", headers={"Origin": "https://evil.example"})
    assert status == 403 and "Origin" in body["error"]
    status, body = await api.get("/api/wait", headers={"Host": "attacker.example"}, timeout="0.1")
    assert status == 403 and "Host" in body["error"]
    # A local page may read the answers (CORS), as it may send.
    async with api.session.get(
        api.url + "/api/cursor", headers={"Origin": "http://localhost:3000"}
    ) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


async def test_the_api_requires_the_token_when_one_is_set(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    collector = await started_collector(tmp_path / "events.db", http=True, token="s3cret")
    try:
        api = Api(collector, http)
        status, body = await api.get("/api/cursor")
        assert status == 403 and "token" in body["error"]
        assert (await api.get("/api/cursor", token="s3cret"))[0] == 200
        bearer = {"Authorization": "Bearer s3cret"}
        assert (await api.get("/api/events", headers=bearer))[0] == 200
    finally:
        await collector.stop()


async def test_stopping_answers_an_open_wait_at_once(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    collector = await started_collector(tmp_path / "events.db", http=True)
    api = Api(collector, http)
    wait = asyncio.create_task(api.get("/api/wait", filter="never", timeout="300s"))
    await until(lambda: wait.done() or collector.http.api._waits, what="the wait to open")
    started = time.monotonic()
    await collector.stop()
    assert time.monotonic() - started < 5
    status, body = await wait
    assert status == 503 and body["error"] == "the collector is stopping"


# --- a real browser: the page sends, the test (and the page itself) await through /api/wait -------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>eventtui test API from a browser</title>
<script>
const params = new URLSearchParams(location.search);
const wsUrl = params.get("ws"), httpUrl = params.get("http");
const say = (m) => console.log("eventtui-test: " + m);

async function main() {
  // README's WebSocket snippet
  const ws = new WebSocket(wsUrl);
  ws.onmessage = (m) => console.log("eventtui:", m.data);
  ws.onopen = () => ws.send(JSON.stringify({ event: "Signed Up", userId: "user-1", properties: { plan: "pro" } }));

  // README's fetch snippet
  await fetch(httpUrl + "/events", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify([{ event: "Signed Up" }, { event: "Plan Chosen", properties: { plan: "pro" } }]),
  });

  // The page awaits the websocket's event itself with README's fetch call (what a Playwright
  // test's page.evaluate would do), and reports what it got.
  /*README_WAIT*/
  say("wait answered " + response.status);
  navigator.sendBeacon(httpUrl + "/v1/track", JSON.stringify({
    event: "page_saw",
    properties: { status: response.status, users: answer.events.map((e) => e.userId) },
  }));
}
main().catch((e) => say("failed: " + e));
</script>
"""


def page_with_readme_wait() -> str:
    """PAGE, awaiting its event with the README's `fetch` call (pointed at this collector)."""
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### From any test runner: the HTTP API\n", 1)[1]
    block = section.split("```js\n", 1)[1].split("```", 1)[0]
    for old, new in (
        ("const after = 120;", 'const after = Number(params.get("after"));'),
        ('fetch("http://127.0.0.1:8766/api/wait?"', 'fetch(httpUrl + "/api/wait?"'),
        ('timeout: "5s"', 'timeout: "20s"'),
    ):
        assert old in block
        block = block.replace(old, new)
    return PAGE.replace("/*README_WAIT*/", block)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
async def test_a_browser_page_sends_and_the_test_awaits_through_the_api(
    api: Api, tmp_path: Path
) -> None:
    assert CHROMIUM is not None
    after = await api.cursor()
    html = page_with_readme_wait()

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    site = web.AppRunner(app, access_log=None)
    await site.setup()
    await web.TCPSite(site, "127.0.0.1", 0).start()
    port = site.addresses[0][1]
    # localhost vs 127.0.0.1: the page is cross-origin to the collector, as a dev server would be.
    url = f"http://localhost:{port}/?ws={api.collector.ws_url}&http={api.url}&after={after}"
    log_path = tmp_path / "chromium.log"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    with log_path.open("wb") as log:
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM, *flags, url, stdout=log, stderr=log, start_new_session=True
        )
    try:
        status, body = await api.get(
            "/api/wait", filter='name:"Signed Up"', after=after, count=2, timeout="30s"
        )
        console = log_path.read_text(errors="replace")
        assert status == 200, f"{body.get('error')}\n{console}"
        assert sorted(str(e.get("userId")) for e in body["events"]) == ["None", "user-1"]
        status, body = await api.get(
            "/api/wait", filter="name:page_saw", after=after, timeout="30s"
        )
        assert status == 200, f"{body.get('error')}\n{log_path.read_text(errors='replace')}"
        # The page read its own wait's answer (CORS), committed by then: a 200 with its event.
        assert body["events"][0]["properties"] == {"status": 200, "users": ["user-1"]}
        status, body = await api.get("/api/events", filter='name:"Plan Chosen"', after=after)
        assert [e["properties"] for e in body["events"]] == [{"plan": "pro"}]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(browser.wait(), 10)
        except TimeoutError:
            os.killpg(browser.pid, signal.SIGKILL)
            await browser.wait()
        await site.cleanup()


async def test_a_wait_from_long_ago_is_diagnosed_on_its_newest_events(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from eventtui.collector import api as test_api

    monkeypatch.setattr(test_api, "DIAGNOSED_EVENTS", 2)
    after = await api.cursor()
    await api.send(*({"event": "old", "properties": {"i": i}} for i in range(5)))
    status, body = await api.get("/api/wait", filter="name:olds", after=after, timeout="0.05")
    assert status == 408
    assert body["diagnosed_after"] == after + 3
    assert body["arrived"] == 2 and body["names"] == {"old": 2}
    assert [m["event"]["properties"]["i"] for m in body["near_misses"]] == [4]
    assert body["near_misses"][0]["alike"] == 1
