"""Collectors publishing to NATS JetStream, and the sink writing it into a store (README, "More
than one machine"), against a real `nats-server` on loopback (tests/nats_cluster.py)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from conftest import Collect, eventtui, recv_until_ack, stored, until
from nats_cluster import Cluster, free_port, start_sink
from websockets.asyncio.client import connect

from eventtui.collector import Collector
from eventtui.config import (
    CollectorConfig,
    Config,
    ConfigError,
    Duration,
    StreamConfig,
    load_config,
)
from eventtui.store import Reader, Writer
from eventtui.stream import Sink
from eventtui.stream.mirror import Mirror, pinned_names
from eventtui.stream.rollups import RollupSum
from eventtui.stream.subjects import Rollup, Subjects, decode_event, decode_token, encode_token


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One JetStream server for the module's tests; each test uses a stream of its own."""
    cluster = Cluster(tmp_path_factory.mktemp("nats"), size=1).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[Cluster]:
    """A server for one test, which it may kill and start again."""
    cluster = Cluster(tmp_path / "nats", size=1).start()
    yield cluster
    cluster.stop()


def settings(url: str, **stream: Any) -> StreamConfig:
    stream.setdefault("name", f"T{uuid.uuid4().hex[:8]}")
    for key in ("ack_timeout", "connect_timeout"):
        if key in stream:
            stream[key] = Duration(stream[key])
    return StreamConfig(url=url, **stream)


async def stream_collector(db: Path, stream: StreamConfig, **options: Any) -> Collector:
    collector = Collector(Config(collector=CollectorConfig(), stream=stream), db, with_http=True)
    for key, value in options.items():
        setattr(collector.writer, key, value)
    await collector.start(port=0, http_port=0)
    return collector


async def start_two(collectors: list[Collector], tmp_path: Path, stream: StreamConfig) -> None:
    """Two collectors publishing to `stream`, added to `collectors` (which stops them)."""
    for i in range(2):
        collectors.append(await stream_collector(tmp_path / f"{i}.db", stream))


@pytest.fixture
async def collectors(tmp_path: Path) -> AsyncIterator[list[Collector]]:
    started: list[Collector] = []
    yield started
    for collector in started:
        await collector.stop()


async def stream_messages(url: str, name: str, kind: str = "events") -> list[Any]:
    """The stream's messages of one kind (events, rejects, rollups), in order."""
    nc = await nats.connect(url.split(","))
    try:
        js = nc.jetstream()
        info = await js.stream_info(name)
        messages = [await js.get_msg(name, seq) for seq in range(1, info.state.last_seq + 1)]
        return [m for m in messages if Subjects(name).kind(m.subject) == kind]
    finally:
        await nc.close()


def health(collector: Collector) -> dict[str, Any]:
    """/health's JSON (served with 503 while nothing can be stored)."""
    try:
        with urllib.request.urlopen(f"{collector.http_url}/health", timeout=5) as response:
            return dict(json.load(response))
    except urllib.error.HTTPError as exc:
        return dict(json.load(exc))


@pytest.mark.parametrize(
    "name", ["checkout", "checkout.completed", "a b", "*", ">", "%41", "émoji 🎉", "x" * 256, "-_"]
)
def test_any_event_name_is_one_subject_token(name: str) -> None:
    token = encode_token(name)
    assert token and not set(token) & set(". *>\t\r\n")
    assert token.isascii()
    assert decode_token(token) == name


async def test_collectors_ack_after_the_publish_ack_and_a_retry_is_stored_once(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    stream = settings(node.url)
    await start_two(collectors, tmp_path, stream)
    first, second = collectors
    events = [
        {"event": "checkout.completed", "messageId": "m1", "properties": {"total": 5}},
        {"event": "page view *", "messageId": "m2"},
        {"event": "no id"},
    ]
    async with connect(first.ws_url) as ws:
        await ws.send(json.dumps(events))
        assert (await recv_until_ack(ws, 1))[-1] == {"ack": 1}
    # The client retries m1 through the other collector: acknowledged, and a duplicate.
    async with connect(second.ws_url) as ws:
        await ws.send(json.dumps(events[0]))
        assert (await recv_until_ack(ws, 1))[-1] == {"ack": 1}
    messages = await stream_messages(node.url, stream.name)
    subjects = Subjects(stream.name)
    assert [m.subject for m in messages] == [
        subjects.event("checkout.completed"),
        subjects.event("page view *"),
        subjects.event("no id"),
    ]
    assert [decode_event(m.data).name for m in messages] == [e["event"] for e in events]
    ids = [m.headers["Nats-Msg-Id"] for m in messages]
    assert ids[:2] == ["m1", "m2"]
    assert ids[2] == decode_event(messages[2].data).message_id  # given one by the collector
    assert second.writer.stats.duplicates == 1
    assert (await asyncio.to_thread(health, first))["status"] == "ok"


def test_a_stream_unreachable_at_start_is_one_line_and_exit_2(tmp_path: Path) -> None:
    url = f"nats://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = eventtui("collect", "--port", "0", "--db", str(tmp_path / "x.db"), "--stream", url)
    assert result.returncode == 2
    assert (
        result.stderr == f"eventtui: error: cannot reach the stream at {url}: connection refused\n"
    )
    assert time.monotonic() - started < 10
    assert not (tmp_path / "x.db").exists()


async def test_unreachable_mid_run_holds_acks_says_so_and_resumes(
    own_node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    stream = settings(own_node.url, ack_timeout=30)
    collector = await stream_collector(tmp_path / "x.db", stream, attempt_timeout=0.5)
    collectors.append(collector)
    server = own_node.nodes[0]
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps({"event": "before", "messageId": "b"}))
        await recv_until_ack(ws, 1)
        server.kill()
        await ws.send(json.dumps({"event": "during", "messageId": "d"}))
        with pytest.raises(TimeoutError):  # held: no ack while the stream cannot confirm
            await recv_until_ack(ws, 2, timeout=1.0)
        state = await asyncio.to_thread(health, collector)
        assert state["status"] == "error"
        assert "stream" in state["error"]
        await asyncio.to_thread(own_node.restart, server)
        assert (await recv_until_ack(ws, 2, timeout=15))[-1] == {"ack": 2}
    await until(lambda: collector.writer.problem is None, what="the problem to clear")
    messages = await stream_messages(own_node.url, stream.name)
    assert [m.headers["Nats-Msg-Id"] for m in messages] == ["b", "d"]


async def test_a_publish_never_acknowledged_is_an_error_not_silence(
    own_node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    stream = settings(own_node.url, ack_timeout=1)
    collector = await stream_collector(tmp_path / "x.db", stream, attempt_timeout=0.3)
    collectors.append(collector)
    own_node.nodes[0].kill()
    started = time.monotonic()
    async with connect(collector.ws_url) as ws:
        await ws.send(json.dumps({"event": "lost", "messageId": "l"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert "did not acknowledge" in reply["error"] and reply["frame"] == 1
    assert time.monotonic() - started < 4


async def sink_until(db: Path, stream: StreamConfig, count: int, durable: str = "s") -> Writer:
    """Run a sink into `db` until its store holds `count` events; returns its closed writer."""
    writer = Writer(db, source="sink")
    sink = Sink(stream, writer, durable=durable, ack_wait=2)
    await sink.connect()
    await asyncio.to_thread(writer.start)
    stop = asyncio.Event()
    task = asyncio.create_task(sink.run(stop))
    try:
        await until(lambda: writer.stats.events + writer.stats.duplicates >= count, timeout=20)
    finally:
        stop.set()
        await task
        await sink.close()
        await asyncio.to_thread(writer.close)
    return writer


async def test_the_sink_stores_every_event_once_however_often_it_is_delivered(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    stream = settings(node.url)
    collectors.append(await stream_collector(tmp_path / "c.db", stream))
    batch = [{"event": f"e{i % 7}", "messageId": f"id{i}"} for i in range(300)]
    async with connect(collectors[0].ws_url) as ws:
        for start in range(0, 300, 100):
            await ws.send(json.dumps(batch[start : start + 100]))
        await ws.send(json.dumps([{"event": "anonymous"}, "not an event"]))
        await recv_until_ack(ws, 4)
    db = tmp_path / "sink.db"
    first = await sink_until(db, stream, 301)
    assert first.stats.events == 301 and first.stats.rejects == 1
    # A second consumer delivers the whole stream again (as a redelivery after a crash would):
    # the store's UNIQUE message_id keeps each event once.
    again = await sink_until(db, stream, 301, durable="other")
    assert again.stats.events == 0 and again.stats.duplicates == 301
    rows = stored(db)
    assert len(rows) == 301
    assert len({row.message_id for row in rows}) == 301
    # The first consumer goes on where it stopped: only what is new.
    async with connect(collectors[0].ws_url) as ws:
        await ws.send(json.dumps({"event": "later", "messageId": "late"}))
        await recv_until_ack(ws, 1)
    resumed = await sink_until(db, stream, 1)
    assert (resumed.stats.events, resumed.stats.duplicates) == (1, 0)


def test_sink_cli_says_when_there_is_no_stream(node: Cluster, tmp_path: Path) -> None:
    result = eventtui("sink", "--db", str(tmp_path / "s.db"))
    assert result.returncode == 2
    assert result.stderr.startswith("eventtui: error: sink needs a stream")
    result = eventtui(
        "sink", "--db", str(tmp_path / "s.db"), "--stream", node.url, "--config", "/dev/null"
    )
    assert result.returncode == 2
    assert "no stream EVENTTUI" in result.stderr


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("", None),
        ("name:checkout", {"checkout"}),
        ("name:checkout plan=pro", {"checkout"}),
        ("name:a OR name:b", {"a", "b"}),
        ("name:a OR checkout", None),
        ("name:check*", None),
        ("-name:a", None),
        ('name:"a b.c"', {"a b.c"}),
    ],
)
def test_a_filter_that_pins_names_reads_only_their_subjects(
    text: str, names: set[str] | None
) -> None:
    assert pinned_names(text) == names


async def publish(url: str, events: list[dict[str, Any]]) -> None:
    async with connect(url) as ws:
        await ws.send(json.dumps(events))
        await recv_until_ack(ws, 1)


async def test_query_check_and_replay_read_a_stream_as_they_read_a_store(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    stream = settings(node.url)
    await start_two(collectors, tmp_path, stream)
    await publish(
        collectors[0].ws_url,
        [{"event": "checkout", "messageId": "a", "properties": {"plan": "pro"}}, {"event": "page"}],
    )
    await publish(
        collectors[1].ws_url,
        [{"event": "checkout", "messageId": "b", "properties": {"plan": "free"}}],
    )
    config = tmp_path / "eventtui.toml"
    config.write_text(
        f'[stream]\nname = "{stream.name}"\n\n[[expect]]\nevent = "checkout"\nevery = "1h"\n'
    )
    common = ["--config", str(config), "--stream", node.url]
    result = await asyncio.to_thread(
        eventtui, "query", "name:checkout", "plan=pro", "--json", *common
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["messageId"] for line in result.stdout.splitlines()] == ["a"]
    # The id a collector gives an event sent without one is for dedupe: the payload is as sent.
    result = await asyncio.to_thread(eventtui, "query", "name:page", "--json", *common)
    [page] = [json.loads(line) for line in result.stdout.splitlines()]
    assert page["event"] == "page" and "messageId" not in page, page
    result = await asyncio.to_thread(eventtui, "query", "--since", "10m", *common)
    assert [line.split()[2] for line in result.stdout.splitlines()] == [
        "checkout",
        "page",
        "checkout",
    ]

    # Each collector's rollup (once a second) is summed across collectors by `check`.
    async def rollups() -> int:
        return len(await stream_messages(node.url, stream.name, "rollups"))

    deadline = time.monotonic() + 10
    while await rollups() < 2:
        assert time.monotonic() < deadline, "no rollups"
        await asyncio.sleep(0.05)
    result = await asyncio.to_thread(eventtui, "check", "--json", *common)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["stream"]["collectors"] == 2
    assert {name: n["count"] for name, n in report["stream"]["names"].items()} == {
        "checkout": 2,
        "page": 1,
    }
    assert report["stream"]["names"]["checkout"]["per_minute"] == 2
    # Replay re-sends the stream's events to a plain collector, at their pace.
    target = Collector(Config(), tmp_path / "target.db", with_http=False)
    await target.start(port=0)
    try:
        result = await asyncio.to_thread(
            eventtui,
            "replay",
            "--to-url",
            target.ws_url,
            "--speed",
            "max",
            "--filter",
            "name:checkout",
            *common,
        )
        assert result.returncode == 0, result.stderr
    finally:
        await target.stop()
    assert sorted(row.message_id for row in stored(tmp_path / "target.db")) == ["a", "b"]


def test_since_without_a_stream_is_a_usage_error(tmp_path: Path) -> None:
    result = eventtui("query", "--since", "1h", "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2
    assert (
        result.stderr
        == "eventtui: error: --since goes with --stream (a stream, not a store file)\n"
    )


def test_rollups_sum_across_collectors() -> None:
    total = RollupSum()
    total.add(Rollup("a", 100.0, {"x": (3, 1, 99.5), "y": (1, 0, 99.0)}))
    total.add(Rollup("b", 101.0, {"x": (2, 0, 100.5)}))
    total.add(Rollup("a", 30.0, {"x": (5, 0, 29.0)}))  # long before: counted, not per minute
    assert {n: (t.count, t.invalid, t.last_seen) for n, t in total.names.items()} == {
        "x": (10, 1, 100.5),
        "y": (1, 0, 99.0),
    }
    assert total.per_minute(now=101.0) == {"x": 5, "y": 1}
    assert set(total.collectors) == {"a", "b"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('url = "http://x:1"', 'stream.url: "http://x:1" is not a nats://HOST:PORT URL'),
        ('url = "nats://a:1,nats://b"', 'stream.url: "nats://b" is not a nats://HOST:PORT URL'),
        ('name = "a.b"', 'stream.name: "a.b" is not a stream name'),
        ("replicas = 7", "stream.replicas: 7 is not 1 to 5"),
        ('ack_timeout = "0s"', "stream.ack_timeout: must be longer than 0s"),
        ("subject = 1", 'stream.subject: unknown key "subject"'),
    ],
)
def test_a_bad_stream_setting_names_the_key_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "eventtui.toml"
    path.write_text(f"[stream]\n{text}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}, line 2: {message}")


def test_a_bad_stream_url_on_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    result = eventtui("query", "--stream", "localhost:4222", "--db", str(tmp_path / "x.db"))
    assert result.returncode == 2
    assert "--stream" in result.stderr and "nats://HOST:PORT" in result.stderr


async def test_slow_acks_under_load_are_awaited_not_sent_again(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    """A publish whose ack is slow while others arrive is not sent again: an earlier version
    re-sent every message unacknowledged after `attempt_timeout`, and under load (2 collectors
    on R3) the copies queued in front of the acks until clients got errors after 30 s."""
    stream = settings(node.url)
    collector = await stream_collector(tmp_path / "x.db", stream, attempt_timeout=1.0)
    collectors.append(collector)
    frames = [
        json.dumps([{"event": f"e{i % 9}", "messageId": f"{f}-{i}"} for i in range(1000)])
        for f in range(20)
    ]
    async with connect(collector.ws_url) as ws:
        for frame in frames:
            await ws.send(frame)
        replies = await recv_until_ack(ws, 20, timeout=30)
    assert replies[-1] == {"ack": 20}
    assert collector.writer.stats.events == 20_000
    assert collector.writer.sent == 20_000


async def test_an_idle_sink_stops_cleanly_on_sigint(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    """An idle sink's pull requests expire, some answered with no message: it once took the
    last of none, and crashed with a traceback when stopped."""
    stream = settings(node.url)
    collectors.append(await stream_collector(tmp_path / "c.db", stream))
    config = tmp_path / "eventtui.toml"
    config.write_text(f'[stream]\nname = "{stream.name}"\n')
    sink = await asyncio.to_thread(start_sink, node.url, tmp_path / "s.db", "--config", str(config))
    await asyncio.sleep(1.5)  # a few expired pull requests
    sink.send_signal(signal.SIGINT)
    _, err = await asyncio.to_thread(sink.communicate, timeout=30)
    assert sink.returncode == 0, err
    assert err.startswith("stopped: stored 0 events"), err


async def test_a_viewer_whose_stream_died_waits_between_retries(
    own_node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    """A viewer following a stream whose server is gone retries with a pause, not in a busy loop
    (an earlier version spun at 100% CPU), and goes on when the server is back."""
    stream = settings(own_node.url)
    collector = await stream_collector(tmp_path / "c.db", stream)
    collectors.append(collector)
    await publish(collector.ws_url, [{"event": "before", "messageId": "b"}])
    mirror = Mirror(stream, tmp_path / "mirror.db", follow=True)
    await asyncio.to_thread(mirror.start)
    try:
        assert await asyncio.to_thread(mirror.wait, 10)
        server = own_node.nodes[0]
        server.kill()
        cpu, wall = time.process_time(), time.monotonic()
        await asyncio.sleep(1.5)  # the time to spin, if it did
        share = (time.process_time() - cpu) / (time.monotonic() - wall)
        assert share < 0.5, f"{share:.0%} of a core while the stream is away"
        await asyncio.to_thread(own_node.restart, server)
        async with connect(collector.ws_url) as ws:
            await ws.send(json.dumps({"event": "after", "messageId": "a"}))
            await recv_until_ack(ws, 1, timeout=15)
        await until(lambda: mirror.copied == 2, timeout=15, what="the event after the outage")
    finally:
        await asyncio.to_thread(mirror.close)
    assert sorted(row.message_id for row in stored(tmp_path / "mirror.db")) == ["a", "b"]


def status_line(app: Any) -> str:
    return str(app.status_bar.render())


def test_watch_on_a_stream_counts_every_collectors_rollups_and_samples_the_list(
    node: Cluster, tmp_path: Path
) -> None:
    """`watch --stream`: counters and the monitor's last seen come from the rollups of every
    collector on the stream (exact), the event list from a sample of it (said on the status
    line), and the status line names the stream instead of "session 0"."""
    from eventtui.config import Expectation
    from eventtui.tui.launch import run_watch

    stream = settings(node.url)
    config = Config(
        collector=CollectorConfig(port=0),
        stream=stream,
        expect=[Expectation(event="checkout", every=Duration(3600.0))],
    )
    # A sample of 5 events a second: the frame of 65 below is thinned to its first 5.
    mirror = Mirror(
        stream, tmp_path / "mirror.db", since=time.time() - 60, follow=True, create=True, sample=5
    )
    mirror.start()
    mirror.wait()
    seen: dict[str, Any] = {}

    async def drive(pilot: Any) -> None:
        app = pilot.app
        await until(lambda: app.feed_status is not None and app.feed_status.addresses)
        other = await stream_collector(tmp_path / "other.db", stream)
        try:
            # One frame (one receive time): the copy keeps 5 `page`s, the `checkout`s not at all.
            await publish(
                other.ws_url,
                [{"event": "page", "messageId": f"p{i}"} for i in range(60)]
                + [{"event": "checkout", "messageId": f"c{i}"} for i in range(5)],
            )
            await publish(app.feed_status.addresses[0], [{"event": "signup", "messageId": "s"}])

            def total(name: str) -> int:
                stats = app.counters.get(name)
                return stats.total if stats is not None else 0

            await until(
                lambda: (total("page"), total("checkout"), total("signup")) == (60, 5, 1),
                timeout=15,
                what="the rollups' counts",
            )
            await until(
                lambda: [r.name for r in app.stream.rows].count("page") == 5,
                what="the sampled rows",
            )
            await asyncio.sleep(0.3)  # nothing more comes (the signup is a sample of its second)
            seen["rows"] = sorted(r.name for r in app.stream.rows)
            seen["everything"] = app.counters.everything.total
            seen["checkout_seen"] = app.counters.get("checkout").last_seen
            (tracker,) = app.states.monitor.trackers
            seen["tracker_seen"] = tracker.last_seen
            # The signup, if it came in the same second, is one more seen and not kept.
            await until(lambda: "sampled: 5 of 6" in status_line(app), what="sampled")
            await until(lambda: "#" in app.payload.rendered_text, what="the newest event shown")
            seen["payload"] = app.payload.rendered_text
            await until(lambda: f"stream {stream.name}" in status_line(app))
            seen["status"] = status_line(app)
        finally:
            await other.stop()
        await pilot.press("q")

    try:
        ran = run_watch(
            config,
            mirror.path,
            stream=mirror,
            run_app=lambda app: app.run(headless=True, auto_pilot=drive, size=(160, 45)),
            tune_gc=False,
        )
    finally:
        mirror.close()
    assert ran.return_code == 0
    assert seen["rows"] in (["page"] * 5, ["page"] * 5 + ["signup"])
    assert seen["everything"] == 66
    assert seen["checkout_seen"] > 0 and seen["tracker_seen"] == seen["checkout_seen"]
    assert "session" not in seen["status"], seen["status"]
    assert "session" not in seen["payload"], seen["payload"]  # the mirror's, nobody's


def test_the_sampler_keeps_one_in_n_under_its_cap_and_says_so() -> None:
    import random

    from eventtui.stream.sampling import Sampler

    sampler = Sampler(cap=100, rng=random.Random(7))
    # A first busy second: the first 100 kept, the rest counted.
    assert sum(sampler.keep(100.5, now=100.5) for _ in range(300)) == 100
    assert sampler.state(now=100.9) == (100, 300)
    # The next second keeps about one in 3 (what the last one needed), spread over it: names
    # sent in a cycle of 3 are all in the sample (one in every 3rd would keep one name only).
    names = ["page", "click", "signup"] * 100
    kept = [name for name in names if sampler.keep(101.5, now=101.5)]
    assert 70 <= len(kept) <= 100 and set(kept) == set(names)
    assert sampler.state(now=101.6) == (100, 300)  # the last whole second: this one is in bounds
    # A quiet stream is copied whole, and the status says nothing once the burst is past.
    assert all(sampler.keep(103.0 + i, now=103.0 + i) for i in range(5))
    assert sampler.state(now=108.0) is None
    idle = Sampler(cap=10, rng=random.Random(7))
    assert sum(idle.keep(200.0, now=200.0) for _ in range(20)) == 10
    assert idle.state(now=200.5) == (10, 20)
    assert idle.state(now=260.0) is None  # an old burst with nothing after it is not "now"


async def test_open_on_a_stream_counts_the_rollups_and_names_the_stream(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    """`open --stream`: counters from the collectors' rollups (2 collectors, summed), status line
    naming the stream; nothing is sampled at this volume."""
    from eventtui.tui.launch import run_open

    stream = settings(node.url)
    await start_two(collectors, tmp_path, stream)
    await publish(collectors[0].ws_url, [{"event": "page", "messageId": "a"}])
    await publish(collectors[1].ws_url, [{"event": "page", "messageId": "b"}])
    mirror = Mirror(stream, tmp_path / "mirror.db", since=time.time() - 60, follow=True, sample=5)
    seen: dict[str, Any] = {}

    async def drive(pilot: Any) -> None:
        app = pilot.app
        await until(lambda: app.counters.get("page") and app.counters.get("page").total == 2)
        await until(lambda: len(app.stream.rows) == 2)
        await until(lambda: f"stream {stream.name}" in status_line(app))
        seen["status"] = status_line(app)
        await pilot.press("q")

    def run() -> int:
        mirror.start()
        try:
            mirror.wait()
            return run_open(
                Config(),
                mirror.path,
                stream=mirror,
                run_app=lambda app: app.run(headless=True, auto_pilot=drive, size=(80, 24)),
                tune_gc=False,  # process-wide: not for a test process
            )
        finally:
            mirror.close()

    assert await asyncio.to_thread(run) == 0
    assert "session" not in seen["status"] and "sampled" not in seen["status"], seen["status"]


async def test_the_sink_writes_a_session_per_collector_and_a_restart_continues_them(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    stream = settings(node.url)
    await start_two(collectors, tmp_path, stream)
    first, second = collectors
    await publish(first.ws_url, [{"event": "a", "messageId": f"a{i}"} for i in range(3)])
    await publish(second.ws_url, [{"event": "b", "messageId": f"b{i}"} for i in range(2)])
    async with connect(second.ws_url) as ws:  # refused input goes with its collector too
        await ws.send(json.dumps(["not an event"]))
        await recv_until_ack(ws, 1)
    config = tmp_path / "eventtui.toml"
    config.write_text(f'[stream]\nname = "{stream.name}"\n')
    db = tmp_path / "sink.db"

    async def sink_until(count: int) -> str:
        sink = await asyncio.to_thread(start_sink, node.url, db, "--config", str(config))
        try:
            await until(lambda: db.exists() and len(stored(db)) >= count, timeout=20)
        finally:
            sink.send_signal(signal.SIGINT)
            _, err = await asyncio.to_thread(sink.communicate, timeout=30)
        assert sink.returncode == 0, err
        return err

    said = await sink_until(5)
    assert said.startswith("stopped: stored 5 events (0 duplicates, 1 refused) in sessions"), said

    def sessions() -> dict[str, tuple[int, int, int]]:
        result = eventtui("sessions", "--json", "--db", str(db))
        assert result.returncode == 0, result.stderr
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        return {r["label"]: (r["id"], r["events"], r["rejects"]) for r in rows}

    labels = {f"collector {c.writer.collector}": c for c in collectors}
    found = await asyncio.to_thread(sessions)
    assert set(found) == set(labels)
    assert found[f"collector {first.writer.collector}"][1:] == (3, 0)
    assert found[f"collector {second.writer.collector}"][1:] == (2, 1)
    by_session = {row.session_id: row.name for row in stored(db)}
    assert by_session[found[f"collector {first.writer.collector}"][0]] == "a"
    # The sink again, with more from the first collector: its session goes on.
    await publish(first.ws_url, [{"event": "a", "messageId": "a-later"}])
    said = await sink_until(6)
    assert said.startswith("stopped: stored 1 event (0 duplicates, 0 refused)"), said
    again = await asyncio.to_thread(sessions)
    assert again[f"collector {first.writer.collector}"] == (
        found[f"collector {first.writer.collector}"][0],
        4,
        0,
    )
    assert (
        again[f"collector {second.writer.collector}"]
        == found[f"collector {second.writer.collector}"]
    )
    assert len(again) == 2


async def test_a_sink_killed_mid_batch_stores_each_event_once_in_its_collectors_session(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    """kill -9 of the sink while it writes two collectors' sessions: the next run continues
    both, and the redelivered batch is stored once."""
    stream = settings(node.url)
    await start_two(collectors, tmp_path, stream)
    for n, collector in enumerate(collectors):
        async with connect(collector.ws_url) as ws:
            for frame in range(20):
                events = [{"event": f"c{n}", "messageId": f"{n}-{frame}-{i}"} for i in range(500)]
                await ws.send(json.dumps(events))
            await recv_until_ack(ws, 20, timeout=30)
    config = tmp_path / "eventtui.toml"
    config.write_text(f'[stream]\nname = "{stream.name}"\n')
    db = tmp_path / "sink.db"

    def count() -> int:
        try:
            with Reader(db) as reader:
                return reader.count_events()
        except Exception:  # not created yet
            return 0

    sink = await asyncio.to_thread(start_sink, node.url, db, "--config", str(config))
    await until(lambda: count() > 0, timeout=20)
    sink.kill()
    await asyncio.to_thread(sink.communicate)
    killed_at = count()
    sink = await asyncio.to_thread(start_sink, node.url, db, "--config", str(config))
    try:
        await until(lambda: count() >= 20_000, timeout=60)
    finally:
        sink.send_signal(signal.SIGINT)
        _, err = await asyncio.to_thread(sink.communicate, timeout=30)
    assert sink.returncode == 0, err
    assert killed_at < 20_000
    with Reader(db) as reader:
        sessions = reader.sessions()
        assert sorted(s.events for s in sessions) == [10_000, 10_000]
        assert {s.label for s in sessions} == {
            f"collector {c.writer.collector}" for c in collectors
        }
    assert len({row.message_id for row in stored(db)}) == 20_000


async def test_a_batch_a_dead_sink_held_is_stored_after_the_next_one(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    """A sink killed between fetch and ack leaves its batch delivered and unacknowledged. The
    next run stores the messages after it first; its ack must not cover the stranded batch (an
    "ack all" did, and those events were never stored): it is delivered again after ack_wait."""
    stream = settings(node.url)
    collectors.append(await stream_collector(tmp_path / "c.db", stream))
    await publish(collectors[0].ws_url, [{"event": "e", "messageId": f"m{i}"} for i in range(50)])
    db = tmp_path / "sink.db"
    # The first run: its consumer fetches 20 messages, then the process "dies" (no ack).
    first = Sink(stream, Writer(db, source="sink"), durable="s", ack_wait=2, batch=20)
    await first.connect()
    subscription = await first._bind(asyncio.Event())
    assert len(await subscription.fetch(20, timeout=5)) == 20
    await first.link.nc.close()  # gone without a word, as after kill -9
    await sink_until(db, stream, 50)  # the next run (same durable), ack_wait 2 s
    assert sorted(row.message_id for row in stored(db)) == sorted(f"m{i}" for i in range(50))


def api_get(collector: Collector, route: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{collector.http_url}{route}", timeout=10) as response:
            return response.status, dict(json.load(response))
    except urllib.error.HTTPError as exc:
        return exc.code, dict(json.load(exc))


async def test_the_test_api_on_a_stream_collector_reads_the_stream(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    """`/api/*` on a collector with --stream: it has no store (the API once answered 503 "no such
    store"), so it reads the stream, mirrored from when the collector started: a cursor, then
    a wait that answers as soon as the event is on the stream, whichever collector took it."""
    stream = settings(node.url)
    await start_two(collectors, tmp_path, stream)
    first, second = collectors
    status, cursor = await asyncio.to_thread(api_get, first, "/api/cursor")
    assert status == 200, cursor
    route = f"/api/wait?filter=name:checkout&after={cursor['last_id']}&count=2&timeout=10s"
    waiting = asyncio.create_task(asyncio.to_thread(api_get, first, route))
    await publish(first.ws_url, [{"event": "checkout", "messageId": "a"}, {"event": "page"}])
    await publish(second.ws_url, [{"event": "checkout", "messageId": "b"}])
    status, answer = await waiting
    assert status == 200, answer
    assert [e["messageId"] for e in answer["events"]] == ["a", "b"]
    status, summary = await asyncio.to_thread(api_get, first, "/api/summary")
    assert status == 200, summary
    assert not (tmp_path / "0.db").exists()  # nothing written where a store would be


def test_on_a_sampled_stream_rates_and_deadlines_are_judged_from_the_rollups() -> None:
    """The TUI's rows of a busy stream are a sample (1 a second here, of 50): judged on them, an
    expectation of 100 a minute would fire "low rate"; the rollups count all 50."""
    from collections import namedtuple

    from eventtui.config import Expectation
    from eventtui.monitor import LOW_RATE, OK, Monitor

    Row = namedtuple("Row", "name received_at valid")
    sample = [Row("page", 60.0 + s, True) for s in range(180)]
    rollups = [(60 + s, 50) for s in range(180)]

    def monitor() -> Monitor:
        return Monitor([Expectation(event="page", min_rate=100.0)], started_at=60.0)

    on_rows = monitor()
    on_rows.observe_many(sample)
    assert on_rows.state_of("page", 240.0) == LOW_RATE
    on_stream = monitor()
    on_stream.observe_many(sample, count=False, rates=False)
    on_stream.observe_counts("page", rollups, last_seen=239.5)
    assert on_stream.state_of("page", 240.0) == OK
    (tracker,) = on_stream.trackers
    assert tracker.last_seen == 239.5
    # Learned cadence counts every event too: 50 a second, 3,000 in each whole minute.
    on_stream.observe_counts("click", rollups, last_seen=239.5)
    assert on_stream.learned._by_name["click"].count == 50 * 180


def test_sessions_past_their_writer_bound_close_the_idlest_and_reopen_it(tmp_path: Path) -> None:
    """The sink's sessions: at most `max_writers` writer processes; a collector whose writer was
    closed gets the same session back when it comes again."""
    from eventtui.model import StoredEvent
    from eventtui.store import Submission
    from eventtui.stream.sink import Sessions

    def event(name: str, message_id: str) -> StoredEvent:
        return StoredEvent(
            time.time(),
            None,
            name,
            "track",
            None,
            None,
            message_id,
            "t",
            "{}",
            "{}",
            True,
            None,
            None,
        )

    sessions = Sessions(tmp_path / "s.db", "S", "d", max_writers=1)
    try:
        first = sessions.writer_for("one")
        first.submit(Submission([event("a", "1")]))
        second = sessions.writer_for("two")  # closes "one"'s writer: one process at a time
        assert list(sessions.writers) == ["two"]
        second.submit(Submission([event("b", "2")]))
        again = sessions.writer_for("one")
        again.submit(Submission([event("a", "3")]))
        assert again.session_id == first.session_id != second.session_id
    finally:
        sessions.close()
    assert sessions.stats.events == 3
    with Reader(tmp_path / "s.db") as reader:
        assert sorted((s.label, s.events) for s in reader.sessions()) == [
            ("collector one", 2),
            ("collector two", 1),
        ]


async def test_one_shot_commands_read_every_event_of_a_busy_second(
    node: Cluster, tmp_path: Path, collectors: list[Collector]
) -> None:
    """More events in one second than the TUI's sample keeps (SAMPLE_CAP): `query` reads them all
    (one-shot commands mirror without a sample: `on_stream` samples only for `open`)."""
    from eventtui.stream.sampling import SAMPLE_CAP

    stream = settings(node.url)
    collectors.append(await stream_collector(tmp_path / "c.db", stream))
    busy = SAMPLE_CAP + 500
    await publish(collectors[0].ws_url, [{"event": "e", "messageId": f"m{i}"} for i in range(busy)])
    config = tmp_path / "eventtui.toml"
    config.write_text(f'[stream]\nname = "{stream.name}"\n')
    common = ["--config", str(config), "--stream", node.url]
    result = await asyncio.to_thread(eventtui, "query", "--json", "--limit", "0", *common)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == busy


async def test_a_collector_waits_for_a_cluster_still_electing_its_leaders(tmp_path: Path) -> None:
    """Collectors started beside their cluster (CI failed on it once): the JetStream API answers
    nothing until the nodes have elected a leader, and a collector failed on its first request
    (5 s). It asks again until `connect_timeout`, then starts."""
    cluster = Cluster(tmp_path / "nats", size=3)
    first, *others = cluster.nodes
    cluster.launch(first)  # alone: no quorum, no JetStream leader
    config = tmp_path / "eventtui.toml"
    config.write_text('[stream]\nreplicas = 3\nconnect_timeout = "60s"\n')
    try:
        starting = asyncio.create_task(
            asyncio.to_thread(
                Collect, tmp_path / "c.db", "--stream", first.url, "--config", str(config)
            )
        )
        await asyncio.sleep(6)  # longer than one JetStream request's 5 s
        assert not starting.done(), "started or failed without a JetStream leader"
        for node in others:
            cluster.launch(node)
        collector = await asyncio.wait_for(starting, 60)
        try:
            assert collector.first_line.startswith("listening on")
        finally:
            collector.close()
    finally:
        cluster.stop()
