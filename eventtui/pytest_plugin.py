"""The pytest plugin: assert on tracking from a test suite (README.md, "Assert on tracking in tests").

Installing eventtui is enough: the `pytest11` entry point loads this module in every pytest run.
It adds two fixtures and two options, and imports nothing heavy until a fixture is used.

- `eventtui_collector` (session): a collector on free ports with a temporary store (`.http_url`,
  `.ws_url`, `.db`), started in a thread of this process; or, with `--eventtui-url URL`, the
  collector already listening there. Under pytest-xdist each worker has its own session, so its
  own collector and store.
- `eventtui` (function): an `EventView` from the committed high-water mark at the test's start,
  so a test sees only what arrived since it began, however many tests run at once.

Everything goes through the collector's HTTP test API (`collector.api`), with `urllib`: waits
are long polls answered by the commit itself. Event data in a failure message passes through
`text.clean` (it is printed on a terminal).

May import: pytest, the standard library; collector, config, text (lazily, in fixtures).
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest

__all__ = ["CollectorHandle", "Event", "EventAssertionError", "EventView"]

# Events listed in a failure message, at most.
LISTED_EVENTS: Final = 20
# `events()` reads at most this many (in pages of the API's largest limit).
MAX_EVENTS: Final = 100_000
# Slack on top of a wait's own timeout before the HTTP client gives up on the answer.
_HTTP_SLACK: Final = 10.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("eventtui", "eventtui: assert on tracking")
    group.addoption(
        "--eventtui-url",
        metavar="URL",
        default=None,
        help="use the eventtui collector whose HTTP port is at URL (e.g. http://127.0.0.1:8766;"
        " add ?token=T when it has one) instead of starting one per session",
    )
    group.addoption(
        "--eventtui-config",
        metavar="PATH",
        default=None,
        help="config for the collector the plugin starts (its tracking plan judges the events)",
    )


class EventAssertionError(AssertionError):
    """A tracking assertion that failed; the message says what was awaited and what came."""


# --- talking to a collector ----------------------------------------------------------------------


class _Api:
    """The collector's test API over blocking HTTP."""

    def __init__(self, http_url: str) -> None:
        parts = urllib.parse.urlsplit(http_url)
        self.base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        self.base = self.base.rstrip("/")
        self.token = urllib.parse.parse_qs(parts.query).get("token", [None])[0]

    def get(self, path: str, wait: float = 30.0, **params: object) -> tuple[int, Any]:
        """(status, decoded JSON body); raises EventAssertionError when the collector cannot be
        reached or does not answer JSON."""
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        request = urllib.request.Request(f"{self.base}{path}?{query}")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=wait) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read()
            try:
                return exc.code, json.loads(body)
            except ValueError:
                raise EventAssertionError(
                    f"eventtui at {self.base} answered {exc.code} to {path}, not JSON"
                ) from None
        except (OSError, ValueError) as exc:
            raise EventAssertionError(f"cannot reach eventtui at {self.base}: {exc}") from None

    def ok(self, path: str, **params: object) -> Any:
        status, body = self.get(path, 30.0, **params)
        if status != 200:
            raise EventAssertionError(f"eventtui {path} answered {status}: {body.get('error')}")
        return body


@dataclass
class CollectorHandle:
    """The collector the tests send to: its URLs, and its store where the plugin started it."""

    http_url: str
    ws_url: str
    db: Path | None
    _stop: Any = None

    @property
    def api(self) -> _Api:
        return _Api(self.http_url)


def _start(db: Path, config_path: str | None, label: str) -> CollectorHandle:
    from eventtui.collector import Collector
    from eventtui.collector.thread import CollectorThread
    from eventtui.config import load_config

    config = load_config(Path(config_path) if config_path else None)
    collector = Collector(config, db, source="pytest", label=label)
    thread = CollectorThread(collector)
    thread.start(port=0, http_port=0)
    assert collector.http_url is not None
    return CollectorHandle(collector.http_url, collector.ws_url, db, thread.stop)


def _attach(url: str) -> CollectorHandle:
    health = _Api(url).get("/health", 10)[1]
    return CollectorHandle(url, str(health.get("websocket", "")), None)


@pytest.fixture(scope="session")
def eventtui_collector(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CollectorHandle]:
    """A collector for this session (this xdist worker): started on free ports with a temporary
    store, or the one at `--eventtui-url`."""
    url = request.config.getoption("eventtui_url")
    if url:
        yield _attach(url)
        return
    worker = getattr(request.config, "workerinput", {}).get("workerid", "main")
    db = tmp_path_factory.mktemp(f"eventtui-{worker}") / "events.db"
    handle = _start(db, request.config.getoption("eventtui_config"), f"pytest {worker}")
    try:
        yield handle
    finally:
        handle._stop()


@pytest.fixture
def eventtui(eventtui_collector: CollectorHandle) -> EventView:
    """What arrived at the collector since this test began."""
    return EventView(eventtui_collector)


# --- events --------------------------------------------------------------------------------------


class Event:
    """One stored event, as `eventtui export` writes it (`raw`)."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @property
    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self.raw.get("eventtui", {})
        return meta

    @property
    def id(self) -> int:
        return int(self._meta.get("id", 0))

    @property
    def name(self) -> str:
        return str(self.raw.get("event", self.raw.get("name", "")))

    @property
    def type(self) -> str:
        return str(self.raw.get("type", "track"))

    @property
    def properties(self) -> dict[str, Any]:
        properties: dict[str, Any] = self.raw.get("properties", {})
        return properties

    @property
    def context(self) -> dict[str, Any]:
        context: dict[str, Any] = self.raw.get("context", {})
        return context

    @property
    def user_id(self) -> str | None:
        return self.raw.get("userId")

    @property
    def anonymous_id(self) -> str | None:
        return self.raw.get("anonymousId")

    @property
    def valid(self) -> bool:
        return bool(self._meta.get("valid", True))

    @property
    def errors(self) -> list[str]:
        return [str(e) for e in self._meta.get("errors") or ()]

    def __repr__(self) -> str:
        return f"Event(#{self.id} {self.name!r} {self.properties!r})"


def deep_match(actual: Any, wanted: Any) -> bool:
    """`wanted`'s keys match in `actual`, at every depth; other keys are ignored. Lists and
    values compare whole; a bool is not a number (True does not match 1)."""
    if isinstance(wanted, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and deep_match(actual[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return type(actual) is type(wanted) and actual == wanted
    return bool(actual == wanted)


def _property_terms(wanted: Mapping[str, Any], path: tuple[str, ...] = ()) -> Iterator[str]:
    """Filter terms that narrow the collector's search to `wanted` (the exact check is
    `deep_match`, on what comes back): a term per leaf, `has:` for lists and empty objects."""
    for key, value in wanted.items():
        if '"' in key or "\x00" in key:
            continue  # the grammar cannot address it; deep_match still checks it
        at = (*path, key)
        name = ".".join(f'"{_escaped(k)}"' for k in at)
        if isinstance(value, Mapping) and value:
            yield from _property_terms(value, at)
        elif isinstance(value, bool):
            yield f"{name}={'true' if value else 'false'}"
        elif value is None:
            yield f"{name}=null"
        elif isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            yield f"{name}={value!r}"
        elif isinstance(value, str):
            yield f'{name}="{_escaped(value)}"'
        else:
            yield f"has:{name}"


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


# --- the view a test gets ------------------------------------------------------------------------


class EventView:
    """What the collector committed since this view was made (a test's start)."""

    def __init__(self, collector: CollectorHandle) -> None:
        self.collector = collector
        self.api = collector.api
        cursor = self.api.ok("/api/cursor")
        self.after: int = cursor["last_id"]
        self.rejects_after: int = cursor["last_reject_id"]

    def wait_for(
        self,
        filter: str = "",
        count: int = 1,
        timeout: float = 5.0,
        *,
        properties: Mapping[str, Any] | None = None,
        exact: bool = False,
    ) -> list[Event]:
        """The first `count` events since the test began that match `filter` (and, partially,
        `properties`), as soon as they are committed; fails after `timeout` seconds saying what
        came instead. `exact`: fail too if more than `count` have been committed by then."""
        __tracebackhide__ = True
        found = self._wait(filter, count, timeout, properties, self.after, "")
        if exact:
            extra = [
                e
                for e in self._events(_server_filter(filter, properties), found[-1].id)
                if properties is None or deep_match(e.properties, properties)
            ]
            if extra:
                raise EventAssertionError(
                    f"wanted exactly {count} event{'s' * (count != 1)} matching"
                    f" {_awaited(filter, properties)}; {count + len(extra)} arrived:\n"
                    + _listing([*found, *extra], len(found) + len(extra))
                    + self._store_line()
                )
        return found

    def wait_for_sequence(
        self, filters: Sequence[str | tuple[str, Mapping[str, Any]]], timeout: float = 5.0
    ) -> list[Event]:
        """One event per filter, in this order (each after the one before it); `timeout` is
        for the whole sequence. An item is a filter, or (filter, properties)."""
        __tracebackhide__ = True
        deadline = time.monotonic() + timeout
        after = self.after
        found: list[Event] = []
        for step, item in enumerate(filters, 1):
            text, wanted = (item, None) if isinstance(item, str) else item
            where = f"step {step} of {len(filters)}, after " + (
                f"#{found[-1].id} ({_clean(found[-1].name)!r})" if found else "the test began"
            )
            left = max(deadline - time.monotonic(), 0.001)
            [event] = self._wait(text, 1, left, wanted, after, where, timeout)
            found.append(event)
            after = event.id
        return found

    def events(self, filter: str | None = None) -> list[Event]:
        """Every event committed since the test began (matching `filter`), oldest first."""
        return self._events(filter or "", self.after)

    def assert_no_event(
        self, filter: str, within: float = 0.5, *, properties: Mapping[str, Any] | None = None
    ) -> None:
        """Fail if an event matching `filter` (and `properties`) has arrived since the test
        began, or arrives within `within` seconds."""
        __tracebackhide__ = True
        server = _server_filter(filter, properties)
        deadline = time.monotonic() + within
        status, body = self._long_poll(server, 1, within, self.after)
        while status == 200:
            events = [Event(e) for e in body["events"]]
            bad = [e for e in events if properties is None or deep_match(e.properties, properties)]
            if bad:
                raise EventAssertionError(
                    f"an event matching {_awaited(filter, properties)} arrived, and none should"
                    " have:\n" + _listing(bad, len(bad)) + self._store_line()
                )
            left = max(deadline - time.monotonic(), 0.001)
            status, body = self._long_poll(server, 1, left, body["last_id"])

    def assert_all_valid(self) -> None:
        """Fail if an event broke the tracking plan, or the collector refused anything, since the
        test began."""
        __tracebackhide__ = True
        summary = self.api.ok("/api/summary", after=self.after, rejects_after=self.rejects_after)
        lines = []
        if summary["invalid"]:
            lines.append(f"{summary['invalid']} events broke the tracking plan:")
            for v in summary["violations"]:
                errors = "; ".join(_clean(e) for e in v["errors"])
                lines.append(f"  #{v['id']} {_clean(v['name'])!r}: {errors}")
        if summary["refused"]:
            lines.append(f"{summary['refused']} inputs were refused:")
            for r in summary["refusals"]:
                lines.append(f"  {_clean(r['reason'])} (from {_clean(str(r['client']))})")
        if lines:
            raise EventAssertionError("\n".join(lines) + "\n" + self._store_line())

    # --- helpers ---------------------------------------------------------------------------------

    def _wait(
        self,
        filter: str,
        count: int,
        timeout: float,
        properties: Mapping[str, Any] | None,
        after: int,
        step: str,
        budget: float | None = None,
    ) -> list[Event]:
        __tracebackhide__ = True
        server = _server_filter(filter, properties)
        deadline = time.monotonic() + timeout
        found: list[Event] = []
        unlike: list[Event] = []  # matched the filter, not `properties` exactly
        while True:
            left = deadline - time.monotonic()
            status, body = self._long_poll(server, count - len(found), max(left, 0.001), after)
            if status != 200:
                break
            for event in (Event(e) for e in body["events"]):
                good = properties is None or deep_match(event.properties, properties)
                (found if good else unlike).append(event)
            after = body["last_id"]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() >= deadline:
                body = self._long_poll(server, 1, 0.001, after)[1]
                break
        raise EventAssertionError(
            self._timeout_message(
                filter, properties, count, budget or timeout, step, body, found, unlike
            )
        )

    def _long_poll(self, filter: str, count: int, timeout: float, after: int) -> tuple[int, Any]:
        status, body = self.api.get(
            "/api/wait",
            timeout + _HTTP_SLACK,
            filter=filter,
            after=after,
            count=count,
            timeout=f"{timeout:.3f}",
        )
        if status not in (200, 408):
            raise EventAssertionError(f"eventtui /api/wait answered {status}: {body.get('error')}")
        return status, body

    def _events(self, filter: str, after: int) -> list[Event]:
        events: list[Event] = []
        while len(events) < MAX_EVENTS:
            page = self.api.ok("/api/events", filter=filter, after=after, limit=1000)
            events.extend(Event(e) for e in page["events"])
            if len(page["events"]) < 1000:
                break
            after = page["last_id"]
        return events

    def _timeout_message(
        self,
        filter: str,
        properties: Mapping[str, Any] | None,
        count: int,
        timeout: float,
        step: str,
        diagnosis: dict[str, Any],
        found: list[Event],
        unlike: list[Event],
    ) -> str:
        awaited = f"{count} event{'s' * (count != 1)} matching {_awaited(filter, properties)}"
        lines = [
            f"eventtui: waited {timeout:g} s for {awaited}"
            + (f" ({step})" if step else "")
            + f"; {len(found)} arrived."
        ]
        if unlike:
            lines.append(
                f"{len(unlike)} matched the filter but not properties={_clean(repr(properties))}"
                " exactly (a bool is not a number; lists compare whole):"
            )
            lines.append(_listing(unlike, len(unlike)))
        misses = diagnosis.get("near_misses") or []
        if misses:
            lines.append("Nearest misses:")
            for miss in misses:
                event = Event(miss["event"])
                alike = f" (and {miss['alike']} more like it)" if miss["alike"] else ""
                why = "; ".join(_clean(w) for w in miss["why"])
                lines.append(f"  #{event.id} {_clean(event.name)!r}: {why}{alike}")
        seen = [
            Event(e)
            for e in self.api.ok("/api/events", after=self.after, limit=LISTED_EVENTS)["events"]
        ]
        total = len(seen)
        if total == LISTED_EVENTS:
            total = self.api.ok("/api/summary", after=self.after)["events"]
        lines.append(f"Events since the test began ({total}):")
        lines.append(_listing(seen, total) if seen else "  (none)")
        return "\n".join(lines) + "\n" + self._store_line()

    def _store_line(self) -> str:
        db = self.collector.db
        if db is None:
            return f"Collector: {self.collector.http_url} (events after id {self.after})"
        return f"Store: {db} (eventtui open --db {db}; this test's events have id > {self.after})"


def _server_filter(filter: str, properties: Mapping[str, Any] | None) -> str:
    terms = list(_property_terms(properties)) if properties else []
    if not terms:
        return filter
    return " ".join([f"({filter})" if filter.strip() else "", *terms]).strip()


def _awaited(filter: str, properties: Mapping[str, Any] | None) -> str:
    shown = repr(filter) if filter else "any name"
    if properties is not None:
        shown += f" with properties {_clean(repr(dict(properties)))}"
    return shown


def _listing(events: Sequence[Event], total: int) -> str:
    lines = []
    for event in events[:LISTED_EVENTS]:
        props = json.dumps(event.properties, ensure_ascii=False, separators=(",", ":"))
        if len(props) > 100:
            props = props[:99] + "…"
        flag = "" if event.valid else "  ✗ " + "; ".join(_clean(e) for e in event.errors)
        lines.append(f"  #{event.id} {_clean(event.name)!r} {_clean(props)}{flag}")
    if total > LISTED_EVENTS:
        lines.append(f"  ... and {total - LISTED_EVENTS} more")
    return "\n".join(lines)


def _clean(text: str) -> str:
    from eventtui.text import clean

    return clean(text)
