"""The filter language against a real store: expected matches, precedence, errors, and properties.

Every filter is compiled by `eventtui.filters` and run by `Reader.query` on a SQLite file written
through the real `Writer`, so these tests also prove the SQL is valid where it will run.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventtui import filters
from eventtui.filters import Compiled, FilterError, compile_filter
from eventtui.model import EVENT_TYPES, decode_frame
from eventtui.store import Reader, connect
from tests.conftest import write_session

# Two sessions of hand-made events, keyed by messageId. Each one exists to pin down a rule.
SESSION_1 = [
    {
        "messageId": "m1",
        "event": "checkout_started",
        "userId": "42",
        "properties": {"plan": "pro", "cart": {"total": 120, "items": 3}},
        "context": {"ip": "10.0.0.1"},
    },
    {
        "messageId": "m2",
        "event": "checkout_completed",
        "anonymousId": "42",
        "properties": {"plan": "free", "cart": {"total": 99.5}},
    },
    {
        "messageId": "m3",
        "event": "Checkout Viewed",
        "userId": "7",
        "properties": {"plan": "pro plan", "coupon": None},
    },
    {
        "messageId": "m4",
        "type": "page",
        "name": "Home",
        "properties": {"path": "/home", "title": "Welcome 100%_off"},
    },
    {"messageId": "m5", "event": "heartbeat", "properties": {"seq": 1, "flag": True}},
    {"messageId": "m6", "event": "heartbeat", "properties": {"seq": "1", "flag": False}},
    {
        "messageId": "m7",
        "event": "search",
        "properties": {"query": "it's; DROP TABLE events; --", "total": "abc"},
    },
    {
        "messageId": "m8",
        "event": "signup",
        "properties": {"email": "Zoë@example.com", "a.b": 5, 'we"ird': 1},
        "traits": {"vip": True},
    },
]
SESSION_2 = [
    {"messageId": "m9", "type": "identify", "userId": "42", "traits": {"name": "Ada"}},
    {"messageId": "m10", "event": "checkout_[beta]", "properties": {"cart": {"total": "100"}}},
    # An unreadable timestamp is stored with valid = 0: the `invalid` keyword finds it.
    {"messageId": "m11", "event": "purchase", "timestamp": "not a time"},
    {
        "messageId": "m12",
        "type": "screen",
        "name": "Settings",
        "properties": {"nothing": None, "tags": ["beta", "ios"]},
    },
    {"messageId": "m13", "event": "invalid_login"},
]
ALL = {e["messageId"] for e in SESSION_1 + SESSION_2}


def _write_session(path: Path, events: list[dict[str, object]]) -> int:
    frame = decode_frame(json.dumps(events).encode(), binary=False, client="test", received_at=1e9)
    assert not frame.refusals
    return write_session(path, frame.events)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Reader, int, int]]:
    path = tmp_path_factory.mktemp("filters") / "events.db"
    first = _write_session(path, SESSION_1)
    second = _write_session(path, SESSION_2)
    with Reader(path) as reader:
        yield reader, first, second


def _matches(reader: Reader, text: str) -> set[str]:
    compiled = compile_filter(text)
    return {row.message_id or "" for row in reader.query(compiled.where, compiled.params)}


TABLE = [
    ("", ALL),
    ("   ", ALL),
    # bare words: name contains, case-insensitive
    ("checkout", {"m1", "m2", "m3", "m10"}),
    ("CHECKOUT", {"m1", "m2", "m3", "m10"}),
    ("checkout started", {"m1"}),
    ("-checkout", ALL - {"m1", "m2", "m3", "m10"}),
    # name: globs are case-sensitive; '[' and quoted wildcards are literal
    ("name:checkout_*", {"m1", "m2", "m10"}),
    ("name:checkout_[beta]", {"m10"}),
    ("name:Checkout*", {"m3"}),
    ("name:heart?eat", {"m5", "m6"}),
    ('name:"checkout_*"', set()),
    ("name:heartbeat", {"m5", "m6"}),
    ("name:Home", {"m4"}),
    ("name:*invalid*", {"m13"}),
    # properties: equality, negation, quoting
    ("plan=pro", {"m1"}),
    ('plan="pro plan"', {"m3"}),
    ("plan=PRO", set()),
    ("plan!=pro", ALL - {"m1"}),
    ("-plan=pro", ALL - {"m1"}),
    ("has:plan plan!=pro", {"m2", "m3"}),
    ("plan~PRO", {"m1", "m3"}),
    # numbers compare as numbers, and `=` also takes a string holding the same text
    ("cart.total>=100", {"m1"}),
    ("properties.cart.total>=100", {"m1"}),
    ("cart.total<100", {"m2"}),
    ("cart.total>99.4 cart.total<=99.5", {"m2"}),
    ("cart.total=100", {"m10"}),
    ('cart.total="100"', {"m10"}),
    ("cart.total=120.0", {"m1"}),
    ("seq=1", {"m5", "m6"}),
    ('seq="1"', {"m6"}),
    ("total>5", set()),  # "abc" is text: no number range takes it
    ("total>a", {"m7"}),
    ("plan<m", {"m2"}),
    # true / false / null are JSON values, not strings or numbers
    ("flag=true", {"m5"}),
    ("flag=false", {"m6"}),
    ("flag=1", set()),
    ('flag="true"', set()),
    ("coupon=null", {"m3"}),
    ("has:coupon", {"m3"}),
    ("has:nothing nothing=null", {"m12"}),
    ("-has:plan", ALL - {"m1", "m2", "m3"}),
    ("tags~ios", {"m12"}),
    # context and quoted keys
    ("context.ip=10.0.0.1", {"m1"}),
    ("has:context.ip", {"m1"}),
    ("has:ip", set()),
    ('"a.b"=5', {"m8"}),
    ('properties."a.b">4', {"m8"}),
    ("a.b=5", set()),
    # the other fields
    ("user:42", {"m1", "m2", "m9"}),
    ("user:7", {"m3"}),
    ("type:page", {"m4"}),
    ("type:identify", {"m9"}),
    ("type:track", ALL - {"m4", "m9", "m12"}),
    ("invalid", {"m11"}),
    ("-invalid", ALL - {"m11"}),
    # free text: anywhere in the payload, case-insensitive, symbols literal
    ('"drop table"', {"m7"}),
    ('"100%_off"', {"m4"}),
    ('"%"', {"m4"}),
    ('"it\'s; DROP"', {"m7"}),
    ('"--"', {"m7"}),
    ('"zoë"', {"m8"}),
    ('"ada"', {"m9"}),
    ('"vip"', {"m8"}),
    ('"we\\"ird"', {"m8"}),
    ('"settings"', {"m12"}),
    ('"identify"', {"m9"}),
    # user text in values is inert: quotes, LIKE wildcards, SQL syntax
    ('query~"\'s; DROP"', {"m7"}),
    ('query~"; --"', {"m7"}),
    ("query~%", set()),
    ("title~%_", {"m4"}),
    ("title~_%", set()),
    ("email~zoë", {"m8"}),
]


@pytest.mark.parametrize(("text", "expected"), TABLE, ids=[t for t, _ in TABLE])
def test_filter_matches(store: tuple[Reader, int, int], text: str, expected: set[str]) -> None:
    reader, _, _ = store
    assert _matches(reader, text) == expected


def test_session_filter(store: tuple[Reader, int, int]) -> None:
    reader, first, second = store
    assert _matches(reader, f"session:{first}") == {e["messageId"] for e in SESSION_1}
    assert _matches(reader, f"session:{second} checkout") == {"m10"}
    assert _matches(reader, f"-session:{first}") == {e["messageId"] for e in SESSION_2}


PRECEDENCE = [
    # AND binds tighter than OR, whichever side it is on
    ("checkout plan=pro OR heartbeat", {"m1", "m5", "m6"}),
    ("heartbeat OR checkout plan=pro", {"m1", "m5", "m6"}),
    ("heartbeat OR checkout AND plan=pro", {"m1", "m5", "m6"}),
    ("(heartbeat OR checkout) plan=pro", {"m1"}),
    ("heartbeat OR search OR signup", {"m5", "m6", "m7", "m8"}),
    # '-' binds tighter than AND and OR, and can negate a group
    ("-heartbeat OR flag=true", ALL - {"m6"}),
    ("-(heartbeat OR checkout)", ALL - {"m1", "m2", "m3", "m5", "m6", "m10"}),
    ("-(heartbeat OR checkout) -invalid type:track", {"m7", "m8", "m13"}),
    ("((checkout))", {"m1", "m2", "m3", "m10"}),
    # lower-case `or` is a bare word (name contains "or")
    ("heartbeat or checkout", set()),
]


@pytest.mark.parametrize(("text", "expected"), PRECEDENCE, ids=[t for t, _ in PRECEDENCE])
def test_precedence(store: tuple[Reader, int, int], text: str, expected: set[str]) -> None:
    reader, _, _ = store
    assert _matches(reader, text) == expected


ERRORS = [
    # (filter, offending term, its 0-based position)
    ("checkout foo:bar", "foo:bar", 9),
    ("session:abc", "session:abc", 0),
    ("session:-1", "session:-1", 0),
    ("type:click", "type:click", 0),
    ("a (b", "(", 2),
    ("a b)", ")", 3),
    ("()", "(", 0),
    ("OR a", "OR", 0),
    ("a OR", "OR", 2),
    ("a OR OR b", "OR", 2),
    ("AND a", "AND", 0),
    ("a - b", "-", 2),
    ("a --b", "--", 2),
    ("-", "-", 0),
    ('plan="pro', '"pro', 5),
    ("plan=", "plan=", 0),
    ("=pro", "=pro", 0),
    ("cart..total>1", "cart..total>1", 0),
    ("cart.total.>1", "cart.total.>1", 0),
    ("flag<true", "flag<true", 0),
    ("x>1e999", "x>1e999", 0),
    ('has:"we\\"ird"', 'has:"we\\"ird"', 0),
    ('"name":x', '"name":x', 0),
    ('""', '""', 0),
    ("ok \udcff", "\udcff", 3),
]


@pytest.mark.parametrize(("text", "term", "position"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_point_at_the_term(text: str, term: str, position: int) -> None:
    with pytest.raises(FilterError) as info:
        compile_filter(text)
    error = info.value
    assert (error.term, error.position) == (term, position)
    message = str(error)
    assert "\n" not in message
    assert repr(term) in message
    assert f"column {position + 1}" in message


def test_filter_error_is_a_value_error() -> None:
    assert issubclass(FilterError, ValueError)


def test_empty_filter_is_true() -> None:
    assert compile_filter("") == Compiled("1", ())


def test_values_are_parameters_never_sql() -> None:
    compiled = compile_filter('plan="x\' OR 1=1; --" name:a*b "c\'d" cart.total>=5')
    for value in ("x' OR 1=1; --", "a*b", "c'd"):
        assert value not in compiled.where
    assert "x' OR 1=1; --" in compiled.params


def test_event_types_mirror_the_model() -> None:
    assert set(filters.EVENT_TYPES) == set(EVENT_TYPES)


def test_term_limit() -> None:
    assert compile_filter(" ".join(["a"] * filters.MAX_TERMS)).where
    with pytest.raises(FilterError) as info:
        compile_filter(" ".join(["a"] * (filters.MAX_TERMS + 1)))
    assert info.value.position == 2 * filters.MAX_TERMS


def test_the_largest_accepted_filter_runs(store: tuple[Reader, int, int]) -> None:
    """The limits keep SQLite's own limits (expression depth, parser stack) out of reach."""
    reader, _, _ = store
    depth = filters.MAX_NESTING

    def nested(levels: int) -> str:
        return "-(" * levels + "-cart.total>=1 OR -plan!=pro a" + ")" * levels

    flat = " ".join(["-cart.total>=1"] * (filters.MAX_TERMS - 4))
    for text in (
        f"{nested(depth)} {flat}",
        f"{flat} OR {nested(depth)}",
        f"-({nested(depth - 1)} OR a) b",
    ):
        compiled = compile_filter(text)
        reader.query(compiled.where, compiled.params)
    with pytest.raises(FilterError):
        compile_filter("(" * (depth + 1) + "a" + ")" * (depth + 1))


def test_the_longest_terms_run(store: tuple[Reader, int, int]) -> None:
    """Escaping grows a term up to 12-fold; SQLite refuses LIKE/GLOB patterns over 50 kB."""
    reader, _, _ = store
    longest = filters.MAX_TERM_CHARS
    for text in (
        '"' + "\x01" * (longest - 2) + '"',
        "name:" + "[" * (longest - 5),
        "v~" + "\\" * (longest - 2),
    ):
        compiled = compile_filter(text)
        assert reader.query(compiled.where, compiled.params) == []
    with pytest.raises(FilterError) as info:
        compile_filter("ok " + "x" * (longest + 1))
    assert info.value.position == 3


# --- properties --------------------------------------------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        " ", " ", "a", "OR", "AND", "(", ")", "-", '"', "\\", "x", "=", "!=", "<", "<=", ">", ">=",
        "~", ":", ".", "*", "?", "[", "1", "-1", "1e5", "1e999", "0.5", "true", "null", "name:",
        "has:", "user:", "session:", "type:", "type:page", "invalid", "properties.", "context.",
        "cart.total", "%", "_", "'", ";", "--", "é", "\x00", "\n",
    ]
)  # fmt: skip
FILTER_TEXT = st.text() | st.lists(FRAGMENTS | st.text(max_size=3), max_size=30).map("".join)


@pytest.fixture(scope="module")
def conn(store: tuple[Reader, int, int]) -> sqlite3.Connection:
    return store[0].conn


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=FILTER_TEXT)
def test_any_text_compiles_or_raises_filter_error(conn: sqlite3.Connection, text: str) -> None:
    try:
        compiled = compile_filter(text)
    except FilterError as error:
        assert 0 <= error.position <= len(text)
        assert error.term
        return
    # Rows exist, so JSON paths and comparisons are evaluated, not just prepared.
    conn.execute(f"SELECT count(*) FROM events WHERE {compiled.where}", compiled.params).fetchone()


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    """A store to rewrite per example: two rows, the target and a near miss."""
    conn = connect(tmp_path_factory.mktemp("scratch") / "scratch.db", create=True)
    conn.execute("INSERT INTO sessions (id, started_at, source) VALUES (1, 0, 'test')")
    yield conn
    conn.close()


def _put(conn: sqlite3.Connection, rows: list[tuple[str, str, dict[str, object]]]) -> None:
    conn.execute("DELETE FROM events")
    conn.executemany(
        "INSERT INTO events (session_id, received_at, name, message_id, properties)"
        " VALUES (1, 0, ?, ?, ?)",
        [(name, mid, msgspec.json.encode(props).decode()) for mid, name, props in rows],
    )


def _found(conn: sqlite3.Connection, text: str) -> set[str]:
    compiled = compile_filter(text)
    sql = f"SELECT message_id FROM events WHERE {compiled.where}"
    return {row[0] for row in conn.execute(sql, compiled.params)}


# Mostly the characters that mean something to SQL, LIKE, GLOB, JSON or the filter grammar.
SPECIAL = st.sampled_from(list("%_'\";-\\*?[]() .:=<>~!aA\n\x00é"))
VALUES = st.text(SPECIAL | st.characters(codec="utf-8"), min_size=1, max_size=20)


@settings(max_examples=150, deadline=None)
@given(value=VALUES)
def test_quoted_values_match_literally(scratch: sqlite3.Connection, value: str) -> None:
    near_miss = value[:-1] + ("b" if value[-1] == "a" else "a")
    _put(scratch, [("hit", value, {"v": value}), ("miss", near_miss, {"v": near_miss})])
    assert _found(scratch, f"name:{_quote(value)}") == {"hit"}
    assert "hit" in _found(scratch, _quote(value))
    if "\x00" in value:
        return  # SQLite's json_extract ends a string at an escaped NUL: a known SQLite limit
    assert _found(scratch, f"v={_quote(value)}") == {"hit"}
    assert _found(scratch, f"v!={_quote(value)}") == {"miss"}
    assert "hit" in _found(scratch, f"v~{_quote(value)}")


@settings(max_examples=150, deadline=None)
@given(key=VALUES)
def test_any_property_name_is_addressable_or_refused(scratch: sqlite3.Connection, key: str) -> None:
    _put(scratch, [("hit", "e", {key: 1}), ("miss", "e", {key + "x": 1})])
    try:
        found = _found(scratch, f"has:{_quote(key)}")
    except FilterError:
        assert '"' in key or "\x00" in key
        return
    assert found == {"hit"}
