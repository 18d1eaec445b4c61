"""`where` in Python agrees with the same filter run as SQL over the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventtui.filters import FilterError, compile_filter
from eventtui.matching import row_matcher
from eventtui.model import decode_frame
from eventtui.store import Reader
from tests.conftest import write_session

EVENTS = (
    b'[{"event": "heartbeat", "userId": "u1", "properties": {"env": "production", "n": 5}},'
    b' {"event": "heartbeat", "properties": {"env": "staging", "n": 50}},'
    b' {"event": "checkout", "anonymousId": "a9", "properties": {"cart": {"total": 120}, "coupon": "X"}},'
    b' {"type": "page", "name": "Home", "properties": {"path": "/"}}]'
)


@pytest.mark.parametrize(
    "text",
    [
        "env=production",
        "-env=production",
        "n>10",
        "cart.total>=100",
        "has:coupon",
        "user:u1",
        "user:a9",
        "type:page",
        "heart",
        "name:check*",
        '"staging"',
        "env=production OR has:coupon",
        "",
    ],
)
def test_python_and_sql_agree(tmp_path: Path, text: str) -> None:
    path = tmp_path / "s.db"
    write_session(path, decode_frame(EVENTS, binary=False, client="t").events)
    compiled = compile_filter(text)
    with Reader(path) as reader:
        by_sql = {e.id for e in reader.query(compiled.where, compiled.params)}
        everything = reader.query()
    matches = row_matcher(text)
    assert {e.id for e in everything if matches(e)} == by_sql


def test_bad_filter_is_a_filter_error() -> None:
    with pytest.raises(FilterError):
        row_matcher("plan>=")
