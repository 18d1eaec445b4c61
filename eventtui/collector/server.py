"""The collector: the store's writer, the websocket listener and the HTTP listener, started together.

`Collector` is what `collect`, `watch` and `demo` run. It opens a session in the store, binds the
listeners, and on `stop` shuts down in the order that loses nothing: stop accepting, stop reading,
commit, send the final acks, close the connections, end the session.

May import: config, store, collector.*, plan (the tracking-plan check, through validation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from eventtui.collector.ingest import EventCheck, Ingest
from eventtui.collector.websocket import WebsocketListener
from eventtui.config import Config
from eventtui.store import EventWriter, Writer

log = logging.getLogger(__name__)


class PortInUse(OSError):
    """The port is taken; the message says which and what to do."""


# An aiohttp handler: the collector package owns the HTTP listener, extensions only add routes.
RouteHandler = Callable[[Any], Awaitable[Any]]


class Extension(Protocol):
    """Something that runs beside a collector and its listeners (the on-call metrics and alerts).

    `start` runs once `collector.ingest` exists and before the listeners bind (so an extension can
    add `Ingest.taps`); `routes` are served as GET routes on the HTTP listener; `health` items are
    merged into `/health`; `stop` runs after the last commit, when nothing more will arrive.
    Extensions live above the collector's layer: the collector never imports them, they are handed in.
    """

    def routes(self) -> Iterable[tuple[str, RouteHandler]]: ...

    async def start(self, collector: Collector) -> None: ...

    async def stop(self) -> None: ...

    def health(self) -> dict[str, Any]: ...


@dataclass
class Collector:
    config: Config
    db_path: Path
    source: str = "collect"
    label: str | None = None
    check: EventCheck | None = None
    with_http: bool = True
    extensions: list[Extension] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.check is None:
            from eventtui.collector.validation import plan_check

            self.check = plan_check(self.config)  # raises PlanError for an unusable schema
        self.writer: EventWriter
        if self.config.stream.url:  # publish to JetStream instead of the store file
            from eventtui.stream import StreamPublisher

            self.writer = StreamPublisher(self.config.stream, self.db_path, self.label)
        else:
            self.writer = Writer(self.db_path, source=self.source, label=self.label)
        self.ingest: Ingest | None = None
        self.websocket: WebsocketListener | None = None
        self.http: Any = None
        self.host = self.config.collector.host
        self.port = 0
        self.http_port: int | None = None
        self._pruning: asyncio.Task[None] | None = None
        # What the collector did that its user should hear of (retention), oldest first: the
        # log says it, and the TUI shows each once.
        self.notices: list[str] = []

    @property
    def ws_url(self) -> str:
        return f"ws://{_url_host(self.host)}:{self.port}"

    @property
    def http_url(self) -> str | None:
        return f"http://{_url_host(self.host)}:{self.http_port}" if self.http_port else None

    @property
    def session_id(self) -> int:
        return self.writer.session_id

    @property
    def clients(self) -> int:
        return len(self.websocket.clients) if self.websocket else 0

    async def start(self, port: int | None = None, http_port: int | None = None) -> None:
        """Open the store and listen. Raises StoreError, or PortInUse naming the port."""
        cfg = self.config.collector
        ws_port = cfg.port if port is None else port
        started = time.time()  # with --stream, the test API shows the stream from here
        self.writer.meta.update(host=self.host)
        await asyncio.to_thread(self.writer.start)
        loop = asyncio.get_running_loop()
        self.ingest = Ingest(self.writer, loop, cfg.max_event_bytes, self.check)
        for extension in self.extensions:
            await extension.start(self)
        self.websocket = WebsocketListener(self.ingest, cfg)
        try:
            self.port = await self.websocket.start(self.host, ws_port)
        except OSError as exc:
            await asyncio.to_thread(self.writer.close)
            await self._stop_extensions()
            raise _port_error(exc, self.host, ws_port, "--port") from None
        if self.with_http:
            from eventtui.collector.http import HttpListener

            wanted = http_port if http_port is not None else cfg.http_port
            if wanted is None:
                wanted = self.port + 1 if ws_port != 0 else 0
            routes = [route for ext in self.extensions for route in ext.routes()]
            api_store = None
            if self.config.stream.url:
                # No store here: the test API reads the stream, mirrored from now on.
                from eventtui.collector.api_stream import MirroredStore

                api_store = MirroredStore(self.config.stream, since=started)
            self.http = HttpListener(self.ingest, cfg, self, routes, api_store)
            try:
                self.http_port = await self.http.start(self.host, wanted)
            except OSError as exc:
                await self.websocket.stop()
                await asyncio.to_thread(self.writer.close)
                await self._stop_extensions()
                raise _port_error(exc, self.host, wanted, "--http-port") from None
        if self.config.store.retention:
            self._pruning = asyncio.create_task(self._prune(self.config.store.retention))

    async def _prune(self, retention: float) -> None:
        """[store] retention: delete sessions that ended long ago, once we are listening."""
        from eventtui.store.sessions import prune_sessions

        ids: list[int] = []
        try:
            pruned = await asyncio.to_thread(prune_sessions, self.db_path, retention, ids=ids)
        except Exception:  # pruning is housekeeping: it must never stop collection
            log.exception("retention: could not prune old sessions in %s", self.db_path)
            return
        if pruned.sessions:
            # Said where the user looks (stderr, and the TUI through `health`): deleting data
            # silently surprised users who had forgotten the setting.
            named = ", ".join(map(str, ids[:20])) + (" ..." if len(ids) > 20 else "")
            notice = (
                f"retention deleted {_count(pruned.sessions, 'session')} ({named}) with"
                f" {_count(pruned.events, 'event')}: they ended over {_days(retention)} ago"
                " ([store] retention)"
            )
            self.notices.append(notice)
            log.warning("%s", notice)

    async def stop(self) -> None:
        """Stop accepting, commit and ack what was received, close the session."""
        if self._pruning is not None:
            await self._pruning
        if self.http is not None:
            await self.http.stop()
        if self.websocket is not None:
            await self.websocket.stop()
        await asyncio.to_thread(self.writer.close)
        await self._stop_extensions()

    async def _stop_extensions(self) -> None:
        for extension in self.extensions:
            try:
                await extension.stop()
            except Exception:  # an extension's bug must not undo a clean shutdown of the store
                log.exception("stopping %s failed", type(extension).__name__)

    def health(self) -> dict[str, Any]:
        """`status` "ok", or "error" with the reason in `error` while nothing can be stored
        (the store writer died: restarting, or past its restart policy)."""
        stats = self.writer.stats
        problem = self.writer.problem
        return {
            "status": "ok" if problem is None else "error",
            **({"error": problem} if problem is not None else {}),
            "writer_restarts": self.writer.restarts,
            "session": self.session_id,
            "events": stats.events,
            "duplicates": stats.duplicates,
            "rejects": stats.rejects,
            "clients": self.clients,
            "websocket": self.ws_url,
            "http": self.http_url,
            **{k: v for ext in self.extensions for k, v in ext.health().items()},
        }


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g}d" if seconds >= 86400 else f"{seconds:g}s"


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _port_error(exc: OSError, host: str, port: int, flag: str) -> PortInUse:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return PortInUse(
            exc.errno,
            f"port {port} on {host} is already in use; pick another with {flag} (0 picks a free one)",
        )
    return PortInUse(exc.errno or 0, f"cannot listen on {host}:{port}: {exc.strerror or exc}")
