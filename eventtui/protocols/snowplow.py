"""Snowplow's tracker protocol, as its trackers send it (read from snowplow-python-tracker and
@snowplow/browser-tracker, and seen by running them: tests/test_protocols_sdks.py,
tests/test_protocols_browser.py).

- `GET /i?e=pv&...`: one event in the query string.
- `POST /com.snowplowanalytics.snowplow/tp2`: `{"schema": "iglu:.../payload_data/...", "data":
  [event, ...]}`, each event a flat object of (string) fields.

Fields: `e` the kind (`pv` page view, `pp` page ping, `se` structured, `ue` self-describing,
`tr`/`ti` transaction and item), `eid` (the message id), `uid` (user id), `duid`/`nuid`
(anonymous ids), `ttm`/`dtm` (true or device time, epoch ms). A structured event is named by its
action (`se_ac`) and keeps category, action, label, property and value as properties; a
self-describing event (`ue_pr` JSON or `ue_px` base64) is named by its schema URI's name, with
its data as properties and the URI in context as `schema`; contexts (`co` JSON or `cx` base64)
go to context as `contexts`; `url`/`page`/`refr` to `context.page`. Every other field (`aid`,
`tv`, `p`, `res`, ...) is kept in extra.

May import: msgspec, model, protocols.common.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Final

import msgspec

from eventtui.model import (
    MAX_DEPTH,
    DecodedFrame,
    EventRefused,
    StoredEvent,
    json_encode,
    json_refusal,
    kind_of,
    nesting_depth,
    openers,
    without_lone_surrogates,
)
from eventtui.protocols.common import (
    Answer,
    Layouts,
    Options,
    Protocol,
    Request,
    base64_bytes,
    built_all,
    decode_items,
    event_json,
    json_document,
    pick_encoder,
    refused,
    within_depth,
)

SOURCE: Final = "snowplow"
_NAMES: Final = {
    "pv": "page_view",
    "pp": "page_ping",
    "tr": "transaction",
    "ti": "transaction_item",
}
_STRUCTURED: Final = (
    ("se_ca", "category"),
    ("se_ac", "action"),
    ("se_la", "label"),
    ("se_pr", "property"),
    ("se_va", "value"),
)
_PAGE: Final = (("url", "url"), ("page", "title"), ("refr", "referrer"))
_PING: Final = ("pp_mix", "pp_max", "pp_miy", "pp_may")
# A transparent 1x1 GIF: a tracker's GET may be an image request.
PIXEL: Final = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


class _Payload(msgspec.Struct):
    data: list[dict[str, Any]]
    schema: str | None = None


_payload_decoder: Final = msgspec.json.Decoder(_Payload)


def decode(request: Request, options: Options) -> DecodedFrame:
    if request.method == "GET":
        if "e" not in request.query:
            return refused('the query has no "e" (the event kind)', request.path.encode())
        return decode_items(
            [dict(request.query)], lambda f: _event(f, options), options, listed=False
        )
    try:
        payload = _payload_decoder.decode(request.body)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        try:
            doc = json_document(request.body)
        except EventRefused as exc:
            return refused(str(exc), request.body)
        if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
            what = kind_of(doc.get("data")) if isinstance(doc, dict) else kind_of(doc)
            return refused(
                'the body must be a payload_data object {"schema", "data": [event, ...]};'
                f' "data" is {what}',
                request.body,
            )
        payload = _Payload(doc["data"])
    build = _event
    if not within_depth(openers(request.body), [1] * len(payload.data)):
        build = _shallow_event  # some event may nest past the limit: each is measured
    fast = built_all(payload.data, lambda f: build(f, options), options)
    if fast is not None:
        return fast
    return decode_items(payload.data, lambda f: build(f, options), options)


def _shallow_event(fields: Any, options: Options) -> StoredEvent:
    """`_event`, refusing an event nested past MAX_DEPTH as every protocol does (its ordinary
    fields would otherwise reach `extra` at any depth)."""
    if nesting_depth(fields) > MAX_DEPTH:
        raise EventRefused(f"nesting is deeper than {MAX_DEPTH} levels")
    return _event(fields, options)


def _event(fields: Any, options: Options) -> StoredEvent:
    if fields.__class__ is not dict:
        raise EventRefused(f"an event must be an object of fields, not {kind_of(fields)}")
    # The fields are read, never taken out: what is left for extra is known from the layout
    # (`_extra`), and a refusal keeps the event as it came.
    get = fields.get
    kind = get("e")
    if not kind:
        raise EventRefused('the event has no "e" (the event kind)')
    properties: dict[str, Any] = {}
    context: dict[str, Any] = {}
    page: dict[str, Any] = {}  # _PAGE, spelt out: a comprehension is a call of its own
    if "url" in fields:
        page["url"] = fields["url"]
    if "page" in fields:
        page["title"] = fields["page"]
    if "refr" in fields:
        page["referrer"] = fields["refr"]
    if page:
        context["page"] = page
    type_ = "track"
    if kind == "se":
        name = get("se_ac")
        for field, key in _STRUCTURED:
            if field in fields:
                value = fields[field]
                properties[key] = _number(value) if field == "se_va" else value
    elif kind == "ue":
        inner = _self_describing(_json_bytes(fields, "ue_pr", "ue_px"))
        context["schema"] = inner.schema
        name = _schema_name(inner.schema)
        body = inner.data
        properties = body if body.__class__ is dict else {"data": body}
    else:
        name = _NAMES.get(kind, kind)
        if kind == "pv":
            type_ = "page"
            properties = dict(page)
        elif kind == "pp":
            properties = dict(page)
            for field in _PING:
                if field in fields:
                    properties[field] = _number(fields[field])
    if "co" in fields or "cx" in fields:
        context["contexts"] = _contexts(_json_bytes(fields, "co", "cx"))
    timestamp = get("ttm") or get("dtm")
    if timestamp is not None:
        timestamp = _number(timestamp)
    encode = json_encode
    return event_json(
        options, SOURCE, "e", name, type_, get("uid"), get("duid") or get("nuid"), get("eid"),
        timestamp, encode(properties).decode() if properties else "{}",
        encode(context).decode() if context else "{}",
        _extra(fields, kind if kind == "se" or kind == "ue" or kind == "pp" else ""),
    )  # fmt: skip


# The fields every event's columns, properties and context are made of; and those of each kind.
# The rest are kept in extra, in the order they came, with "e" (the kind) last.
_TAKEN: Final = frozenset({"e", "url", "page", "refr", "ttm", "uid", "duid", "eid", "co", "cx"})
_TAKEN_BY_KIND: Final = {
    "": _TAKEN,
    "se": _TAKEN | {field for field, _ in _STRUCTURED},
    "ue": _TAKEN | {"ue_pr", "ue_px"},
    "pp": _TAKEN | set(_PING),
}


def _extra_keys(layout: tuple[tuple[str, ...], str]) -> list[str]:
    keys, kind = layout
    taken = _TAKEN_BY_KIND[kind]
    return [key for key in keys if key not in taken] + ["e"]


def _extra(fields: dict[str, Any], kind: str) -> str:
    """The JSON text of the fields kept in extra: by the layout's plan (see `common.Layouts`)
    once it has one, else by a dict."""
    layout = (tuple(fields), kind)
    encode = _extra_plans.plans.get(layout) or _extra_plans.get(layout)
    if encode is not None:
        return encode(fields)
    return json_encode({key: fields[key] for key in _extra_keys(layout)}).decode()


_extra_plans: Final[Layouts[tuple[tuple[str, ...], str], Callable[[dict[str, Any]], str]]] = (
    Layouts(lambda layout: pick_encoder(_extra_keys(layout)))
)


# How a refusal names each field that holds JSON (made once, not per event).
_WHERE: Final = {
    "ue_pr": 'the self-describing event ("ue_pr")',
    "ue_px": 'the self-describing event ("ue_px")',
    "co": 'the contexts ("co")',
    "cx": 'the contexts ("cx")',
}


def _json_bytes(f: dict[str, Any], plain: str, encoded: str) -> tuple[bytes, str]:
    """The JSON text of a field sent plain (`ue_pr`, `co`, read first) or base64 (`ue_px`,
    `cx`), and the words that name it in a refusal."""
    if plain in f:
        text = f[plain]
        where = _WHERE[plain]
        if not isinstance(text, str):  # a JSON body may carry it decoded already
            return json_encode(text), where
        return text.encode(), where
    where = _WHERE[encoded]
    value = f[encoded]
    if not isinstance(value, str):
        raise EventRefused(f"{where} must be base64 text, not {kind_of(value)}")
    return base64_bytes(value, where), where


class _Inner(msgspec.Struct):
    schema: str
    data: Any = None


class _Unstruct(msgspec.Struct):
    data: _Inner


class _Contexts(msgspec.Struct):
    data: list[msgspec.Raw]


_unstruct_decoder: Final = msgspec.json.Decoder(_Unstruct)
_contexts_decoder: Final = msgspec.json.Decoder(_Contexts)
_any_decoder: Final = msgspec.json.Decoder()


def _decoded(text: bytes, where: str, decoder: msgspec.json.Decoder[Any]) -> Any:
    """`text` decoded with `decoder`, checked as every event is (nesting, lone surrogates)."""
    try:  # the usual blob: msgspec takes it as it is (it refuses a lone surrogate), shallow
        value = decoder.decode(text)
        if text.count(b"{") + text.count(b"[") <= MAX_DEPTH:
            return value
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError, UnicodeDecodeError):
        pass
    # Anything else again, the whole way, for its reason.
    text = without_lone_surrogates(text)
    try:
        if (
            text.count(b"{") + text.count(b"[") > MAX_DEPTH
            and nesting_depth(_any_decoder.decode(text)) > MAX_DEPTH
        ):
            raise EventRefused(f"{where}: nesting is deeper than {MAX_DEPTH} levels")
        return decoder.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeDecodeError) as exc:
        raise EventRefused(f"{where}: {json_refusal(exc)}") from None


def _self_describing(found: tuple[bytes, str]) -> _Inner:
    text, where = found
    try:
        decoded: _Unstruct = _decoded(text, where, _unstruct_decoder)
    except msgspec.ValidationError:
        raise EventRefused(f'{where} must be {{"schema", "data": {{"schema", "data"}}}}') from None
    return decoded.data


def _contexts(found: tuple[bytes, str]) -> Any:
    """The contexts' list, each kept as the raw JSON it came as (checked, never rebuilt)."""
    text, where = found
    try:
        contexts: _Contexts = _decoded(text, where, _contexts_decoder)
    except msgspec.ValidationError:
        whole = _decoded(text, where, _any_decoder)  # not the usual shape: kept as it is
        return whole.get("data", whole) if isinstance(whole, dict) else whole
    return contexts.data


@functools.lru_cache(maxsize=1024)  # a tracker sends a few schemas, over and over
def _schema_name(uri: str) -> str:
    """`iglu:com.acme/signed_up/jsonschema/1-0-0` -> `signed_up`."""
    parts = uri.removeprefix("iglu:").split("/")
    if len(parts) != 4 or not parts[1]:
        raise EventRefused(
            f"the event's schema {uri!r} is not an Iglu URI (iglu:vendor/name/format/version)"
        )
    return parts[1]


def _number(value: Any) -> Any:
    """Trackers send numbers as text; a number is kept as one, anything else as sent."""
    if value.__class__ is str:
        if value.isdigit() and len(value) < 16 and value.isascii():
            return int(value)  # what the float way gives an integer's digits (under 2**53)
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    return value


def _reply(request: Request, ours: dict[str, Any], status: int) -> Answer:
    if request.method == "GET" and status == 200:
        return Answer(200, PIXEL, "image/gif")
    return Answer(status, msgspec.json.encode(ours))


PROTOCOL: Final = Protocol(SOURCE, decode, _reply)
