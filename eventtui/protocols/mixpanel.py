"""Mixpanel's ingestion API, as its SDKs send it (read from mixpanel-python's `Consumer` and seen by
running it: tests/test_protocols_sdks.py).

- `POST /track`, `/import`, `/engage`, `/groups`: a form body `data=<JSON>` (mixpanel-python,
  with `verbose=1`), where the JSON may be base64-encoded (older browser SDKs); or a JSON body
  (`Content-Type: application/json`, as the import API documents); or `GET ...?data=<base64>`.
- The data is one object or an array of them.

A tracked event: `{"event", "properties": {"distinct_id", "time", "$insert_id", "token", ...}}`;
`distinct_id` becomes the user id (a `$device:` id, or `$device_id` alone, the anonymous id),
`time` (epoch seconds or ms) the timestamp, `$insert_id` the message id. `$`- and `mp_`-prefixed
properties and `token` are Mixpanel's and go to context. A profile update (`/engage`:
`{"$distinct_id", "$set": {...}}`, or `$set_once`, `$add`, `$union`, `$append`, `$remove`,
`$unset`, `$delete`) is an identify call named by its operation; a group update (`/groups`) a
group call.

The SDK reads `{"status": 1}` (or 0 and `error`): it is added to the answer.

May import: msgspec, model, protocols.common.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from eventtui.model import (
    MAX_DEPTH,
    DecodedFrame,
    EventRefused,
    StoredEvent,
    decode_json_item,
    kind_of,
    openers,
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
    event,
    event_json,
    form_field,
    json_items,
    json_reply,
    refused,
    typed_each,
    within_depth,
)

SOURCE: Final = "mixpanel"
PATHS: Final = ("/track", "/import", "/engage", "/groups", "/track/", "/engage/", "/groups/")
_TYPES: Final = {"$identify": "identify", "$create_alias": "alias", "$mp_web_page_view": "page"}
_OPERATIONS: Final = (
    "$set", "$set_once", "$add", "$union", "$append", "$remove", "$unset", "$delete",
)  # fmt: skip
# `$`- and `mp_`-prefixed properties and `token` are Mixpanel's (context); those that are the
# event's columns are in neither.
_split: Final = Split(
    lambda key: key[:1] == "$" or key[:3] == "mp_" or key == "token",
    frozenset({"distinct_id", "time", "$insert_id"}),
)


class _Event(msgspec.Struct, forbid_unknown_fields=True):
    event: Any = None
    properties: dict[str, Any] | None = None


_typed: Final = Typed.of(_Event)
_events_decoder: Final = msgspec.json.Decoder(list[_Event])
_raw_list: Final = msgspec.json.Decoder(list[msgspec.Raw])


def decode(request: Request, options: Options) -> DecodedFrame:
    body = request.body
    kind = request.path.strip("/")
    try:
        data = _data(request)
        if kind != "engage" and kind != "groups":
            fast = built_all(_typed_items(data), lambda e: _event(e, None, options), options)
            if fast is not None:
                return fast
        items, listed = json_items(data)
    except EventRefused as exc:
        return refused(str(exc), body)
    deep = openers(data) > MAX_DEPTH
    if kind == "engage" or kind == "groups":
        return decode_items(items, lambda raw: _profile(raw, kind, options), options, listed=listed)
    return decode_items(
        items, lambda raw: _event(*_typed.decode(raw, deep), options), options, listed=listed
    )


def _typed_items(data: bytes) -> list[_Event]:
    """The events as Structs when all are plain and none nests too deeply (in one call when the
    whole body cannot), else []: they go the slow way, which says which is wrong and why."""
    # No look for lone surrogate escapes: msgspec refuses them, and the slow way keeps them.
    head = data.lstrip()[:1]
    count = openers(data)
    try:
        if head == b"{":
            return [_typed.decoder.decode(data)] if count <= MAX_DEPTH else []
        if head != b"[":
            return []
        events = _events_decoder.decode(data)
        least = [1 + (e.properties is not None) for e in events]
        if count <= MAX_DEPTH or within_depth(count, least):
            return events
        return typed_each(_raw_list.decode(data), _typed.decoder)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        return []


def _data(request: Request) -> bytes:
    """The JSON text of a request's `data` (form, query or the whole JSON body), decoded once."""
    body = request.body
    if request.content_type == "application/json" or body.lstrip()[:1] in (b"[", b"{"):
        return body
    text: bytes | None
    if request.method == "GET" or not body:
        query = request.query.get("data")
        text = None if query is None else query.encode()
        where = "the query"
    else:
        text = form_field(body, "data")
        where = "the form body"
    if text is None:
        raise EventRefused(f'{where} has no "data" field')
    stripped = text.strip()
    if stripped[:1] in (b"[", b"{"):
        return stripped
    return base64_bytes(stripped, 'the "data" field')


def _event(e: _Event, unknown: dict[str, Any] | None, options: Options) -> StoredEvent:
    """An event from its Struct and its unknown top-level fields."""
    props = e.properties or {}
    own, sdk = _split(props)
    distinct_id = props.get("distinct_id")
    user_id = props.get("$user_id")
    anonymous_id = props.get("$device_id")
    if user_id is None and distinct_id is not None:
        if isinstance(distinct_id, str) and distinct_id.startswith("$device:"):
            anonymous_id = anonymous_id or distinct_id.removeprefix("$device:")
        else:
            user_id = distinct_id
    message_id = props.get("$insert_id")
    name = e.event
    type_ = _TYPES.get(name, "track") if name.__class__ is str else "track"
    return event_json(
        options, SOURCE, "event", name, type_, user_id, anonymous_id, message_id,
        props.get("time"), own, sdk, unknown,
    )  # fmt: skip


def _profile(raw: msgspec.Raw, kind: str, options: Options) -> StoredEvent:
    obj = decode_json_item(raw)
    if obj.__class__ is not dict:
        raise EventRefused(f"an update must be a JSON object, not {kind_of(obj)}")
    operation = next((op for op in _OPERATIONS if op in obj), None)
    if operation is None:
        raise EventRefused(f"the update has no operation (one of {', '.join(_OPERATIONS)})")
    value = obj[operation]
    properties = value if isinstance(value, dict) else {"value": value}
    rest = {k: v for k, v in obj.items() if k != operation}
    context: dict[str, Any] = {}
    if "$token" in rest:
        context["token"] = rest.pop("$token")
    user_id = rest.pop("$distinct_id", None) if kind == "engage" else None
    if kind == "groups":
        for key in ("$group_key", "$group_id"):
            if key in rest:
                context[key.removeprefix("$")] = rest.pop(key)
    return event(
        options, SOURCE, "event", operation, "identify" if kind == "engage" else "group",
        user_id, rest.pop("$device_id", None), None, rest.pop("$time", None), properties,
        context, rest,
    )  # fmt: skip


def _extra(ours: dict[str, Any], status: int) -> dict[str, Any]:
    if status == 200:
        return {"status": 1, "error": None}
    return {"status": 0}


PROTOCOL: Final = Protocol(SOURCE, decode, json_reply(_extra))
