"""Tracking-plan validation at ingest: an event that breaks its schema is stored with `valid = 0`.

The plan itself (schemas, the fast path, messages) lives in `eventtui.plan`; this only turns its
verdict into the stored event's `valid` and `errors` columns.

May import: config, model, plan.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from eventtui.config import Config
from eventtui.model import EventRefused, StoredEvent
from eventtui.plan import Plan

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(list[str]).decode


def plan_check(config: Config) -> Callable[[StoredEvent], StoredEvent] | None:
    """The ingest check for this config's plan, or None when the plan has no schemas.

    Raises PlanError (naming the event and the file) for a schema that cannot be used.
    """
    if not any(event.schema is not None for event in config.plan.events.values()):
        return None
    plan = Plan.from_config(config)

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
        earlier = _decode(event.errors) if event.errors else []
        return event._replace(valid=False, errors=_encode(earlier + errors).decode())

    return check


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 120 else text[:117] + "..."
