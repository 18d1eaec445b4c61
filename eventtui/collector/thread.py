"""Running a collector on its own thread and event loop, beside a UI that owns the main thread.

`watch` and `demo` use this so that ingest never waits on the UI: the collector's loop decodes and
acks while Textual paints on another. They meet only in the store (and the writer's commit signal).

May import: collector.server, loop_thread.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

from eventtui.collector.server import Collector
from eventtui.loop_thread import LoopThread


class CollectorThread:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self._thread = LoopThread("eventtui-collector")
        self._started: Future[None] = Future()

    def start(self, port: int | None = None, http_port: int | None = None) -> None:
        """Start listening; returns once bound. Raises what `Collector.start` raises."""

        async def main(stop: asyncio.Event) -> None:
            try:
                await self.collector.start(port, http_port)
            except BaseException as exc:
                self._started.set_exception(exc)
                return
            self._started.set_result(None)
            await stop.wait()
            await self.collector.stop()

        self._thread.start(main)
        self._started.result()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit, ack and close everything; end the session."""
        self._thread.stop(timeout)
