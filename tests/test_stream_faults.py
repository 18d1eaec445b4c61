"""Losing a machine under load: a real 3-node JetStream cluster on loopback, two `eventtui collect
--stream` processes fed by several clients, an `eventtui sink` process, and `kill -9` of one NATS
node (or of the stream's leader) mid-load. Every event acknowledged to a client must end in the
sink's store exactly once, and every frame a client sent gets an ack or an error."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nats
import pytest
from conftest import Collect, stored, until
from nats_cluster import Cluster, start_sink
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

FRAMES = 60  # per client, 25 events each, one every 25 ms: about 1.5 s of load
EVENTS_PER_FRAME = 25


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "nats", size=3).start()
    yield cluster
    cluster.stop()


@dataclass
class Client:
    """One client: frames sent, acknowledged (by number), and those answered with an error."""

    name: str
    url: str
    sent: int = 0
    acked: int = 0
    errors: set[int] = field(default_factory=set)
    closed: int | None = None  # the close code, if the collector closed the connection

    def ids(self, frame: int) -> list[str]:
        return [f"{self.name}-{frame}-{i}" for i in range(EVENTS_PER_FRAME)]

    async def run(self) -> None:
        async with connect(self.url) as ws:
            receiving = asyncio.create_task(self._receive(ws))
            try:
                for frame in range(1, FRAMES + 1):
                    batch = [
                        {"event": f"load {i % 5}", "messageId": m}
                        for i, m in enumerate(self.ids(frame))
                    ]
                    await ws.send(json.dumps(batch))
                    self.sent = frame
                    await asyncio.sleep(0.025)
            except ConnectionClosed:
                pass
            # Every frame gets its answer: an ack, or an error (and then the connection closes).
            await asyncio.wait_for(receiving, 30)

    async def _receive(self, ws: object) -> None:
        try:
            async for text in ws:  # type: ignore[attr-defined]
                reply = json.loads(text)
                if "ack" in reply:
                    self.acked = reply["ack"]
                elif "error" in reply:
                    last = reply.get("last_frame", reply["frame"])
                    self.errors.update(range(reply["frame"], last + 1))
                if self.acked >= FRAMES:
                    return
        except ConnectionClosed as exc:
            self.closed = exc.rcvd.code if exc.rcvd else 1006

    def acknowledged_ids(self) -> set[str]:
        return {m for frame in range(1, self.acked + 1) for m in self.ids(frame)}


async def leader_of(url: str, stream: str) -> str:
    nc = await nats.connect(url.split(","))
    try:
        info = await nc.jetstream().stream_info(stream)
        assert info.cluster is not None and info.cluster.leader
        return info.cluster.leader
    finally:
        await nc.close()


async def load_and_kill(cluster: Cluster, tmp_path: Path, victim: str) -> None:
    config = tmp_path / "eventtui.toml"
    # A fresh cluster elects its JetStream leaders while the collectors start: on a loaded machine
    # that took longer than the default 5 s to connect and create the stream.
    config.write_text('[stream]\nreplicas = 3\nack_timeout = "15s"\nconnect_timeout = "30s"\n')
    sink_db = tmp_path / "sink.db"
    # Started side by side: each is a Python process that takes a moment to import. The sink
    # comes once a collector has created the stream.
    started = await asyncio.gather(
        *(
            asyncio.to_thread(
                Collect, tmp_path / f"c{i}.db", "--stream", cluster.url, "--config", str(config)
            )
            for i in range(2)
        ),
        return_exceptions=True,
    )
    collectors = [c for c in started if isinstance(c, Collect)]
    failed = [c for c in started if isinstance(c, BaseException)]
    if failed:  # the one that did start is not left running
        for collector in collectors:
            collector.close()
        raise failed[0]
    try:
        sink = await asyncio.to_thread(start_sink, cluster.url, sink_db)
    except BaseException:
        for collector in collectors:  # no process left behind by a test that failed early
            collector.close()
        raise
    try:
        clients = [Client(f"c{i}", collectors[i % 2].ws_url) for i in range(4)]
        load = asyncio.gather(*(client.run() for client in clients))
        await until(lambda: sum(c.acked for c in clients) >= 20, what="load to be under way")
        name = await leader_of(cluster.url, "EVENTTUI") if victim == "leader" else victim
        cluster.node_named(name).kill()
        killed_at = [c.sent for c in clients]
        await load
        for client, sent_before in zip(clients, killed_at, strict=True):
            # Never silence: every frame sent is acknowledged, or named in an error.
            unanswered = set(range(client.acked + 1, client.sent + 1)) - client.errors
            assert not unanswered or client.closed == 1011, (client, unanswered)
            # The collectors reconnected by themselves: frames sent after the kill were acked.
            assert client.acked > sent_before, client
        acknowledged = set().union(*(c.acknowledged_ids() for c in clients))
        assert len(acknowledged) >= 4 * EVENTS_PER_FRAME * 20

        def in_store() -> set[str]:
            assert sink.poll() is None, sink.communicate()
            return {row.message_id for row in stored(sink_db)}

        await until(lambda: acknowledged <= in_store(), timeout=30, what="the sink to catch up")
        ids = [row.message_id for row in stored(sink_db)]
        assert len(ids) == len(set(ids)), "an event stored twice"
        for collector in collectors:
            code, err = collector.stop()
            assert code == 0, err
            assert "stopped: published" in err
    finally:
        sink.send_signal(signal.SIGTERM)
        _, err = sink.communicate(timeout=30)
        for collector in collectors:
            collector.close()
    assert sink.returncode == 0, err


async def test_kill_9_of_one_node_mid_load_loses_no_acknowledged_event(
    cluster: Cluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    await load_and_kill(cluster, tmp_path, "n2")
    assert time.monotonic() - started < 30


async def test_kill_9_of_the_stream_leader_mid_load_loses_no_acknowledged_event(
    cluster: Cluster, tmp_path: Path
) -> None:
    await load_and_kill(cluster, tmp_path, "leader")
