"""The HTTP test API: what a test suite asks the collector (README.md, "Assert on tracking in tests").

| route | answers |
|---|---|
| `GET /api/cursor` | `{"last_id", "last_reject_id"}`: the committed high-water marks |
| `GET /api/events?filter=F&after=ID&limit=N` | committed events matching F with id > ID, oldest first |
| `GET /api/wait?filter=F&after=ID&count=N&timeout=5s` | as soon as N match: 200 and them; else 408 and a diagnosis |
| `GET /api/summary?after=ID&rejects_after=R` | per name: events and invalid ones; refusals; plan violations |

Events are the objects `eventtui export` writes (`store.rows.export_line`). A bad parameter is a
400 naming it, in one line. The routes sit behind the HTTP listener's guard: the same Origin, Host
and token rules as ingestion.

A wait is woken by the commit itself: the writer reports each transaction (`Writer.add_listener`),
and while any wait is open a report schedules one scan of the rows committed since the last
scan, for every open wait at once (`id > seen AND filter`, bounded by what each still needs), in
this module's one reader thread. Commits during a scan set `_dirty` and cause one more scan, so a
burst of commits costs one scan per scan time, never one per commit, and none is missed. With no
wait open, a commit costs one truthiness test.

May import: aiohttp, msgspec, config, store (Reader, rows), filters, explain.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

import msgspec
from aiohttp import web

from eventtui.config import parse_duration
from eventtui.explain import SIMILAR_RATIO, Explainer, name_likeness
from eventtui.filters import Compiled, FilterError, compile_filter
from eventtui.store import MAX_INT64, Commit, EventRow, Reader, StoreError
from eventtui.store.rows import export_line

log = logging.getLogger(__name__)

# Bounds on what one request may ask for, and on what an answer carries.
MAX_LIMIT: Final = 1000
DEFAULT_LIMIT: Final = 100
MAX_COUNT: Final = 10_000
DEFAULT_TIMEOUT: Final = 5.0
MAX_TIMEOUT: Final = 300.0
NEAR_MISSES: Final = 5
# A timed-out wait is diagnosed from at most this many of the newest ids after its cursor.
DIAGNOSED_EVENTS: Final = 100_000
LISTED: Final = 20  # refusals and plan violations listed in a summary
# Where near misses are looked for: at most this many distinct names since the cursor, this many
# events of a name that meets the filter's name terms, of a similar name, or (a filter without a
# name term) among the newest events.
_NAMES_LOOKED_AT: Final = 1000
_SAME_NAME_EVENTS: Final = 20
_SIMILAR_NAME_EVENTS: Final = 3
_RECENT_EVENTS: Final = 200
# A raw refused body is shown up to this many characters in a summary.
_RAW_SHOWN: Final = 200

_PARAMETERS: Final = {
    "cursor": (),
    "events": ("filter", "after", "limit"),
    "wait": ("filter", "after", "count", "timeout"),
    "summary": ("after", "rejects_after"),
}
_encode: Final = msgspec.json.Encoder().encode
_T = TypeVar("_T")
Handler = Callable[[web.Request], Awaitable[web.Response]]


class _Refused(Exception):
    """A request answered with an error: `status` and one line saying what and where."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = " ".join(message.split())


@dataclass(eq=False)
class _Wait:
    """One open `/api/wait`: what it wants and what it found so far."""

    compiled: Compiled
    count: int
    seen: int  # every committed event up to this id has been judged
    future: asyncio.Future[None]
    found: list[EventRow] = field(default_factory=list)


class ApiStore(Protocol):
    """The store the API reads: a collector's writer, or a stream mirrored (`api_stream.py`).
    `path` may block (a mirror starts on first use): it is read in the reader thread."""

    @property
    def path(self) -> Path: ...

    def add_listener(self, listener: Callable[[Commit], None]) -> None: ...


class TestApi:
    """The routes above, for one collector's store (see the module docstring)."""

    __test__ = False  # not a pytest test class, whatever its name says

    def __init__(self, writer: ApiStore, loop: asyncio.AbstractEventLoop, max_waits: int) -> None:
        self.writer = writer
        self.loop = loop
        self.max_waits = max_waits
        self._waits: set[_Wait] = set()
        self._scanning = False
        self._dirty = False
        self._closed = False
        # One thread owns the reader's connection (sqlite3 objects stay in their thread): reads
        # never block the event loop that parses incoming events.
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="eventtui-api-read")
        self._reader: Reader | None = None
        writer.add_listener(self._on_commit)

    def routes(self) -> list[tuple[str, Handler]]:
        """(path, handler) for each GET route."""
        return [
            (f"/api/{name}", _answering(handler))
            for name, handler in (
                ("cursor", self._cursor),
                ("events", self._events),
                ("wait", self._wait),
                ("summary", self._summary),
            )
        ]

    async def close(self) -> None:
        """Answer every open wait (503: stopping) and stop the reader thread."""
        if self._closed:
            return
        self._closed = True
        for wait in self._waits:
            if not wait.future.done():
                wait.future.set_exception(_Stopping())
        self._waits.clear()
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close_reader)
        self._pool.shutdown(wait=False)

    # --- routes ----------------------------------------------------------------------------------

    async def _cursor(self, request: web.Request) -> web.Response:
        _params(request, "cursor")
        last_id, last_reject_id = await self._read(
            lambda r: (r.last_event_id(), r.last_reject_id())
        )
        return _json(200, {"last_id": last_id, "last_reject_id": last_reject_id})

    async def _events(self, request: web.Request) -> web.Response:
        query = _params(request, "events")
        compiled, _ = _filter(query)
        after = _integer(query, "after", 0, 0, MAX_INT64)
        limit = _integer(query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)

        def read(reader: Reader) -> tuple[list[EventRow], int]:
            high = reader.last_event_id()
            rows = reader.query(
                compiled.where, compiled.params, from_id=after + 1, to_id=high, limit=limit
            )
            # Everything matching up to `last_id` is in this answer: the next page starts there.
            return rows, rows[-1].id if len(rows) == limit else max(high, after)

        rows, last_id = await self._read(read)
        return _json(200, {"events": _exported(rows), "last_id": last_id})

    async def _wait(self, request: web.Request) -> web.Response:
        query = _params(request, "wait")
        compiled, text = _filter(query)
        after = _integer(query, "after", 0, 0, MAX_INT64)
        count = _integer(query, "count", 1, 1, MAX_COUNT)
        timeout = _timeout(query)
        if self._closed:
            return _error(503, "the collector is stopping")
        if len(self._waits) >= self.max_waits:
            return _error(
                503,
                f"{self.max_waits} waits are open already ([collector] max_connections); retry"
                " when one is answered",
                {"Retry-After": "1"},
            )
        started = time.monotonic()
        wait = _Wait(compiled, count, after, self.loop.create_future())
        self._waits.add(wait)
        self._scan_soon()
        try:
            await asyncio.wait_for(asyncio.shield(wait.future), timeout)
        except TimeoutError:
            pass
        except _Stopping:
            return _error(503, "the collector is stopping")
        finally:
            self._waits.discard(wait)
        if len(wait.found) >= count:
            found = wait.found[:count]
            return _json(
                200,
                {"events": _exported(found), "matched": count, "last_id": found[-1].id},
            )
        waited = time.monotonic() - started
        diagnosis = await self._read(lambda r: _diagnose(r, text, wait, after))
        matched = len(wait.found)
        arrived = diagnosis["arrived"]
        misses = len(diagnosis["near_misses"])
        problem = (
            f"timed out after {waited:.3g} s: {matched} of {count} event{'s' * (count != 1)}"
            f" matching {text!r} after event {after} ({arrived} event{'s' * (arrived != 1)}"
            f" arrived since; {misses} near miss{'es' * (misses != 1)})"
        )
        return _json(
            408,
            {
                "ok": False,
                "error": problem,
                "filter": text,
                "after": after,
                "count": count,
                "matched": matched,
                "events": _exported(wait.found),
                **diagnosis,
                "store": str(self.writer.path),
            },
        )

    async def _summary(self, request: web.Request) -> web.Response:
        query = _params(request, "summary")
        after = _integer(query, "after", 0, 0, MAX_INT64)
        rejects_after = _integer(query, "rejects_after", 0, 0, MAX_INT64)

        def read(reader: Reader) -> dict[str, Any]:
            high = reader.last_event_id()
            names = reader.names_after(after, high)
            violations = reader.invalid_after(after, to_id=high, limit=LISTED)
            refused, refusals = reader.rejects_after(rejects_after, LISTED)
            return {
                "after": after,
                "last_id": max(high, after),
                "events": sum(n for _, n, _ in names),
                "names": {name: {"count": n, "invalid": bad} for name, n, bad in names},
                "invalid": sum(bad for _, _, bad in names),
                "violations": [
                    {"id": row.id, "name": row.name, "errors": row.error_list()}
                    for row in violations
                ],
                "refused": refused,
                "refusals": [
                    {
                        "id": r["id"],
                        "reason": r["reason"],
                        "client": r["client"],
                        "received_at": r["received_at"],
                        "raw": bytes(r["raw"] or b"")[:_RAW_SHOWN].decode("utf-8", "replace"),
                    }
                    for r in refusals
                ],
                "last_reject_id": max(
                    rejects_after, refusals[-1]["id"] if refusals else reader.last_reject_id()
                ),
            }

        return _json(200, await self._read(read))

    # --- waking waits on commits -----------------------------------------------------------------

    def _on_commit(self, commit: Commit) -> None:
        # The writer's receiver thread: hop to the loop only while some wait is open.
        if self._waits and not commit.error and not self._closed and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._scan_soon)

    def _scan_soon(self) -> None:
        if self._scanning:
            self._dirty = True  # the running scan may have read its high-water mark already
            return
        if self._waits:
            self._scanning = True
            self.loop.create_task(self._scan())

    async def _scan(self) -> None:
        try:
            while self._waits and not self._closed:
                self._dirty = False
                waits = [w for w in self._waits if not w.future.done()]
                try:
                    found = await self._read(functools.partial(_scan, waits=waits))
                except _Refused as exc:
                    log.warning("the test API could not read the store: %s", exc)
                    return
                for wait, rows, seen in found:
                    wait.found.extend(rows)
                    wait.seen = seen
                    if len(wait.found) >= wait.count and not wait.future.done():
                        wait.future.set_result(None)
                if not self._dirty:
                    return
        finally:
            self._scanning = False

    # --- the reader thread -----------------------------------------------------------------------

    async def _read(self, read: Callable[[Reader], _T]) -> _T:
        """`read(reader)` in the reader thread; a StoreError is a 503 naming it."""

        def run() -> _T:
            if self._reader is None:
                self._reader = Reader(self.writer.path)
            return read(self._reader)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, run)
        except StoreError as exc:
            raise _Refused(503, f"cannot read the store: {exc}") from None

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


class _Stopping(Exception):
    """The collector stops while a wait is open."""


# --- in the reader thread ---------------------------------------------------------------------------


def _scan(reader: Reader, waits: Sequence[_Wait]) -> list[tuple[_Wait, list[EventRow], int]]:
    """For each wait: the matching rows committed since it last looked (at most what it still
    needs), and the id up to which it has now looked."""
    high = reader.last_event_id()
    out = []
    for wait in waits:
        if wait.seen >= high:
            continue
        c = wait.compiled
        need = wait.count - len(wait.found)
        rows = reader.query(c.where, c.params, from_id=wait.seen + 1, to_id=high, limit=need)
        out.append((wait, rows, high))
    return out


def _diagnose(reader: Reader, text: str, wait: _Wait, after: int) -> dict[str, Any]:
    """What arrived since `after` instead, and the nearest misses: events of the name the filter
    wants with other properties, and events of similar names, each with why it did not match."""
    high = max(reader.last_event_id(), after)
    # A wait from long ago (after=0 on a large store) is diagnosed on its newest events only.
    after = max(after, high - DIAGNOSED_EVENTS)
    names = reader.names_after(after, high)
    explainer = Explainer(text)
    wanted = explainer.wanted_names()
    matched = {row.id for row in wait.found}
    # (rank, likeness) per candidate: 0 = its name meets every name term, 1 = a similar name,
    # 2 = any recent event (a filter that names no event).
    candidates: list[tuple[int, float, EventRow]] = []

    def take(rows: Sequence[EventRow], rank: int, likeness: float) -> None:
        candidates.extend((rank, likeness, row) for row in rows if row.id not in matched)

    if wanted:
        for name, _, _ in names[:_NAMES_LOOKED_AT]:
            misses = [likeness for term in wanted if (likeness := name_likeness(term, name))]
            if misses and min(misses) < SIMILAR_RATIO:
                continue
            rank, events = (1, _SIMILAR_NAME_EVENTS) if misses else (0, _SAME_NAME_EVENTS)
            rows = reader.newest_named(name, after=after, to_id=high, limit=events)
            take(rows, rank, min(misses, default=1.0))
    else:
        rows = reader.query(from_id=after + 1, to_id=high, limit=_RECENT_EVENTS, newest_first=True)
        take(rows, 2, 1.0)
    judged = []
    for rank, likeness, row in candidates:
        why = explainer.reasons(row)
        if why:
            judged.append(((rank, len(why), -likeness, -row.id), why, row))
    judged.sort(key=lambda j: j[0])
    near: dict[tuple[str, ...], dict[str, Any]] = {}
    for _, why, row in judged:
        same = near.get(tuple(why))
        if same is not None:
            same["alike"] += 1  # the newest of those alike stands for them
        elif len(near) < NEAR_MISSES:
            near[tuple(why)] = {"why": why, "alike": 0, "event": _exported([row])[0]}
    return {
        "arrived": sum(n for _, n, _ in names),
        "diagnosed_after": after,
        "names": {name: n for name, n, _ in names[:_NAMES_LOOKED_AT]},
        "near_misses": list(near.values()),
        "last_id": high,
    }


# --- parameters and answers -------------------------------------------------------------------------


def _params(request: web.Request, route: str) -> dict[str, str]:
    """The query parameters, each given at most once, none unknown; raises a 400."""
    known = _PARAMETERS[route]
    query = request.query
    for key in query:
        if key == "token":  # the collector's token, checked by the guard
            continue
        if key not in known:
            takes = f"it takes {', '.join(known)}" if known else "it takes none"
            raise _bad(f"unknown parameter {key!r} for /api/{route}: {takes}")
        if len(query.getall(key)) > 1:
            raise _bad(f"parameter {key!r} is given more than once")
    return {key: query[key] for key in known if key in query}


def _filter(query: dict[str, str]) -> tuple[Compiled, str]:
    text = query.get("filter", "")
    try:
        return compile_filter(text), text
    except FilterError as exc:
        raise _bad(f"filter {exc}") from None


def _integer(query: dict[str, str], key: str, default: int, low: int, high: int) -> int:
    text = query.get(key)
    if text is None:
        return default
    try:
        value = int(text) if text.strip().isascii() else None
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        what = (
            "an id from /api/cursor" if key in ("after", "rejects_after") else f"{low} to {high:,}"
        )
        raise _bad(f"{key} must be a whole number, {what}; got {text!r}")
    return value


def _timeout(query: dict[str, str]) -> float:
    text = query.get("timeout")
    if text is None:
        return DEFAULT_TIMEOUT
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise _bad(f"timeout: {exc}") from None
    if not 0 < seconds <= MAX_TIMEOUT:
        raise _bad(f'timeout must be over 0 and at most {MAX_TIMEOUT:g}s; got "{text}"')
    return seconds


def _bad(message: str) -> _Refused:
    return _Refused(400, message)


def _answering(handler: Handler) -> Handler:
    async def answer(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except _Refused as exc:
            return _error(exc.status, exc.message)

    return answer


def _exported(rows: Sequence[EventRow]) -> list[msgspec.Raw]:
    return [msgspec.Raw(export_line(*row)[:-1]) for row in rows]


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status, body=_encode(obj), content_type="application/json", headers=headers
    )


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return _json(status, {"ok": False, "error": message}, headers)
