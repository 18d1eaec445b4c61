"""Events: decoding and normalising every envelope the collector accepts.

Owns the wire format of README.md ("Wire protocol"): a frame is one event object, an array of them,
or ``{"batch": [...]}``; text frames are JSON, binary frames MessagePack. Each event is checked and
turned into a ``StoredEvent`` row, or refused with a one-line reason. Nothing here does IO.

May import: msgspec only.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal, NamedTuple, Protocol

import msgspec

# The protocols an event can arrive in (the `source` column): eventtui's own (the websocket and
# POST /events), Segment's HTTP API (RudderStack's SDKs speak it too), the vendors' own
# (`eventtui.protocols`), and `import` for a plain event object loaded from a file.
SOURCES: Final = (
    "eventtui", "segment", "posthog", "snowplow", "amplitude", "mixpanel", "import",
)  # fmt: skip
EVENT_TYPES: Final = frozenset({"track", "page", "screen", "identify", "group", "alias"})
MAX_NAME_CHARS: Final = 256
MAX_DEPTH: Final = 64
# How much of a refused input is kept in `rejects.raw`: enough to see what it was, never a 10 MB copy.
RAW_COPY_BYTES: Final = 4096
DEFAULT_MAX_EVENT_BYTES: Final = 512 * 1024
# Epoch seconds that `datetime` can turn back into a date: 0001-01-01T00:00:00Z up to, not
# including, 10000-01-01T00:00:00Z. A float just below MAX_EPOCH still formats (the microseconds
# round down to .999969), and nothing below MIN_EPOCH does.
MIN_EPOCH: Final = -62135596800.0
MAX_EPOCH: Final = 253402300800.0

# `absent` (a column of its own): the fields the producer did not send, stored with their default
# ("track", {}) so that the columns stay simple to query, and left out again wherever the event is
# shown as the producer sent it (payload pane, copy, export, re-send).
ABSENT_TYPE: Final = 1
ABSENT_PROPERTIES: Final = 2
ABSENT_CONTEXT: Final = 4
# A message id the collector gave an event sent without one (a stream needs one for dedupe).
ABSENT_MESSAGE_ID: Final = 8

# Top-level fields with a column of their own; the rest are kept in `extra` (and so is a
# `timestamp` that cannot be read as a time: kept as sent, beside the error that says so).
_KNOWN_FIELDS: Final = frozenset(
    {"event", "type", "properties", "context", "userId", "anonymousId", "messageId", "timestamp"}
)

_json_decoder: Final = msgspec.json.Decoder()
_msgpack_decoder: Final = msgspec.msgpack.Decoder()


class StoredEvent(NamedTuple):
    """One accepted event on its way into the store, normalised to the columns of the `events`
    table (in their order, without the `id` and `session_id` the store gives it). Viewers read
    stored events back as `eventtui.store.EventRow`."""

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
    absent: int = 0  # ABSENT_* bits
    # The protocol it arrived in (`SOURCES`); a default, so that rows built before the column
    # existed still build.
    source: str = "eventtui"

    def as_dict(self) -> dict[str, Any]:
        """The event as a Segment-style object, as the producer sent it (plus what we derived)."""
        return payload_of(self)


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


# Checks an accepted event (the tracking plan); returns it, maybe marked invalid. It may raise
# EventRefused to refuse the event; anything else it raises refuses the event too.
EventCheck = Callable[[StoredEvent], StoredEvent]


def _no_json_form(value: Any) -> Any:
    """msgspec's hook for what JSON cannot hold: only MessagePack input brings such values."""
    if isinstance(value, msgspec.msgpack.Ext):
        raise EventRefused(f"a MessagePack extension value (type {value.code}) cannot be stored")
    # msgspec asks the hook about map keys it cannot write; decoded values it always can.
    raise EventRefused(f"a map key that is not a string or a number ({_kind(value)})")


_json_encoder: Final = msgspec.json.Encoder(enc_hook=_no_json_form)


def decode_frame(
    data: bytes,
    *,
    binary: bool,
    client: str,
    received_at: float | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    check: EventCheck | None = None,
    source: str = "eventtui",
) -> DecodedFrame:
    """Decode a websocket frame (or an HTTP body) into accepted events and refusals.

    `check` runs on each accepted event (the tracking plan). Never raises for bad input:
    everything a client can send ends as a `Refusal` with a reason, whatever fails on the way
    (an exception in `check` included), so a frame is always answered and never lost.
    """
    now = time.time() if received_at is None else received_at
    if not binary:
        # One try around the whole frame, not one per event: if anything fails, the full path
        # below goes event by event and refuses only the one at fault, with its index.
        try:
            fast = _fast_path(data, client, now, max_event_bytes, source)
            if fast is not None and check is not None and _needed(check, fast):
                fast = [check(event) for event in fast]
        except Exception:
            fast = None
        if fast is not None:
            return DecodedFrame(fast, [])
    try:
        items, listed = _split_msgpack(data) if binary else _split_json(data)
    except Exception as exc:
        return DecodedFrame([], [Refusal(_reason(exc), None, data[:RAW_COPY_BYTES])])
    out = DecodedFrame([], [])
    for index, item in enumerate(items):
        try:
            if isinstance(item, _DeepItem):
                raise EventRefused(f"nesting is deeper than {MAX_DEPTH} levels")
            obj = _decode_item(item) if isinstance(item, msgspec.Raw | bytes) else item
            event = normalise(
                obj,
                client=client,
                received_at=now,
                max_event_bytes=max_event_bytes,
                source=source,
            )
            out.events.append(event if check is None else check(event))
        except Exception as exc:
            out.refusals.append(Refusal(_reason(exc), index if listed else None, _raw_copy(item)))
    return out


def _needed(check: EventCheck, events: list[StoredEvent]) -> bool:
    """Whether `check` has anything to say about these events. A check may answer for a whole
    frame at once (its `needed` attribute): the personal-data detectors look at a frame's
    properties in one pass, where a call per event cost more than the detectors themselves."""
    needed = getattr(check, "needed", None)
    return needed is None or bool(needed(events))


def _reason(exc: Exception) -> str:
    """The one-line reason for an event (or frame) that raised while being decoded or checked."""
    if isinstance(exc, EventRefused):
        return str(exc)
    if isinstance(exc, _DECODE_ERRORS):
        return str(_refusal(exc, "input"))
    # Nothing a client sends should get here; if it does, the event is refused, not lost.
    return f"the event could not be read ({type(exc).__name__}: {_show(str(exc))})"


class _Envelope(msgspec.Struct, forbid_unknown_fields=True):
    """The common, well-formed event, checked by msgspec in C (see `_fast_path`)."""

    event: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_NAME_CHARS)]
    type: Literal["track", "page", "screen", "identify", "group", "alias"] | None = None
    properties: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    userId: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    anonymousId: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    messageId: Annotated[str, msgspec.Meta(min_length=1)] | None = None
    timestamp: datetime | None = None


_envelope_decoder: Final = msgspec.json.Decoder(_Envelope)
_envelopes_decoder: Final = msgspec.json.Decoder(list[_Envelope])


def _fast_path(
    data: bytes, client: str, now: float, max_event_bytes: int, source: str = "eventtui"
) -> list[StoredEvent] | None:
    """Events of a frame that holds only plain, valid events; None sends it down the full path.

    Most frames are one well-formed event, an array of them, or a Segment `{"batch": [...]}`.
    msgspec checks their names, types and ids while decoding; anything it does not accept (a number
    as userId, an unknown field, a timestamp in epoch milliseconds, a lone surrogate escape, a
    refusal) is None here, and `normalise` decides with the exact rules and messages. Duplicate
    keys need no check: the Struct and the dicts keep the last, as `normalise` does (tested).
    Measured: 6.6 us -> 2.8 us for a typical single-event frame, 4.9 -> 3 us per event in batches.
    """
    head = data[:1]
    try:
        if head != b"{" and head != b"[":
            return None
        # No event in it can nest deeper than the limit (`_openers`, inlined: one call less).
        if data.count(b"{") + data.count(b"[") <= MAX_DEPTH:
            envelopes = (
                [_envelope_decoder.decode(data)]
                if head == b"{"
                else _envelopes_decoder.decode(data)
            )
        else:  # a batch, or an event with many objects in it: check the events one by one
            items = _batch_items(data) if head == b"{" else _raw_list_decoder.decode(data)
            if items is None:
                return None
            envelopes = []
            for item in items:
                raw = bytes(item)
                if _openers(raw) > MAX_DEPTH:
                    return None
                envelopes.append(_envelope_decoder.decode(raw))
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError, UnicodeDecodeError):
        return None
    if not envelopes:
        return None
    events = []
    encode = _json_encoder.encode
    new_tuple = tuple.__new__
    lowest, highest = MIN_EPOCH, MAX_EPOCH  # locals: this loop runs for every event
    for e in envelopes:
        absent = 0
        if e.type is None:
            absent = ABSENT_TYPE
        if e.properties is None:
            absent |= ABSENT_PROPERTIES
        if e.context is None:
            absent |= ABSENT_CONTEXT
        properties = encode(e.properties).decode() if e.properties else "{}"
        context = encode(e.context).decode() if e.context else "{}"
        if len(properties) + len(context) > max_event_bytes:
            return None
        sent_at = None
        if e.timestamp is not None:
            ts = e.timestamp
            sent_at = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).timestamp()
            if not lowest <= sent_at < highest:
                return None  # past year 9999 or before year 1 once in UTC: `normalise` says so
        # tuple.__new__: the named tuple's own __new__ (a Python function) cost 0.2 us an event.
        events.append(new_tuple(StoredEvent, (
            now, sent_at, e.event, e.type or "track", e.userId, e.anonymousId, e.messageId, client,
            properties, context, True, None, None, absent, source,
        )))  # fmt: skip
    return events


def _openers(data: bytes) -> int:
    """How many objects and arrays open in `data`: a bound on how deep it nests."""
    return data.count(b"{") + data.count(b"[")


def _batch_items(data: bytes) -> list[msgspec.Raw] | None:
    """The events of a `{"batch": [...]}` frame with nothing to share with them, else None.

    A batch's shared `context` or `integrations` merge into each event: the full path does that.
    """
    doc = _raw_dict_decoder.decode(data)
    if "batch" not in doc or "event" in doc or any(k in doc for k in _BATCH_SHARED):
        return None
    return _raw_list_decoder.decode(doc["batch"])


def decode_json_lines(
    data: bytes,
    *,
    client: str,
    received_at: float | None = None,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    check: EventCheck | None = None,
    source: str = "eventtui",
) -> DecodedFrame:
    """Decode a JSON Lines body: each non-blank line is a frame; refusals carry the line index."""
    now = time.time() if received_at is None else received_at
    out = DecodedFrame([], [])
    lines = [line for line in data.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        frame = decode_frame(
            line,
            binary=False,
            client=client,
            received_at=now,
            max_event_bytes=max_event_bytes,
            check=check,
            source=source,
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
    source: str = "eventtui",
) -> StoredEvent:
    """Check one decoded event object and map its Segment-spec fields to columns.

    This runs for every event at tens of thousands per second, so the common case (string ids,
    ISO timestamp, no unknown fields) takes the shortest path; `_id_value` and friends handle the rest.
    """
    if obj.__class__ is not dict:
        raise EventRefused(f"an event must be a JSON object, not {_kind(obj)}")
    get = obj.get
    type_ = get("type")
    absent = 0
    if type_ is None:
        type_, absent = "track", ABSENT_TYPE
    if type_.__class__ is not str or type_ not in EVENT_TYPES:  # a list is not even hashable
        raise EventRefused(
            f"type must be one of {', '.join(sorted(EVENT_TYPES))}; got {_show(type_)}"
        )
    name = get("event")
    if name is None and type_ != "track":
        # Page and screen calls name themselves in `name`; the other calls are named by their type.
        page_name = get("name")
        name = page_name if isinstance(page_name, str) and page_name else type_
    if name.__class__ is not str or not name or len(name) > MAX_NAME_CHARS:
        raise EventRefused(_bad_name(name))
    properties = get("properties")
    if properties.__class__ is not dict:
        if properties is None:
            absent |= ABSENT_PROPERTIES
        properties = _object_value(properties, "properties")
    context = get("context")
    if context.__class__ is not dict:
        if context is None:
            absent |= ABSENT_CONTEXT
        context = _object_value(context, "context")
    user_id = get("userId")
    if user_id.__class__ is not str or not user_id:
        user_id = _id_value(user_id, "userId")
    anonymous_id = get("anonymousId")
    if anonymous_id.__class__ is not str or not anonymous_id:
        anonymous_id = _id_value(anonymous_id, "anonymousId")
    message_id = get("messageId")
    if message_id.__class__ is not str or not message_id:
        message_id = _id_value(message_id, "messageId")
    errors = None
    sent_at = None
    timestamp = get("timestamp")
    unreadable = False
    if timestamp is not None:
        sent_at = parse_timestamp(timestamp)
        if sent_at is None:
            errors = _json_encoder.encode([_timestamp_error(timestamp)]).decode()
            unreadable = True
    properties_json = _json_encoder.encode(properties).decode()
    context_json = _json_encoder.encode(context).decode()
    size = len(properties_json) + len(context_json)
    extra_json = None
    if unreadable or not obj.keys() <= _KNOWN_FIELDS:
        # An unreadable timestamp stays in the event as sent (searchable, shown, exported).
        extra = {k: v for k, v in obj.items() if k not in _KNOWN_FIELDS or k == "timestamp"}
        if not unreadable:
            extra.pop("timestamp", None)
        extra_json = _json_encoder.encode(extra).decode()
        size += len(extra_json)
    if size > max_event_bytes:
        raise EventRefused(f"the event is {size:,} bytes, over the {max_event_bytes:,}-byte limit")
    # Positional: building the NamedTuple by keyword costs a microsecond per event.
    return StoredEvent(
        received_at, sent_at, name, type_, user_id, anonymous_id, message_id, client,
        properties_json, context_json, errors is None, errors, extra_json, absent, source,
    )  # fmt: skip


def _bad_name(name: Any) -> str:
    if name is None:
        return 'the event name ("event") is missing'
    if not isinstance(name, str):
        return f'the event name ("event") must be a string, not {_kind(name)}'
    if not name:
        return 'the event name ("event") is empty'
    return f'the event name ("event") is {len(name)} characters, over the {MAX_NAME_CHARS} limit'


class EventColumns(Protocol):
    """The columns an event object is rebuilt from: `StoredEvent` and `store.EventRow` have them."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def properties(self) -> str: ...
    @property
    def context(self) -> str: ...
    @property
    def user_id(self) -> str | None: ...
    @property
    def anonymous_id(self) -> str | None: ...
    @property
    def message_id(self) -> str | None: ...
    @property
    def sent_at(self) -> float | None: ...
    @property
    def extra(self) -> str | None: ...
    @property
    def absent(self) -> int: ...


def payload_of(row: EventColumns) -> dict[str, Any]:
    """The Segment-style event object of an accepted or stored event, as the producer sent it."""
    return event_object(
        name=row.name,
        type_=row.type,
        properties=row.properties,
        context=row.context,
        user_id=row.user_id,
        anonymous_id=row.anonymous_id,
        message_id=row.message_id,
        sent_at=row.sent_at,
        extra=row.extra,
        absent=row.absent,
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
    absent: int = 0,
) -> dict[str, Any]:
    """Rebuild the Segment-style event object from stored columns (export, payload pane, re-send):
    the fields the producer sent, without the defaults the store filled in (`absent`)."""
    obj: dict[str, Any] = {}
    if extra:
        obj.update(_json_decoder.decode(extra))
    if type_ == "track" or obj.get("name") != name:
        obj["event"] = name
    if not absent & ABSENT_TYPE:
        obj["type"] = type_
    if not absent & ABSENT_PROPERTIES:
        obj["properties"] = _json_decoder.decode(properties) if properties else {}
    if not absent & ABSENT_CONTEXT:
        obj["context"] = _json_decoder.decode(context) if context else {}
    for key, value in (
        ("userId", user_id),
        ("anonymousId", anonymous_id),
        ("messageId", None if absent & ABSENT_MESSAGE_ID else message_id),
    ):
        if value is not None:
            obj[key] = value
    if sent_at is not None:
        # Out of range only in a store written before `parse_timestamp` refused such times: the
        # raw seconds, since no date can be written for them.
        in_range = MIN_EPOCH <= sent_at < MAX_EPOCH
        obj["timestamp"] = format_timestamp(sent_at) if in_range else sent_at
    return obj


def parse_timestamp(value: Any) -> float | None:
    """ISO 8601 text, or epoch seconds or milliseconds, as epoch seconds; None if unreadable.

    A time whose UTC value falls outside the years 1 to 9999 is unreadable too: no reader could
    turn it back into a date (`datetime` cannot hold it), so it is stored as no time at all.
    """
    seconds = _epoch_seconds(value)
    if seconds is None or not MIN_EPOCH <= seconds < MAX_EPOCH:
        return None
    return seconds


def _timestamp_error(value: Any) -> str:
    """Why `parse_timestamp(value)` is None, in the words `errors` keeps."""
    if _epoch_seconds(value) is not None:
        return f"timestamp: {_show(value)} is outside the years 1 to 9999 in UTC"
    return f"timestamp: cannot read {_show(value)} as ISO 8601 or epoch time"


def _epoch_seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        # Epoch milliseconds pass 1e11 in 1973 as seconds would only in the year 5138.
        if abs(seconds) >= 1e11:
            seconds /= 1000.0
        return seconds if seconds == seconds and abs(seconds) < 1e11 else None
    if isinstance(value, str):
        try:  # the common case; Python 3.11 reads "Z" and offsets
            parsed = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
        text = value.strip()
        if _NUMERIC.fullmatch(text):
            return _epoch_seconds(float(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        # A time without an offset is taken as UTC, as Segment does, not as this machine's zone.
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None


def format_timestamp(epoch: float) -> str:
    """Epoch seconds (MIN_EPOCH to MAX_EPOCH) as ISO 8601 UTC with milliseconds, as Segment sends.

    `isoformat` rather than `strftime`: glibc's `%Y` does not pad years before 1000 to 4 digits.
    """
    return datetime.fromtimestamp(epoch, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


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


_raw_list_decoder: Final = msgspec.json.Decoder(list[msgspec.Raw])
_raw_dict_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
# Segment's batch call may carry a shared `context`; each event's own keys win.
_BATCH_SHARED: Final = ("context", "integrations")


def _split_json(data: bytes) -> tuple[list[Any], bool]:
    """A JSON frame's events, each still raw bytes, and whether the frame was a list of them.

    Splitting into `msgspec.Raw` first validates the whole frame's syntax once and lets each event
    be depth-checked and refused on its own, with its index.
    """
    if b"\\ud" in data or b"\\uD" in data:
        data = _SURROGATE_ESCAPE.sub(_replace_lone_surrogate, data)
    try:
        return _split_json_document(data)
    except _DECODE_ERRORS as exc:
        raise _refusal(exc, "JSON") from None


def _split_json_document(data: bytes) -> tuple[list[Any], bool]:
    head = data.lstrip()[:1]
    if head == b"[":
        items = _raw_list_decoder.decode(data)
        if not items:
            raise EventRefused("the array holds no events")
        return items, True
    if head == b"{":
        if b'"batch"' not in data:
            return [data], False
        doc = _raw_dict_decoder.decode(data)
        if "batch" not in doc or "event" in doc:
            return [data], False
        try:
            items = _raw_list_decoder.decode(doc["batch"])
        except msgspec.ValidationError:
            kind = _kind(_json_decoder.decode(doc["batch"]))
            raise EventRefused(f'"batch" must be an array of events, not {kind}') from None
        shared: dict[str, Any] = {
            k: _json_decoder.decode(doc[k]) for k in _BATCH_SHARED if k in doc
        }
        if shared:
            return [_shared_item(item, shared) for item in items], True
        return items, True
    doc = _json_decoder.decode(data)
    raise EventRefused(f"a frame must be an event object or an array of them, not {_kind(doc)}")


def _with_shared(item: Any, shared: dict[str, Any]) -> Any:
    return {**shared, **item} if isinstance(item, dict) else item


def _shared_item(item: msgspec.Raw, shared: dict[str, Any]) -> Any:
    try:
        return _with_shared(_decode_item(item), shared)
    except EventRefused:
        return item  # refused again, with its index, when its turn comes


def _split_msgpack(data: bytes) -> tuple[list[Any], bool]:
    """A MessagePack frame's events, decoded, each depth-checked (no cheap pre-check exists)."""
    try:
        doc = _msgpack_decoder.decode(data)
    except _DECODE_ERRORS as exc:
        raise _refusal(exc, "MessagePack") from None
    if isinstance(doc, dict) and "batch" in doc and "event" not in doc:
        batch = doc["batch"]
        if not isinstance(batch, list):
            raise EventRefused(f'"batch" must be an array of events, not {_kind(batch)}')
        shared = {k: doc[k] for k in _BATCH_SHARED if k in doc}
        items, listed = [_with_shared(item, shared) for item in batch], True
    elif isinstance(doc, list):
        if not doc:
            raise EventRefused("the array holds no events")
        items, listed = doc, True
    elif isinstance(doc, dict):
        items, listed = [doc], False
    else:
        raise EventRefused(f"a frame must be an event object or an array of them, not {_kind(doc)}")
    return [_DeepItem(item) if _depth(item) > MAX_DEPTH else item for item in items], listed


class _DeepItem:
    """A decoded event known to be nested too deeply; refused when its turn comes."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _decode_item(item: msgspec.Raw | bytes) -> Any:
    """One event's raw JSON, decoded; refused when nested deeper than MAX_DEPTH."""
    raw = memoryview(item).tobytes() if item.__class__ is msgspec.Raw else item
    try:
        obj = _json_decoder.decode(raw)
    except _DECODE_ERRORS as exc:
        raise _refusal(exc, "JSON") from None
    # Depth cannot exceed the number of openers: only count-heavy events pay for the walk.
    if _openers(raw) > MAX_DEPTH and _depth(obj) > MAX_DEPTH:
        raise EventRefused(f"nesting is deeper than {MAX_DEPTH} levels")
    return obj


_DECODE_ERRORS: Final = (
    msgspec.DecodeError,
    msgspec.ValidationError,
    RecursionError,
    UnicodeDecodeError,
)


def _refusal(exc: Exception, kind: str) -> EventRefused:
    """msgspec's decode errors as one-line refusals."""
    if isinstance(exc, RecursionError):
        return EventRefused(f"nesting is deeper than {MAX_DEPTH} levels")
    if isinstance(exc, UnicodeDecodeError):
        return EventRefused(f"invalid UTF-8 ({exc.reason})")
    return EventRefused(f"not valid {kind}: {exc}")


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


def _object_value(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise EventRefused(f'"{key}" must be an object, not {_kind(value)}')
    return value


def _id_value(value: Any, key: str) -> str | None:
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
        tuple: "an array",  # a MessagePack array as a map key
    }.get(type(value), type(value).__name__)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _raw_copy(item: Any) -> bytes:
    if isinstance(item, msgspec.Raw | bytes):
        return memoryview(item)[:RAW_COPY_BYTES].tobytes()
    if isinstance(item, _DeepItem):
        item = item.value
    try:
        return _json_encoder.encode(item)[:RAW_COPY_BYTES]
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError):
        return repr(item)[:RAW_COPY_BYTES].encode("utf-8", "replace")


# --- for the vendor decoders (`eventtui.protocols`): the same rules, in the same words ---------

refusal_reason: Final = _reason
raw_copy: Final = _raw_copy
nesting_depth: Final = _depth
json_encode: Final = _json_encoder.encode
kind_of: Final = _kind
bad_name: Final = _bad_name
timestamp_error: Final = _timestamp_error
id_value: Final = _id_value
check_needed: Final = _needed


def openers(data: bytes) -> int:
    """How many objects and arrays open in `data`: a bound on how deep it nests."""
    return _openers(data)


def without_lone_surrogates(data: bytes) -> bytes:
    """JSON text with each lone UTF-16 surrogate escape replaced by U+FFFD (kept, as the
    websocket path keeps them), which msgspec would otherwise refuse."""
    if b"\\ud" in data or b"\\uD" in data:
        return _SURROGATE_ESCAPE.sub(_replace_lone_surrogate, data)
    return data


def decode_json_item(item: msgspec.Raw | bytes) -> Any:
    """One event's raw JSON, decoded; EventRefused when it is not JSON or nests too deeply."""
    return _decode_item(item)


def json_refusal(exc: Exception) -> EventRefused:
    """A JSON decoding error (msgspec's, RecursionError, UnicodeDecodeError) as a refusal."""
    return _refusal(exc, "JSON")
