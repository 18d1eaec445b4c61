"""Running a collector on its own thread and event loop, beside a UI that owns the main thread.

`watch` and `demo` use this so that ingest never waits on the UI: the collector's loop decodes and
acks while Textual paints on another. They meet only in the store (and the writer's commit signal).

May import: collector.server.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future

from eventtui.collector.server import Collector


class CollectorThread:
    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, name="eventtui-collector", daemon=True)

    def start(self, port: int | None = None, http_port: int | None = None) -> None:
        """Start listening; returns once bound. Raises what `Collector.start` raises."""
        self._port, self._http_port = port, http_port
        self._thread.start()
        self._started.result()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit, ack and close everything; end the session."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.collector.start(self._port, self._http_port)
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        await self._stop.wait()
        await self.collector.stop()
