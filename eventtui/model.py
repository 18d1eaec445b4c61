"""Events: decoding and normalising every envelope the collector accepts.

Owns the wire format of DESIGN.md ("Wire protocol"): a frame is one event object, an array of them,
or ``{"batch": [...]}``; text frames are JSON, binary frames MessagePack. Each event is checked and
turned into a ``StoredEvent`` row, or refused with a one-line reason. Nothing here does IO.

May import: msgspec only.
"""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple

import msgspec

EVENT_TYPES: Final = frozenset({"track", "page", "screen", "identify", "group", "alias"})
MAX_NAME_CHARS: Final = 256
MAX_DEPTH: Final = 64
# How much of a refused input is kept in `rejects.raw`: enough to see what it was, never a 10 MB copy.
RAW_COPY_BYTES: Final = 4096
DEFAULT_MAX_EVENT_BYTES: Final = 512 * 1024

# Top-level fields with a column of their own; the rest are kept in `extra`.
_KNOWN_FIELDS: Final = frozenset(
    {"event", "type", "properties", "context", "userId", "anonymousId", "messageId", "timestamp"}
)

_json_decoder: Final = msgspec.json.Decoder()
_msgpack_decoder: Final = msgspec.msgpack.Decoder()
_json_encoder: Final = msgspec.json.Encoder()


class StoredEvent(NamedTuple):
    """One accepted event, normalised to the columns of the `events` table (in their order)."""

    received_at: float
    sent_at: float | None
    name: str
    type: str
    user_id: str | None
    anonymous_id: str | None
    message_id: str | None
    client: str
    properties: str
    context: str
    valid: bool
    errors: str | None
    extra: str | None

    def as_dict(self) -> dict[str, Any]:
        """The event as a Segment-style object, as the producer sent it (plus what we derived)."""
        return event_object(
            name=self.name,
            type_=self.type,
            properties=self.properties,
            context=self.context,
            user_id=self.user_id,
            anonymous_id=self.anonymous_id,
            message_id=self.message_id,
            sent_at=self.sent_at,
            extra=self.extra,
        )


class Refusal(msgspec.Struct, frozen=True):
    """An event (or a whole frame) that was not accepted, and why."""

    reason: str
    index: int | None
    raw: bytes


class DecodedFrame(msgspec.Struct):
    """What one frame turned into: accepted events and refusals, each in frame order."""

    events: list[StoredEvent]
    refusals: list[Refusal]


class EventRefused(ValueError):
    """Raised inside normalisation; the message is the one-line reason sent to the client."""


def decode_frame(
    data: bytes,
    *,
    binary: bool,
    client: str,
    received_at: float | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> DecodedFrame:
    """Decode a websocket frame (or an HTTP body) into accepted events and refusals.

    Never raises for bad input: everything a client can send ends as a `Refusal` with a reason.
    """
    now = time.time() if received_at is None else received_at
    try:
        items, from_batch = _split_frame(_decode_document(data, binary=binary))
    except EventRefused as exc:
        return DecodedFrame([], [Refusal(str(exc), None, data[:RAW_COPY_BYTES])])
    out = DecodedFrame([], [])
    # The fast bracket count covers JSON; MessagePack has no cheap pre-check, so walk its events.
    check_depth = binary or _json_depth(data) > MAX_DEPTH
    for index, item in enumerate(items):
        try:
            if check_depth and _depth(item) > MAX_DEPTH:
                raise EventRefused(f"nesting is deeper than {MAX_DEPTH} levels")
            out.events.append(
                normalise(item, client=client, received_at=now, max_event_bytes=max_event_bytes)
            )
        except EventRefused as exc:
            where = index if len(items) > 1 or from_batch else None
            out.refusals.append(Refusal(str(exc), where, _raw_copy(item)))
    return out


def decode_json_lines(
    data: bytes,
    *,
    client: str,
    received_at: float | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> DecodedFrame:
    """Decode a JSON Lines body: each non-blank line is a frame; refusals carry the line index."""
    now = time.time() if received_at is None else received_at
    out = DecodedFrame([], [])
    lines = [line for line in data.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        frame = decode_frame(
            line, binary=False, client=client, received_at=now, max_event_bytes=max_event_bytes
        )
        out.events.extend(frame.events)
        out.refusals.extend(Refusal(r.reason, index, r.raw) for r in frame.refusals)
    return out


def normalise(
    obj: Any,
    *,
    client: str,
    received_at: float,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
) -> StoredEvent:
    """Check one decoded event object and map its Segment-spec fields to columns."""
    if not isinstance(obj, dict):
        raise EventRefused(f"an event must be a JSON object, not {_kind(obj)}")
    type_ = obj.get("type", "track")
    if type_ not in EVENT_TYPES:
        raise EventRefused(
            f"type must be one of {', '.join(sorted(EVENT_TYPES))}; got {_show(type_)}"
        )
    name = obj.get("event")
    if name is None and type_ != "track":
        # Page and screen calls name themselves in `name`; the other calls are named by their type.
        page_name = obj.get("name")
        name = page_name if isinstance(page_name, str) and page_name else type_
    if name is None:
        raise EventRefused('the event name ("event") is missing')
    if not isinstance(name, str):
        raise EventRefused(f'the event name ("event") must be a string, not {_kind(name)}')
    if not name:
        raise EventRefused('the event name ("event") is empty')
    if len(name) > MAX_NAME_CHARS:
        raise EventRefused(
            f'the event name ("event") is {len(name)} characters, over the {MAX_NAME_CHARS} limit'
        )
    properties = _object_field(obj, "properties")
    context = _object_field(obj, "context")
    user_id = _id_field(obj, "userId")
    anonymous_id = _id_field(obj, "anonymousId")
    message_id = _id_field(obj, "messageId")
    errors: list[str] = []
    sent_at = None
    if "timestamp" in obj:
        sent_at = parse_timestamp(obj["timestamp"])
        if sent_at is None:
            errors.append(
                f"timestamp: cannot read {_show(obj['timestamp'])} as ISO 8601 or epoch time"
            )
    extra = {k: v for k, v in obj.items() if k not in _KNOWN_FIELDS}
    properties_json = _json_encoder.encode(properties).decode()
    context_json = _json_encoder.encode(context).decode()
    extra_json = _json_encoder.encode(extra).decode() if extra else None
    size = len(properties_json) + len(context_json) + (len(extra_json) if extra_json else 0)
    if size > max_event_bytes:
        raise EventRefused(f"the event is {size:,} bytes, over the {max_event_bytes:,}-byte limit")
    return StoredEvent(
        received_at=received_at,
        sent_at=sent_at,
        name=name,
        type=type_,
        user_id=user_id,
        anonymous_id=anonymous_id,
        message_id=message_id,
        client=client,
        properties=properties_json,
        context=context_json,
        valid=not errors,
        errors=_json_encoder.encode(errors).decode() if errors else None,
        extra=extra_json,
    )


def event_object(
    *,
    name: str,
    type_: str,
    properties: str | None,
    context: str | None,
    user_id: str | None,
    anonymous_id: str | None,
    message_id: str | None,
    sent_at: float | None,
    extra: str | None,
) -> dict[str, Any]:
    """Rebuild the Segment-style event object from stored columns (export, payload pane, re-send)."""
    obj: dict[str, Any] = {}
    if extra:
        obj.update(_json_decoder.decode(extra))
    if type_ == "track" or obj.get("name") != name:
        obj["event"] = name
    obj["type"] = type_
    obj["properties"] = _json_decoder.decode(properties) if properties else {}
    obj["context"] = _json_decoder.decode(context) if context else {}
    for key, value in (
        ("userId", user_id),
        ("anonymousId", anonymous_id),
        ("messageId", message_id),
    ):
        if value is not None:
            obj[key] = value
    if sent_at is not None:
        obj["timestamp"] = format_timestamp(sent_at)
    return obj


def parse_timestamp(value: Any) -> float | None:
    """ISO 8601 text, or epoch seconds or milliseconds, as epoch seconds; None if unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        # Epoch milliseconds pass 1e11 in 1973 as seconds would only in the year 5138.
        if abs(seconds) >= 1e11:
            seconds /= 1000.0
        return seconds if seconds == seconds and abs(seconds) < 1e11 else None
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC.fullmatch(text):
            return parse_timestamp(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        # A time without an offset is taken as UTC, as Segment does, not as this machine's zone.
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None


def format_timestamp(epoch: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds, the form Segment sends."""
    dt = datetime.fromtimestamp(epoch, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


# --- frame decoding ----------------------------------------------------------------------------

_NUMERIC: Final = re.compile(r"-?\d+(\.\d+)?")

# A JSON string escape that is a lone UTF-16 surrogate. Escaped backslashes are matched first so a
# literal "\\ud800" (backslash, then text) is left alone; valid pairs are matched and kept whole.
_SURROGATE_ESCAPE: Final = re.compile(
    rb"\\\\|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


def _replace_lone_surrogate(match: re.Match[bytes]) -> bytes:
    token = match.group()
    return token if len(token) != 6 else b"\\ufffd"


def _decode_document(data: bytes, *, binary: bool) -> Any:
    try:
        if binary:
            return _msgpack_decoder.decode(data)
        if b"\\ud" in data or b"\\uD" in data:
            data = _SURROGATE_ESCAPE.sub(_replace_lone_surrogate, data)
        return _json_decoder.decode(data)
    except RecursionError:
        raise EventRefused(f"nesting is deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError as exc:
        raise EventRefused(f"invalid UTF-8 ({exc.reason})") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        kind = "MessagePack" if binary else "JSON"
        raise EventRefused(f"not valid {kind}: {exc}") from None


def _split_frame(doc: Any) -> tuple[list[Any], bool]:
    """The events of a frame, and whether they came from a ``{"batch": [...]}`` wrapper."""
    if isinstance(doc, list):
        if not doc:
            raise EventRefused("the array holds no events")
        return doc, False
    if isinstance(doc, dict):
        if "batch" in doc and "event" not in doc:
            batch = doc["batch"]
            if not isinstance(batch, list):
                raise EventRefused(f'"batch" must be an array of events, not {_kind(batch)}')
            # Segment's batch call may carry shared `context`; each event's own keys win.
            shared = {k: v for k, v in doc.items() if k in ("context", "integrations")}
            if shared:
                batch = [{**shared, **item} if isinstance(item, dict) else item for item in batch]
            return batch, True
        return [doc], False
    raise EventRefused(f"a frame must be an event object or an array of them, not {_kind(doc)}")


_BRACKET_DEPTH: Final = {ord("{"): 1, ord("["): 1, ord("}"): -1, ord("]"): -1}
_STRING: Final = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"{}[]")


def _json_depth(data: bytes) -> int:
    """The deepest nesting in a JSON document, read from its brackets (outside strings)."""
    if data.count(b"{") + data.count(b"[") <= MAX_DEPTH:
        return 0  # cannot be deeper than the number of openers: the common, cheap case
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    return max(itertools.accumulate(_BRACKET_DEPTH[b] for b in brackets), default=0)


def _depth(obj: Any) -> int:
    """Nesting depth of a decoded value, iteratively (a deep payload must not exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in value.values())
        elif isinstance(value, list):
            deepest = max(deepest, level)
            stack.extend((v, level + 1) for v in value)
    return deepest


def _object_field(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventRefused(f'"{key}" must be an object, not {_kind(value)}')
    return value


def _id_field(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise EventRefused(f'"{key}" must be a string or a number, not {_kind(value)}')
    return value if isinstance(value, str) else str(value)


def _kind(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _raw_copy(item: Any) -> bytes:
    try:
        return _json_encoder.encode(item)[:RAW_COPY_BYTES]
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
        return repr(item)[:RAW_COPY_BYTES].encode("utf-8", "replace")
