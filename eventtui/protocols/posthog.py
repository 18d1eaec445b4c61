"""PostHog's capture API, as its SDKs send it (read from posthog-python and posthog-js, and seen
by running them: tests/test_protocols_sdks.py, tests/test_protocols_browser.py).

- posthog-python: `POST /batch/` `{"api_key", "batch": [event, ...], "sent_at"}`, gzip when
  `gzip=True` (Content-Encoding).
- posthog-js: `POST /e/` (or `/i/v0/e/`) with an array of events as text/plain; gzipped without
  Content-Encoding (`?compression=gzip-js`, or nothing at all when the browser's own
  CompressionStream did it), or a form body `data=<base64 JSON>` (`compression=base64`).
- `/capture/` takes one event object with its `api_key`.

An event: `event` (the name), `distinct_id` (top level, or in `properties` as posthog-js puts
it), `properties`, `timestamp` (ISO 8601), `uuid` (the message id). Its `$`-prefixed properties
and `token` are PostHog's (`$lib`, `$os`, `$current_url`, ...): they go to context, the app's own
stay in properties. `$set`/`$set_once` and other top-level fields are kept in extra.

May import: msgspec, model, protocols.common.
"""

from __future__ import annotations

from collections.abc import Mapping
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
    Split,
    Typed,
    base64_bytes,
    built_all,
    decode_items,
    event_json,
    form_field,
    json_items,
    json_reply,
    refused,
    typed_each,
    within_depth,
)

SOURCE: Final = "posthog"
# Not "/batch": that is Amplitude's batch API (posthog-python posts to "/batch/").
PATHS: Final = ("/batch/", "/capture/", "/e/", "/i/v0/e/", "/capture", "/e")
FLAG_PATHS: Final = ("/decide/", "/flags/", "/decide", "/flags")
# posthog-js loads its remote config (`/array/{token}/config`, and as a script `config.js`).
CONFIG_PATH: Final = "/array/{token}/config"
CONFIG_SCRIPT_PATH: Final = "/array/{token}/config.js"
CONFIG_ANSWER: Final = b'{"supportedCompression":["gzip","gzip-js"],"sessionRecording":false}'
# An empty script: the config it would set is the default.
CONFIG_SCRIPT: Final = b"/* eventtui: no remote config */\n"
# Feature flags: none, and no error, in the shape both `/decide/` (v3) and `/flags/` (v2) readers
# accept, so the SDKs fall back to their defaults quietly.
FLAGS_ANSWER: Final = (
    b'{"featureFlags":{},"featureFlagPayloads":{},"flags":{},'
    b'"errorsWhileComputingFlags":false,"quotaLimited":[],"sessionRecording":false,'
    b'"supportedCompression":["gzip","gzip-js"]}'
)

# PostHog's own event names that say what kind of call they are.
_TYPES: Final = {
    "$pageview": "page",
    "$screen": "screen",
    "$identify": "identify",
    "$set": "identify",
    "$create_alias": "alias",
    "$groupidentify": "group",
}
# `$`-prefixed properties and `token` (the project key) are PostHog's, not the app's; the id has
# its column.
_split: Final = Split(lambda key: key[:1] == "$" or key == "token", frozenset({"distinct_id"}))


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    event: Any = None
    distinct_id: Any = None
    properties: dict[str, Any] | None = None
    timestamp: Any = None
    uuid: Any = None
    # Kept in extra when sent.
    set: dict[str, Any] | None = msgspec.field(name="$set", default=None)
    set_once: dict[str, Any] | None = msgspec.field(name="$set_once", default=None)
    type: str | None = None
    offset: int | None = None
    api_key: str | None = None
    sent_at: str | None = None


_EXTRA: Final = (
    ("set", "$set"),
    ("set_once", "$set_once"),
    ("type", "type"),
    ("offset", "offset"),
)
_typed: Final = Typed.of(_Event)


class _Batch(msgspec.Struct):
    batch: list[msgspec.Raw]


class _TypedBatch(msgspec.Struct):
    batch: list[_Event]


_batch_decoder: Final = msgspec.json.Decoder(_Batch)
_typed_batch_decoder: Final = msgspec.json.Decoder(_TypedBatch)
_events_decoder: Final = msgspec.json.Decoder(list[_Event])
_raw_list: Final = msgspec.json.Decoder(list[msgspec.Raw])


def decode(request: Request, options: Options) -> DecodedFrame:
    body = request.body
    try:
        if request.method == "GET":
            data = request.query.get("data")
            if data is None:
                raise EventRefused('a GET capture needs its events in the "data" parameter')
            body = _unwrap(data.encode(), request.query.get("compression"))
        elif request.content_type == "application/x-www-form-urlencoded" or body[:5] == b"data=":
            form_data = form_field(body, "data")
            if form_data is None:
                raise EventRefused('the form body has no "data" field')
            compression = request.query.get("compression") or form_field(body, "compression")
            body = _unwrap(form_data, compression)
        fast = built_all(_typed_items(body), lambda e: _event(e, None, options), options)
        if fast is not None:
            return fast
        items, listed = _items(body)
    except EventRefused as exc:
        return refused(str(exc), body)
    deep = openers(body) > MAX_DEPTH
    return decode_items(
        items, lambda raw: _event(*_typed.decode(raw, deep), options), options, listed=listed
    )


def _unwrap(data: bytes, compression: str | bytes | None) -> bytes:
    """`data=`: JSON, or base64 JSON (posthog-js's `compression=base64`, or an old SDK's)."""
    text = data.strip()
    if compression in ("base64", b"base64") or text[:1] not in (b"{", b"["):
        return base64_bytes(text, 'the "data" field')
    return text


def _typed_items(body: bytes) -> list[_Event]:
    """A body's events as Structs, if they all are plain (see `Typed`) and none nests too
    deeply: decoded in one call when the whole body cannot, else one by one; [] otherwise,
    and they go the slow way (`decode_items`), which says which is wrong and why."""
    # No look for lone surrogate escapes: msgspec refuses them, and the slow way keeps them.
    head = body.lstrip()[:1]
    count = openers(body)
    try:
        if head == b"[":
            events = _events_decoder.decode(body)
            if count <= MAX_DEPTH or within_depth(count, _least(events)):
                return events
            return typed_each(_raw_list.decode(body), _typed.decoder)
        if head == b"{" and b'"batch"' in body:  # a batch, or an event with a "batch" in it
            events = _typed_batch_decoder.decode(body).batch
            if count <= MAX_DEPTH or within_depth(count, _least(events)):
                return events
            return typed_each(_batch_decoder.decode(body).batch, _typed.decoder)
        if head == b"{" and count <= MAX_DEPTH:
            return [_typed.decoder.decode(body)]
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        pass
    return []


def _least(events: list[_Event]) -> list[int]:
    """The objects each event has at least: itself and those its Struct holds."""
    return [
        1 + (e.properties is not None) + (e.set is not None) + (e.set_once is not None)
        for e in events
    ]


def _items(body: bytes) -> tuple[list[msgspec.Raw], bool]:
    body = without_lone_surrogates(body)
    head = body.lstrip()[:1]
    try:
        if head == b"[":
            return _raw_list.decode(body), True
        if head == b"{":
            if b'"batch"' in body:
                try:
                    return _batch_decoder.decode(body).batch, True
                except msgspec.ValidationError:
                    pass  # an event with a property named "batch": one event
            return [msgspec.Raw(body)], False
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        pass
    return json_items(body)  # the same checks again, for their reasons


def _event(e: _Event, unknown: dict[str, Any] | None, options: Options) -> StoredEvent:
    """An event from its Struct and its unknown top-level fields."""
    props = e.properties
    distinct_id = e.distinct_id
    if distinct_id is None and props:
        distinct_id = props.get("distinct_id")
    if distinct_id is None:
        raise EventRefused('the event has no "distinct_id" (at the top level or in properties)')
    own, sdk = _split(props)  # `distinct_id` has its column: in neither
    extra = unknown
    if e.set is not None or e.set_once is not None or e.type is not None or e.offset is not None:
        for attr, key in _EXTRA:
            value = getattr(e, attr)
            if value is not None:
                if extra is None:
                    extra = {}
                extra[key] = value
    user_id = anonymous_id = None
    # posthog-js marks the ids it made up itself (`$is_identified` false; older versions
    # `$user_state`); anything else was given by the app.
    if props and (props.get("$is_identified") is False or props.get("$user_state") == "anonymous"):
        anonymous_id = distinct_id
    else:
        user_id = distinct_id
        anonymous_id = props.get("$device_id") if props else None
    name = e.event
    return event_json(
        options, SOURCE, "event", name, _TYPES.get(name, "track") if name.__class__ is str else "track",
        user_id, anonymous_id, e.uuid, e.timestamp, own, sdk, extra,
    )  # fmt: skip


def _encoding(query: Mapping[str, str], body: bytes) -> str | None:
    # posthog-js drops `compression=gzip-js` from the URL when the browser gzips natively
    # (CompressionStream): the gzip magic number is all there is to go by.
    if query.get("compression") == "gzip-js" or body[:2] == b"\x1f\x8b":
        return "gzip"
    return None


def _extra(ours: dict[str, Any], status: int) -> dict[str, Any]:
    return {"status": 1 if status == 200 else 0}


PROTOCOL: Final = Protocol(SOURCE, decode, json_reply(_extra), _encoding)
