"""The test API's store on a collector that publishes to a stream: the stream, mirrored.

A collector with `--stream` writes no store, so `/api/*` (collector/api.py) reads a store mirrored
from the stream (`stream/mirror.py`) from the moment the collector started: every event any
collector published to that stream since, with ids of the mirror's own, so a test's cursor, waits
and summaries work as on a store. The mirror starts on the first request (a collector no test
asks costs nothing), in the API's reader thread, which may block, and follows the stream until the
collector stops. Its commits wake the API's waits as a store writer's do.

May import: config, stream.mirror.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventtui.config import StreamConfig


class MirroredStore:
    """What the test API needs of a store (`path`, `add_listener`), for a stream."""

    def __init__(self, settings: StreamConfig, since: float) -> None:
        self.settings = settings
        self.since = since
        self._listeners: list[Callable[[Any], None]] = []
        self._lock = threading.Lock()
        self._mirror: Any = None
        self._folder: str | None = None

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self._listeners.append(listener)

    @property
    def path(self) -> Path:
        """The mirror's store, started (and caught up) on first use; raises StreamError."""
        with self._lock:
            if self._mirror is None:
                self._mirror = self._start()
            return Path(self._mirror.path)

    def _start(self) -> Any:
        from eventtui.stream.mirror import Mirror

        self._folder = tempfile.mkdtemp(prefix="eventtui-api-")
        mirror = Mirror(
            self.settings, Path(self._folder) / "stream.db", since=self.since, follow=True
        )
        for listener in self._listeners:
            mirror.writer.add_listener(listener)
        try:
            mirror.start()
        except BaseException:
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        mirror.wait()
        return mirror

    def close(self) -> None:
        with self._lock:
            if self._mirror is not None:
                self._mirror.close()
                self._mirror = None
            if self._folder is not None:
                shutil.rmtree(self._folder, ignore_errors=True)
