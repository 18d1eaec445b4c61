"""On-call: `GET /metrics` and `[[alert]]` webhooks, against a real collector, a real local
webhook receiver, and the CLI as a user runs it."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from eventtui.collector import Collector
from eventtui.config import Alert, Config, Expectation, PlanConfig, PlanEvent, load_config
from eventtui.monitor import OTHER
from eventtui.oncall import OnCall
from eventtui.oncall.webhooks import redact
from tests.conftest import eventtui, until

SECRET = "T000/B000/s3cr3tKEY"


async def start(db: Path, config: Config, **oncall: Any) -> Collector:
    c = Collector(config, db, extensions=[OnCall(config, **oncall)])
    await c.start(port=0, http_port=0)
    return c


async def scrape(c: Collector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as s, s.get(f"{c.http_url}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await r.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def post(c: Collector, body: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession() as s, s.post(f"{c.http_url}/events", json=body) as r:
        return dict(await r.json())


def one(metrics: dict[Any, float], metric: str, /, **labels: str) -> float:
    return metrics[(metric, tuple(sorted(labels.items())))]


# --- /metrics ----------------------------------------------------------------------------------------


async def test_metrics_count_what_was_acknowledged(db: Path) -> None:
    config = Config(
        expect=(Expectation("heartbeat", every=60.0),),
        plan=PlanConfig(events={"signup": PlanEvent(schema={"required": ["plan"]})}),
    )
    c = await start(db, config)
    try:
        async with websockets.connect(c.ws_url):
            answer = await post(
                c,
                [
                    {"event": "heartbeat"},
                    {"event": "signup", "properties": {"plan": "pro"}},
                    {"event": "signup"},  # breaks the plan: stored, invalid
                    {"event": 42},  # refused
                    {"event": "heartbeat", "messageId": "m1"},
                ],
            )
            assert answer["accepted"] == 4
            await post(c, {"event": "heartbeat", "messageId": "m1"})  # a duplicate
            await until(lambda: c.writer.stats.duplicates == 1, what="the duplicate's commit")
            m = await scrape(c)
            assert one(m, "eventtui_connected_clients") == 1
    finally:
        await c.stop()
    assert one(m, "eventtui_events_total", name="heartbeat") == 3
    assert one(m, "eventtui_events_total", name="signup") == 2
    assert one(m, "eventtui_invalid_events_total", name="signup") == 1
    assert ("eventtui_invalid_events_total", (("name", "heartbeat"),)) not in m
    assert one(m, "eventtui_refusals_total", reason="bad_name") == 1
    assert one(m, "eventtui_duplicate_events_total") == 1
    hb = {"event": "heartbeat", "where": ""}
    assert one(m, "eventtui_expectation_state", **hb, state="ok") == 1
    assert one(m, "eventtui_expectation_state", **hb, state="missing") == 0
    assert one(m, "eventtui_expectation_firing", **hb) == 0
    assert 0 <= one(m, "eventtui_expectation_seconds_since_seen", **hb) < 30
    # The invalid signup fires as a plan anomaly (what `eventtui check` exits 1 for).
    assert one(m, "eventtui_anomalies_firing", state="invalid") == 1
    assert one(m, "eventtui_anomalies_firing", state="missing") == 0
    assert one(m, "eventtui_writer_commit_seconds_count") >= 2
    assert one(m, "eventtui_writer_commit_seconds_bucket", le="+Inf") >= 2
    assert one(m, "eventtui_writer_backlog_bytes") >= 0
    assert one(m, "eventtui_store_up") == 1


async def test_metrics_names_are_capped(db: Path) -> None:
    c = await start(db, Config())
    try:
        await post(c, [{"event": f"name-{i}"} for i in range(2_010)])
        m = await scrape(c)
    finally:
        await c.stop()
    names = [labels for (name, labels) in m if name == "eventtui_events_total"]
    assert len(names) == 2_001  # 2,000 names, then the rest together
    assert one(m, "eventtui_events_total", name=OTHER) == 10


async def test_an_expected_event_going_quiet_fires_in_metrics(db: Path) -> None:
    config = Config(expect=(Expectation("heartbeat", every=0.2, grace=0.2),))
    c = await start(db, config)
    try:
        await post(c, {"event": "heartbeat"})
        hb = {"event": "heartbeat", "where": ""}
        m = await scrape(c)
        assert one(m, "eventtui_expectation_firing", **hb) == 0
        await asyncio.sleep(0.5)  # past every + grace: the deadline itself is what is tested
        m = await scrape(c)
        assert one(m, "eventtui_expectation_firing", **hb) == 1
        assert one(m, "eventtui_expectation_state", **hb, state="missing") == 1
        assert one(m, "eventtui_anomalies_firing", state="missing") == 1
        assert one(m, "eventtui_expectation_seconds_since_seen", **hb) >= 0.4
    finally:
        await c.stop()


def test_collect_without_a_tui_serves_metrics(tmp_path: Path) -> None:
    """`eventtui collect`, headless, judges the expectations itself."""
    import urllib.request

    from tests.conftest import Collect

    config = tmp_path / "eventtui.toml"
    config.write_text('[[expect]]\nevent = "heartbeat"\nevery = "0.1s"\ngrace = "0.1s"\n')
    c = Collect(tmp_path / "events.db", "--config", str(config))
    firing = 'eventtui_expectation_firing{event="heartbeat",where=""} 1.0'
    try:
        http = c.first_line.split()[-1]
        deadline = time.monotonic() + 10
        while True:  # missing 0.2 s after the start, whenever the first scrape lands
            with urllib.request.urlopen(f"{http}/metrics", timeout=10) as r:
                text = r.read().decode()
            if firing in text or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    finally:
        code, err = c.stop()
    assert firing in text, text
    assert code == 0, err


# --- webhooks ---------------------------------------------------------------------------------------


class Receiver:
    """A local webhook endpoint: records every post, answers with the statuses it is told."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answered in turn; 200 once they run out
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "boom")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post(f"/services/{SECRET}", r.handle)
    runner = web.AppRunner(app, access_log=None)  # its log would quote the secret path
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    r.url = f"http://127.0.0.1:{runner.addresses[0][1]}/services/{SECRET}"
    yield r
    await runner.cleanup()


async def test_webhook_start_resolve_and_retry_after_a_500(
    db: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [500]  # the first notice fails once, then is retried
    config = Config(
        expect=(Expectation("heartbeat", every=0.3, grace=0.2),),
        alert=(Alert(receiver.url),),
    )
    caplog.set_level(logging.INFO)
    c = await start(db, config, retry_delays=(0.05, 0.1), tick=0.05)
    try:
        await post(c, {"event": "heartbeat"})
        await until(lambda: len(receiver.posts) >= 2, what="the firing notice, retried")
        await until(lambda: "alerts_failing" not in c.health(), what="the webhook to recover")
        first, retried = receiver.posts[:2]
        assert first == retried
        assert first["status"] == "firing"
        assert first["event"] == "heartbeat"
        assert first["state"] == "missing"
        assert first["summary"].startswith("heartbeat: missing for ")
        assert first["detail"] == "expected every 300ms; missing after 500ms"
        assert first["since"].endswith("Z")
        await post(c, {"event": "heartbeat"})
        await until(lambda: len(receiver.posts) >= 3, what="the resolved notice")
        resolved = receiver.posts[2]
        assert resolved["status"] == "resolved"
        assert resolved["state"] == "missing"
        assert resolved["since"] == first["since"]
        assert "resolved after" in resolved["summary"]
        m = await scrape(c)
        assert one(m, "eventtui_alert_notifications_sent_total", alert="0") == 2
        assert one(m, "eventtui_alert_attempts_failed_total", alert="0") == 1
    finally:
        await c.stop()
    text = caplog.text
    assert "webhook failing: HTTP 500" in text
    assert redact(receiver.url) in text
    assert SECRET not in text and "s3cr3t" not in text


async def test_a_failing_webhook_is_one_line_and_never_blocks_ingest(
    db: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses = [503] * 1000
    config = Config(
        expect=(Expectation("heartbeat", every=0.1, grace=0.1),),
        alert=(Alert(receiver.url, format="slack"),),
    )
    c = await start(db, config, retry_delays=(0.02,) * 3)
    try:
        await until(lambda: len(receiver.posts) >= 4, what="every retry of the first notice")
        assert "alerts_failing" in c.health()
        assert "HTTP 503" in c.health()["alerts_failing"]
        assert SECRET not in json.dumps(c.health())
        # Ingest goes on, answered after its commit, whatever the webhook does.
        answer = await post(c, [{"event": "heartbeat"}] * 100)
        assert answer["accepted"] == 100
    finally:
        await c.stop()
    failing = [r for r in caplog.records if "webhook failing" in r.getMessage()]
    assert len(failing) == 1
    assert receiver.posts[0]["text"].startswith(":rotating_light: *FIRING* eventtui")


async def test_slack_text_cannot_ping_the_channel(db: Path, receiver: Receiver) -> None:
    name = "<!channel> & <http://evil|click>"
    config = Config(
        expect=(Expectation(name, every=0.1, grace=0.1),),
        alert=(Alert(receiver.url, format="slack"),),
    )
    c = await start(db, config)
    try:
        await until(lambda: receiver.posts, what="the firing notice")
    finally:
        await c.stop()
    text = receiver.posts[0]["text"]
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in text


def test_redact_keeps_only_scheme_host_and_port() -> None:
    assert redact(f"https://hooks.slack.com/services/{SECRET}") == "https://hooks.slack.com/…"
    assert redact("http://user:pw@example.com:8080/?key=1") == "http://example.com:8080/…"
    assert redact("https://example.com") == "https://example.com"


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('url = "ftp://hooks.example.com/x"', 'line 6: alert[0].url: must be an http:// or https:// URL (this one has "ftp:")'),
        ('url = "hooks.example.com/x"', "line 6: alert[0].url: must be an http:// or https:// URL (this one has no scheme)"),
        ('url = "https:///x"', "line 6: alert[0].url: has no host name"),
        ('url = "https://h.example.com/x"\nformat = "teams"', 'line 7: alert[0].format: unknown format "teams"; one of: json, slack'),
        ('format = "slack"', "alert: Object missing required field `url`"),
    ],
)  # fmt: skip
def test_bad_alert_config_is_one_line_naming_the_key(
    tmp_path: Path, body: str, expected: str
) -> None:
    config = tmp_path / "eventtui.toml"
    config.write_text(f'[[expect]]\nevent = "a"\nevery = "1m"\n\n[[alert]]\n{body}\n')
    result = eventtui("collect", "--config", str(config), "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "hooks.example.com/x" not in lines[0]  # the URL's path may be its secret
    assert not (tmp_path / "x.db").exists()


def test_alert_config_loads(tmp_path: Path) -> None:
    config = tmp_path / "eventtui.toml"
    config.write_text(
        '[[alert]]\nurl = "https://hooks.slack.com/services/T/B/X"\nformat = "slack"\n'
        '[[alert]]\nurl = "http://127.0.0.1:9/hook"\n'
    )
    loaded = load_config(config)
    assert loaded.alert == (
        Alert("https://hooks.slack.com/services/T/B/X", "slack"),
        Alert("http://127.0.0.1:9/hook", "json"),
    )


# --- the collector's own judgement agrees with the monitor's ---------------------------------------


@pytest.mark.parametrize("per_batch", [1, 3, 10, 50, 600])
def test_collector_watch_judges_like_the_monitor(per_batch: int) -> None:
    """Counted per batch (small ones together, large ones at once, plain deadlines from each
    batch's first and last event), the expectations end up exactly where the monitor's do."""
    from eventtui.model import StoredEvent
    from eventtui.monitor.factory import build_monitor
    from eventtui.oncall.watch import CollectorWatch
    from eventtui.store import Commit

    config = Config(
        expect=(
            Expectation("heartbeat", every=1.0, grace=0.5),
            Expectation("heartbeat", every=2.0, where="properties.n>2"),
            Expectation("signup", min_rate=30.0),
        )
    )
    times = [0.1 * i for i in range(40)] + [6.0 + 0.05 * i for i in range(400)] + [40.0, 41.5]
    events = [
        StoredEvent(
            1000.0 + at, None, ("heartbeat", "signup")[i % 2], "track", None, None, None, "c",
            json.dumps({"n": i % 5}), "{}", True, None, None,
        )
        for i, at in enumerate(times)
    ]  # fmt: skip
    monitor = build_monitor(config, started_at=1000.0)
    monitor.observe_many(events)
    watch = CollectorWatch(config, started_at=1000.0, loop_time=lambda: 0.0)
    commit = Commit([], 0, 0, 0, 0)
    for n, i in enumerate(range(0, len(events), per_batch)):
        watch.committed(watch.summarize(events[i : i + per_batch], [], 0.0), commit)
        if n % 2:
            watch.drain()  # as a scrape or the webhook check does, now and then
    now = 1000.0 + 60.0
    assert watch.anomalies(now) == [a for a in monitor.evaluate(now) if a.kind == "declared"]
    ours = [e for t in watch.trackers for e in t.episodes()]
    theirs = [e for t in monitor.trackers for e in t.episodes()]
    assert sorted(ours, key=repr) == sorted(theirs, key=repr)
    assert len(theirs) >= 3  # gaps were there to find
    assert watch.events == {"heartbeat": 221, "signup": 221}


def test_watch_shows_a_failing_webhook_on_the_status_line(tmp_path: Path) -> None:
    """`eventtui watch` wires the on-call extension too; a webhook that fails is on the status
    line (its URL redacted), and quitting does not wait out its backoff."""
    import socket

    from eventtui.config import CollectorConfig
    from eventtui.tui.launch import run_watch
    from eventtui.tui.widgets.status import StatusBar

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket is closed
    seen: dict[str, str] = {}

    async def drive(pilot: Any) -> None:
        app = pilot.app
        await until(
            lambda: app.feed_status is not None and app.feed_status.alert_problem,
            timeout=15,
            what="the failing webhook on the status line",
        )
        seen["line"] = StatusBar.line(app.feed_status, 0.0, width=300).plain
        await pilot.press("q")

    config = Config(
        collector=CollectorConfig(port=0),
        expect=(Expectation("heartbeat", every=0.1, grace=0.1),),
        alert=(Alert(f"http://127.0.0.1:{closed}/hook/{SECRET}"),),
    )
    started = time.monotonic()
    ran = run_watch(
        config,
        tmp_path / "events.db",
        run_app=lambda app: app.run(headless=True, auto_pilot=drive),
        tune_gc=False,
    )
    assert ran.return_code == 0
    assert "⚠ alert[0] failing: cannot connect (ClientConnectorError)" in seen["line"]
    assert f"(http://127.0.0.1:{closed}/…)" in seen["line"]
    assert SECRET not in seen["line"]
    assert time.monotonic() - started < 12


async def test_metrics_need_the_token_when_one_is_set(db: Path) -> None:
    from eventtui.config import CollectorConfig

    c = await start(db, Config(collector=CollectorConfig(token="s3cret")))
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"{c.http_url}/metrics") as r:
                assert r.status == 403
            headers = {"Authorization": "Bearer s3cret"}  # Prometheus' `authorization` sends this
            async with s.get(f"{c.http_url}/metrics", headers=headers) as r:
                assert r.status == 200
                assert "eventtui_store_up 1.0" in await r.text()
    finally:
        await c.stop()


async def test_a_full_webhook_queue_drops_its_oldest_notice() -> None:
    from eventtui.monitor import Anomaly
    from eventtui.oncall.webhooks import FIRING, Notice, Webhook

    webhook = Webhook(0, Alert("http://127.0.0.1:9/hook"), queue_limit=2)  # not started: no sends
    notices = [
        Notice(FIRING, Anomaly("declared", f"e{i}", "missing", 0.0, ""), 0.0) for i in range(3)
    ]
    for notice in notices:
        webhook.post(notice)  # never waits
    assert list(webhook._queue) == notices[1:]
    assert webhook.dropped == 1
