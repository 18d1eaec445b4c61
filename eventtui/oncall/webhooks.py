"""Webhook alerts (`[[alert]]`): a notice when an anomaly starts firing and when it resolves.

Each webhook has its own bounded queue and its own task on the collector's event loop: `post`
only appends (never awaits, never blocks ingest), the task sends in order, retrying a failure
with exponential backoff (`RETRY_DELAYS`, or the server's Retry-After, capped) before giving the
notice up. A full queue drops its oldest notice. A failing webhook is one warning in the log when
it starts failing, one line when it works again, and a short line in `/health`
(`alerts_failing`, which the TUI's status line shows); never an exception.

URLs are secrets (a Slack incoming webhook's path is its key): only `redact(url)` is ever logged or
shown.

Bodies (README.md, "Page on-call"): `json` (the default) is one object per notice; `slack` is an
incoming-webhook message (`{"text": ...}`) with Slack's control characters escaped, so an event
name cannot mention @channel or forge a link.

May import: aiohttp, msgspec, config, monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp
import msgspec

from eventtui.config import Alert
from eventtui.monitor import Anomaly, describe, format_duration

log = logging.getLogger(__name__)

# Notices waiting per webhook; past this the oldest is dropped (and counted).
QUEUE_LIMIT: Final = 200
# Seconds before each retry of a failed post; after the last one, the notice is given up.
RETRY_DELAYS: Final = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
# A server's Retry-After is followed up to this many seconds.
MAX_RETRY_AFTER: Final = 60.0
# One post, connect to answer.
POST_TIMEOUT: Final = 10.0
# How long `stop` lets queued notices go out (a resolve sent on shutdown is worth a moment).
STOP_SECONDS: Final = 5.0

FIRING: Final = "firing"
RESOLVED: Final = "resolved"

_encode: Final = msgspec.json.Encoder().encode


def redact(url: str) -> str:
    """The URL without what may be a secret: scheme, host and port only ("https://host/…")."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a URL that cannot be read)"
    if ":" in host:
        host = f"[{host}]"
    rest = "/…" if (parts.path not in ("", "/") or parts.query or parts.username) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


@dataclass(frozen=True, slots=True)
class Notice:
    """An anomaly that started firing (`status` FIRING) or stopped (RESOLVED) at `at`."""

    status: str
    anomaly: Anomaly
    at: float
    source: str = ""


def json_body(notice: Notice) -> dict[str, Any]:
    """The default body (README.md documents every key)."""
    a = notice.anomaly
    body: dict[str, Any] = {
        "status": notice.status,
        "event": a.event,
        "where": a.where,
        "state": a.state,
        "kind": a.kind,
        "since": _iso(a.started_at),
        "since_epoch": a.started_at,
        "detail": a.detail,
        "summary": _summary(notice),
        "at": _iso(notice.at),
        "collector": notice.source,
    }
    if notice.status == RESOLVED:
        body["resolved_at"] = _iso(notice.at)
        body["duration_seconds"] = round(max(0.0, notice.at - a.started_at), 3)
    return body


def slack_body(notice: Notice) -> dict[str, Any]:
    """A Slack incoming-webhook message."""
    icon = ":rotating_light:" if notice.status == FIRING else ":white_check_mark:"
    word = "FIRING" if notice.status == FIRING else "RESOLVED"
    where = f" on {notice.source}" if notice.source else ""
    text = f"{icon} *{word}* eventtui{_slack_escape(where)}: {_slack_escape(_summary(notice))}"
    return {"text": text}


def _summary(notice: Notice) -> str:
    a = notice.anomaly
    if notice.status == FIRING:
        return describe(a, notice.at)
    subject = a.event if a.where is None else f"{a.event} [{a.where}]"
    lasted = format_duration(max(0.0, notice.at - a.started_at))
    return f"{subject}: {a.state} resolved after {lasted} ({a.detail})"


def _slack_escape(text: str) -> str:
    # Slack's own rule: &, < and > are its control characters (<!channel>, <url|label>).
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Webhook:
    """One `[[alert]]`: its queue, its sender task, its counts (see the module docstring)."""

    def __init__(
        self,
        index: int,
        alert: Alert,
        *,
        retry_delays: tuple[float, ...] = RETRY_DELAYS,
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self.index = index
        self.alert = alert
        self.name = f"alert[{index}] ({redact(alert.url)})"
        self.retry_delays = retry_delays
        self._queue: deque[Notice] = deque()
        self.queue_limit = queue_limit
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self.sent = 0
        self.failed_attempts = 0
        self.dropped = 0
        # Why the last attempt failed, while it is failing; None once a post succeeds.
        self.failing: str | None = None
        self._dropped_while_failing = 0

    def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=POST_TIMEOUT),
            headers={"User-Agent": "eventtui"},
        )
        self._task = asyncio.create_task(self._run(), name=f"eventtui-{self.name}")

    def post(self, notice: Notice) -> None:
        """Queue a notice; never blocks. A full queue drops its oldest."""
        if len(self._queue) >= self.queue_limit:
            self._queue.popleft()
            self._drop(1)
        self._queue.append(notice)
        self._wake.set()

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Send what is queued (within `timeout`; at once if the webhook is failing: a
        shutdown does not wait out a backoff), then close."""
        if self.failing is not None:
            timeout = 0.0
        if self._task is not None:
            self._queue.append(_STOP)
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
                if self._queue:
                    log.warning(
                        "%s: %d notices not sent before shutdown", self.name, len(self._queue) - 1
                    )
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wake.clear()
                await self._wake.wait()
            notice = self._queue[0]
            if notice is _STOP:
                return
            await self._deliver(notice)
            if self._queue and self._queue[0] is notice:
                self._queue.popleft()

    async def _deliver(self, notice: Notice) -> None:
        body = _encode(slack_body(notice) if self.alert.format == "slack" else json_body(notice))
        for attempt in range(len(self.retry_delays) + 1):
            problem, retry_after = await self._attempt(body)
            if problem is None:
                self.sent += 1
                if self.failing is not None:
                    gave_up = self._dropped_while_failing
                    log.info(
                        "%s: delivering again%s",
                        self.name,
                        f" ({gave_up} notices were given up meanwhile)" if gave_up else "",
                    )
                    self.failing = None
                    self._dropped_while_failing = 0
                return
            self.failed_attempts += 1
            if self.failing is None:
                log.warning("%s: webhook failing: %s; retrying with backoff", self.name, problem)
            self.failing = problem
            if attempt == len(self.retry_delays) or retry_after is False:
                break
            delay = self.retry_delays[attempt]
            if isinstance(retry_after, float):
                delay = min(max(delay, retry_after), MAX_RETRY_AFTER)
            await asyncio.sleep(delay)
        self._drop(1)

    async def _attempt(self, body: bytes) -> tuple[str | None, float | bool | None]:
        """(None, None) when delivered; else (why, Retry-After seconds | False: do not retry)."""
        assert self._session is not None
        try:
            async with self._session.post(
                self.alert.url, data=body, headers={"Content-Type": "application/json"}
            ) as response:
                await response.read()
                if response.status < 300:
                    return None, None
                problem = f"HTTP {response.status}"
                if response.status in (408, 429) or response.status >= 500:
                    return problem, _retry_after(response.headers.get("Retry-After"))
                return f"{problem} (not retried: the webhook refuses this request)", False
        except TimeoutError:
            return f"no answer within {POST_TIMEOUT:g} s", None
        except aiohttp.ClientError as exc:
            # Not str(exc): aiohttp's messages can quote the whole URL, secret included.
            return f"cannot connect ({type(exc).__name__})", None

    def _drop(self, n: int) -> None:
        self.dropped += n
        if self.failing is not None:
            self._dropped_while_failing += n


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


# Marks the end of a queue: `stop` appends it after what is still to be sent.
_STOP: Final = Notice("stop", Anomaly("declared", "", "ok", 0.0, ""), 0.0)
