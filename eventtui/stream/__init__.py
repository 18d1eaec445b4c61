"""Beyond one machine: collectors publish to NATS JetStream, a sink and viewers read it.

`publisher.StreamPublisher` is a collector's writer when `--stream` is given (acks after the
stream's publish ack); `sink.Sink` writes the stream into a normal store, exactly once;
`subjects` says what goes on the stream; `connection` connects, or says in one sentence why not.
The store stays the default: nothing here is imported without `--stream`.
"""

from eventtui.stream.connection import StreamError
from eventtui.stream.publisher import StreamPublisher
from eventtui.stream.sink import Sink

__all__ = ["Sink", "StreamError", "StreamPublisher"]
