"""An asyncio event loop on a thread of its own, beside a UI (or a test) that owns the main thread.

`watch` and `demo` run the collector this way (`collector.thread`), and the demo's traffic too
(`demo`): `start(main)` runs `main(stop)` on a new loop in a daemon thread, and `stop()`, from any
thread, sets the `stop` event `main` waits on and joins the thread.

May import: the standard library only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any

Main = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


class LoopThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, main: Main) -> None:
        """Run `main(stop)` on a new event loop in a new thread; returns at once."""
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._run(main),), name=self.name, daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float) -> None:
        """Set `stop` (now, or as soon as the loop runs) and wait up to `timeout` for the thread."""
        self._stopping.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            # The loop may be closed already if `main` returned on its own.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)

    async def _run(self, main: Main) -> None:
        stop = asyncio.Event()
        self._stop = stop
        self._loop = asyncio.get_running_loop()
        if self._stopping.is_set():  # stopped before the loop ran
            stop.set()
        await main(stop)
