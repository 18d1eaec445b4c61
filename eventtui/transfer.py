"""Export and import: stored events as JSON Lines, and JSON Lines (or a JSON array) as a session.

Owns the file format of `eventtui export` and `eventtui import`. One event per line: the event
object as the producer sent it (`EventRow.payload()`), plus what the store added under the reserved
top-level key ``"eventtui"``::

    {"event": "signup", "type": "track", "properties": {...}, "context": {...}, ...,
     "eventtui": {"id": 7, "session_id": 2, "received_at": 1714567890.123456,
                  "sent_at": 1714567890.1, "client": "ws:127.0.0.1:50412",
                  "valid": false, "errors": ["..."], "source": "posthog"}}

Round trip: export, import into any store, export again, and every line is byte-for-byte the same
except `eventtui.id` and `eventtui.session_id` (the importing store numbers rows and sessions its own
way). `sent_at` rides along because `timestamp` is written with millisecond precision; `valid` and
`errors` because import does not re-run the tracking plan. (One exception: a `sent_at` outside the
years 1 to 9999, which only a store written before the collector refused such times holds, comes
back as the collector would store it now: unreadable. A `received_at` out there refuses the line.) A producer's own top-level field named
"eventtui" is kept under `eventtui.shadowed` and put back on import. `source` (the protocol the
event arrived in) is absent for events stored before stores recorded it; an imported plain
object's is "import".

Import rule: the good lines are imported and every bad line is refused, never dropped silently.
A refused line is named by its line number and reason in `ImportResult.refused`, and recorded, as
the collector records a refused event, in the new session's `rejects` (reason and a bounded copy of
the line). An event whose messageId is already stored is acknowledged as a duplicate, not stored
again, and counted. A file with no event in its first `CHUNK_EVENTS` lines is refused whole
(`ImportRefused`) before anything is written: it is not an event file. The session's meta keeps the
outcome (`import`: events, refused, `finished`); an interrupted import stays `finished: false`.

Plain event objects (no "eventtui" key) are received "now" unless they carry a readable timestamp,
which then stands for their receipt, so a replay of the import keeps the producer's pacing.

May import: model, store.
"""

from __future__ import annotations

import io
import itertools
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final, cast

import msgspec
from msgspec import UNSET, UnsetType

from eventtui.model import (
    MAX_DEPTH,
    MAX_EPOCH,
    MIN_EPOCH,
    RAW_COPY_BYTES,
    EventRefused,
    StoredEvent,
    decode_frame,
    normalise,
)
from eventtui.store import Commit, Reader, Reject, StoreError, Submission, Writer
from eventtui.store.rows import META_KEY
from eventtui.store.rows import export_line as _export_line

IMPORT_CLIENT: Final = "import"
# The `source` of an event imported from a plain object; an export's own key keeps the original.
IMPORT_SOURCE: Final = "import"
# The writer's transaction size: one submission fills one transaction.
CHUNK_EVENTS: Final = 5000
# Submissions queued ahead of the writer; bounds memory when decoding outruns SQLite.
MAX_IN_FLIGHT: Final = 4

# (events so far, fraction done or None when unknown); called about once per chunk.
Progress = Callable[[int, float | None], None]

_BOM: Final = b"\xef\xbb\xbf"
_decoder: Final = msgspec.json.Decoder()
_encoder: Final = msgspec.json.Encoder()


# --- export ------------------------------------------------------------------------------------


def export_events(
    reader: Reader,
    *,
    out: IO[bytes] | IO[str],
    session: int | None = None,
    where: str = "1",
    params: Sequence[Any] = (),
    progress: Progress | None = None,
) -> int:
    """Write matching events, oldest first, as JSON Lines to `out`; returns how many.

    `where`/`params` is a compiled filter. Events committed after the export starts are left out,
    so a busy collector cannot keep it running (`Reader.pages`).
    """
    write = _writer(out)
    written = 0
    for rows, fraction in reader.pages(
        session=session, where=where, params=params, page_rows=CHUNK_EVENTS
    ):
        write(b"".join([_export_line(*row) for row in rows]))
        written += len(rows)
        if progress is not None:
            progress(written, fraction)
    if progress is not None:
        progress(written, 1.0)
    return written


def _writer(out: IO[bytes] | IO[str]) -> Callable[[bytes], object]:
    """Lines are built as UTF-8 bytes; a text stream (sys.stdout) gets them decoded."""
    if isinstance(out, io.TextIOBase):
        text_out = cast(IO[str], out)
        return lambda data: text_out.write(data.decode())
    return cast(IO[bytes], out).write


# --- import ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadLine:
    """An input line (or an item of a JSON array) that was refused, and why."""

    line: int | None  # 1-based; None for a JSON array file
    item: int | None  # 1-based position in an array (an array file, or an array on one line)
    reason: str

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line is not None else []
        if self.item is not None:
            where.append(f"item {self.item}")
        return f"{', '.join(where)}: {self.reason}"


@dataclass(slots=True)
class ImportResult:
    """What an import took and what it did not; `summary()` says it in words."""

    session_id: int
    label: str | None
    events: int = 0  # good events read from the file
    imported: int = 0  # of those, newly stored
    duplicates: int = 0  # of those, not stored: their messageId was already in the store
    refused: list[BadLine] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every input line was taken (stored, or already stored as a duplicate)."""
        return not self.refused

    def summary(self, max_listed: int = 10) -> str:
        name = f"session {self.session_id}" + (f" ({self.label})" if self.label else "")
        lines = [f"imported {self.imported:,} of {self.events:,} events into {name}"]
        if self.duplicates:
            lines.append(
                f"{self.duplicates:,} duplicate{'' if self.duplicates == 1 else 's'} not stored"
                " again (their messageId was already stored)"
            )
        if self.refused:
            lines.append(
                f"{len(self.refused):,} refused, not imported (also kept in the session's rejects):"
            )
            lines.extend(f"  {bad}" for bad in self.refused[:max_listed])
            if len(self.refused) > max_listed:
                lines.append(f"  ... and {len(self.refused) - max_listed:,} more")
        return "\n".join(lines)


class ImportRefused(ValueError):
    """The whole input was refused and nothing was written; `refused` says why, line by line."""

    def __init__(self, message: str, refused: Sequence[BadLine] = ()) -> None:
        self.refused = list(refused)
        shown = "; ".join(str(bad) for bad in self.refused[:3])
        super().__init__(f"{message} ({shown})" if shown else message)


def import_events(
    source: Path | str | IO[bytes],
    *,
    db: Path,
    label: str | None = None,
    progress: Progress | None = None,
    new_ids: bool = False,
) -> ImportResult:
    """Read JSON Lines (ours or plain event objects) or a JSON array into a new session of `db`.

    Raises ImportRefused (nothing written) for input with no events, StoreError if the store
    cannot be written. See the module docstring for what is kept and what is refused.
    `new_ids`: every messageId gets a suffix of this run (`~import-<hex>`), so events already in
    the store (an export imported back into it) are stored again as new ones. When nothing at
    all was stored (every event a duplicate, none refused), the empty session is removed again
    (`ImportResult.session_id` is then 0).
    """
    if isinstance(source, str | Path):
        path = Path(source)
        try:
            stream: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise ImportRefused(f"{path}: cannot read ({exc.strerror})") from None
        with stream:
            total = os.fstat(stream.fileno()).st_size
            return _import(
                stream, total, db=db, label=label or path.name, progress=progress, new_ids=new_ids
            )
    return _import(source, None, db=db, label=label, progress=progress, new_ids=new_ids)


def _import(
    stream: IO[bytes],
    total: int | None,
    *,
    db: Path,
    label: str | None,
    progress: Progress | None,
    new_ids: bool = False,
) -> ImportResult:
    now = time.time()
    suffix = f"~import-{secrets.token_hex(4)}" if new_ids else ""
    chunks = _chunks(stream, now, total)
    first = next(chunks, None)
    if first is None:
        raise ImportRefused("the input holds no events")
    if not first.events:
        raise ImportRefused(
            f"no event among the first {first.lines:,} lines or items: not an event file",
            first.refused,
        )
    # An interrupted import leaves its session marked unfinished.
    meta = {"import": {"started_at": now, "finished": False}}
    writer = Writer(db, source="import", label=label, meta=meta)
    flow = _FlowControl()
    writer.add_listener(flow.committed)
    result = ImportResult(session_id=writer.start(), label=label)
    try:
        for chunk in itertools.chain([first], chunks):
            if not flow.acquire():
                break
            rejects = [
                Reject(now, IMPORT_CLIENT, str(bad), raw)
                for bad, raw in zip(chunk.refused, chunk.raw, strict=True)
            ]
            events = chunk.events
            if suffix:
                events = [
                    e._replace(message_id=e.message_id + suffix) if e.message_id else e
                    for e in events
                ]
            writer.submit(Submission(events, rejects))
            result.events += len(chunk.events)
            result.refused.extend(chunk.refused)
            if progress is not None:
                progress(result.events, chunk.fraction)
        # The writer records `meta` when it ends the session: the outcome stays with the session.
        writer.meta["import"] = {
            "started_at": now,
            "finished": flow.error is None,
            "events": result.events,
            "refused": len(result.refused),
        }
    finally:
        writer.close()
    if flow.error:
        raise StoreError(f"{db}: import stopped after {result.events:,} events: {flow.error}")
    result.imported = writer.stats.events
    # Every submitted event was committed (no commit failed): what was not inserted was ignored
    # by `INSERT OR IGNORE`, that is, its messageId was already stored.
    result.duplicates = result.events - result.imported
    if not result.imported and not result.refused:
        # Nothing stored and nothing refused: an empty session would only be clutter.
        from eventtui.store.sessions import delete_session

        delete_session(db, result.session_id)
        result.session_id = 0
    if progress is not None:
        progress(result.events, 1.0)
    return result


class _FlowControl:
    """Keeps at most MAX_IN_FLIGHT submissions queued; remembers a failed commit."""

    def __init__(self) -> None:
        self._slots = threading.Semaphore(MAX_IN_FLIGHT)
        self.error: str | None = None

    def acquire(self) -> bool:
        """Wait for room in the writer's queue; False once a commit has failed."""
        # A commit takes milliseconds; a minute without one means the writer is gone.
        if not self._slots.acquire(timeout=60.0) and not self.error:
            self.error = "the store writer stopped responding"
        return self.error is None

    def committed(self, commit: Commit) -> None:  # runs in the writer's receiver thread
        if commit.error:
            self.error = commit.error
        for _ in commit.tickets:
            self._slots.release()


@dataclass(slots=True)
class _Chunk:
    """Up to CHUNK_EVENTS decoded inputs: one submission to the writer."""

    events: list[StoredEvent] = field(default_factory=list)
    refused: list[BadLine] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)  # a bounded copy of each refused input
    lines: int = 0  # non-blank lines (or array items) read
    fraction: float | None = None  # of the input read so far, when its size is known

    def refuse(self, bad: BadLine, raw: bytes) -> None:
        self.refused.append(bad)
        self.raw.append(raw[:RAW_COPY_BYTES])


def _chunks(stream: IO[bytes], now: float, total: int | None) -> Iterator[_Chunk]:
    """The input, decoded: JSON Lines line by line, or a JSON array file whole."""
    head = stream.read(64 * 1024)
    if head.removeprefix(_BOM).lstrip().startswith(b"["):
        content = (head + stream.read()).removeprefix(_BOM)
        try:
            doc = _decoder.decode(content)
        except msgspec.DecodeError:
            doc = None  # not one document: JSON Lines whose lines are arrays, or broken
        if isinstance(doc, list):
            yield from _array_chunks(content, now)
            return
        lines: Iterable[bytes] = content.splitlines(keepends=True)
    else:
        # Finish the head's last line, then read on line by line: the file is never held whole.
        head += stream.readline()
        lines = itertools.chain(io.BytesIO(head.removeprefix(_BOM)), stream)
    yield from _line_chunks(lines, now, total)


def _line_chunks(lines: Iterable[bytes], now: float, total: int | None) -> Iterator[_Chunk]:
    chunk, consumed = _Chunk(), 0
    for number, line in enumerate(lines, 1):
        consumed += len(line)
        # Fast path for the usual line, one event object: decode once, take our key off, and
        # normalise with the receipt time and client it carries. Anything else (arrays, batches,
        # possibly deep nesting, lone surrogates, broken JSON, blank lines) takes the collector's
        # own decoder below, so the rules and the reasons are the collector's.
        obj = None
        if line.count(b"{") + line.count(b"[") <= MAX_DEPTH:
            # Not contextlib.suppress: it costs half a microsecond a line.
            try:  # noqa: SIM105
                obj = _decoder.decode(line)
            except msgspec.DecodeError:
                pass
        if obj.__class__ is dict and ("batch" not in obj or "event" in obj):
            chunk.lines += 1
            try:
                meta = _take_meta(obj)
                if meta is None:
                    event = normalise(
                        obj, client=IMPORT_CLIENT, received_at=now, source=IMPORT_SOURCE
                    )
                else:
                    received_at = now if meta.received_at is UNSET else meta.received_at
                    client = meta.client or IMPORT_CLIENT
                    event = normalise(
                        obj, client=client, received_at=received_at, source=IMPORT_SOURCE
                    )
                chunk.events.append(_restore(event, meta))
            except EventRefused as exc:
                chunk.refuse(BadLine(number, None, str(exc)), line.rstrip(b"\r\n"))
        elif not line.isspace():
            chunk.lines += 1
            line = line.rstrip(b"\r\n")  # so a refused line's raw copy is the line as written
            frame = decode_frame(
                line, binary=False, client=IMPORT_CLIENT, received_at=now, source=IMPORT_SOURCE
            )
            for r in frame.refusals:
                item = None if r.index is None else r.index + 1
                chunk.refuse(BadLine(number, item, r.reason), r.raw)
            for event in frame.events:
                try:
                    chunk.events.append(_restore_from_extra(event))
                except EventRefused as exc:
                    chunk.refuse(BadLine(number, None, str(exc)), line)
        if len(chunk.events) + len(chunk.refused) >= CHUNK_EVENTS:
            chunk.fraction = consumed / total if total else None
            yield chunk
            chunk = _Chunk()
    if chunk.lines:
        chunk.fraction = 1.0 if total else None
        yield chunk


def _array_chunks(content: bytes, now: float) -> Iterator[_Chunk]:
    frame = decode_frame(
        content, binary=False, client=IMPORT_CLIENT, received_at=now, source=IMPORT_SOURCE
    )
    chunk = _Chunk()
    whole = [r for r in frame.refusals if r.index is None]
    if whole:  # the array as a whole was refused (`[]`)
        chunk.lines = 1
        chunk.refuse(BadLine(None, None, whole[0].reason), whole[0].raw)
        yield chunk
        return
    # Events come in array order; the refusals name the positions that are missing from them.
    refusals = {r.index: r for r in frame.refusals}
    events = iter(frame.events)
    count = len(frame.events) + len(frame.refusals)
    for index in range(count):
        chunk.lines += 1
        refusal = refusals.get(index)
        if refusal is not None:
            chunk.refuse(BadLine(None, index + 1, refusal.reason), refusal.raw)
        else:
            event = next(events)
            try:
                chunk.events.append(_restore_from_extra(event))
            except EventRefused as exc:
                chunk.refuse(BadLine(None, index + 1, str(exc)), b"")
        if len(chunk.events) + len(chunk.refused) >= CHUNK_EVENTS or index == count - 1:
            chunk.fraction = (index + 1) / count
            yield chunk
            chunk = _Chunk()


class _Meta(msgspec.Struct, frozen=True):
    """The fields of our key that import restores (`id` and `session_id` belong to the old store)."""

    received_at: float | UnsetType = UNSET
    sent_at: float | UnsetType | None = UNSET
    client: str | UnsetType | None = UNSET
    valid: bool | UnsetType = UNSET
    errors: list[str] | UnsetType | None = UNSET
    source: str | UnsetType | None = UNSET


def _take_meta(obj: dict[str, Any]) -> _Meta | None:
    """Our key, removed from `obj` (the producer's own field put back in its place), checked."""
    if META_KEY not in obj:
        return None
    value = obj[META_KEY]
    if value.__class__ is dict and "shadowed" in value:
        obj[META_KEY] = value["shadowed"]  # same position: the key order of `extra` survives
    else:
        del obj[META_KEY]
    try:
        return msgspec.convert(value, _Meta)
    except msgspec.ValidationError as exc:
        raise EventRefused(f'"{META_KEY}" is reserved for eventtui\'s own fields: {exc}') from None


def _outside(seconds: float) -> str:
    return f"{seconds!r} is outside the years 1 to 9999 in UTC"


def _restore_from_extra(event: StoredEvent) -> StoredEvent:
    """For events from the collector's decoder, our key arrived in `extra`: lift it out."""
    if not event.extra or f'"{META_KEY}"' not in event.extra:
        return _restore(event, None)
    extra = _decoder.decode(event.extra)
    meta = _take_meta(extra)
    return _restore(event._replace(extra=_encoder.encode(extra).decode() if extra else None), meta)


def _restore(event: StoredEvent, meta: _Meta | None) -> StoredEvent:
    """The event as the exporting store had it (our key), or a plain object's receipt time."""
    if meta is None:
        return event if event.sent_at is None else StoredEvent(event.sent_at, *event[1:])
    sent_at = event.sent_at if meta.sent_at is UNSET else meta.sent_at
    valid = event.valid if meta.valid is UNSET else meta.valid
    errors = event.errors
    if meta.errors is not UNSET:
        errors = None if meta.errors is None else _encoder.encode(meta.errors).decode()
    if sent_at is not None and not MIN_EPOCH <= sent_at < MAX_EPOCH:
        # As the collector stores such a time (model.parse_timestamp): as unreadable. An export
        # of a store written before that rule carries them.
        listed = _decoder.decode(errors) if errors else []
        errors = _encoder.encode([*listed, f"timestamp: {_outside(sent_at)}"]).decode()
        # Kept in the event as the export had it, as an unreadable timestamp always is.
        kept = _decoder.decode(event.extra) if event.extra else {}
        kept.setdefault("timestamp", sent_at)
        event = event._replace(extra=_encoder.encode(kept).decode())
        sent_at, valid = None, False
    if meta.received_at is not UNSET:
        received_at = meta.received_at
        if not MIN_EPOCH <= received_at < MAX_EPOCH:
            raise EventRefused(f'"{META_KEY}.received_at": {_outside(received_at)}')
    else:
        received_at = event.received_at if sent_at is None else sent_at
    client = meta.client or event.client  # UNSET and None are both false
    source = meta.source or event.source
    if (received_at, sent_at, client, valid, errors, source) == (
        event.received_at,
        event.sent_at,
        event.client,
        event.valid,
        event.errors,
        event.source,
    ):
        return event  # the usual case when normalise was handed our receipt time and client
    # Positional: the NamedTuple's keyword constructor costs a microsecond per event.
    return StoredEvent(
        received_at,
        sent_at,
        event.name,
        event.type,
        event.user_id,
        event.anonymous_id,
        event.message_id,
        client,
        event.properties,
        event.context,
        valid,
        errors,
        event.extra,
        event.absent,
        source,
    )
