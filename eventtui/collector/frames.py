"""A connection's plain data frames, read without websockets' parser; everything else goes to it.

At one event per frame, websockets' frame parser (a generator per frame, a `Frame` object, its
checks and the events list around it) took more of the collector's time than decoding the event:
about 3.5 us of a 10.6 us frame, measured with benchmarks/ingest.py's pre-framed client and a
sampling profiler. Most frames a collector reads are the simplest kind RFC 6455 has: final, no
reserved bits, text or binary, masked, under the size limit. `DirectFrames` reads those itself,
in a loop over the bytes of a read (unmasking in C with websockets' own `apply_mask`), and hands
every other frame to websockets whole and alone, so websockets still answers pings, handles
fragments and closes, and refuses what is wrong with its own close codes:

- a control frame or a fragment, complete: fed to websockets by itself, which leaves its parser
  waiting for the next frame; a fragmented message in progress keeps the connection on websockets'
  parser until websockets has it whole;
- an unmasked frame, reserved bits or opcodes, or a length over `max_size`: this frame and the
  rest of the read go to websockets, which fails the connection (1002, 1009) as it always has.

It starts reading only where websockets' parser stands at the start of a frame with nothing
buffered (`websockets_waits_for_a_frame`), and a frame that has not fully arrived waits here, so
the two parsers never share a frame. The first check looks at websockets' parser generator: if a
websockets upgrade changed it, the check says no and websockets reads every frame (slower, never
wrong); tests/test_frames.py fails in that case, so the upgrade is noticed.

May import: websockets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from websockets.protocol import Protocol, State
from websockets.streams import StreamReader

try:
    from websockets.speedups import apply_mask
except ImportError:  # a websockets built without its C extension, as websockets itself falls back
    from websockets.utils import apply_mask

# A final text or binary frame without reserved bits: the first byte of every frame read here.
_FINAL_TEXT: Final = 0x81
_FINAL_BINARY: Final = 0x82
_MASKED: Final = 0x80
_AT_EOF: Final = StreamReader.at_eof.__code__
_PARSE: Final = Protocol.parse.__code__

# (payload, is_text) for each data frame, in order.
Deliver = Callable[[bytes, bool], None]
# Bytes for websockets' own parser (`data_received` as websockets has it).
ToWebsockets = Callable[[bytes], None]


def websockets_waits_for_a_frame(protocol: Protocol) -> bool:
    """Whether websockets' parser stands at the start of a frame of an open connection with no
    byte buffered and no message begun, so that what comes next may be read elsewhere."""
    if (
        protocol.state is not State.OPEN
        or protocol.reader.buffer
        or protocol.current_size is not None
        or protocol.extensions
    ):
        return False
    generator = protocol.parser
    in_parse = False
    while True:
        code = getattr(generator, "gi_code", None)
        in_parse = in_parse or code is _PARSE
        inner = getattr(generator, "gi_yieldfrom", None)
        if inner is None:
            # Suspended in `at_eof` called from `parse` (not from `discard`, after a close).
            return in_parse and code is _AT_EOF
        generator = inner


class DirectFrames:
    """Reads a connection's plain data frames (see the module's docstring)."""

    def __init__(self, protocol: Protocol, deliver: Deliver, to_websockets: ToWebsockets) -> None:
        self.protocol = protocol
        self.deliver = deliver
        self.to_websockets = to_websockets
        self.active = False  # reading frames here; else websockets reads them
        self._unparsed = bytearray()  # the start of a frame not yet whole
        limit = protocol.max_message_size
        self._limit = limit if limit is not None else 1 << 63

    def receive(self, data: bytes) -> None:
        """Bytes read from the connection: read here when websockets' parser allows, else by it."""
        if self._unparsed:
            self._unparsed += data
            data, self._unparsed = self._unparsed, bytearray()  # type: ignore[assignment]
        # Closed since the last read (we sent a close): websockets reads whatever comes now.
        if not (self.active and self.protocol.state is State.OPEN):
            if not websockets_waits_for_a_frame(self.protocol):
                self._give_websockets(bytes(data))
                return
            self.active = True
        self._read(data)

    def _read(self, data: bytes | bytearray) -> None:
        end = len(data)
        pos = 0
        limit = self._limit
        deliver = self.deliver
        protocol = self.protocol
        while pos + 2 <= end:
            head = data[pos]
            second = data[pos + 1]
            if not second & _MASKED:
                break  # websockets refuses it
            length = second & 0x7F
            start = pos + 6
            if length > 125:
                if length == 126:
                    if pos + 4 > end:
                        self._unparsed = bytearray(data[pos:])
                        return
                    length = int.from_bytes(data[pos + 2 : pos + 4], "big")
                    start = pos + 8
                else:
                    if pos + 10 > end:
                        self._unparsed = bytearray(data[pos:])
                        return
                    length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                    start = pos + 14
            if length > limit:
                break  # websockets closes with 1009
            stop = start + length
            if stop > end:
                self._unparsed = bytearray(data[pos:])
                return
            if head in (_FINAL_TEXT, _FINAL_BINARY):
                deliver(apply_mask(data[start:stop], data[start - 4 : start]), head == _FINAL_TEXT)
                pos = stop
            else:
                # A control frame, a fragment, or something websockets refuses: this frame alone.
                self.to_websockets(bytes(data[pos:stop]))
                pos = stop
                if protocol.current_size is not None:
                    break  # a fragmented message: websockets reads until it is whole
            if protocol.state is not State.OPEN:
                break  # closed (by a close frame, or a failure): websockets discards the rest
        else:
            if pos < end:
                self._unparsed = bytearray(data[pos:])  # the first byte of a frame
            return
        self._give_websockets(bytes(data[pos:]))

    def _give_websockets(self, data: bytes) -> None:
        """Bytes for websockets' parser; the next read is ours again if it ends between frames."""
        if data:
            self.to_websockets(data)
        self.active = websockets_waits_for_a_frame(self.protocol)
