"""The decoder: property tests over what clients can send."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventtui.model import EventRefused, _fast_path, decode_frame, normalise

names = st.text(min_size=0, max_size=300)
ids = st.one_of(st.none(), st.text(max_size=20), st.integers(), st.floats(allow_nan=False))
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
timestamps = st.one_of(
    st.none(),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.integers(0, 2**41),
    st.text(max_size=12),
)
events = st.fixed_dictionaries(
    {"event": st.one_of(names, st.integers(), st.none())},
    optional={
        "type": st.sampled_from(["track", "page", "identify", "bogus"]),
        "properties": st.one_of(
            st.dictionaries(st.text(max_size=8), json_values, max_size=5), json_values
        ),
        "context": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
        "userId": ids,
        "anonymousId": ids,
        "messageId": ids,
        "timestamp": timestamps,
        "traits": json_values,
    },
)


def slow(obj: Any) -> Any:
    try:
        return normalise(obj, client="c", received_at=1.0)
    except EventRefused as exc:
        return str(exc)


# Plain events that make a frame hold more than MAX_DEPTH openers, so that the fast path checks
# the events one by one.
PADDING = {"event": "pad", "properties": {"a": {"b": []}}, "context": {"c": {}}}


@settings(max_examples=500, deadline=None)
@given(
    st.lists(events, min_size=1, max_size=4),
    st.sampled_from(["object", "array", "batch"]),
    st.sampled_from([0, 30]),
    st.booleans(),
)
def test_fast_path_agrees_with_the_full_rules(
    items: list[dict[str, Any]], shape: str, padding: int, ascii_only: bool
) -> None:
    """Whatever the fast path accepts, the full rules accept identically; it never refuses."""
    items = [PADDING] * padding + items if shape != "object" else items[:1]
    doc: Any = {"object": items[0], "array": items, "batch": {"batch": items, "sentAt": "x"}}[shape]
    # ensure_ascii: non-ASCII text as \\uXXXX escapes (surrogate pairs beyond the BMP) or raw UTF-8.
    data = json.dumps(doc, ensure_ascii=ascii_only).encode()
    fast = _fast_path(data, "c", 1.0, 512 * 1024)
    full = decode_frame(data, binary=False, client="c", received_at=1.0)
    if fast is not None:
        assert fast == full.events and not full.refusals
        assert fast == [slow(item) for item in items]


def test_batches_take_the_fast_path() -> None:
    """100-event arrays and Segment batches, as SDKs and benchmarks send them."""
    batch = [
        {"event": "e", "messageId": str(i), "properties": {"n": i, "a": [1]}} for i in range(100)
    ]
    for doc in (batch, {"batch": batch, "sentAt": "2026-11-26T04:00:00.000Z"}):
        data = json.dumps(doc).encode()
        fast = _fast_path(data, "c", 1.0, 512 * 1024)
        assert fast is not None
        assert fast == [slow(item) for item in batch]
    # A shared context is merged into each event by the full rules.
    assert (
        _fast_path(json.dumps({"batch": batch, "context": {}}).encode(), "c", 1.0, 1 << 20) is None
    )


@pytest.mark.parametrize(
    "data",
    [
        rb'{"event": "a\ud800"}',  # lone surrogate escapes: replaced by the full rules
        rb'{"event": "a", "properties": {"k": "\udc00x"}}',
        rb'{"event": "a", "properties": {"k": "\ud83d\ude00"}}',  # a valid pair
        rb'{"event": "a", "event": "b"}',  # duplicate keys: the last wins
        rb'{"event": "a", "\u0065vent": "b"}',  # the same key, spelled with an escape
        rb'{"event": "a", "properties": {"k": 1, "k": 2, "\u006b": 3}}',
        rb'{"event": "a\u0000b", "properties": {"\u00e9": "\n"}}',
        rb'{"batch": [{"event": "a"}, {"event": "b"}]}',
        rb'{"event": "a", "batch": [{"event": "b"}]}',
        rb'[{"event": "a"}, {"batch": [{"event": "b"}]}]',
        rb'{"batch": "not a list"}',
        rb'{"batch": []}',
        rb'{"batch": [{"event": "a"}], "event": "b"}',
        rb'{"batch": [{"event": "a", "properties": {"k": "\ud800"}}]}',
        b'{"batch": [' + b'{"event": "a", "properties": {"k": []}},' * 40 + b'{"event": "b"}]}',
        b'{"batch": [{"event": "a", "properties": ' + b"[" * 70 + b"]" * 70 + b"}]}",
        b"[" + b'{"event": "a", "properties": {"k": []}},' * 40 + b'{"event": "b"}]',
        b'[{"event": "a"}, {"event": "a", "properties": {"k": ' + b"[" * 70 + b"]" * 70 + b"}}]",
        b'{"event": "a", "properties": ' + b'{"k": ' * 63 + b"1" + b"}" * 63 + b"}",
        b'{"event": "a", "properties": ' + b'{"k": ' * 64 + b"1" + b"}" * 64 + b"}",
        b'{"event": "a", "properties": {"k": ' + b"[" * 70 + b"]" * 70 + b"}}",
    ],
)
def test_fast_path_edge_cases_agree_with_the_full_rules(data: bytes) -> None:
    """What the fast path takes without a check of its own, it takes exactly as the full rules."""
    fast = _fast_path(data, "c", 1.0, 512 * 1024)
    full = decode_frame(data, binary=False, client="c", received_at=1.0)
    if fast is not None:
        assert fast == full.events and not full.refusals


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_decode_to_events_or_refusals(data: bytes) -> None:
    """Never an exception: every input ends as accepted events or refusals with a reason."""
    for binary in (False, True):
        frame = decode_frame(data, binary=binary, client="c", received_at=1.0)
        assert all(r.reason for r in frame.refusals)
        assert frame.events or frame.refusals


def test_typical_events_take_the_fast_path() -> None:
    typical = {
        "event": "signup",
        "userId": "u1",
        "messageId": "m1",
        "timestamp": "2026-11-26T04:00:00.123Z",
        "properties": {"plan": "pro", "total": 12.5},
        "context": {"ip": "127.0.0.1"},
    }
    for doc in (typical, [typical, {"event": "page_view"}]):
        data = json.dumps(doc).encode()
        fast = _fast_path(data, "c", 1.0, 512 * 1024)
        assert fast is not None
        assert fast == [slow(item) for item in (doc if isinstance(doc, list) else [doc])]
