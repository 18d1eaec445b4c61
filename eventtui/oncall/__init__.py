"""On-call: what a running collector tells the tools that page people (README.md, "Page on-call").

`OnCall` is a collector extension (`eventtui.collector.server.Extension`): `collect`, `watch` and
`demo` hand one to their `Collector`. It owns

- `watch.CollectorWatch`: the collector's own counts and its judgement of the declared
  expectations and the tracking plan (an `Ingest` tap, counting per committed batch), so a
  headless `eventtui collect` knows when an expected event has gone quiet;
- `metrics.Metrics`: `GET /metrics` for Prometheus, built from that at scrape time;
- `webhooks.Webhook`s (`[[alert]]`): a notice when an anomaly starts firing and when it resolves,
  from a check once every `TICK_SECONDS`, posted by their own tasks, never in ingest's way.

May import: collector (the extension's types), monitor, store, config, model, aiohttp,
prometheus_client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from eventtui.config import Config
from eventtui.oncall.metrics import Metrics
from eventtui.oncall.watch import CollectorWatch
from eventtui.oncall.webhooks import FIRING, RESOLVED, Notice, Webhook, redact

if TYPE_CHECKING:
    from eventtui.collector.server import Collector, RouteHandler
    from eventtui.monitor import Anomaly

__all__ = ["OnCall", "redact"]

log = logging.getLogger(__name__)

# How often the collector judges its anomalies for webhooks: the monitor's own resolution.
TICK_SECONDS: Final = 1.0

_Key = tuple[str, str, str | None, str, float]


class OnCall:
    """Metrics and webhook alerts for one collector (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        retry_delays: tuple[float, ...] | None = None,
        tick: float = TICK_SECONDS,
    ) -> None:
        self.config = config
        self.tick = tick
        self.clock = clock
        self._retry_delays = retry_delays
        self.watch: CollectorWatch | None = None
        self.metrics: Metrics | None = None
        self.webhooks: list[Webhook] = []
        self._firing: dict[_Key, Anomaly] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._source = ""

    # --- the collector extension ----------------------------------------------------------------

    def routes(self) -> Iterable[tuple[str, RouteHandler]]:
        assert self.metrics is not None, "start() first"
        return [("/metrics", self.metrics.handle)]

    async def start(self, collector: Collector) -> None:
        assert collector.ingest is not None
        loop = asyncio.get_running_loop()
        self.watch = CollectorWatch(self.config, started_at=self.clock(), loop_time=loop.time)
        collector.ingest.taps.append(self.watch)
        self.metrics = Metrics(self.watch, collector, self, clock=self.clock)
        self._collector = collector
        if self.config.alert:
            for index, alert in enumerate(self.config.alert):
                webhook = (
                    Webhook(index, alert)
                    if self._retry_delays is None
                    else Webhook(index, alert, retry_delays=self._retry_delays)
                )
                webhook.start()
                self.webhooks.append(webhook)
            self._ticker = asyncio.create_task(self._tick(), name="eventtui-oncall-tick")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await asyncio.gather(*(w.stop() for w in self.webhooks))

    def health(self) -> dict[str, Any]:
        failing = [
            f"alert[{w.index}] failing: {w.failing} ({redact(w.alert.url)})"
            for w in self.webhooks
            if w.failing is not None
        ]
        return {"alerts_failing": "; ".join(failing)} if failing else {}

    def alert_stats(self) -> list[tuple[str, int, int, int, bool]]:
        return [
            (str(w.index), w.sent, w.failed_attempts, w.dropped, w.failing is not None)
            for w in self.webhooks
        ]

    # --- webhooks -------------------------------------------------------------------------------

    async def _tick(self) -> None:
        while True:
            try:
                self.check(self.clock())
            except Exception:  # a bug here must not stop the checks for good, nor the collector
                log.exception("checking anomalies for webhook alerts failed")
            await asyncio.sleep(self.tick)

    def check(self, now: float) -> list[Notice]:
        """Compare what fires now with what fired at the last check; post the differences."""
        assert self.watch is not None
        source = self._collector.http_url or self._collector.ws_url
        firing = {_key(a): a for a in self.watch.anomalies(now) if a.firing}
        notices = [
            Notice(FIRING, a, now, source) for k, a in firing.items() if k not in self._firing
        ]
        notices += [
            Notice(RESOLVED, a, now, source) for k, a in self._firing.items() if k not in firing
        ]
        self._firing = firing
        for notice in notices:
            for webhook in self.webhooks:
                webhook.post(notice)
        return notices


def _key(anomaly: Anomaly) -> _Key:
    return (anomaly.kind, anomaly.event, anomaly.where, anomaly.state, anomaly.started_at)
