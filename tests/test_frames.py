"""The collector's own reading of plain data frames (collector/frames.py) against websockets'.

Every stream of frames, cut into reads at any points, must give exactly what websockets alone
gives: the same messages in the same order, the same replies (pongs, close frames) and the same
failures (1002, 1009). websockets' sans-I/O protocol is the oracle; the end-to-end test drives a
real collector with a raw client.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.server import ServerProtocol

from eventtui.collector.frames import DirectFrames, websockets_waits_for_a_frame
from tests.conftest import StartCollector, stored, until

MAX_SIZE = 100_000
HANDSHAKE = (
    b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def frame(payload: bytes, first_byte: int = 0x81, *, masked: bool = True) -> bytes:
    """A client frame with any first byte (FIN, RSV and opcode bits), masked unless told."""
    n = len(payload)
    mask_bit = 0x80 if masked else 0
    if n < 126:
        header = bytes([first_byte, mask_bit | n])
    elif n < 1 << 16:
        header = bytes([first_byte, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first_byte, mask_bit | 127]) + n.to_bytes(8, "big")
    if not masked:
        return header + payload
    mask = os.urandom(4)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Reader:
    """An opened server connection, read by websockets alone or with `DirectFrames` in front;
    messages are assembled from websockets' frames as eventtui's `_Connection` assembles them."""

    def __init__(self, *, direct: bool) -> None:
        self.protocol = ServerProtocol(max_size=MAX_SIZE)
        self.protocol.receive_data(HANDSHAKE)
        [request] = self.protocol.events_received()
        self.protocol.send_response(self.protocol.accept(request))
        self.protocol.data_to_send()  # the handshake's response: not compared
        assert self.protocol.state is State.OPEN
        self.messages: list[tuple[bytes, bool]] = []
        self.sent = b""
        self._fragments: list[bytes] = []
        self._text = False
        self.direct = (
            DirectFrames(self.protocol, self._message, self._websockets) if direct else None
        )

    def receive(self, data: bytes) -> None:
        if self.direct is not None:
            self.direct.receive(data)
        else:
            self._websockets(data)

    def _message(self, data: bytes, is_text: bool) -> None:
        self.messages.append((data, is_text))

    def _websockets(self, data: bytes) -> None:
        self.protocol.receive_data(data)
        for event in self.protocol.events_received():
            assert isinstance(event, Frame)
            if event.opcode in (Opcode.TEXT, Opcode.BINARY):
                self._text = event.opcode is Opcode.TEXT
                if event.fin:
                    self._message(bytes(event.data), self._text)
                else:
                    self._fragments = [bytes(event.data)]
            elif event.opcode is Opcode.CONT:
                self._fragments.append(bytes(event.data))
                if event.fin:
                    self._message(b"".join(self._fragments), self._text)
        self.sent += b"".join(self.protocol.data_to_send())

    def outcome(self) -> tuple[list[tuple[bytes, bool]], bytes, Any, Any]:
        close = self.protocol.close_sent
        return self.messages, self.sent, self.protocol.state, close and close.code


def both(stream: bytes, cuts: list[int]) -> tuple[Reader, Reader]:
    """The stream read in pieces cut at `cuts`, by websockets alone and with DirectFrames."""
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    pieces = [stream[a:b] for a, b in itertools.pairwise(points)]
    readers = Reader(direct=False), Reader(direct=True)
    for reader in readers:
        for piece in pieces:
            reader.receive(piece)
    return readers


def event_bytes(n: int) -> bytes:
    return json.dumps({"event": "e", "properties": {"n": n, "pad": "x" * (n % 300)}}).encode()


# One frame or a short run of frames; what a client may send, in the order it may send it.
_piece = st.one_of(
    st.builds(lambda n: frame(event_bytes(n)), st.integers(0, 10_000)),  # text, 7- and 16-bit
    st.builds(lambda n: frame(b"\x00" * n, 0x82), st.sampled_from([0, 125, 126, 65_535, 65_536])),
    st.builds(lambda b: frame(b, 0x89), st.binary(max_size=125)),  # ping
    st.just(frame(b"", 0x8A)),  # unsolicited pong
    # A fragmented message, with a ping between its fragments.
    st.builds(
        lambda a, b: frame(a, 0x01) + frame(b"p", 0x89) + frame(b, 0x00) + frame(b"!", 0x80),
        st.binary(max_size=300),
        st.binary(max_size=300),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_piece, min_size=1, max_size=12), st.lists(st.integers(0, 1 << 20), max_size=8))
def test_any_stream_cut_anywhere_reads_as_websockets_reads_it(
    pieces: list[bytes], cuts: list[int]
) -> None:
    plain, direct = both(b"".join(pieces), cuts)
    assert direct.outcome() == plain.outcome()
    assert plain.protocol.state is State.OPEN


# (case, a frame websockets refuses or ends on, the close code it sends)
ENDINGS = [
    ("unmasked", frame(b'{"event":"e"}', masked=False), 1002),
    ("reserved bit", frame(b'{"event":"e"}', 0xC1), 1002),
    ("reserved opcode", frame(b"x", 0x83), 1002),
    ("continuation without a start", frame(b"x", 0x80), 1002),
    ("control frame over 125 bytes", frame(b"x" * 126, 0x89), 1002),
    ("over max_size", frame(b"x" * (MAX_SIZE + 1)), 1009),
    ("over max_size, header only", frame(b"x" * (MAX_SIZE + 1))[:14], 1009),
    ("close", frame(b"\x03\xe8bye", 0x88), 1000),
    ("text inside a fragmented message", frame(b"a", 0x01) + frame(b"b"), 1002),
]


@pytest.mark.parametrize(("case", "bad", "code"), ENDINGS, ids=[e[0] for e in ENDINGS])
@settings(max_examples=25, deadline=None)
@given(cuts=st.lists(st.integers(0, 1 << 20), max_size=5))
@example(cuts=[])
def test_what_websockets_refuses_it_still_refuses(
    case: str, bad: bytes, code: int, cuts: list[int]
) -> None:
    """Frames before it are read, it ends the connection with websockets' code, nothing after
    it is read: whether it arrives alone, mid-read, or cut into pieces."""
    before = b"".join(frame(event_bytes(n)) for n in range(3))
    after = frame(event_bytes(99))
    plain, direct = both(before + bad + after, cuts)
    assert direct.outcome() == plain.outcome()
    messages, _sent, state, close_code = direct.outcome()
    assert [m for m, _ in messages][:3] == [event_bytes(n) for n in range(3)]
    assert (event_bytes(99), True) not in messages
    assert state is not State.OPEN and close_code == code


def test_reading_starts_only_where_websockets_parser_waits_for_a_frame() -> None:
    """The check that lets DirectFrames take over looks into websockets' parser: if an upgrade of
    websockets changed it, this fails (and until then the collector reads through websockets)."""
    reader = Reader(direct=False)
    assert websockets_waits_for_a_frame(reader.protocol)
    whole = frame(event_bytes(200))
    for cut in (1, 2, 4, 6, len(whole) - 1):
        reader.receive(whole[:cut])
        assert not websockets_waits_for_a_frame(reader.protocol), cut
        reader.receive(whole[cut:])
        assert websockets_waits_for_a_frame(reader.protocol), cut
    reader.receive(frame(b"a", 0x01))  # a fragmented message begun
    assert not websockets_waits_for_a_frame(reader.protocol)
    reader.receive(frame(b"b", 0x80))
    assert websockets_waits_for_a_frame(reader.protocol)
    reader.receive(frame(b"\x03\xe8", 0x88))  # closed
    assert not websockets_waits_for_a_frame(reader.protocol)


def test_plain_frames_are_read_directly_and_the_rest_by_websockets() -> None:
    reader = Reader(direct=True)
    assert reader.direct is not None
    reader.receive(frame(event_bytes(1)) + frame(event_bytes(2)))
    assert reader.direct.active
    reader.receive(frame(b"a", 0x01))  # a fragment: websockets reads until the message is whole
    assert not reader.direct.active
    reader.receive(frame(b"b", 0x80) + frame(event_bytes(3)))
    reader.receive(frame(event_bytes(4)))
    assert reader.direct.active
    assert [m for m, _ in reader.messages] == [
        event_bytes(1),
        event_bytes(2),
        b"ab",
        event_bytes(3),
        event_bytes(4),
    ]


async def _handshake(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET / HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (port, key)
    )
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 101")
    return reader, writer


async def _server_frames(reader: asyncio.StreamReader, until_ack: int) -> list[tuple[int, bytes]]:
    frames = []
    async with asyncio.timeout(10):
        while True:
            head = await reader.readexactly(2)
            n = head[1] & 0x7F
            if n == 126:
                n = int.from_bytes(await reader.readexactly(2), "big")
            payload = await reader.readexactly(n)
            frames.append((head[0] & 0x0F, payload))
            if head[0] & 0x0F == 0x1 and json.loads(payload).get("ack", 0) >= until_ack:
                return frames


async def test_a_raw_client_in_odd_pieces_is_stored_and_answered(
    start_collector: StartCollector, db: Path
) -> None:
    """A real collector read by a raw client: 300 events, a ping and a fragmented event in the
    middle, a refused frame, the whole sent in 7-byte pieces: every event stored, the pong and
    the refusal's error sent, one cumulative ack."""
    collector = await start_collector()
    reader, writer = await _handshake(collector.port)
    frames = [
        frame(json.dumps({"event": "e", "properties": {"n": i}}).encode()) for i in range(300)
    ]
    frames.insert(100, frame(b"hello", 0x89))
    frames.insert(200, frame(b'{"event":', 0x01) + frame(b'"split"}', 0x80))
    frames.insert(250, frame(b"not json"))
    stream = b"".join(frames)
    for i in range(0, len(stream), 7):
        writer.write(stream[i : i + 7])
    await writer.drain()
    replies = await _server_frames(reader, 302)
    assert (0xA, b"hello") in replies  # the pong
    texts = [json.loads(p) for op, p in replies if op == 0x1]
    assert [t["frame"] for t in texts if "error" in t] == [250]  # the ping is not a message
    await until(lambda: len(stored(db)) == 301, what="301 events stored")
    names = [row.name for row in stored(db)]
    assert names.count("split") == 1 and names.count("e") == 300
    [client] = collector.websocket.clients
    assert client.ws.frames.active  # read by the collector itself, back after the fragments
    writer.write(frame(b"\x03\xe8", 0x88))
    await writer.drain()
    writer.close()


def test_after_the_server_closes_websockets_reads_what_comes() -> None:
    """A close sent by us (the collector stopping) between two reads, with half a frame waiting:
    the rest goes to websockets, whole, as it would have without DirectFrames."""
    readers = Reader(direct=False), Reader(direct=True)
    whole = frame(event_bytes(5))
    for reader in readers:
        reader.receive(frame(event_bytes(4)) + whole[:9])
        reader.protocol.send_close(1001, "shutting down")
        reader.receive(whole[9:])
    plain, direct = readers
    assert direct.outcome() == plain.outcome()
    assert direct.direct is not None and not direct.direct.active
