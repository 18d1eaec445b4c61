"""Personal data at ingest: the detectors, their false positives (none), `[plan] forbid` and
`[plan] pii = "fail"`, through a real collector and `eventtui check` as a subprocess."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect

from eventtui.collector import Collector
from eventtui.config import Config, PlanConfig
from eventtui.pii import (
    any_might_hold,
    compile_forbid,
    findings,
    forbidden,
    might_hold,
    value_hit,
)
from eventtui.store import Reader
from tests.conftest import eventtui, recv_until_ack

# Ordinary analytics properties: none of these may be flagged.
CORPUS: dict[str, Any] = {
    "user_id": "user-8f3a2c",
    "order_id": "ORD-2026-000123",
    "numeric_id": "1234567890123456",  # 16 digits, no card brand prefix
    "luhn_valid_id": "7992739871300000",  # passes Luhn, no card brand prefix
    "timestamp_ms": "1764720000000",
    "iso": "2026-12-03T05:40:00.123Z",
    "uuid": "3f2b8c1e-9d4a-4e6b-8f1c-2a7d5e9b0c4f",
    "uuid_upper": "3F2B8C1E-9D4A-4E6B-8F1C-2A7D5E9B0C4F",
    "url": "https://shop.example.com/products/4111?ref=newsletter&utm_source=mail",
    "url_with_at": "https://medium.com/@someone/a-post-1a2b3c",
    "path": "/checkout/step/2",
    "price": "19.99",
    "prices": [0.99, 1299.5, 10],
    "amount_cents": 129900,
    "currency": "EUR",
    "sku": "SKU-4000-1234-5678",
    "ip_like_version": "10.15.7",
    "package": "@scope/package@1.2.3",
    "sha": "9f86d081884c7d659a2feaf0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "base64ish": "aGVsbG8gd29ybGQ=",
    "query": "red shoes size 42",
    "campaign": "black-friday-2026",
    "keyword": "password reset page",  # a value that mentions a password is not one
    "monkey": "banana",
    "token_count": 3,
    "tokens_used": 1500,
    "keyboard_layout": "de",
    "card_brand": "visa",
    "cart": {"items": [{"sku": "A-1", "qty": 2, "price": 9.5}], "total": 19.0},
    "phone_model": "iPhone 15",
    "referrer": "android-app://com.example.app",
    "session_key_count": 2,
    "message": "Thanks! Your order 4000 1234 will ship soon",
}

HITS: list[tuple[Any, str]] = [
    ({"contact": "ada@example.com"}, "properties.contact: email address"),
    (
        {"note": "mail me at bob.smith+x@mail.example.co.uk please"},
        "properties.note: email address",
    ),
    ({"card": "4111 1111 1111 1111"}, "properties.card: payment card number"),
    ({"card": "5500-0000-0000-0004"}, "properties.card: payment card number"),
    ({"pan": "378282246310005"}, "properties.pan: payment card number"),
    ({"auth": "Bearer abcdefghijklmnop0123456789"}, "properties.auth: bearer token"),
    (
        {"jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl"},
        "properties.jwt: JWT",
    ),
    ({"userPassword": "hunter2"}, "properties.userPassword: key named like a secret"),
    ({"api_key": "x"}, "properties.api_key: key named like a secret"),
    ({"user": {"ssn": "078-05-1120"}}, "properties.user.ssn: key named like a secret"),
    ({"list": [{"email": "x@y.io"}]}, "properties.list[].email: email address"),
]


def test_the_corpus_of_ordinary_properties_has_no_findings() -> None:
    assert findings(CORPUS) == []
    for key, value in CORPUS.items():
        if isinstance(value, str):
            assert value_hit(value) is None, key


@pytest.mark.parametrize(("properties", "finding"), HITS)
def test_each_detector_names_the_path_and_never_the_value(properties: Any, finding: str) -> None:
    text = json.dumps(properties)
    assert might_hold(text)
    assert findings(properties) == [finding]


def test_a_card_number_that_fails_luhn_is_not_one() -> None:
    assert value_hit("4111 1111 1111 1112") is None
    assert value_hit("4111111111111111") == "payment card number"


def test_forbid_patterns() -> None:
    pattern = compile_forbid(["properties.password", "*.ssn", "secret_answer", "items[].cvv"])
    assert pattern is not None
    properties = {
        "password": "x",
        "user": {"ssn": "1", "name": "a"},
        "secret_answer": "b",
        "items": [{"cvv": "123"}],
        "passwords_changed": 2,
    }
    assert sorted(forbidden(properties, pattern)) == [
        "properties.items[].cvv",
        "properties.password",
        "properties.secret_answer",
        "properties.user.ssn",
    ]


async def _send(collector: Collector, events: list[dict[str, Any]]) -> None:
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps(events))
        await recv_until_ack(ws, 1)


async def test_collector_flags_personal_data_and_forbidden_paths(db: Path) -> None:
    config = Config(plan=PlanConfig(forbid=("properties.password",)))
    c = Collector(config, db, with_http=False)
    await c.start(port=0)
    try:
        await _send(
            c,
            [
                {"event": "signup", "properties": {"contact": "ada@example.com", "plan": "pro"}},
                {"event": "login", "properties": {"password": "hunter2"}},
                {"event": "page", "properties": CORPUS},
            ],
        )
    finally:
        await c.stop()
    with Reader(db) as reader:
        signup, login, page = reader.query()
    assert signup.valid and signup.error_list() == ["pii: properties.contact: email address"]
    assert not login.valid
    assert login.error_list() == [
        "forbidden: properties.password",
        "pii: properties.password: key named like a secret",
    ]
    assert page.valid and page.errors is None
    assert "ada@example.com" not in (signup.errors or "") and "hunter2" not in (login.errors or "")


async def test_check_warns_on_personal_data_and_fails_when_told(db: Path, tmp_path: Path) -> None:
    c = Collector(Config(), db, with_http=False)
    await c.start(port=0)
    try:
        await _send(c, [{"event": "signup", "properties": {"contact": "ada@example.com"}}])
    finally:
        await c.stop()
    warn = eventtui("check", "--db", str(db), "--session", "1")
    assert warn.returncode == 0, warn.stdout + warn.stderr
    assert "personal data (a warning)" in warn.stdout
    assert "properties.contact: email address" in warn.stdout
    assert "ada@example.com" not in warn.stdout + warn.stderr
    config = tmp_path / "eventtui.toml"
    config.write_text('[plan]\npii = "fail"\n')
    fail = eventtui("check", "--db", str(db), "--session", "1", "--config", str(config), "--json")
    assert fail.returncode == 1
    report = json.loads(fail.stdout)
    assert report["plan"]["pii"] == {"signup": 1}
    assert "ada@example.com" not in fail.stdout


async def test_pii_off_looks_for_nothing(db: Path) -> None:
    c = Collector(Config(plan=PlanConfig(pii="off")), db, with_http=False)
    await c.start(port=0)
    try:
        await _send(c, [{"event": "signup", "properties": {"contact": "ada@example.com"}}])
    finally:
        await c.stop()
    with Reader(db) as reader:
        (row,) = reader.query()
    assert row.errors is None


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        (
            '[plan]\nforbid = ["properties..password"]\n',
            'plan.forbid: "properties..password": an empty segment',
        ),
        ('[plan]\nforbid = ["a[0]"]\n', "brackets other than []"),
        ('[plan]\npii = "loud"\n', 'plan.pii: "loud" is not one of: off, warn, fail'),
    ],
)
def test_bad_plan_settings_are_one_line_and_exit_2(
    tmp_path: Path, db: Path, toml: str, says: str
) -> None:
    config = tmp_path / "eventtui.toml"
    config.write_text(toml)
    done = eventtui("check", "--db", str(db), "--config", str(config))
    assert done.returncode == 2
    assert says in done.stderr and "line 2" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1


_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from([v for p, _ in HITS for v in p.values() if isinstance(v, str)]),
    st.sampled_from([v for v in CORPUS.values() if isinstance(v, str)]),
    st.integers(),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=12), _values, max_size=4), max_size=6))
def test_the_frame_prefilter_never_skips_what_an_event_check_would_look_at(
    frame: list[dict[str, Any]],
) -> None:
    """The collector asks `any_might_hold` once per frame and skips the frame when it says no:
    it must say yes whenever some event's own prefilter would."""
    texts = [msgspec.json.encode(p).decode() for p in frame]
    if any(might_hold(t) for t in texts):
        assert any_might_hold(texts)
    # And a frame with a finding is never skipped.
    if any(findings(p) for p in frame):
        assert any_might_hold(texts)


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PWD",
        "client_secret",
        "apiKey",
        "refresh_token",
        "SSN",
        "cvv",
        "cvc",
        "cardNumber",
    ],
)
def test_every_secret_like_key_passes_the_frame_check(key: str) -> None:
    # The frame check searches for each hint only behind a character it needs (pii._GATED_HINTS):
    # every hint must still get through, whatever its case, among ordinary events.
    ordinary = [json.dumps({"path": "/p/1", "plan": "pro"})] * 50
    assert not any_might_hold(ordinary)
    assert any_might_hold([*ordinary, json.dumps({key: "x"})])


async def test_the_detectors_flag_every_event_of_a_busy_turn(db: Path) -> None:
    """The detectors run once per hand-over to the writer, over the events of every connection
    and every protocol in it: each event with personal data is flagged, and only those."""
    import aiohttp

    c = Collector(Config(), db)
    await c.start(port=0, http_port=0)
    sent: dict[str, bool] = {}

    async def websocket(client: int) -> None:
        async with connect(c.ws_url) as ws:
            for i in range(60):
                name = f"ws-{client}-{i}"
                sent[name] = i % 7 == 3
                contact = "ada@example.com" if sent[name] else f"user-{i}"
                await ws.send(json.dumps({"event": name, "properties": {"contact": contact}}))
            await recv_until_ack(ws, 60)

    async def http() -> None:
        batch = [
            {"type": "track", "event": "http-plain", "properties": {"n": 1}},
            {"type": "track", "event": "http-card", "properties": {"card": "4111 1111 1111 1111"}},
        ]
        sent.update({"http-plain": False, "http-card": True})
        async with aiohttp.ClientSession() as session:
            url = f"{c.http_url}/v1/batch"
            async with session.post(url, json={"batch": batch}) as response:
                assert response.status == 200

    try:
        await asyncio.gather(websocket(1), websocket(2), http())
    finally:
        await c.stop()
    with Reader(db) as reader:
        flagged = {row.name: bool(row.errors) for row in reader.query(limit=1000)}
    assert flagged == sent
