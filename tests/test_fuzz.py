"""A seeded, time-bounded fuzz of one real collector: websocket JSON and MessagePack frames, HTTP
bodies (`/events`, `/v1/batch`, `/v1/track`, JSON Lines, gzip), all at once.

What may come in is anything a client can send: events with odd types, names, ids, timestamps,
nesting and keys, MessagePack extension values and non-string keys, broken UTF-8, truncated or
flipped bytes, bad gzip. What must hold, whatever came in:

- the collector keeps serving (a new websocket client and `/health` are answered at the end);
- every acknowledged event (websocket ack, HTTP 200) is in the store, exactly once, and every
  event refused is not;
- every refusal a client was told of is a row of `rejects` with the same reason, and no other;
- none of our code logs an exception (or an error): bad input is refused, never a crash.

`EVENTTUI_FUZZ_SECONDS` (default 20) and `EVENTTUI_FUZZ_SEED` change the run; a failure names the
seed, so that it can be run again as it was.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import gzip
import io
import json
import logging
import os
import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from websockets.asyncio.client import ClientConnection, connect

from eventtui.collector import Collector
from tests.conftest import make_config, recv_until_ack

SECONDS = float(os.environ.get("EVENTTUI_FUZZ_SECONDS", "20"))
SEED = int(os.environ.get("EVENTTUI_FUZZ_SEED", "1111"))
# Loggers whose exceptions would be ours: our modules, and the libraries that run our callbacks.
WATCHED_LOGGERS = ("eventtui", "asyncio", "websockets", "aiohttp")

# --- values ------------------------------------------------------------------------------------

NAMES = [
    "page_view", "signup", "checkout_completed", "", "x" * 257, "x" * 256, "名前", "a\x00b",
    "\x1b[31mred", "[bold]markup[/bold]", "line\nbreak", "\u202eevil", "\ud800", " ",
]  # fmt: skip
TYPES = ["track"] * 8 + ["page", "screen", "identify", "group", "alias", "bogus", "", "TRACK"]
TIMESTAMPS: list[Any] = [
    "2026-11-26T04:00:00Z", "2026-11-26T05:00:00+01:00", "2026-11-26 04:00:00", "2026-11-26",
    "yesterday", "", "1795665600", "1795665600.5", 1795665600, 1795665600123, -1, 0, 1e300,
    "9999-12-31T23:59:59Z", True, None, [2026], {"t": 1},
]  # fmt: skip


def scalar(rng: random.Random, binary: bool) -> Any:
    roll = rng.random()
    if roll < 0.25:
        return rng.choice([*NAMES, "plain", "pro", "free"])
    if roll < 0.45:
        return rng.randint(-(2**63), 2**63 - 1) if rng.random() < 0.3 else rng.randint(-9, 999)
    if roll < 0.55:
        return rng.choice([0.5, -0.0, 1e308, 19.01, float("nan"), float("inf")])
    if roll < 0.62:
        if binary:
            return rng.choice([True, False, None])
        return int("9" * rng.randint(20, 400))  # JSON numbers have no size limit
    if roll < 0.75:
        return rng.choice([True, False, None])
    if roll < 0.85:
        return "".join(
            chr(rng.choice([rng.randint(32, 126), rng.randint(0, 0x2FFF)]))
            for _ in range(rng.randint(0, 12))
        )
    if binary:  # what only MessagePack can carry
        return rng.choice([
            msgspec.msgpack.Ext(rng.randint(0, 127), b"\x01\x02"),
            b"\x00\xffbytes",
            dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
        ])  # fmt: skip
    return "ok"


def value(rng: random.Random, binary: bool, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.5:
        return scalar(rng, binary)
    if roll < 0.75:
        return [value(rng, binary, depth + 1) for _ in range(rng.randint(0, 4))]
    return mapping(rng, binary, depth + 1)


def key(rng: random.Random, binary: bool) -> Any:
    if binary and rng.random() < 0.05:
        return rng.choice([None, 7, -1, 2.5, (1, 2), True, b"k"])
    return rng.choice(["plan", "total", "cart", "a.b", "", "ключ", "$ref", "__proto__", "x" * 40])


def mapping(rng: random.Random, binary: bool, depth: int = 0) -> dict[Any, Any]:
    return {key(rng, binary): value(rng, binary, depth) for _ in range(rng.randint(0, 5))}


def nested(levels: int) -> Any:
    out: Any = 1
    for _ in range(levels):
        out = {"a": out}
    return out


def event(rng: random.Random, message_id: str, binary: bool, big: bool = False) -> Any:
    """One event, most of them valid; `message_id` is never altered, so it can be followed.

    `big`: it may be over the 512 KiB event limit (never in a frame of many: 4 MiB closes it).
    """
    if rng.random() < 0.03:
        return rng.choice([1, "event", None, [], [{"event": "inner"}]])  # not an object at all
    e: dict[Any, Any] = {"messageId": message_id}
    if rng.random() < 0.9:
        e["event"] = (
            rng.choice(NAMES[:3]) if rng.random() < 0.8 else rng.choice([*NAMES, 5, None, {}])
        )
    if rng.random() < 0.3:
        e["type"] = rng.choice(TYPES + ([[1], {}, 3] if rng.random() < 0.2 else []))
    if rng.random() < 0.2 and e.get("type") in ("page", "screen"):
        e["name"] = rng.choice(NAMES)
    if rng.random() < 0.7:
        roll = rng.random()
        e["properties"] = (
            mapping(rng, binary)
            if roll < 0.85
            else nested(rng.choice([63, 65, 200]))
            if roll < 0.9
            else {"blob": "x" * 600_000}
            if roll < 0.91 and big
            else value(rng, binary)
        )
    if rng.random() < 0.3:
        e["context"] = mapping(rng, binary) if rng.random() < 0.9 else rng.choice(["ctx", 1, []])
    for id_key in ("userId", "anonymousId"):
        if rng.random() < 0.4:
            e[id_key] = rng.choice(["u1", "", 42, 4.5, True, None, {"id": 1}, [1], "ü" * 300])
    if rng.random() < 0.3:
        e["timestamp"] = rng.choice(TIMESTAMPS)
    if rng.random() < 0.2:
        e[key(rng, binary)] = value(rng, binary)  # traits, groupId, ...: kept in `extra`
    return e


# --- frames and bodies -------------------------------------------------------------------------


@dataclass
class Sent:
    """What one frame (or HTTP body) held: the message ids by index; untracked when mangled."""

    ids: list[str | None]
    listed: bool
    mangled: bool = False


def tracked(doc: Any, mid: str) -> str | None:
    """`mid` if `doc` is an event carrying it (one that is not an object carries no id)."""
    return mid if isinstance(doc, dict) and doc.get("messageId") == mid else None


def envelope(rng: random.Random, make_id: Any, binary: bool) -> tuple[Any, Sent]:
    roll = rng.random()
    if roll < 0.45:
        mid = make_id()
        doc = event(rng, mid, binary, big=True)
        return doc, Sent([tracked(doc, mid)], listed=False)
    ids = [make_id() for _ in range(rng.choice([1, 2, 3, 5, 20, 100]))]
    events = [event(rng, mid, binary, big=len(ids) <= 3) for mid in ids]
    sent = Sent([tracked(e, mid) for e, mid in zip(events, ids, strict=True)], listed=True)
    if roll < 0.8:
        return events, sent
    doc: dict[str, Any] = {"batch": events}
    if rng.random() < 0.3:
        doc["context"] = mapping(rng, binary)
    return doc, sent


def encode(rng: random.Random, doc: Any, binary: bool) -> bytes | None:
    try:
        if binary:
            return msgspec.msgpack.encode(doc)
        # json.dumps writes NaN, Infinity, lone surrogates (escaped, or raw: invalid UTF-8) and
        # huge integers, as careless clients do.
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
        return text.encode("utf-8", "surrogatepass")
    except (TypeError, ValueError, OverflowError):
        return None


def mangle(rng: random.Random, data: bytes) -> bytes:
    roll = rng.random()
    if not data or roll < 0.2:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
    at = rng.randrange(len(data))
    if roll < 0.5:
        return data[:at]
    if roll < 0.75:
        return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]
    return (
        data[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\x00", b"{", b"]", b'"', b"\\"]) + data[at:]
    )


def frame(rng: random.Random, ids: Ids, binary: bool) -> tuple[bytes, Sent]:
    mangled = rng.random() < 0.12
    while True:
        doc, sent = envelope(rng, ids.mangled if mangled else ids, binary)
        data = encode(rng, doc, binary)
        if data is not None:
            break
    if mangled:
        data, sent.mangled = mangle(rng, data), True
    return data, sent


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Ledger:
    """What clients were told: per frame or request, what was sent and which parts were refused."""

    accepted: list[tuple[Sent, set[int | None]]] = field(default_factory=list)  # (sent, refused)
    refused_whole: list[Sent] = field(default_factory=list)
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    frames: int = 0
    requests: int = 0


class Ids:
    """Unique message ids. Those of a frame about to be mangled get a long prefix of their own:
    a flipped digit must not turn one into the id of an event followed elsewhere."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"{self.prefix}-{self.n}"

    def mangled(self) -> str:
        self.n += 1
        return f"mangled-{self.prefix}-{self.n}"


async def websocket_client(url: str, seed: int, deadline: float, ledger: Ledger) -> None:
    rng = random.Random(seed)
    make_id = Ids(f"ws{seed}")
    while time.monotonic() < deadline:
        async with connect(url, max_size=None) as ws:
            sent: list[Sent] = []
            for _ in range(rng.randint(20, 400)):
                if time.monotonic() >= deadline:
                    break
                binary = rng.random() < 0.4
                data, what = frame(rng, make_id, binary)
                await ws.send(data, text=not binary)
                sent.append(what)
            await settle(ws, sent, ledger)


async def settle(ws: ClientConnection, sent: list[Sent], ledger: Ledger) -> None:
    """Read replies until every frame is acked; file each frame's refusals in the ledger."""
    if not sent:
        return
    replies = await recv_until_ack(ws, len(sent), timeout=60)
    refused: dict[int, set[int | None]] = collections.defaultdict(set)
    for reply in replies:
        if "error" in reply:
            assert "store write failed" not in reply["error"], reply
            refused[reply["frame"]].add(reply.get("index"))
            ledger.reasons[reply["error"]] += 1
    for number, what in enumerate(sent, start=1):
        ledger.accepted.append((what, refused.get(number, set())))
    ledger.frames += len(sent)


ROUTES = ["/events", "/events", "/v1/batch", "/v1/track", "/v1/page", "/events?lines"]


async def http_client(url: str, seed: int, deadline: float, ledger: Ledger) -> None:
    rng = random.Random(seed)
    make_id = Ids(f"http{seed}")
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            route = rng.choice(ROUTES)
            mangled = rng.random() < 0.05
            body, what, headers = http_body(rng, make_id.mangled if mangled else make_id, route)
            if rng.random() < 0.3:
                body = gzip_body(rng, body)
                headers["Content-Encoding"] = "gzip"
            if mangled:
                body, what.mangled = mangle(rng, body), True
            path = route.partition("?")[0]
            async with session.post(url + path, data=io.BytesIO(body), headers=headers) as answer:
                reply = await answer.json()
                status = answer.status
            ledger.requests += 1
            assert status in (200, 400, 413, 415), (status, reply)
            if "refused" in reply:
                indices = {r.get("index") for r in reply["refused"]}
                ledger.reasons.update(r["error"] for r in reply["refused"])
            else:  # the body itself was refused (bad gzip, too large): one reject
                assert status != 200, reply
                indices = {None}
                ledger.reasons[reply["error"]] += 1
            if status == 200:
                assert reply["accepted"] >= 1, reply
                ledger.accepted.append((what, indices))
            else:
                ledger.refused_whole.append(what)


def http_body(rng: random.Random, make_id: Any, route: str) -> tuple[bytes, Sent, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if route == "/events?lines":  # one event a line; blank lines do not count
        headers["Content-Type"] = "application/x-ndjson"
        lines, ids = [], []
        for _ in range(rng.randint(1, 30)):
            mid = make_id()
            doc = event(rng, mid, False)
            line = encode(rng, doc, False)
            lines.append(line or b"{}")
            ids.append(tracked(doc, mid) if line else None)
        blank = b"\n\n" if rng.random() < 0.2 else b"\n"
        return blank.join(lines) + b"\n", Sent(ids, listed=True), headers
    if route in ("/v1/track", "/v1/page"):  # one call; its type comes from the path if absent
        mid = make_id()
        doc = event(rng, mid, False)
        if not isinstance(doc, dict):
            doc = {"messageId": mid, "event": "x", "properties": doc}
        data = encode(rng, doc, False)
        return data or b"{}", Sent([mid if data else None], listed=False), headers
    while True:
        doc, sent = envelope(rng, make_id, False)
        if route == "/v1/batch" and not (isinstance(doc, dict) and "batch" in doc):
            doc, sent.listed = {"batch": doc if isinstance(doc, list) else [doc]}, True
        data = encode(rng, doc, False)
        if data is not None:
            return data, sent, headers


def gzip_body(rng: random.Random, body: bytes) -> bytes:
    if rng.random() < 0.1:
        return gzip.compress(body)[: rng.randint(0, 30)]  # truncated: not valid gzip
    if rng.random() < 0.2 and len(body) > 2:  # concatenated members are one body
        at = rng.randrange(1, len(body))
        return gzip.compress(body[:at]) + gzip.compress(body[at:])
    return gzip.compress(body)


async def test_fuzz_the_collector(db: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    c = Collector(make_config(), db)
    await c.start(port=0, http_port=0)
    ledger = Ledger()
    deadline = time.monotonic() + SECONDS
    try:
        await asyncio.gather(
            websocket_client(c.ws_url, SEED, deadline, ledger),
            websocket_client(c.ws_url, SEED + 1, deadline, ledger),
            http_client(c.http_url or "", SEED + 2, deadline, ledger),
            http_client(c.http_url or "", SEED + 3, deadline, ledger),
        )
        # Still serving: a new client is acked, /health answers.
        async with connect(c.ws_url) as ws:
            await ws.send(json.dumps({"event": "after", "messageId": "after-fuzz"}))
            assert await recv_until_ack(ws, 1) == [{"ack": 1}]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{c.http_url}/health") as answer,
        ):
            assert answer.status == 200
    finally:
        async with asyncio.timeout(60):
            await c.stop()
    check(db, ledger, caplog, c.writer.stats.duplicates)


def check(db: Path, ledger: Ledger, caplog: pytest.LogCaptureFixture, duplicates: int) -> None:
    where = f"(seed {SEED}, {ledger.frames} frames, {ledger.requests} requests)"
    assert ledger.frames > 100 and ledger.requests > 20, where
    with sqlite3.connect(db) as conn:
        ids = collections.Counter(
            row[0]
            for row in conn.execute("SELECT message_id FROM events WHERE message_id IS NOT NULL")
        )
        reasons = collections.Counter(row[0] for row in conn.execute("SELECT reason FROM rejects"))
    assert duplicates == 0, where  # every id is sent once: a duplicate is a frame stored twice
    for sent, refused in ledger.accepted:
        if sent.mangled:
            continue
        for index, mid in enumerate(sent.ids):
            if mid is None:
                continue
            refused_here = None in refused or (index if sent.listed else None) in refused
            if refused_here:
                assert mid not in ids, (f"{mid} was refused, yet stored", where)
            else:
                assert mid in ids, (f"{mid} was acknowledged, not stored", where)
    for sent in ledger.refused_whole:
        if not sent.mangled:
            assert not [mid for mid in sent.ids if mid in ids], where
    assert reasons == ledger.reasons, (reasons - ledger.reasons, ledger.reasons - reasons, where)
    ours = [
        r
        for r in caplog.records
        if r.name.startswith(WATCHED_LOGGERS)
        and (r.exc_info or r.levelno >= logging.ERROR or "Traceback" in r.getMessage())
    ]
    assert not ours, ([f"{r.name}: {r.getMessage()}" for r in ours], where)
