"""The request shapes each vendor's SDKs use besides the ones tests/test_protocols_sdks.py and
tests/test_protocols_browser.py see their SDKs send (older SDK versions, fallbacks, other paths),
over real HTTP to a real collector: each stores its events, marked with its source."""

from __future__ import annotations

import base64
import gzip
import json
import urllib.parse
from collections.abc import AsyncIterator
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
    c = await started_collector(tmp_path_factory.mktemp("shapes") / "events.db", http=True)
    yield c
    await c.stop()


@pytest.fixture
def collector(shared: Collector) -> Listening:
    return Listening.from_now(shared)


def b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


PH_EVENT = {"event": "e1", "properties": {"distinct_id": "u1", "token": "t", "k": 1}}
MP_EVENT = {"event": "e1", "properties": {"distinct_id": "u1", "token": "t", "k": 1}}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# (id, method, path, body, headers, source)
SHAPES: list[tuple[str, str, str, bytes | None, dict[str, str], str]] = [
    ("posthog /i/v0/e/ array", "POST", "/i/v0/e/", json.dumps([PH_EVENT]).encode(), {}, "posthog"),
    (
        "posthog /capture/ one event with its api_key",
        "POST",
        "/capture/",
        json.dumps({**PH_EVENT, "api_key": "k", "distinct_id": "u1"}).encode(),
        {},
        "posthog",
    ),
    (
        "posthog-js base64 form",
        "POST",
        "/e/?compression=base64",
        urllib.parse.urlencode({"data": b64([PH_EVENT])}).encode(),
        FORM,
        "posthog",
    ),
    (
        "posthog-js gzip-js named in the query",
        "POST",
        "/e/?compression=gzip-js&ver=1.0",
        gzip.compress(json.dumps([PH_EVENT]).encode()),
        {"Content-Type": "text/plain"},
        "posthog",
    ),
    (
        "posthog GET data",
        "GET",
        "/e/?data=" + urllib.parse.quote(b64(PH_EVENT)),
        None,
        {},
        "posthog",
    ),
    (
        "mixpanel GET base64",
        "GET",
        "/track?data=" + urllib.parse.quote(b64(MP_EVENT)),
        None,
        {},
        "mixpanel",
    ),
    (
        "mixpanel base64 form",
        "POST",
        "/track",
        urllib.parse.urlencode({"data": b64([MP_EVENT])}).encode(),
        FORM,
        "mixpanel",
    ),
    (
        "mixpanel /import JSON body",
        "POST",
        "/import",
        json.dumps([MP_EVENT]).encode(),
        {"Content-Type": "application/json"},
        "mixpanel",
    ),
    (
        "mixpanel /groups",
        "POST",
        "/groups",
        urllib.parse.urlencode(
            {"data": json.dumps({"$group_key": "company", "$group_id": "c1", "$set": {"n": 1}})}
        ).encode(),
        FORM,
        "mixpanel",
    ),
    (
        "amplitude gzip",
        "POST",
        "/2/httpapi",
        gzip.compress(json.dumps({"events": [{"event_type": "e1", "user_id": "u1"}]}).encode()),
        {"Content-Encoding": "gzip"},
        "amplitude",
    ),
    (
        "snowplow GET page ping",
        "GET",
        "/i?"
        + urllib.parse.urlencode(
            {"e": "pp", "eid": "pp-1", "url": "http://x/", "pp_mix": "0", "pp_max": "10"}
        ),
        None,
        {},
        "snowplow",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "source"),
    [case[1:] for case in SHAPES],
    ids=[case[0] for case in SHAPES],
)
async def test_each_shape_is_stored_with_its_source(
    collector: Listening,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    source: str,
) -> None:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, collector.url + path, data=body, headers=headers) as response,
    ):
        answer = await response.read()
        assert response.status == 200, answer
        if path.startswith("/i?"):  # an image request's answer is an image
            assert response.content_type == "image/gif" and answer.startswith(b"GIF89a")
    (row,) = collector.events()
    assert row.source == source
    assert collector.rejects() == []
    if source == "posthog" or (source == "mixpanel" and "groups" not in path):
        assert (row.name, row.user_id, json.loads(row.properties)) == ("e1", "u1", {"k": 1})
        assert json.loads(row.context)["token"] == "t"
    if "groups" in path:
        assert (row.type, row.name, json.loads(row.properties)) == ("group", "$set", {"n": 1})
        assert json.loads(row.context) == {"group_key": "company", "group_id": "c1"}
    if "pp_max" in path:
        assert json.loads(row.properties) == {"url": "http://x/", "pp_mix": 0, "pp_max": 10}
