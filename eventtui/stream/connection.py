"""Connecting to NATS JetStream: the first connection (or one clear error), then reconnecting alone.

Every command that uses a stream connects here. The first connection tries each server a couple of
times within `connect_timeout` and fails with a `StreamError` that names the URL and the reason
(the CLI prints it as one line, exit 2). Once connected, the client reconnects forever, waiting
`reconnect_wait` between rounds, and `Link` says whether it is connected and why not.

May import: nats, config, store (StoreError).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError, ServiceUnavailableError

from eventtui.config import StreamConfig as Settings
from eventtui.store import StoreError

log = logging.getLogger(__name__)

# Between reconnection rounds over every server: short, so a failover takes well under a second
# once a node answers, and long enough not to spin while none does.
RECONNECT_WAIT: Final = 0.25
# Between JetStream API requests a cluster could not answer yet (see `Link._api`).
API_RETRY_WAIT: Final = 0.25

T = TypeVar("T")


class StreamError(StoreError):
    """The stream cannot be used (unreachable, refused, misconfigured); one sentence."""


@dataclass
class Link:
    """A connection and what it knows of its own health."""

    settings: Settings
    nc: Client = field(init=False)
    js: JetStreamContext = field(init=False)
    # Why the connection is down right now (None while connected).
    down: str | None = None
    last_error: str | None = None
    closing: bool = False
    on_change: list[Callable[[str | None], None]] = field(default_factory=list)

    @property
    def servers(self) -> list[str]:
        assert self.settings.url
        return [part.strip() for part in self.settings.url.split(",") if part.strip()]

    async def connect(self, *, reconnect_wait: float = RECONNECT_WAIT, **options: Any) -> None:
        """Connect, or raise StreamError naming the URL and the last reason."""

        async def error_cb(exc: Exception) -> None:
            self.last_error = _reason(exc)
            log.debug("stream: %s", self.last_error)

        async def disconnected_cb() -> None:
            if self.closing:
                return
            self._set_down(
                f"lost the stream at {self.settings.url} ({self.last_error or 'closed'})"
            )

        async def reconnected_cb() -> None:
            self._set_down(None)

        try:
            self.nc = await asyncio.wait_for(
                nats.connect(
                    self.servers,
                    connect_timeout=max(0.5, self.settings.connect_timeout / 4),
                    reconnect_time_wait=reconnect_wait,
                    # Bounded for the first connection only (set to forever below).
                    max_reconnect_attempts=1,
                    error_cb=error_cb,
                    disconnected_cb=disconnected_cb,
                    reconnected_cb=reconnected_cb,
                    **options,
                ),
                self.settings.connect_timeout,
            )
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            reason = self.last_error or _reason(exc)
            raise StreamError(f"cannot reach the stream at {self.settings.url}: {reason}") from None
        self.nc.options["max_reconnect_attempts"] = -1
        # Async publishes in flight: the publisher bounds them itself (MAX_IN_FLIGHT).
        self.js = self.nc.jetstream(
            timeout=min(5.0, self.settings.connect_timeout), publish_async_max_pending=1_000_000
        )

    def _set_down(self, why: str | None) -> None:
        if why == self.down:
            return
        self.down = why
        if why:
            log.warning("%s; reconnecting", why)
        else:
            log.warning(
                "stream: reconnected to %s",
                self.nc.connected_url.netloc if self.nc.connected_url else self.settings.url,
            )
        for listener in self.on_change:
            listener(why)

    async def _api(self, call: Callable[[], Awaitable[T]]) -> T:
        """A JetStream API request, asked again while the cluster cannot answer it yet (a fresh
        cluster electing its leaders answers nothing, or "unavailable", for seconds), until
        `connect_timeout` has passed; its last error is raised then. A collector started beside
        its cluster waits for it instead of failing (one did, after a single 5 s request)."""
        deadline = time.monotonic() + self.settings.connect_timeout
        while True:
            try:
                return await call()
            except (TimeoutError, nats.errors.NoRespondersError, ServiceUnavailableError):
                if time.monotonic() + API_RETRY_WAIT >= deadline:
                    raise
                await asyncio.sleep(API_RETRY_WAIT)

    async def ensure_stream(self, subjects: list[str]) -> None:
        """Create the stream if it is missing ([stream] replicas, max_age); StreamError if not."""
        name = self.settings.name
        try:
            await self._api(lambda: self.js.stream_info(name))
            return
        except NotFoundError:
            pass
        except (TimeoutError, nats.errors.Error) as exc:
            raise StreamError(f"stream {name} at {self.settings.url}: {_reason(exc)}") from None
        config = StreamConfig(
            name=name,
            subjects=subjects,
            num_replicas=self.settings.replicas,
            max_age=float(self.settings.max_age),
            storage=StorageType.FILE,
        )
        try:
            await self._api(lambda: self.js.add_stream(config))
        except (TimeoutError, nats.errors.Error) as exc:
            raise StreamError(
                f"cannot create stream {name} ({self.settings.replicas} replicas) at"
                f" {self.settings.url}: {_reason(exc)}"
            ) from None
        log.info("created stream %s with %d replicas", name, self.settings.replicas)

    async def require_stream(self) -> None:
        """Viewers and the sink: the stream must exist; StreamError naming it if not."""
        try:
            await self._api(lambda: self.js.stream_info(self.settings.name))
        except NotFoundError:
            raise StreamError(
                f"no stream {self.settings.name} at {self.settings.url} (a collector with"
                " --stream creates it)"
            ) from None
        except (TimeoutError, nats.errors.Error) as exc:
            raise StreamError(
                f"stream {self.settings.name} at {self.settings.url}: {_reason(exc)}"
            ) from None

    async def close(self, timeout: float = 2.0) -> None:
        """Flush what is buffered and disconnect (every ack we wait for has come, or timed out)."""
        self.closing = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.nc.close(), timeout)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    text = str(exc).removeprefix("nats: ")
    return text or type(exc).__name__


reason = _reason
