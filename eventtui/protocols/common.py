"""What every vendor decoder shares: the request it is handed, the event it builds, the answer.

A decoder maps its vendor's fields to the event model and calls `event(...)`, which applies the
rules every event meets (a name of 1 to 256 characters, the size limit, ids as text, readable
timestamps) in the same words as `model.normalise`. `decode_items` runs a decoder over a body's
events so that one bad event is refused with its index and the rest are stored.

May import: msgspec, pybase64, model.
"""

from __future__ import annotations

import binascii
import codecs
import operator
import re
import urllib.parse
from collections.abc import Callable, Hashable, Mapping
from datetime import datetime
from typing import Any, Final, Generic, NamedTuple, TypeVar

import msgspec
import pybase64

from eventtui.model import (
    MAX_DEPTH,
    MAX_EPOCH,
    MAX_NAME_CHARS,
    MIN_EPOCH,
    DecodedFrame,
    EventCheck,
    EventRefused,
    Refusal,
    StoredEvent,
    bad_name,
    check_needed,
    decode_json_item,
    id_value,
    json_encode,
    json_refusal,
    kind_of,
    nesting_depth,
    openers,
    parse_timestamp,
    raw_copy,
    refusal_reason,
    timestamp_error,
    without_lone_surrogates,
)

T = TypeVar("T")


class Request(NamedTuple):
    """What a decoder sees of an HTTP request: received whole, within the size limit, inflated."""

    method: str
    path: str
    query: Mapping[str, str]
    content_type: str
    body: bytes


class Options(NamedTuple):
    """How the listener wants events built: who sent them, when, the limit, the plan check."""

    client: str
    received_at: float
    max_event_bytes: int
    check: EventCheck | None = None


class Answer(NamedTuple):
    """An HTTP answer in the form a vendor's SDK reads."""

    status: int
    body: bytes
    content_type: str = "application/json"


# (request, our answer's JSON object, its status) -> the answer in the vendor's form. Our object
# is {"ok", "accepted", "refused"} or {"ok": false, "error"}: a vendor's fields are added to it.
Reply = Callable[[Request, dict[str, Any], int], Answer]


class Protocol(NamedTuple):
    source: str
    decode: Callable[[Request, Options], DecodedFrame]
    reply: Reply
    # The compression of a body sent without Content-Encoding (posthog-js gzips a text/plain
    # body and says so in its query, or not at all), from the query and the body received:
    # the listener inflates it with the same limits as any gzip body.
    encoding: Callable[[Mapping[str, str], bytes], str | None] = lambda query, body: None


_encode_answer: Final = msgspec.json.Encoder().encode


def json_reply(extra: Callable[[dict[str, Any], int], dict[str, Any]]) -> Reply:
    """A reply that adds the vendor's fields (`extra(ours, status)`) to our JSON object."""

    def reply(request: Request, ours: dict[str, Any], status: int) -> Answer:
        return Answer(status, _encode_answer({**ours, **extra(ours, status)}))

    return reply


def event(
    options: Options,
    source: str,
    name_key: str,
    name: Any,
    type_: str,
    user_id: Any,
    anonymous_id: Any,
    message_id: Any,
    timestamp: Any,
    properties: dict[str, Any] | None,
    context: dict[str, Any] | None,
    extra: dict[str, Any] | None,
) -> StoredEvent:
    """One event in the model, checked as `model.normalise` checks a Segment event; raises
    EventRefused. `name_key`: the vendor's field for the name, for the refusal's words.
    `timestamp`: what the SDK sent (ISO text, epoch seconds or milliseconds)."""
    # Encoding first is safe: the decoders hand over decoded JSON, nested 64 levels at most,
    # which always encodes, so no check below can be pre-empted by it.
    encode = json_encode
    return event_json(
        options, source, name_key, name, type_, user_id, anonymous_id, message_id, timestamp,
        encode(properties).decode() if properties else "{}",
        encode(context).decode() if context else "{}",
        encode(extra).decode() if extra else None,
    )  # fmt: skip


def event_json(
    options: Options,
    source: str,
    name_key: str,
    name: Any,
    type_: str,
    user_id: Any,
    anonymous_id: Any,
    message_id: Any,
    timestamp: Any,
    properties_json: str,
    context_json: str,
    extra: dict[str, Any] | str | None,
) -> StoredEvent:
    """`event`, with properties and context already JSON text (`Split` makes them so), and
    `extra` too when it is a str."""
    if name.__class__ is not str or not name or len(name) > MAX_NAME_CHARS:
        raise EventRefused(bad_name(name).replace('"event"', f'"{name_key}"'))
    if user_id.__class__ is not str:
        user_id = id_value(user_id, "user id")
    if anonymous_id.__class__ is not str:
        anonymous_id = id_value(anonymous_id, "anonymous id")
    if message_id.__class__ is not str:
        message_id = id_value(message_id, "message id")
    sent_at = errors = None
    if timestamp is not None:
        sent_at = _seconds(timestamp)
        if sent_at is None:
            errors = json_encode([timestamp_error(timestamp)]).decode()
    extra_json = extra if extra.__class__ is str else json_encode(extra).decode() if extra else None
    size = len(properties_json) + len(context_json) + (len(extra_json) if extra_json else 0)
    if size > options.max_event_bytes:
        raise EventRefused(
            f"the event is {size:,} bytes, over the {options.max_event_bytes:,}-byte limit"
        )
    # The tuple made directly: a NamedTuple's own constructor is Python code (0.33 µs a row,
    # measured, against 0.1). `absent` 0: a vendor's event is mapped into the model, so no
    # field of it was left out.
    return _new_row(StoredEvent, (
        options.received_at, sent_at, name, type_, user_id or None, anonymous_id or None,
        message_id or None, options.client, properties_json, context_json, errors is None,
        errors, extra_json, 0, source,
    ))  # fmt: skip


_new_row: Final = tuple.__new__


def _seconds(timestamp: Any) -> float | None:
    """`model.parse_timestamp`, with the SDKs' usual forms first: ISO 8601 text with an offset
    (`datetime.fromisoformat`, in C) and epoch numbers; the rest goes the whole way."""
    seconds: float | None = None
    kind = timestamp.__class__
    if kind is str:
        try:
            parsed = datetime.fromisoformat(timestamp)
        except ValueError:
            return parse_timestamp(timestamp)
        if parsed.tzinfo is None:
            return parse_timestamp(timestamp)
        seconds = parsed.timestamp()
    elif kind is int or kind is float:
        seconds = float(timestamp)
        if abs(seconds) >= 1e11:  # milliseconds, as model._epoch_seconds reads them
            seconds /= 1000.0
        if seconds != seconds or abs(seconds) >= 1e11:
            return None
    else:
        return parse_timestamp(timestamp)
    return seconds if MIN_EPOCH <= seconds < MAX_EPOCH else None


def decode_items(
    items: list[T], build: Callable[[T], StoredEvent], options: Options, *, listed: bool = True
) -> DecodedFrame:
    """Each item built into an event (and checked against the plan), or refused with its index
    (`listed`: the body was a list); never raises."""
    out = DecodedFrame([], [])
    check = options.check
    for index, item in enumerate(items):
        try:
            built = build(item)
            out.events.append(built if check is None else check(built))
        except Exception as exc:
            out.refusals.append(
                Refusal(refusal_reason(exc), index if listed else None, raw_copy(item))
            )
    if not out.events and not out.refusals:
        out.refusals.append(Refusal("the body holds no events", None, b""))
    return out


def built_all(
    items: list[T], build: Callable[[T], StoredEvent], options: Options
) -> DecodedFrame | None:
    """A body's typed events, each built and checked, when none of them is refused; else None,
    and the caller decodes the body item by item (`decode_items`) for the refusals' indexes and
    raw copies. The fast path of a vendor decoder, as `model.decode_frame` has one for Segment's:
    a whole body is decoded into typed Structs in one msgspec call, with one try around it all
    and the plan's frame-wide prefilter (`needed`) asked once, not a check call per event."""
    if not items:
        return None
    try:
        events = [build(item) for item in items]
        check = options.check
        if check is not None and check_needed(check, events):
            events = [check(event) for event in events]
    except Exception:  # refused, or the check raised: the slow path says which and why
        return None
    return DecodedFrame(events, [])


_DECODING: Final = (
    msgspec.ValidationError,
    msgspec.DecodeError,
    RecursionError,
    UnicodeDecodeError,
)


def within_depth(openers_in_body: int, least: list[int]) -> bool:
    """Whether no event of a body can have more than MAX_DEPTH objects and arrays open in it
    (the bound below which an event is not walked for its depth), from the count in the whole
    body and, for each event, the least it has (`least`: its own object and the objects its
    Struct holds). An event has at most what the body has less the least of all the others, so
    a body of flat events is decoded in one call, never split and counted event by event."""
    return bool(least) and openers_in_body - sum(least) + max(least) <= MAX_DEPTH


def typed_each(items: list[msgspec.Raw], decoder: msgspec.json.Decoder[T]) -> list[T]:
    """Each raw event decoded into its Struct, as `model.decode_frame`'s fast path does a batch
    that nests past the limit as a whole: [] when one of them might nest too deeply (more than
    MAX_DEPTH objects and arrays open in it) or is not plain, and the body goes the slow way."""
    out: list[T] = []
    append, decode = out.append, decoder.decode
    try:
        for item in items:
            raw = bytes(item)
            if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:
                return []
            append(decode(raw))
    except _DECODING:
        return []
    return out


def refused(reason: str, raw: bytes) -> DecodedFrame:
    """A whole body refused (it is not the vendor's format at all)."""
    return DecodedFrame([], [Refusal(reason, None, raw_copy(raw))])


class Typed(NamedTuple):
    """A decoder of one vendor event into its Struct, with the fields it does not know kept."""

    decoder: msgspec.json.Decoder[Any]
    struct: type[msgspec.Struct]
    names: frozenset[str]

    @classmethod
    def of(cls, struct: type[msgspec.Struct]) -> Typed:
        return cls(msgspec.json.Decoder(struct), struct, frozenset(struct.__struct_encode_fields__))

    def decode(self, raw: msgspec.Raw | bytes, deep: bool) -> tuple[Any, dict[str, Any] | None]:
        """The event and its unknown top-level fields (None when there are none).

        The Struct forbids unknown fields, so the common event is decoded in one C call; one that
        has others (or is wrong) is decoded as a dict and split, and a wrong field is refused
        with msgspec's words for it. `deep`: the body may nest past MAX_DEPTH; check this one.
        """
        if not deep or openers(bytes(raw)) <= MAX_DEPTH:
            try:
                return self.decoder.decode(raw), None
            except msgspec.ValidationError:
                pass
            except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
                raise json_refusal(exc) from None
        obj = decode_json_item(raw)  # refuses nesting past MAX_DEPTH
        return self.split(obj)

    def split(self, obj: Any) -> tuple[Any, dict[str, Any] | None]:
        """An already decoded event (a dict) as its Struct and its unknown fields."""
        if obj.__class__ is not dict:
            raise EventRefused(f"an event must be a JSON object, not {kind_of(obj)}")
        if nesting_depth(obj) > MAX_DEPTH:
            raise EventRefused(f"nesting is deeper than {MAX_DEPTH} levels")
        names = self.names
        known = {k: v for k, v in obj.items() if k in names}
        unknown = {k: v for k, v in obj.items() if k not in names}
        try:
            return msgspec.convert(known, self.struct), unknown or None
        except msgspec.ValidationError as exc:
            raise EventRefused(str(exc)) from None


_raw_list: Final = msgspec.json.Decoder(list[msgspec.Raw])
_any: Final = msgspec.json.Decoder()


def json_document(data: bytes) -> Any:
    """A whole JSON body decoded (lone surrogates kept as U+FFFD); EventRefused if it is not JSON."""
    try:
        return _any.decode(without_lone_surrogates(data))
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise json_refusal(exc) from None


def json_items(data: bytes) -> tuple[list[msgspec.Raw], bool]:
    """A JSON body's events, each still raw: an array's items, or the one object; and whether it
    was an array. EventRefused for anything else."""
    data = without_lone_surrogates(data)
    head = data.lstrip()[:1]
    try:
        if head == b"[":
            return _raw_list.decode(data), True
        if head == b"{":  # decoded once, as the event: broken JSON is refused there
            return [msgspec.Raw(data)], False
        doc = _any.decode(data)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise json_refusal(exc) from None
    raise EventRefused(f"the body must be an event object or an array of them, not {kind_of(doc)}")


def form_field(body: bytes, name: str) -> bytes | None:
    """One field of an `application/x-www-form-urlencoded` body (the last if repeated), as bytes.

    Percent-decoding is done by `codecs.escape_decode` (C): `urllib.parse.unquote_to_bytes` is a
    Python loop over every escape, and a JSON array of 100 events has thousands of them (measured:
    3/5 of Mixpanel's decoding time went there).
    """
    key = name.encode() + b"="
    found = None
    for part in body.split(b"&"):
        if part.startswith(key):
            found = part[len(key) :]
    if found is None:
        return None
    return percent_decode(found)


def percent_decode(text: bytes) -> bytes:
    """`+` and `%XX` escapes of a form value decoded; a stray `%` is kept as it is (as
    `urllib.parse.unquote_to_bytes` keeps it)."""
    escapes = text.count(b"%")
    if not escapes:
        return text.replace(b"+", b" ")
    if b"=" not in text and b"\n" not in text and b"\r" not in text:
        # Quoted-printable is the same escape with `=` for `%` (binascii, in C: 3x faster than
        # the way below). What it reads otherwise (an `=` of its own, a soft line break) is not
        # in this text, and an escape it cannot read (a stray `%`) it keeps longer than 1 byte:
        # the length says whether every `%` was an escape.
        quoted = binascii.a2b_qp(text.translate(_PERCENT_AS_QP))
        if len(quoted) == len(text) - 2 * escapes:
            return quoted
    text = text.replace(b"+", b" ")
    try:
        decoded: bytes = codecs.escape_decode(text.replace(b"\\", b"\\\\").replace(b"%", b"\\x"))[0]
        return decoded
    except ValueError:  # a `%` not followed by two hex digits
        return urllib.parse.unquote_to_bytes(text)


_PERCENT_AS_QP: Final = bytes.maketrans(b"%+", b"= ")


def base64_bytes(text: str | bytes, what: str) -> bytes:
    """Base64 text (standard or URL-safe alphabet, padding optional), decoded; EventRefused
    naming `what` when it is not base64."""
    data = text.encode("ascii", "replace") if isinstance(text, str) else text
    data = data.translate(_URL_SAFE)
    if len(data) % 4:
        data += b"=" * (-len(data) % 4)
    try:
        # pybase64 refuses all that binascii's strict mode refuses, and a little more (padding
        # past a whole quantum, "AAAA===="): binascii has the last word on those.
        return pybase64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        pass
    try:
        return binascii.a2b_base64(data, strict_mode=True)
    except (binascii.Error, ValueError):
        raise EventRefused(f"{what} is not valid base64") from None


def base64_json(text: str | bytes, what: str) -> Any:
    """JSON sent base64-encoded, decoded."""
    raw = base64_bytes(text, what)
    try:
        return _any.decode(without_lone_surrogates(raw))
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise EventRefused(f"{what}: {json_refusal(exc)}") from None


# The URL-safe alphabet's two letters, and a space: a `+` that a form body did not escape
# arrives as one.
_URL_SAFE: Final = bytes.maketrans(b"-_ ", b"+/+")


K = TypeVar("K", bound=Hashable)
P = TypeVar("P")


class Layouts(Generic[K, P]):
    """Plans made per key layout (`make(layout)`), for what a decoder does with an event's keys
    by the same steps event after event: an SDK sends the same keys in the same order each
    time. A plan costs tens of µs to make, so only a layout seen `WARM` times gets one (until
    then, and when `make` says None, the decoder goes the plain way); both tables are bounded,
    so an SDK that sends every event with keys of its own pays a lookup more, nothing else."""

    WARM: Final = 2
    MAX_LAYOUTS: Final = 512

    def __init__(self, make: Callable[[K], P | None]) -> None:
        self.make = make
        self.seen: dict[K, int] = {}
        self.plans: dict[K, P | None] = {}

    def get(self, layout: K) -> P | None:
        plan = self.plans.get(layout, _ABSENT)
        if plan is not _ABSENT:
            return plan
        seen = self.seen.get(layout, 0) + 1
        if seen < self.WARM:
            if len(self.seen) >= self.MAX_LAYOUTS:
                self.seen.clear()
            self.seen[layout] = seen
            return None
        self.seen.pop(layout, None)
        plan = self.make(layout)
        if len(self.plans) >= self.MAX_LAYOUTS:
            self.plans.clear()
        self.plans[layout] = plan
        return plan


_ABSENT: Final[Any] = object()


class Split:
    """An SDK's properties split into the app's own and the SDK's (`is_sdk(key)`), straight to
    their JSON texts, in the order they came; `dropped` keys are in neither (they have columns).

    The texts are what a loop over the keys into two dicts and `json_encode` make, byte for
    byte; that loop and the two encodes cost more per event than decoding it (posthog-js sends
    ~30 properties). With a plan for the layout (`Layouts`): which keys are whose, and for each
    side an encoder (`pick_encoder`) that takes the values by position into a Struct that
    msgspec encodes in C, with no dict built and no Python code per key.
    """

    def __init__(self, is_sdk: Callable[[str], bool], dropped: frozenset[str]) -> None:
        self.is_sdk = is_sdk
        self.dropped = dropped
        self.layouts: Layouts[tuple[str, ...], _Plan] = Layouts(self._plan)

    def __call__(self, properties: dict[str, Any] | None) -> tuple[str, str]:
        """(the app's properties, the SDK's) as JSON text."""
        if not properties:
            return "{}", "{}"
        layout = tuple(properties)
        plan = self.layouts.plans.get(layout) or self.layouts.get(layout)
        if plan is None:
            return self._plain(properties)
        return plan(properties)

    def _plain(self, properties: dict[str, Any]) -> tuple[str, str]:
        own: dict[str, Any] = {}
        sdk: dict[str, Any] = {}
        is_sdk, dropped = self.is_sdk, self.dropped
        for key, value in properties.items():
            if key in dropped:
                continue
            if is_sdk(key):
                sdk[key] = value
            else:
                own[key] = value
        encode = json_encode
        return encode(own).decode() if own else "{}", encode(sdk).decode() if sdk else "{}"

    def _plan(self, layout: tuple[str, ...]) -> _Plan | None:
        kept = [key for key in layout if key not in self.dropped]
        own_keys = [key for key in kept if not self.is_sdk(key)]
        sdk_keys = [key for key in kept if self.is_sdk(key)]
        own, sdk = pick_encoder(own_keys), pick_encoder(sdk_keys)
        if own is None or sdk is None:
            return None
        if len(own_keys) > 1 and len(sdk_keys) > 1:  # the usual: both in one call
            own_struct, own_values = _picked(own_keys)
            sdk_struct, sdk_values = _picked(sdk_keys)
            encode = json_encode

            def both(properties: dict[str, Any]) -> tuple[str, str]:
                return (
                    encode(own_struct(*own_values(properties))).decode(),
                    encode(sdk_struct(*sdk_values(properties))).decode(),
                )

            return both

        def each(properties: dict[str, Any]) -> tuple[str, str]:
            return own(properties), sdk(properties)

        return each


_Plan = Callable[[dict[str, Any]], tuple[str, str]]


# What msgspec does not take in a renamed field's name (so its JSON needs no escaping).
_UNNAMEABLE: Final = re.compile(r'["\\\x00-\x1f]')
_MAX_KEYS: Final = 256


def pick_encoder(keys: list[str]) -> Callable[[dict[str, Any]], str] | None:
    """A function of a dict holding `keys` to the JSON text of `{key: d[key] for key in keys}`
    (`json_encode`'s, byte for byte), through a Struct type whose fields are those keys
    (`msgspec.defstruct` with `rename`); None for keys a field cannot be named (a quote, a
    backslash, a control character) or too many of them."""
    if not keys:
        return lambda d: "{}"
    if len(keys) > _MAX_KEYS or any(map(_UNNAMEABLE.search, keys)):
        return None
    struct, values = _picked(keys)
    encode = json_encode
    if len(keys) == 1:
        (key,) = keys
        return lambda d: encode(struct(d[key])).decode()
    return lambda d: encode(struct(*values(d))).decode()


def _picked(keys: list[str]) -> tuple[type[msgspec.Struct], Callable[[dict[str, Any]], Any]]:
    """A Struct type whose fields are `keys` (their JSON names), and what takes their values
    out of a dict in that order (a tuple, for two keys or more)."""
    names = [f"f{i}" for i in range(len(keys))]
    # gc=False: it holds decoded JSON values only, so it can be in no reference cycle.
    struct = msgspec.defstruct(
        "Picked", names, rename=dict(zip(names, keys, strict=True)), gc=False
    )
    return struct, operator.itemgetter(*keys)
