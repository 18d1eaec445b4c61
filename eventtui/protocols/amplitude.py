"""Amplitude's HTTP V2 and Batch APIs, as its SDKs send them (read from amplitude-analytics'
`http_client.py` and seen by running it: tests/test_protocols_sdks.py).

`POST /2/httpapi` and `POST /batch`: `{"api_key", "events": [event, ...], "options"}`. An event:
`event_type` (the name), `user_id` and `device_id` (one is required, as Amplitude requires),
`time` (epoch ms), `event_properties`, `user_properties` (to `context.traits`, as Segment keeps
traits), `groups`, `insert_id` (the message id). `$identify` and `$groupidentify` are identify and
group calls. Every other field (`library`, `platform`, `session_id`, ...) is kept in extra.

The SDK reads the answer's `code` (and, for a 400, which events were wrong): it is added.

May import: msgspec, model, protocols.common.
"""

from __future__ import annotations

import time
from typing import Any, Final

import msgspec

from eventtui.model import (
    MAX_DEPTH,
    DecodedFrame,
    EventRefused,
    StoredEvent,
    openers,
    without_lone_surrogates,
)
from eventtui.protocols.common import (
    Options,
    Protocol,
    Request,
    Typed,
    built_all,
    decode_items,
    event,
    json_document,
    json_reply,
    refused,
    within_depth,
)

SOURCE: Final = "amplitude"
PATHS: Final = ("/2/httpapi", "/batch")
_TYPES: Final = {"$identify": "identify", "$groupidentify": "group"}


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    event_type: Any = None
    user_id: Any = None
    device_id: Any = None
    time: Any = None
    event_properties: dict[str, Any] | None = None
    user_properties: dict[str, Any] | None = None
    groups: dict[str, Any] | None = None
    group_properties: dict[str, Any] | None = None
    insert_id: Any = None
    # Kept in extra when sent.
    library: str | None = None
    session_id: int | None = None
    event_id: int | None = None
    platform: str | None = None
    os_name: str | None = None
    os_version: str | None = None
    device_model: str | None = None
    language: str | None = None
    ip: str | None = None
    app_version: str | None = None


_EXTRA: Final = (
    "library", "session_id", "event_id", "platform", "os_name", "os_version", "device_model",
    "language", "ip", "app_version",
)  # fmt: skip
_typed: Final = Typed.of(_Event)


class _Body(msgspec.Struct):
    events: list[msgspec.Raw]


class _TypedBody(msgspec.Struct):
    events: list[_Event]


_body_decoder: Final = msgspec.json.Decoder(_Body)
_typed_body_decoder: Final = msgspec.json.Decoder(_TypedBody)


def decode(request: Request, options: Options) -> DecodedFrame:
    # Lone surrogate escapes kept as U+FFFD, as every other path keeps them (msgspec refuses
    # them, which refused the whole body).
    body = without_lone_surrogates(request.body)
    try:
        items = _body_decoder.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        try:
            doc = json_document(body)
        except EventRefused as exc:
            return refused(str(exc), request.body)  # the refusal keeps what was sent
        return refused(_shape_problem(doc), request.body)
    count = openers(body)
    deep = count > MAX_DEPTH
    fast = _fast(body, count, options)
    if fast is not None:
        return fast
    return decode_items(items, lambda raw: _event(*_typed.decode(raw, deep), options), options)


def _fast(body: bytes, count: int, options: Options) -> DecodedFrame | None:
    """The body's events decoded into Structs in one call and built, when all are plain and
    none can nest too deeply (`count`: the body's objects and arrays)."""
    try:
        events = _typed_body_decoder.decode(body).events
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return None
    if count > MAX_DEPTH and not within_depth(count, [_least(e) for e in events]):
        return None
    return built_all(events, lambda e: _event(e, None, options), options)


def _least(e: _Event) -> int:
    """The objects an event has at least: itself and those its Struct holds."""
    return (
        1 + (e.event_properties is not None) + (e.user_properties is not None)
        + (e.groups is not None) + (e.group_properties is not None)
    )  # fmt: skip


def _shape_problem(doc: Any) -> str:
    if not isinstance(doc, dict):
        return 'the body must be an object {"api_key", "events": [...]}'
    if "events" not in doc:
        return 'the body has no "events"'
    return '"events" must be an array of events'


def _event(e: _Event, unknown: dict[str, Any] | None, options: Options) -> StoredEvent:
    """An event from its Struct and its unknown top-level fields."""
    if e.user_id is None and e.device_id is None:
        raise EventRefused('the event has neither "user_id" nor "device_id"')
    extra = unknown
    for attr in _EXTRA:
        value = getattr(e, attr)
        if value is not None:
            if extra is None:
                extra = {}
            extra[attr] = value
    context: dict[str, Any] | None = None
    if e.user_properties or e.groups or e.group_properties:
        context = {}
        if e.user_properties:
            context["traits"] = e.user_properties
        if e.groups:
            context["groups"] = e.groups
        if e.group_properties:
            context["group_properties"] = e.group_properties
    name = e.event_type
    type_ = _TYPES.get(name, "track") if name.__class__ is str else "track"
    return event(
        options, SOURCE, "event_type", name, type_, e.user_id, e.device_id, e.insert_id, e.time,
        e.event_properties, context, extra,
    )  # fmt: skip


def _extra(ours: dict[str, Any], status: int) -> dict[str, Any]:
    if status == 200:
        return {
            "code": 200,
            "events_ingested": ours.get("accepted", 0),
            "server_upload_time": int(time.time() * 1000),
        }
    return {"code": status}


PROTOCOL: Final = Protocol(SOURCE, decode, json_reply(_extra))
