"""`GET /metrics`: the collector's state in the Prometheus text format (README.md, "Page on-call").

Nothing is updated per event for this: a custom prometheus-client collector reads, at scrape time,
what the collector keeps anyway (the `CollectorWatch` tap's per-batch counts, the writer's stats
and backlog, the websocket clients) and judges the expectations at that moment, so a scrape sees
a deadline the instant it passes. prometheus-client formats the text; none of it is hand-written.

A scrape is built in the event loop (the numbers must not move while they are read), and
formatted there too: measured with 2,000 names it takes milliseconds (benchmarks/metrics.py), and
a thread would only trade that for GIL contention with ingest.

May import: prometheus_client, aiohttp (the response), oncall.watch, monitor, store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Final, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from eventtui.monitor import INVALID, LATE, LOW_RATE, MISSING, OK
from eventtui.oncall.watch import CollectorWatch
from eventtui.store import EventWriter

# The text format every Prometheus 2.x reads (Debian's is 2.42); our names and labels need none of
# version 1.0.0's escaping, and prometheus-client's text is the same for both.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
# The states of `eventtui_expectation_state`, as label values (Prometheus labels avoid spaces).
EXPECTATION_STATES: Final = {OK: "ok", LATE: "late", MISSING: "missing", LOW_RATE: "low_rate"}
FIRING_STATES: Final = {MISSING: "missing", LOW_RATE: "low_rate", INVALID: "invalid"}


class Source(Protocol):
    """What the metrics read from the running collector besides the watch."""

    writer: EventWriter

    @property
    def clients(self) -> int: ...


class AlertStats(Protocol):
    def alert_stats(self) -> list[tuple[str, int, int, int, bool]]:
        """(alert index, sent, failed attempts, dropped, failing now) per webhook."""
        ...


class Metrics:
    """The `/metrics` exposition for one collector (a prometheus-client custom collector)."""

    def __init__(
        self,
        watch: CollectorWatch,
        source: Source,
        alerts: AlertStats | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.watch = watch
        self.source = source
        self.alerts = alerts
        self.clock = clock
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    async def handle(self, request: web.Request) -> web.Response:
        """The aiohttp route: the text exposition, built now."""
        return web.Response(body=self.exposition(), headers={"Content-Type": CONTENT_TYPE})

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:  # the prometheus-client Collector protocol
        watch = self.watch
        watch.drain()
        now = self.clock()
        writer = self.source.writer

        events = CounterMetricFamily(
            "eventtui_events",
            "Events accepted (acknowledged), per event name; names past the cap are counted"
            ' under "(other names)". Duplicates are included (see eventtui_duplicate_events).',
            labels=["name"],
        )
        for name, n in watch.events.items():
            events.add_metric([name], n)
        yield events
        invalid = CounterMetricFamily(
            "eventtui_invalid_events",
            "Accepted events that break the tracking plan, per event name (same cap as above).",
            labels=["name"],
        )
        for name, n in watch.invalid.items():
            invalid.add_metric([name], n)
        yield invalid
        refused = CounterMetricFamily(
            "eventtui_refusals",
            "Input refused (kept in the store's rejects table), by kind of reason.",
            labels=["reason"],
        )
        for reason, n in sorted(watch.refusals.items()):
            refused.add_metric([reason], n)
        yield refused
        yield CounterMetricFamily(
            "eventtui_duplicate_events",
            "Events acknowledged but stored once: their messageId was seen before.",
            value=writer.stats.duplicates,
        )

        state = GaugeMetricFamily(
            "eventtui_expectation_state",
            "1 for the current state of each declared expectation ([[expect]]), 0 for the others.",
            labels=["event", "where", "state"],
        )
        firing = GaugeMetricFamily(
            "eventtui_expectation_firing",
            "1 while a declared expectation is firing (missing or low rate), else 0.",
            labels=["event", "where"],
        )
        age = GaugeMetricFamily(
            "eventtui_expectation_seconds_since_seen",
            "Seconds since the expected event was last seen (since the collector started, if never).",
            labels=["event", "where"],
        )
        for exp in watch.expectation_states(now):
            labels = [exp.tracker.event, exp.tracker.where or ""]
            for key, value in EXPECTATION_STATES.items():
                state.add_metric([*labels, value], 1.0 if exp.state == key else 0.0)
            firing.add_metric(labels, 1.0 if exp.firing else 0.0)
            age.add_metric(labels, exp.age)
        yield state
        yield firing
        yield age
        anomalies = GaugeMetricFamily(
            "eventtui_anomalies_firing",
            "Anomalies firing now (what makes `eventtui check` exit 1), by state.",
            labels=["state"],
        )
        counts = dict.fromkeys(FIRING_STATES.values(), 0)
        for anomaly in watch.anomalies(now):
            if anomaly.firing:
                counts[FIRING_STATES[anomaly.state]] += 1
        for label, n in counts.items():
            anomalies.add_metric([label], n)
        yield anomalies

        latency = HistogramMetricFamily(
            "eventtui_writer_commit_seconds",
            "From handing a batch to the store writer to its commit (what an ack waits for).",
        )
        latency.add_metric([], watch.latency_buckets(), watch.latency_sum)
        yield latency
        yield GaugeMetricFamily(
            "eventtui_writer_backlog_bytes",
            "Bytes handed to the store writer and not yet committed.",
            value=writer.pending_bytes,
        )
        yield GaugeMetricFamily(
            "eventtui_store_up",
            "1 while events can be stored, 0 while the store writer is down.",
            value=0.0 if writer.problem else 1.0,
        )
        yield CounterMetricFamily(
            "eventtui_writer_restarts",
            "Times the store writer process was restarted.",
            value=writer.restarts,
        )
        yield GaugeMetricFamily(
            "eventtui_connected_clients",
            "Websocket clients connected now.",
            value=self.source.clients,
        )
        if self.alerts is not None and (stats := self.alerts.alert_stats()):
            yield from _alert_metrics(stats)


def _alert_metrics(stats: list[tuple[str, int, int, int, bool]]) -> Iterator[Metric]:
    labels = ["alert"]
    sent = CounterMetricFamily(
        "eventtui_alert_notifications_sent", "Webhook notifications delivered.", labels=labels
    )
    failed = CounterMetricFamily(
        "eventtui_alert_attempts_failed",
        "Webhook posts that failed (each retry counts).",
        labels=labels,
    )
    dropped = CounterMetricFamily(
        "eventtui_alert_notifications_dropped",
        "Webhook notifications given up on (retries exhausted, or the queue was full).",
        labels=labels,
    )
    failing = GaugeMetricFamily(
        "eventtui_alert_failing", "1 while a webhook's last attempt failed.", labels=labels
    )
    for index, n_sent, n_failed, n_dropped, is_failing in stats:
        sent.add_metric([index], n_sent)
        failed.add_metric([index], n_failed)
        dropped.add_metric([index], n_dropped)
        failing.add_metric([index], 1.0 if is_failing else 0.0)
    yield from (sent, failed, dropped, failing)
