"""The browser SDKs from npm, posthog-js and @snowplow/browser-tracker, in headless Chromium,
end to end into the store: a page served from localhost (cross-origin to the collector, as a dev
server is) loads each SDK and runs README.md's snippet for it as written.

The SDKs come from tests/browser/package-lock.json (`npm ci` there: .ci/run does it when node is
installed). Without node_modules or Chromium the tests are skipped, saying which is missing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web

from eventtui.collector import Collector
from eventtui.store import EventRow
from tests.conftest import started_collector, until
from tests.test_http import CHROMIUM, Listening, _console
from tests.test_protocols_sdks import readme_block

pytestmark = pytest.mark.asyncio(loop_scope="module")

MODULES = Path(__file__).parent / "browser" / "node_modules"
POSTHOG_JS = MODULES / "posthog-js" / "dist" / "array.full.js"
SNOWPLOW_JS = MODULES / "@snowplow" / "browser-tracker" / "dist" / "index.umd.min.js"


def _missing() -> str | None:
    if CHROMIUM is None:
        return "chromium is not installed (apt-get install chromium)"
    if not POSTHOG_JS.exists() or not SNOWPLOW_JS.exists():
        return "the browser SDKs are not installed: run `npm ci` in tests/browser (needs node)"
    return None


needs_browser = pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/130.0.0.0 Safari/537.36"
)
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
MESSAGE_ID = "0190f3c4-1a2b-7c3d-8e4f-123456789abc"

POSTHOG_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>posthog-js</title>
<script src="/sdk.js"></script>
<script>
%(readme)s
posthog.identify("user-42", { email: "u42@example.com" });
// The same uuid twice: stored once.
for (let i = 0; i < 2; i++) {
  posthog.capture("order_completed", { revenue: 42.5 },
                  { uuid: "%(message_id)s", timestamp: new Date(%(ms)d) });
}
posthog.capture("done", {}, { send_instantly: true });
</script>
"""

SNOWPLOW_PAGE = """<!doctype html>
<meta charset="utf-8">
<title>snowplow</title>
<script src="/sdk.js"></script>
<script>
const { newTracker, trackSelfDescribingEvent, trackPageView, trackStructEvent, setUserId } =
  snowplowBrowserTracking;
%(readme)s
setUserId("user-42");
trackPageView({ timestamp: { type: "ttm", value: %(ms)d } });
trackStructEvent({ category: "shop", action: "add_to_cart", label: "sku-1", value: 2.5 });
trackSelfDescribingEvent({
  event: { schema: "iglu:com.acme/checkout_started/jsonschema/1-0-0", data: { step: 1 } },
  context: [{ schema: "iglu:com.acme/cart/jsonschema/1-0-0", data: { items: 3 } }],
});
</script>
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Collector]:
    c = await started_collector(tmp_path_factory.mktemp("browser") / "events.db", http=True)
    yield c
    await c.stop()


@pytest.fixture
def collector(shared: Collector) -> Listening:
    return Listening.from_now(shared)


async def _serve(page: str, sdk: Path) -> tuple[web.AppRunner, int]:
    async def index(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    async def script(_request: web.Request) -> web.FileResponse:
        return web.FileResponse(sdk, headers={"Content-Type": "text/javascript"})

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/sdk.js", script)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


async def _browse(
    collector: Listening, page: str, sdk: Path, tmp_path: Path, wanted: set[str]
) -> tuple[list[EventRow], str]:
    """Open the page in headless Chromium until the store holds every name in `wanted`; the rows
    and the browser's console."""
    assert CHROMIUM is not None
    site, port = await _serve(page, sdk)
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
        # posthog-js drops events from a user agent that says "HeadlessChrome" (a bot filter):
        # the browser introduces itself as the desktop Chromium it is.
        f"--user-agent={USER_AGENT}",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    with log_path.open("wb") as log:
        browser = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *flags,
            f"http://localhost:{port}/",
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    try:
        try:
            await until(
                lambda: (
                    browser.returncode is not None or {r.name for r in collector.events()} >= wanted
                ),
                timeout=45,
                what=f"the browser's events {sorted(wanted)}",
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{_console(log_path)}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(browser.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(browser.wait(), 10)
        except TimeoutError:
            os.killpg(browser.pid, signal.SIGKILL)
            await browser.wait()
        await site.cleanup()
    return collector.events(), _console(log_path)


def _page(template: str, heading: str, url: str) -> str:
    return template % {
        "readme": readme_block(heading, url),
        "message_id": MESSAGE_ID,
        "ms": int(WHEN.timestamp() * 1000),
    }


@needs_browser
async def test_posthog_js_in_chromium(collector: Listening, tmp_path: Path) -> None:
    page = _page(POSTHOG_PAGE, "posthog-js", collector.url)
    rows, console = await _browse(
        collector, page, POSTHOG_JS, tmp_path, {"signed_up", "order_completed", "done"}
    )

    names = [r.name for r in rows]
    assert names.count("order_completed") == 1, (names, console)
    assert all(r.source == "posthog" for r in rows)
    order = next(r for r in rows if r.name == "order_completed")
    assert (order.user_id, order.message_id, order.sent_at) == (
        "user-42",
        MESSAGE_ID,
        WHEN.timestamp(),
    )
    assert json.loads(order.properties) == {"revenue": 42.5}
    context = json.loads(order.context)
    assert context["$lib"] == "web" and context["$current_url"].startswith("http://localhost:")
    signed_up = next(r for r in rows if r.name == "signed_up")
    assert json.loads(signed_up.properties) == {"plan": "pro"}
    # Before identify, posthog-js's own anonymous id.
    assert signed_up.user_id is None and signed_up.anonymous_id, signed_up.context
    assert "$identify" in names
    assert collector.rejects() == [], console


@needs_browser
async def test_snowplow_browser_tracker_in_chromium(collector: Listening, tmp_path: Path) -> None:
    page = _page(SNOWPLOW_PAGE, "@snowplow/browser-tracker", collector.url)
    wanted = {"signed_up", "page_view", "add_to_cart", "checkout_started"}
    rows, console = await _browse(collector, page, SNOWPLOW_JS, tmp_path, wanted)

    names = [r.name for r in rows]
    # Each event once: a retry after an answer the tracker could not read would repeat its eid.
    assert sorted(names) == sorted(wanted), (names, console)
    assert all(r.source == "snowplow" for r in rows)
    by_name = {r.name: r for r in rows}
    assert json.loads(by_name["signed_up"].properties) == {"plan": "pro"}
    assert by_name["signed_up"].user_id is None and by_name["signed_up"].anonymous_id
    view = by_name["page_view"]
    assert (view.type, view.user_id, view.sent_at) == ("page", "user-42", WHEN.timestamp())
    assert json.loads(view.properties)["url"].startswith("http://localhost:")
    assert json.loads(by_name["add_to_cart"].properties)["value"] == 2.5
    checkout = by_name["checkout_started"]
    assert json.loads(checkout.properties) == {"step": 1}
    contexts = json.loads(checkout.context)["contexts"]
    assert {"schema": "iglu:com.acme/cart/jsonschema/1-0-0", "data": {"items": 3}} in contexts
    assert json.loads(checkout.extra or "{}")["aid"] == "my-app"
    assert collector.rejects() == [], console
