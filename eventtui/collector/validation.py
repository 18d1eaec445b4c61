"""Checks at ingest: the tracking plan's schemas, its forbidden paths, and personal data.

An event that breaks its schema or carries a `[plan] forbid` path is stored with `valid = 0`; one
where a built-in detector finds personal data (`eventtui.pii`) stays valid and is flagged. Every
finding goes into the stored event's `errors` list (no column of its own: ``pii: path: detector``,
``forbidden: path``), naming the path and never the value.

The plan itself (schemas, the fast path, messages) lives in `eventtui.plan`; the detectors in
`eventtui.pii`. This only turns their verdicts into the `valid` and `errors` columns.

May import: config, model, plan, pii.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import msgspec

from eventtui.config import Config
from eventtui.model import EventCheck, EventRefused, StoredEvent
from eventtui.pii import (
    FORBIDDEN_PREFIX,
    PII_PREFIX,
    any_might_hold,
    compile_forbid,
    findings,
    forbidden,
    might_hold,
)
from eventtui.plan import Plan

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[str]).decode
_decode_properties = msgspec.json.Decoder().decode
# A StoredEvent's properties, read by position in C: a frame's worth without an attribute lookup each.
_properties = operator.itemgetter(StoredEvent._fields.index("properties"))


def plan_check(config: Config) -> EventCheck | None:
    """The ingest check for this config: schemas, forbidden paths and the personal-data detectors
    (unless `[plan] pii = "off"`); None when there is nothing to check.

    Raises PlanError (naming the event and the file) for a schema that cannot be used.
    """
    checks: list[EventCheck] = []
    if any(event.schema is not None for event in config.plan.events.values()):
        checks.append(_schema_check(Plan.from_config(config)))
    if config.plan.forbid or config.plan.pii != "off":
        checks.append(_path_check(config.plan.forbid, pii=config.plan.pii != "off"))
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]
    first, second = checks

    def both(event: StoredEvent) -> StoredEvent:
        return second(first(event))

    return both  # no `needed`: the schema check has something to say about every event


def _schema_check(plan: Plan) -> EventCheck:
    def check(event: StoredEvent) -> StoredEvent:
        try:
            errors = plan.check(event.name, event.properties)
        except Exception as exc:
            # A schema the validator cannot apply to this payload (a "$ref" that recurses, a
            # 400-digit number under multipleOf): the event is refused and the reason recorded,
            # rather than stored as judged. Costs nothing until it raises (Python 3.11).
            raise EventRefused(
                f'the tracking-plan check of "{event.name}" failed ({_describe(exc)})'
            ) from None
        if not errors:
            return event
        return _with_errors(event, errors, valid=False)

    return check


class _PathCheck:
    """A check with a frame-wide prefilter (`needed`, see `model.decode_frame`)."""

    def __init__(self, check: EventCheck, needed: Callable[[list[StoredEvent]], bool]) -> None:
        self.check = check
        self.needed = needed

    def __call__(self, event: StoredEvent) -> StoredEvent:
        return self.check(event)


def _path_check(patterns: tuple[str, ...], *, pii: bool) -> EventCheck:
    forbid = compile_forbid(patterns)
    # The last key of each pattern, when it is a plain word: a properties text that holds none of
    # them (quoted, as a key) cannot hold a forbidden path, and is not decoded for it.
    leaves = [p.rsplit(".", 1)[-1] for p in patterns]
    hints = None if any(set(leaf) & set("*?[]") for leaf in leaves) else [f'"{w}"' for w in leaves]

    def check(event: StoredEvent) -> StoredEvent:
        text = event.properties
        if not text or text == "{}":
            return event
        look_pii = pii and might_hold(text)
        look_forbid = forbid is not None and (hints is None or any(h in text for h in hints))
        if not look_pii and not look_forbid:
            return event  # the usual event: a few substring tests, nothing decoded
        try:
            properties: Any = _decode_properties(text)
        except msgspec.DecodeError:
            return event  # the store's own JSON; a schema check reports a broken one
        errors: list[str] = []
        bad = False
        if look_forbid and forbid is not None:
            hits = forbidden(properties, forbid)
            errors += [f"{FORBIDDEN_PREFIX}{path}" for path in hits]
            bad = bool(hits)
        if look_pii:
            errors += [f"{PII_PREFIX}{found}" for found in findings(properties)]
        if not errors:
            return event
        return _with_errors(event, errors, valid=event.valid and not bad)

    if forbid is not None:
        return check  # forbidden paths are looked for event by event
    return _PathCheck(check, lambda events: any_might_hold(list(map(_properties, events))))


def _with_errors(event: StoredEvent, errors: list[str], *, valid: bool) -> StoredEvent:
    earlier = _decode(event.errors) if event.errors else []
    return event._replace(valid=valid, errors=_encode(earlier + errors).decode())


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 120 else text[:117] + "..."
