"""Reading the store: every read a viewer makes, by name; committed rows only, in short statements.

`Reader` is the store's face for viewers (the TUI feeds, replay, check, export, query, sessions):
they call its methods and get plain values, `EventRow`s or `SessionRow`s, never SQL. Each read is
shaped for the schema's indexes (noted where it matters), and each is one autocommit statement, so
no reader holds a snapshot open and the WAL can checkpoint. A second backend (a stream instead of a
file) would stand behind these same methods.

A `Reader` owns one connection and must stay in the thread that made it (sqlite3 objects are bound
to their thread).

May import: sqlite3, sqlite-utils, msgspec, store.schema, store.rows.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final, Literal, overload

import msgspec

from eventtui.store.rows import (
    DETECT_TYPES,
    LIGHT_SELECT,
    ROW_SELECT,
    ROW_SELECT_V2,
    EventRow,
    MonitorHistory,
    NameCounts,
    SessionRow,
    event_row,
    event_rows,
    light_rows,
)
from eventtui.store.schema import (
    ABSENT_VERSION,
    ROLLUPS_VERSION,
    StoreError,
    connect_for_reading,
    store_size,
)

# A skip-scan of the (name, received_at) index: one seek per distinct name, where a full scan of a
# store of millions of rows costs a second.
_NAMES_SQL: Final = (
    "WITH RECURSIVE names(name) AS ("
    " SELECT min(name) FROM events"
    " UNION ALL SELECT (SELECT min(name) FROM events WHERE name > names.name)"
    " FROM names WHERE names.name IS NOT NULL)"
    " SELECT name FROM names WHERE name IS NOT NULL"
)
_SESSION_SQL: Final = (
    "SELECT s.id, s.label, s.started_at, s.ended_at, s.source, s.meta,"
    " (SELECT count(*) FROM events e WHERE e.session_id = s.id),"
    " (SELECT count(*) FROM rejects r WHERE r.session_id = s.id)"
    " FROM sessions s"
)
# The same from the rollups (schema 3): a row per name of the session, not per event.
_SESSION_SQL_ROLLUPS: Final = _SESSION_SQL.replace(
    "(SELECT count(*) FROM events e WHERE e.session_id = s.id)",
    "(SELECT coalesce(sum(t.events), 0) FROM name_totals t WHERE t.session_id = s.id)",
)
_encode_ids = msgspec.json.Encoder().encode
# SQLite's integers: an id past this cannot even be asked about.
MAX_INT64: Final = 2**63 - 1


class NoSuchSession(StoreError):
    """A session asked for by id that the store does not hold (or a store with none yet)."""


def no_session(path: Path, session: int | str) -> NoSuchSession:
    return NoSuchSession(f"no session {session} in {path} (`eventtui sessions` lists them)")


class Reader:
    """Read-only access to a store (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # Public for tests and benchmarks, which compare against hand-written SQL; viewers use the
        # methods below. `uri`: how the store was opened (read-only where it cannot be written
        # beside), for anyone who ATTACHes it.
        self.conn: sqlite3.Connection
        self.conn, self.uri = connect_for_reading(path, detect_types=DETECT_TYPES)
        self.conn.execute("PRAGMA query_only = ON")
        # A reader never migrates: a store of an older schema is read as it is. Schema 2 has no
        # `absent` column; a store from before ROLLUPS_VERSION has no rollups, and is read with
        # the aggregates over events that the rollups replace.
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        self.schema_version = version
        self.row_select = ROW_SELECT if version >= ABSENT_VERSION else ROW_SELECT_V2
        self.rollups = version >= ROLLUPS_VERSION
        self._session_sql = _SESSION_SQL_ROLLUPS if self.rollups else _SESSION_SQL

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the store as a whole --------------------------------------------------------------------

    def last_event_id(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0])

    def count_events(self) -> int:
        # The rollups' sum: a row per session and name, where count(*) reads every event.
        sql = (
            "SELECT coalesce(sum(events), 0) FROM name_totals"
            if self.rollups
            else "SELECT count(*) FROM events"
        )
        return int(self.conn.execute(sql).fetchone()[0])

    def size_bytes(self) -> int:
        return store_size(self.path)

    def event_names(self) -> list[str]:
        """Every distinct event name, sorted (from the rollups, or a skip-scan of the name index)."""
        if self.rollups:
            sql = "SELECT DISTINCT name FROM name_totals ORDER BY name"
            return [name for (name,) in self.conn.execute(sql)]
        return [name for (name,) in self.conn.execute(_NAMES_SQL)]

    # --- events ----------------------------------------------------------------------------------

    def events_after(self, cursor: int, limit: int = 5000) -> list[EventRow]:
        """Committed events with id > cursor, oldest first (the live tail)."""
        rows = self.conn.execute(
            f"SELECT {self.row_select} FROM events WHERE id > ? ORDER BY id LIMIT ?",
            (cursor, limit),
        ).fetchall()
        return event_rows(rows)

    def event(self, event_id: int) -> EventRow | None:
        row = self.conn.execute(
            f"SELECT {self.row_select} FROM events WHERE id = ?", (event_id,)
        ).fetchone()
        return event_row(row) if row else None

    def query(
        self,
        where: str = "1",
        params: Sequence[Any] = (),
        *,
        session: int | None = None,
        from_session: int | None = None,
        from_id: int | None = None,
        to_id: int | None = None,
        before_id: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[EventRow]:
        """Events matching a compiled filter (`where` is parameterised SQL over `events`), in id
        order; bounded by session (`from_session`: that one and later) and by id (inclusive
        `from_id`/`to_id`, exclusive `before_id`). Ids are rowids: a bound costs nothing."""
        clauses = [f"({where})"]
        args = list(params)
        for clause, value in (
            ("session_id = ?", session),
            ("session_id >= ?", from_session),
            ("id >= ?", from_id),
            ("id <= ?", to_id),
            ("id < ?", before_id),
        ):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        sql = f"SELECT {self.row_select} FROM events WHERE {' AND '.join(clauses)}"
        sql += " ORDER BY id DESC" if newest_first else " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return event_rows(self.conn.execute(sql, args))

    def events_in(
        self, ids: Sequence[int], *, contiguous: bool = False, light: bool = False
    ) -> list[EventRow]:
        """The events of `ids`, in the order given; ids no longer stored are left out.

        `contiguous`: `ids` ascend and no other event lies between the first and the last, so one
        rowid range reads them. `light`: light rows, without their payload (`light_rows`).
        """
        if not ids:
            return []
        columns, build = (LIGHT_SELECT, light_rows) if light else (self.row_select, event_rows)
        if contiguous:
            rows = self.conn.execute(
                f"SELECT {columns} FROM events WHERE id BETWEEN ? AND ? ORDER BY id",
                (ids[0], ids[-1]),
            ).fetchall()
            return build(rows)
        wanted = list(ids)
        by_id = {
            r[0]: r
            for r in self.conn.execute(
                f"SELECT {columns} FROM events WHERE id IN (SELECT value FROM json_each(?))",
                (_encode_ids(wanted).decode(),),
            )
        }
        return build(by_id[i] for i in wanted if i in by_id)

    def matching_in(self, ids: Sequence[int], where: str, params: Sequence[Any]) -> list[EventRow]:
        """Those of `ids` that match a compiled filter, in id order."""
        return self.query(
            f"id IN (SELECT value FROM json_each(?)) AND ({where})",
            [_encode_ids(list(ids)).decode(), *params],
        )

    def pages(
        self,
        *,
        session: int | None = None,
        where: str = "1",
        params: Sequence[Any] = (),
        page_rows: int = 5000,
    ) -> Iterator[tuple[list[tuple[Any, ...]], float]]:
        """Every matching event, oldest first, a page at a time, with the fraction read so far.

        Rows come as plain tuples of an `EventRow`'s fields (`event_row` makes one an `EventRow`):
        for the export, which encodes each as it comes, building `EventRow`s cost 6% of its
        throughput. Events committed after the first page are left out, so a busy collector
        cannot keep a reader going; each page is one short statement.
        """
        sql = "SELECT coalesce(min(id), 1), coalesce(max(id), 0) FROM events"
        bounds: tuple[Any, ...] = ()
        if session is not None:
            sql += " WHERE session_id = ?"
            bounds = (session,)
        first, last = (int(v) for v in self.conn.execute(sql, bounds).fetchone())
        # NOT INDEXED: each page walks the rowid range. An index the filter could use (a name) would
        # be re-read from its start on every page, making a large read quadratic.
        sql = f"SELECT {self.row_select} FROM events NOT INDEXED WHERE id > ? AND id <= ? AND ({where})"
        args = list(params)
        if session is not None:
            sql += " AND session_id = ?"
            args.append(session)
        sql += f" ORDER BY id LIMIT {int(page_rows)}"
        cursor = first - 1
        while cursor < last:
            rows = self.conn.execute(sql, (cursor, last, *args)).fetchall()
            if not rows:
                return
            cursor = rows[-1][0]
            yield rows, (cursor - first + 1) / (last - first + 1)

    # --- what the monitor reads (check, replay's anomaly scan) -----------------------------------

    def light_events(
        self,
        *,
        to_id: int,
        name: str | None = None,
        after: float | None = None,
        session: int | None = None,
    ) -> list[EventRow]:
        """Events without their payload, oldest first, up to id `to_id`: of one `name` received
        after `after` (the (name, received_at) index), or of one `session` ((session_id, id))."""
        clauses, args = _bounds(name=name, after=after, session=session, to_id=to_id)
        sql = f"SELECT {LIGHT_SELECT} FROM events WHERE {' AND '.join(clauses)} ORDER BY id"
        return light_rows(self.conn.execute(sql, args))

    def matching_ids(
        self,
        where: str,
        params: Sequence[Any],
        *,
        names: Sequence[str],
        to_id: int,
        after: float | None = None,
        session: int | None = None,
    ) -> list[int]:
        """Ids of the events of `names` that match a compiled filter (bounds as `light_events`)."""
        clauses, args = _bounds(names=names, after=after, session=session, to_id=to_id)
        sql = f"SELECT id FROM events WHERE {' AND '.join(clauses)} AND ({where})"
        return [i for (i,) in self.conn.execute(sql, (*args, *params))]

    def last_received(
        self,
        name: str,
        *,
        at_or_before: float,
        where: str | None = None,
        params: Sequence[Any] = (),
    ) -> float | None:
        """When the latest event of `name` (matching `where`) up to a time was received."""
        if where is None:
            sql = "SELECT max(received_at) FROM events WHERE name = ? AND received_at <= ?"
        else:
            sql = (
                "SELECT received_at FROM events WHERE name = ? AND received_at <= ?"
                f" AND ({where}) ORDER BY received_at DESC LIMIT 1"
            )
        row = self.conn.execute(sql, (name, at_or_before, *params)).fetchone()
        return None if row is None or row[0] is None else float(row[0])

    def replay_order(
        self, session: int, where: str = "1", params: Sequence[Any] = ()
    ) -> tuple[array[int], array[float], bool]:
        """The ids and receipt times of a session's events matching `where`, in `(received_at,
        id)` order (16 bytes an event), and whether `events_in(..., contiguous=True)` may read
        any run of them: ids ascend with times and no other event lies between them."""
        ids: array[int] = array("q")
        times: array[float] = array("d")
        cursor = self.conn.execute(
            f"SELECT id, received_at FROM events WHERE session_id = ? AND ({where})"
            " ORDER BY received_at, id",
            (session, *params),
        )
        while rows := cursor.fetchmany(10_000):
            for event_id, at in rows:
                ids.append(event_id)
                times.append(at)
        contiguous = True
        if ids:
            ascending = all(a < b for a, b in itertools.pairwise(ids))
            between = self.conn.execute(
                "SELECT count(*) FROM events WHERE id BETWEEN ? AND ?", (ids[0], ids[-1])
            ).fetchone()[0]
            contiguous = ascending and between == len(ids)
        return ids, times, contiguous

    def name_counts(self, *, from_session: int, to_id: int, now: float) -> list[NameCounts]:
        """Counts per name of the events of `from_session` and later, up to id `to_id`: totals, and
        per minute and per second for the counters' windows ending at `now`.

        From the rollups where the store has them: their rows minus the few events after `to_id`
        (committed since the caller's cursor), all read in one snapshot.
        """
        if self.rollups:
            self.conn.execute("BEGIN")
            try:
                return self._name_counts_from_rollups(from_session, to_id, now)
            finally:
                self.conn.execute("COMMIT")
        totals = self.conn.execute(
            "SELECT name, count(*), sum(valid = 0), max(received_at) FROM events"
            " WHERE session_id >= ? AND id <= ? GROUP BY name",
            (from_session, to_id),
        ).fetchall()
        if not totals:
            return []
        minutes: dict[str, list[tuple[int, int]]] = {}
        for name, minute, count in self.conn.execute(
            "SELECT name, CAST(received_at / 60 AS INTEGER), count(*) FROM events"
            " WHERE session_id >= ? AND id <= ? AND received_at > ? GROUP BY 1, 2",
            (from_session, to_id, now - 31 * 60),
        ):
            minutes.setdefault(name, []).append((int(minute), count))
        seconds: dict[str, list[tuple[int, int]]] = {}
        for name, second, count in self.conn.execute(
            "SELECT name, CAST(received_at AS INTEGER), count(*) FROM events"
            " WHERE session_id >= ? AND id <= ? AND received_at > ? GROUP BY 1, 2",
            (from_session, to_id, now - 61),
        ):
            seconds.setdefault(name, []).append((int(second), count))
        return [
            NameCounts(
                name, total, invalid or 0, last, minutes.get(name, ()), seconds.get(name, ())
            )
            for name, total, invalid, last in totals
        ]

    def _name_counts_from_rollups(
        self, from_session: int, to_id: int, now: float
    ) -> list[NameCounts]:
        totals: dict[str, list[Any]] = {
            name: [events, invalid, last]
            for name, events, invalid, last in self.conn.execute(
                "SELECT name, sum(events), sum(invalid), max(last_at) FROM name_totals"
                " WHERE session_id >= ? GROUP BY name",
                (from_session,),
            )
        }
        if not totals:
            return []
        first_minute = int((now - 31 * 60) // 60)
        minutes: dict[str, dict[int, int]] = {}
        for name, minute, count in self.conn.execute(
            "SELECT name, minute, sum(events) FROM name_minutes"
            " WHERE minute >= ? AND session_id >= ? GROUP BY 1, 2",
            (first_minute, from_session),
        ):
            minutes.setdefault(name, {})[minute] = count
        # Committed after the caller's cursor: counted by the rollups, not yet by the caller.
        # (A name's last_at may already be one of these: it is only ever moved on by them.)
        for name, minute, count, invalid in self.conn.execute(
            "SELECT name, CAST(received_at / 60 AS INTEGER), count(*), sum(valid = 0)"
            " FROM events NOT INDEXED"  # the rowid range, not a scan of a name index
            " WHERE id > ? AND session_id >= ? GROUP BY 1, 2",
            (to_id, from_session),
        ):
            totals[name][0] -= count
            totals[name][1] -= invalid
            if minute >= first_minute:
                minutes[name][minute] -= count
        seconds: dict[str, list[tuple[int, int]]] = {}
        for name, second, count in self.conn.execute(
            "SELECT e.name, CAST(e.received_at AS INTEGER), count(*)"
            " FROM (SELECT DISTINCT name FROM name_totals WHERE session_id >= ?) AS n"
            " JOIN events AS e INDEXED BY events_name_received"
            " ON e.name = n.name AND e.received_at > ?"
            " WHERE e.session_id >= ? AND e.id <= ? GROUP BY 1, 2",
            (from_session, now - 61, from_session, to_id),
        ):
            seconds.setdefault(name, []).append((int(second), count))
        return [
            NameCounts(
                name,
                total,
                invalid,
                last,
                [(m, n) for m, n in sorted(minutes.get(name, {}).items()) if n],
                seconds.get(name, ()),
            )
            for name, (total, invalid, last) in sorted(totals.items())
            if total
        ]

    def monitor_history(
        self, *, to_id: int, now: float, recent_seconds: float, recent_limit: int
    ) -> MonitorHistory:
        """The store's history up to id `to_id`, as a live view's monitor is seeded with it: counts
        per name over every session (`name_counts`: from the rollups), and the events received in the
        last `recent_seconds` before `now` without their payload (one range of the (name,
        received_at) index per name), at most the newest `recent_limit` of them.

        One method, so that another source of the same answer (a stream) can stand behind it.
        """
        counts = self.name_counts(from_session=0, to_id=to_id, now=now)
        after = now - recent_seconds
        recent: list[EventRow] = []
        for seed in counts:
            if seed.last_seen > after:
                recent.extend(self.light_events(name=seed.name, after=after, to_id=to_id))
        recent.sort(key=lambda row: row.id)
        if len(recent) > recent_limit:
            recent = recent[-recent_limit:]
            # Complete only from the oldest event kept on.
            after = min(row.received_at for row in recent)
        return MonitorHistory(counts, recent, after)

    # --- sessions --------------------------------------------------------------------------------

    def sessions(self) -> list[SessionRow]:
        return [_session(r) for r in self.conn.execute(f"{self._session_sql} ORDER BY s.id")]

    def session(self, session: int) -> SessionRow:
        """One session and its counts; raises NoSuchSession."""
        row = self.conn.execute(f"{self._session_sql} WHERE s.id = ?", (session,)).fetchone()
        if row is None:
            raise no_session(self.path, session)
        return _session(row)

    def latest_session_id(self) -> int | None:
        row = self.conn.execute("SELECT max(id) FROM sessions").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    @overload
    def resolve_session(self, text: str | int | None) -> int: ...
    @overload
    def resolve_session(
        self, text: str | int | None, *, allow_all: Literal[True]
    ) -> int | None: ...
    def resolve_session(self, text: str | int | None, *, allow_all: bool = False) -> int | None:
        """A SESSION argument as every command reads it: an id the store holds ("7"), the newest
        (None), or, where `allow_all`, every session ("all", returned as None).

        Raises NoSuchSession, one sentence naming the store.
        """
        shown: str | int | None = text
        if isinstance(text, str):
            if allow_all and text.strip().lower() == "all":
                return None
            try:
                text = int(text)
            except ValueError:  # also what str.isdigit lets through: int("²") fails
                alternatives = ' or "all"' if allow_all else ""
                raise NoSuchSession(
                    f"session must be a number (see `eventtui sessions`){alternatives};"
                    f" got {shown!r}"
                ) from None
        if text is None:
            newest = self.latest_session_id()
            if newest is None:
                raise NoSuchSession(f"{self.path} holds no session yet")
            return newest
        # Past SQLite's integers the question cannot even be asked: no such session either.
        if (
            not 1 <= text <= MAX_INT64
            or not self.conn.execute("SELECT 1 FROM sessions WHERE id = ?", (text,)).fetchone()
        ):
            raise no_session(self.path, shown if shown is not None else text)
        return text

    def collecting_since(self) -> float | None:
        """When the newest session that collected (not an import) started."""
        row = self.conn.execute(
            "SELECT started_at FROM sessions WHERE source != 'import' ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return None if row is None else float(row[0])

    def rejects(self, session: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT id, session_id, received_at, client, reason, raw FROM rejects"
        args: list[Any] = []
        if session is not None:
            sql += " WHERE session_id = ?"
            args.append(session)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return _dicts(self.conn.execute(sql, args))

    # --- since a cursor (the HTTP test API: what arrived since a test began) ---------------------

    def last_reject_id(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) FROM rejects").fetchone()[0])

    def names_after(self, after: int, to_id: int = MAX_INT64) -> list[tuple[str, int, int]]:
        """(name, events, invalid events) for the events with `after` < id <= `to_id`, by name
        (a rowid range: what a test sent since its cursor, not the whole store)."""
        return [
            (name, count, invalid or 0)
            for name, count, invalid in self.conn.execute(
                "SELECT name, count(*), sum(valid = 0) FROM events NOT INDEXED"
                " WHERE id > ? AND id <= ? GROUP BY name ORDER BY name",
                (after, to_id),
            )
        ]

    def newest_named(self, name: str, *, after: int, to_id: int, limit: int) -> list[EventRow]:
        """The newest `limit` events of `name` with `after` < id <= `to_id`, newest first."""
        return self.query(
            "name = ?", (name,), from_id=after + 1, to_id=to_id, limit=limit, newest_first=True
        )

    def invalid_after(self, after: int, *, to_id: int, limit: int) -> list[EventRow]:
        """The first `limit` events that broke the tracking plan with `after` < id <= `to_id`."""
        return self.query("valid = 0", from_id=after + 1, to_id=to_id, limit=limit)

    def rejects_after(self, after: int, limit: int = 100) -> tuple[int, list[dict[str, Any]]]:
        """How many rejects have id > `after`, and the first `limit` of them, oldest first."""
        total = self.conn.execute("SELECT count(*) FROM rejects WHERE id > ?", (after,))
        rows = self.conn.execute(
            "SELECT id, session_id, received_at, client, reason, raw FROM rejects"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return int(total.fetchone()[0]), _dicts(rows)

    def count_rejects(self, *, from_session: int = 0) -> int:
        """Refused inputs recorded in `from_session` and later sessions."""
        return int(
            self.conn.execute(
                "SELECT count(*) FROM rejects WHERE session_id >= ?", (from_session,)
            ).fetchone()[0]
        )


def _session(r: Sequence[Any]) -> SessionRow:
    return SessionRow(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), r[6], r[7])


def _bounds(
    *,
    to_id: int,
    name: str | None = None,
    names: Sequence[str] = (),
    after: float | None = None,
    session: int | None = None,
) -> tuple[list[str], list[Any]]:
    """WHERE clauses (in index order: name, then time; or session, then id) and their values."""
    clauses: list[str] = []
    args: list[Any] = []
    if name is not None:
        names = (name,)
    if len(names) == 1:
        clauses.append("name = ?")
    elif names:
        clauses.append(f"name IN ({', '.join('?' * len(names))})")
    args.extend(names)
    if after is not None:
        clauses.append("received_at > ?")
        args.append(after)
    if session is not None:
        clauses.append("session_id = ?")
        args.append(session)
    clauses.append("id <= ?")
    args.append(to_id)
    return clauses, args


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """Rows as dicts keyed by column name (sqlite-utils' `query`, without importing it: ~0.2 s)."""
    columns = [column[0] for column in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]
