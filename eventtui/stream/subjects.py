"""What goes on the stream: subjects, message ids and payloads, the same for every backend.

A stream named EVENTTUI holds three kinds of message under the lower-cased name:

- `eventtui.events.<name>`: one accepted event; `<name>` is the event name encoded into one
  subject token (letters, digits, `-` and `_` as they are, every other byte of its UTF-8 as
  `%XX`), so any name is a valid token and a filter that pins names is a subject filter. Headers:
  `Nats-Msg-Id` (its message id) and `Eventtui-Collector` (the collector that published it).
- `eventtui.rejects.<collector>`: one refused input, as the store's `rejects` table keeps it.
- `eventtui.rollups.<collector>`: a collector's per-name counts for one second (`Rollup`).

Payloads are MessagePack: an event is the `StoredEvent` tuple as it would be written to a store.

May import: msgspec, model, store (the Reject row).
"""

from __future__ import annotations

import re
from typing import Final

import msgspec

from eventtui.model import StoredEvent
from eventtui.store import Reject

# The header JetStream deduplicates by, within the stream's duplicate window.
MSG_ID: Final = "Nats-Msg-Id"
# The collector that published an event (its name, as in `rollups.<collector>`): the sink writes
# each collector's events into a session of its own. Absent on events of older collectors.
COLLECTOR: Final = "Eventtui-Collector"

_SAFE: Final = re.compile(r"[A-Za-z0-9_-]")
_encode = msgspec.msgpack.Encoder().encode
_decode_event = msgspec.msgpack.Decoder(StoredEvent).decode


class Rollup(msgspec.Struct, array_like=True):
    """One collector's acknowledged events over one second: per name, [count, invalid, last seen]."""

    collector: str
    at: float
    names: dict[str, tuple[int, int, float]]


_decode_rollup = msgspec.msgpack.Decoder(Rollup).decode
_decode_reject = msgspec.msgpack.Decoder(tuple[float, str, str, bytes]).decode


def encode_token(text: str) -> str:
    """`text` as one subject token; reversible, and the same text always gives the same token."""
    if text and all(_SAFE.match(c) for c in text):
        return text
    out = []
    for char in text:
        if _SAFE.match(char):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out) or "%"


def decode_token(token: str) -> str:
    if "%" not in token:
        return token
    if token == "%":
        return ""
    raw = bytearray()
    i = 0
    while i < len(token):
        if token[i] == "%":
            raw.append(int(token[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(token[i].encode())
            i += 1
    return raw.decode("utf-8", "surrogatepass")


class Subjects:
    """The subjects of one stream."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        # Subject per event name, encoded once: a collector sees few names, many times each.
        self._events: dict[str, str] = {}
        self.prefix = stream.lower()
        self.events = f"{self.prefix}.events"
        self.all_events = f"{self.events}.>"
        self.all_rejects = f"{self.prefix}.rejects.>"
        self.all_rollups = f"{self.prefix}.rollups.>"

    @property
    def all(self) -> list[str]:
        return [self.all_events, self.all_rejects, self.all_rollups]

    def event(self, name: str) -> str:
        subject = self._events.get(name)
        if subject is None:
            subject = f"{self.events}.{encode_token(name)}"
            if len(self._events) < 10_000:  # bounded: names are client input
                self._events[name] = subject
        return subject

    def reject(self, collector: str) -> str:
        return f"{self.prefix}.rejects.{encode_token(collector)}"

    def rollup(self, collector: str) -> str:
        return f"{self.prefix}.rollups.{encode_token(collector)}"

    def kind(self, subject: str) -> str:
        """ "events", "rejects" or "rollups"."""
        return subject[len(self.prefix) + 1 :].split(".", 1)[0]

    def name_of(self, subject: str) -> str:
        return decode_token(subject[len(self.events) + 1 :])


def encode_event(event: StoredEvent) -> bytes:
    return _encode(event)


def decode_event(data: bytes) -> StoredEvent:
    return _decode_event(data)


def encode_reject(reject: Reject) -> bytes:
    return _encode((reject.received_at, reject.client, reject.reason, reject.raw))


def decode_reject(data: bytes) -> Reject:
    return Reject(*_decode_reject(data))


def encode_rollup(rollup: Rollup) -> bytes:
    return _encode(rollup)


def decode_rollup(data: bytes) -> Rollup:
    return _decode_rollup(data)
