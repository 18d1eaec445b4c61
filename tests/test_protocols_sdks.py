"""The vendors' own Python SDKs from PyPI, end to end into the store: PostHog, Snowplow, Amplitude,
Mixpanel and RudderStack, each pointed at a real collector on port 0 the way README.md says.

Each test checks what the SDK actually sent: names, user ids, properties, timestamps, the source
recorded, and that a repeated message id is stored once."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from eventtui.collector import Collector
from eventtui.store import EventRow
from tests.conftest import started_collector
from tests.test_http import Listening

pytestmark = pytest.mark.asyncio(loop_scope="module")

README = Path(__file__).parent.parent / "README.md"
# The address README.md's snippets point at: the default HTTP port.
README_URL = "http://127.0.0.1:8766"
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Collector]:
    c = await started_collector(tmp_path_factory.mktemp("sdks") / "events.db", http=True)
    yield c
    await c.stop()


@pytest.fixture
def collector(shared: Collector) -> Listening:
    return Listening.from_now(shared)


def readme_block(heading: str, url: str) -> str:
    """The code block under README.md's `**heading**` line, pointed at `url` instead of the
    default address; fails if the block does not use the default address as written."""
    text = README.read_text()
    marker = f"\n**{heading}**"
    assert marker in text, f"README.md has no block headed **{heading}**"
    block = text.split(marker, 1)[1].split("```", 1)[1].split("\n", 1)[1].split("```", 1)[0]
    port = README_URL.rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}" in block, f"the {heading} block does not point at {README_URL}"
    return block.replace(README_URL, url).replace(f"127.0.0.1:{port}", url.removeprefix("http://"))


def run_block(heading: str, url: str, then: str = "") -> dict[str, Any]:
    """Run README.md's Python block for `heading` (plus `then`), as written, against `url`."""
    namespace: dict[str, Any] = {}
    code = readme_block(heading, url) + "\n" + then
    exec(compile(code, f"README.md ({heading})", "exec"), namespace)
    return namespace


def by_name(rows: list[EventRow]) -> dict[str, EventRow]:
    return {r.name: r for r in rows}


# --- PostHog ------------------------------------------------------------------------------------


def _posthog(url: str, message_id: str) -> None:
    from posthog import Posthog

    # The README's setting, then more calls with the same client.
    namespace = run_block("posthog (Python)", url)
    posthog = namespace["posthog"]
    assert isinstance(posthog, Posthog)
    for _ in range(2):  # the same uuid twice: stored once
        posthog.capture(
            "order_completed",
            distinct_id="user-42",
            properties={"revenue": 42.5, "items": [1, 2]},
            timestamp=WHEN,
            uuid=message_id,
        )
    posthog.set(distinct_id="user-42", properties={"email": "u42@example.com"})
    posthog.alias("user-42", "anon-7")
    posthog.flush()
    posthog.shutdown()
    # gzip, as `gzip=True` sends it.
    gzipped = Posthog("phc_any_key", host=url, gzip=True)
    gzipped.capture("gzipped", distinct_id="user-43")
    gzipped.shutdown()


async def test_posthog_python_events_are_stored(collector: Listening) -> None:
    message_id = str(uuid.uuid4())
    await asyncio.to_thread(_posthog, collector.url, message_id)

    rows = collector.events()
    names = [r.name for r in rows]
    assert names.count("order_completed") == 1, names
    assert set(names) == {"signed_up", "order_completed", "$set", "$create_alias", "gzipped"}
    row = by_name(rows)["order_completed"]
    assert (row.source, row.type, row.user_id, row.message_id) == (
        "posthog",
        "track",
        "user-42",
        message_id,
    )
    assert json.loads(row.properties) == {"revenue": 42.5, "items": [1, 2]}
    assert json.loads(row.context)["$lib"] == "posthog-python"  # PostHog's own, in context
    assert row.sent_at == WHEN.timestamp()
    signed_up = by_name(rows)["signed_up"]
    assert (signed_up.user_id, json.loads(signed_up.properties)) == ("user-1", {"plan": "pro"})
    assert by_name(rows)["$set"].type == "identify"
    assert json.loads(by_name(rows)["$set"].extra or "{}")["$set"] == {"email": "u42@example.com"}
    assert by_name(rows)["$create_alias"].type == "alias"
    assert by_name(rows)["gzipped"].user_id == "user-43"
    assert all(r.source == "posthog" for r in rows)
    assert collector.rejects() == []


# --- Snowplow -----------------------------------------------------------------------------------


def _snowplow(url: str) -> None:
    from snowplow_tracker import (
        Emitter,
        PageView,
        SelfDescribing,
        SelfDescribingJson,
        StructuredEvent,
        Subject,
        Tracker,
    )

    namespace = run_block("snowplow-tracker (Python)", url)
    namespace["tracker"].flush()
    host = url.removeprefix("http://")
    # Two emitters, POST and GET: every event goes out twice with one event id (`eid`).
    emitters = [
        Emitter(host, protocol="http", method="post", batch_size=1),
        Emitter(host, protocol="http", method="get"),
    ]
    subject = Subject().set_user_id("user-42").set_domain_user_id("duid-1")
    tracker = Tracker(namespace="test", emitters=emitters, app_id="shop", subject=subject)
    ms = WHEN.timestamp() * 1000
    tracker.track(PageView(page_url="http://shop.test/cart", page_title="Cart", true_timestamp=ms))
    tracker.track(StructuredEvent(category="shop", action="add_to_cart", label="sku-1", value=2.5))
    tracker.track(
        SelfDescribing(
            SelfDescribingJson("iglu:com.acme/checkout_started/jsonschema/1-0-0", {"step": 1}),
            context=[SelfDescribingJson("iglu:com.acme/cart/jsonschema/1-0-0", {"items": 3})],
        )
    )
    tracker.flush()


async def test_snowplow_python_events_are_stored(collector: Listening) -> None:
    await asyncio.to_thread(_snowplow, collector.url)

    rows = collector.events()
    names = [r.name for r in rows]
    # Each event once, though both emitters sent it.
    assert sorted(names) == sorted(["signed_up", "page_view", "add_to_cart", "checkout_started"]), (
        names
    )
    page = by_name(rows)["page_view"]
    assert (page.source, page.type, page.user_id, page.anonymous_id) == (
        "snowplow",
        "page",
        "user-42",
        "duid-1",
    )
    assert json.loads(page.properties) == {"url": "http://shop.test/cart", "title": "Cart"}
    assert page.sent_at == pytest.approx(WHEN.timestamp(), abs=0.001)
    assert page.message_id and re.fullmatch(r"[0-9a-f-]{36}", page.message_id)
    assert json.loads(page.extra or "{}")["aid"] == "shop"
    structured = by_name(rows)["add_to_cart"]
    assert json.loads(structured.properties) == {
        "category": "shop",
        "action": "add_to_cart",
        "label": "sku-1",
        "value": 2.5,
    }
    checkout = by_name(rows)["checkout_started"]
    assert json.loads(checkout.properties) == {"step": 1}
    context = json.loads(checkout.context)
    assert context["schema"] == "iglu:com.acme/checkout_started/jsonschema/1-0-0"
    assert context["contexts"] == [
        {"schema": "iglu:com.acme/cart/jsonschema/1-0-0", "data": {"items": 3}}
    ]
    assert json.loads(by_name(rows)["signed_up"].properties) == {"plan": "pro"}
    assert collector.rejects() == []


# --- Amplitude ----------------------------------------------------------------------------------


def _amplitude(url: str, insert_id: str) -> list[tuple[int, str]]:
    from amplitude import BaseEvent, EventOptions, Identify

    answers: list[tuple[int, str]] = []

    def callback(event: Any, code: int, message: str | None = None) -> None:
        answers.append((code, event.event_type))

    namespace = run_block("amplitude-analytics (Python)", url)
    client = namespace["client"]
    client.configuration.callback = callback
    ms = int(WHEN.timestamp() * 1000)
    for _ in range(2):  # the same insert_id twice: stored once
        client.track(
            BaseEvent(
                event_type="Order Completed",
                user_id="user-42",
                device_id="device-42",
                time=ms,
                insert_id=insert_id,
                event_properties={"revenue": 42.5},
            )
        )
        client.flush()
    identify = Identify().set("plan", "pro")
    client.identify(identify, EventOptions(user_id="user-42"))
    client.shutdown()
    return answers


async def test_amplitude_python_events_are_stored(collector: Listening) -> None:
    insert_id = str(uuid.uuid4())
    answers = await asyncio.to_thread(_amplitude, collector.url, insert_id)

    assert {code for code, _ in answers} == {200}, answers
    rows = collector.events()
    names = [r.name for r in rows]
    assert sorted(names) == ["$identify", "Order Completed", "Signed Up"], names
    row = by_name(rows)["Order Completed"]
    assert (row.source, row.type, row.user_id, row.anonymous_id, row.message_id) == (
        "amplitude",
        "track",
        "user-42",
        "device-42",
        insert_id,
    )
    assert json.loads(row.properties) == {"revenue": 42.5}
    assert row.sent_at == WHEN.timestamp()
    assert json.loads(row.extra or "{}")["library"].startswith("amplitude-python/")
    identify = by_name(rows)["$identify"]
    assert identify.type == "identify"
    assert json.loads(identify.context)["traits"] == {"$set": {"plan": "pro"}}
    assert collector.rejects() == []


def _amplitude_batch(url: str) -> list[int]:
    from amplitude import Amplitude, BaseEvent, Config

    codes: list[int] = []
    client = Amplitude(
        "any-api-key",
        Config(
            server_url=f"{url}/batch",
            use_batch=True,
            callback=lambda event, code, message=None: codes.append(code),
        ),
    )
    client.track(BaseEvent(event_type="Batched", user_id="user-42"))
    client.shutdown()
    return codes


async def test_amplitude_batch_api_events_are_stored(collector: Listening) -> None:
    assert await asyncio.to_thread(_amplitude_batch, collector.url) == [200]
    assert [(r.name, r.source) for r in collector.events()] == [("Batched", "amplitude")]


# --- Mixpanel -----------------------------------------------------------------------------------


def _mixpanel(url: str, insert_id: str) -> None:
    namespace = run_block("mixpanel (Python)", url)
    mp = namespace["mp"]
    seconds = WHEN.timestamp()
    for _ in range(2):  # the same $insert_id twice: stored once
        mp.track(
            "user-42",
            "Order Completed",
            {"revenue": 42.5, "time": seconds, "$insert_id": insert_id},
        )
    mp.people_set("user-42", {"$email": "u42@example.com"})
    mp.track("$device:dev-9", "Browsed")  # an anonymous id, as Mixpanel's SDKs make them
    mp.import_data(
        "any-api-key", "user-42", "Imported", 1_700_000_000, {"old": True}, api_secret="s"
    )


async def test_mixpanel_python_events_are_stored(collector: Listening) -> None:
    insert_id = uuid.uuid4().hex
    # The SDK raises on any answer but {"status": 1}: getting through is the SDK's own check.
    await asyncio.to_thread(_mixpanel, collector.url, insert_id)

    rows = collector.events()
    names = [r.name for r in rows]
    assert sorted(names) == ["$set", "Browsed", "Imported", "Order Completed", "Signed Up"], names
    row = by_name(rows)["Order Completed"]
    assert (row.source, row.type, row.user_id, row.message_id) == (
        "mixpanel",
        "track",
        "user-42",
        insert_id,
    )
    assert json.loads(row.properties) == {"revenue": 42.5}
    assert json.loads(row.context)["mp_lib"] == "python"
    assert row.sent_at == pytest.approx(WHEN.timestamp())
    profile = by_name(rows)["$set"]
    assert (profile.type, profile.user_id, json.loads(profile.properties)) == (
        "identify",
        "user-42",
        {"$email": "u42@example.com"},
    )
    browsed = by_name(rows)["Browsed"]
    assert (browsed.user_id, browsed.anonymous_id) == (None, "dev-9")
    assert by_name(rows)["Imported"].sent_at == 1_700_000_000
    assert collector.rejects() == []


# --- RudderStack --------------------------------------------------------------------------------


def _rudderstack(url: str, message_id: str) -> None:
    namespace = run_block("rudder-sdk-python", url)
    analytics = namespace["rudder_analytics"]
    for _ in range(2):  # the same messageId twice: stored once
        analytics.track(
            "user-42", "Order Completed", {"revenue": 42.5}, timestamp=WHEN, message_id=message_id
        )
    analytics.identify("user-42", {"email": "u42@example.com"})
    analytics.flush()
    analytics.shutdown()


async def test_rudderstack_python_events_are_stored_as_segment_calls(
    collector: Listening,
) -> None:
    message_id = str(uuid.uuid4())
    await asyncio.to_thread(_rudderstack, collector.url, message_id)

    rows = collector.events()
    assert sorted(r.name for r in rows) == ["Order Completed", "Signed Up", "identify"]
    row = by_name(rows)["Order Completed"]
    # RudderStack's SDKs speak Segment's API: the protocol recorded is Segment's.
    assert (row.source, row.type, row.user_id, row.message_id) == (
        "segment",
        "track",
        "user-42",
        message_id,
    )
    assert json.loads(row.properties) == {"revenue": 42.5}
    assert row.sent_at == WHEN.timestamp()
    assert json.loads(row.extra or "{}")["channel"] == "server"
    identify = by_name(rows)["identify"]
    assert json.loads(identify.context)["traits"] == {"email": "u42@example.com"}
    assert collector.rejects() == []
