"""Bad input to each vendor protocol, over real HTTP to a real collector: a 400 with one line
naming what was wrong (and which event, by index), the refusal kept in `rejects`, nothing
acknowledged that was not stored, and the answer in the form the vendor's SDK reads."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from eventtui.collector import Collector
from tests.conftest import started_collector
from tests.test_http import Listening

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Collector]:
    c = await started_collector(tmp_path_factory.mktemp("bad") / "events.db", http=True)
    yield c
    await c.stop()


@pytest.fixture
def collector(shared: Collector) -> Listening:
    return Listening.from_now(shared)


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def form(data: str) -> bytes:
    return urllib.parse.urlencode({"data": data, "verbose": "1"}).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SNOWPLOW = "/com.snowplowanalytics.snowplow/tp2"
B64 = base64.b64encode


def ue(payload: Any) -> dict[str, Any]:
    return {"schema": "iglu:x", "data": [{"e": "ue", "ue_pr": json.dumps(payload), "eid": "1"}]}


# (id, method, path, body, headers, the reason the answer and the reject give)
REFUSED: list[tuple[str, str, str, Any, dict[str, str], str]] = [
    ("posthog not json", "POST", "/batch/", b"{nope", {}, "not valid JSON"),
    ("posthog no id", "POST", "/capture/", {"event": "a"}, {}, 'no "distinct_id"'),
    (
        "posthog name not a string",
        "POST",
        "/e/",
        [{"event": 7, "distinct_id": "u"}],
        {},
        'the event name ("event") must be a string, not a number',
    ),
    (
        "posthog bad gzip",
        "POST",
        "/e/",
        gzip.compress(b'[{"event": "a"}]')[:12],
        {"Content-Type": "text/plain"},
        "the body is not valid gzip data",
    ),
    (
        "posthog data not base64",
        "POST",
        "/e/?compression=base64",
        form("%%%"),
        FORM,
        'the "data" field is not valid base64',
    ),
    (
        "posthog properties not an object",
        "POST",
        "/batch/",
        {"batch": [{"event": "a", "distinct_id": "u", "properties": [1]}]},
        {},
        "Expected `object | null`, got `array` - at `$.properties`",
    ),
    ("snowplow get without e", "GET", "/i?eid=1", None, {}, 'the query has no "e"'),
    (
        "snowplow data not a list",
        "POST",
        SNOWPLOW,
        {"schema": "iglu:x", "data": "nope"},
        {},
        '"data" is a string',
    ),
    (
        "snowplow ue_px not base64",
        "POST",
        SNOWPLOW,
        {"schema": "iglu:x", "data": [{"e": "ue", "ue_px": "!!!"}]},
        {},
        'the self-describing event ("ue_px") is not valid base64',
    ),
    (
        "snowplow schema not iglu",
        "POST",
        SNOWPLOW,
        ue({"schema": "s", "data": {"schema": "nope", "data": {}}}),
        {},
        "schema 'nope' is not an Iglu URI",
    ),
    ("snowplow no e", "POST", SNOWPLOW, {"data": [{"eid": "1"}]}, {}, 'the event has no "e"'),
    (
        "snowplow ue_pr with NaN",
        "POST",
        SNOWPLOW,
        {
            "data": [
                {
                    "e": "ue",
                    "ue_pr": '{"data": {"schema": "iglu:a/b/jsonschema/1-0-0", "data": {"x": NaN}}}',
                }
            ]
        },
        {},
        'the self-describing event ("ue_pr"): not valid JSON',
    ),
    ("amplitude no events", "POST", "/2/httpapi", {"api_key": "k"}, {}, 'the body has no "events"'),
    (
        "amplitude no ids",
        "POST",
        "/2/httpapi",
        {"events": [{"event_type": "a"}]},
        {},
        'neither "user_id" nor "device_id"',
    ),
    (
        "amplitude no name",
        "POST",
        "/batch",
        {"events": [{"user_id": "u"}]},
        {},
        'the event name ("event_type") is missing',
    ),
    ("mixpanel no data", "POST", "/track", b"verbose=1", FORM, 'the form body has no "data" field'),
    (
        "mixpanel not json",
        "POST",
        "/track",
        form(B64(b"{nope").decode()),
        FORM,
        "not valid JSON",
    ),
    (
        "mixpanel engage without operation",
        "POST",
        "/engage",
        form(json.dumps({"$distinct_id": "u"})),
        FORM,
        "the update has no operation",
    ),
    (
        "mixpanel get data not base64",
        "GET",
        "/track?data=%25%25",
        None,
        {},
        'the "data" field is not valid base64',
    ),
]


async def send(
    http: aiohttp.ClientSession, url: str, method: str, body: Any, headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    data = body if body is None or isinstance(body, bytes) else json.dumps(body)
    async with http.request(method, url, data=data, headers=headers) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "reason"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
async def test_bad_input_is_a_400_naming_it_recorded_and_nothing_stored(
    collector: Listening,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
    reason: str,
) -> None:
    status, answer = await send(http, collector.url + path, method, body, headers)

    assert status == 400, answer
    assert answer["ok"] is False and reason in answer["error"], answer
    assert "\n" not in answer["error"]
    assert collector.events() == []
    (reject,) = collector.rejects()
    assert reason in reject["reason"]


async def test_vendor_answers_carry_what_their_sdks_read(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    status, answer = await send(http, collector.url + "/2/httpapi", "POST", {"x": 1}, {})
    assert (status, answer["code"]) == (400, 400)
    status, answer = await send(http, collector.url + "/track", "POST", b"verbose=1", FORM)
    assert (status, answer["status"]) == (400, 0)
    status, answer = await send(http, collector.url + "/capture/", "POST", {"event": "a"}, {})
    assert (status, answer["status"]) == (400, 0)


# (id, path, body, headers, the index refused, its reason): one good event and one bad in a body.
def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


PARTIAL: list[tuple[str, str, Any, dict[str, str], int, str]] = [
    (
        "posthog",
        "/batch/",
        {"batch": [{"event": "good", "distinct_id": "u"}, {"distinct_id": "u"}]},
        {},
        1,
        'the event name ("event") is missing',
    ),
    (
        "snowplow",
        SNOWPLOW,
        {"data": [{"e": "pv", "eid": "sp-good"}, {"eid": "sp-bad"}]},
        {},
        1,
        'the event has no "e" (the event kind)',
    ),
    (
        # An ordinary field nested past the limit went to `extra` at any depth; every other
        # protocol refuses such an event.
        "snowplow nested too deeply",
        SNOWPLOW,
        {"data": [{"e": "pv", "eid": "sp-ok"}, {"e": "pv", "eid": "sp-deep", "x": _nested(80)}]},
        {},
        1,
        "nesting is deeper than 64 levels",
    ),
    (
        "amplitude",
        "/2/httpapi",
        {"events": [{"event_type": "x"}, {"event_type": "good", "device_id": "d"}]},
        {},
        0,
        'the event has neither "user_id" nor "device_id"',
    ),
    (
        "mixpanel",
        "/track",
        form(json.dumps([{"event": "good", "properties": {"distinct_id": "u"}}, [1]])),
        FORM,
        1,
        "an event must be a JSON object, not an array",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "headers", "index", "reason"),
    [case[1:] for case in PARTIAL],
    ids=[case[0] for case in PARTIAL],
)
async def test_one_bad_event_is_refused_by_index_and_the_rest_stored(
    collector: Listening,
    http: aiohttp.ClientSession,
    path: str,
    body: Any,
    headers: dict[str, str],
    index: int,
    reason: str,
) -> None:
    status, answer = await send(http, collector.url + path, "POST", body, headers)

    assert status == 200, answer
    assert answer["accepted"] == 1
    assert answer["refused"] == [{"error": reason, "index": index}]
    assert len(collector.events()) == 1  # what was acknowledged is what is stored
    (reject,) = collector.rejects()
    assert reject["reason"] == reason


async def test_a_body_over_the_limit_is_413_in_the_vendor_form(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    small = await started_collector(tmp_path / "small.db", http=True, max_message_bytes=1000)
    try:
        big = {"events": [{"event_type": "x" * 2000, "user_id": "u"}]}
        url = small.http_url or ""
        status, answer = await send(http, url + "/2/httpapi", "POST", big, {})
        assert (status, answer["code"]) == (413, 413)
        assert "over the 1,000-byte limit" in answer["error"]
        listening = Listening(small)
        assert listening.events() == [] and len(listening.rejects()) == 1
    finally:
        await small.stop()


async def test_posthog_flag_and_config_requests_get_empty_answers(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    for path in ("/flags/?v=2", "/decide/?v=3"):
        status, answer = await send(http, collector.url + path, "POST", {"token": "t"}, {})
        assert status == 200 and answer["featureFlags"] == {} and answer["flags"] == {}
    status, answer = await send(http, collector.url + "/array/phc_x/config", "GET", None, {})
    assert status == 200 and answer["sessionRecording"] is False
    async with http.get(collector.url + "/array/phc_x/config.js") as response:
        assert response.status == 200 and response.content_type == "text/javascript"
    assert collector.events() == [] and collector.rejects() == []


async def test_every_vendor_protocol_is_checked_against_the_tracking_plan(
    http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    """The plan judges what the app sent (the SDK's own `$` properties are in context): a wrong
    value is stored invalid, not refused, whichever SDK sent it; so is an unreadable timestamp."""
    import msgspec

    from eventtui.config import PlanConfig, PlanEvent
    from tests.conftest import make_config

    schema = {
        "type": "object",
        "required": ["plan"],
        "properties": {"plan": {"enum": ["free", "pro"]}},
        "additionalProperties": False,
    }
    config = msgspec.structs.replace(
        make_config(), plan=PlanConfig(events={"signup": PlanEvent(schema=schema)})
    )
    c = Collector(config, tmp_path / "plan.db", with_http=True)
    await c.start(port=0, http_port=0)
    url = c.http_url or ""
    sent = [
        ("/batch/", {"batch": [
            {"event": "signup", "distinct_id": "u", "properties": {"plan": "pro", "$lib": "x"}},
            {"event": "signup", "distinct_id": "u", "properties": {"plan": "gold"}},
        ]}),
        ("/2/httpapi", {"events": [
            {"event_type": "signup", "user_id": "u", "event_properties": {"plan": "gold"}},
            {"event_type": "signup", "user_id": "u", "time": "soon", "event_properties": {"plan": "free"}},
        ]}),
        ("/com.snowplowanalytics.snowplow/tp2", {"data": [
            {"e": "ue", "ue_pr": json.dumps({"data": {
                "schema": "iglu:com.acme/signup/jsonschema/1-0-0", "data": {"plan": "pro"}}})},
        ]}),
    ]  # fmt: skip
    try:
        for path, body in sent:
            status, answer = await send(http, url + path, "POST", body, {})
            assert (status, answer["refused"]) == (200, []), answer
        status, _ = await send(
            http,
            url + "/track",
            "POST",
            form(
                json.dumps({"event": "signup", "properties": {"distinct_id": "u", "mp_lib": "x"}})
            ),
            FORM,
        )
        assert status == 200
        rows = Listening(c).events()
    finally:
        await c.stop()
    assert [(r.source, r.valid) for r in rows] == [
        ("posthog", True),
        ("posthog", False),
        ("amplitude", False),
        ("amplitude", False),
        ("snowplow", True),
        ("mixpanel", False),
    ]
    assert "'gold' is not one of ['free', 'pro']" in rows[1].error_list()[0]
    assert rows[3].error_list()[0].startswith("timestamp: cannot read 'soon'")
    assert any("'plan' is a required property" in e for e in rows[5].error_list())


async def test_a_refused_event_is_kept_in_rejects_as_it_came(
    collector: Listening, http: aiohttp.ClientSession
) -> None:
    event = {"e": "ue", "ue_px": "!!!", "eid": "kept-1", "aid": "shop"}
    status, _ = await send(http, collector.url + SNOWPLOW, "POST", {"data": [event]}, {})
    assert status == 400
    (reject,) = collector.rejects()
    assert json.loads(reject["raw"]) == event
