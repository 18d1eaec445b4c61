"""Tracking-plan validation at ingest: an event that breaks its schema is stored with `valid = 0`.

The plan itself (schemas, the fast path, messages) lives in `monitor.plan`; this only turns its
verdict into the stored event's `valid` and `errors` columns.

May import: model, monitor.plan.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from eventtui.config import Config
from eventtui.model import StoredEvent
from eventtui.monitor.plan import Plan

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
        errors = plan.check(event.name, event.properties)
        if not errors:
            return event
        earlier = _decode(event.errors) if event.errors else []
        return event._replace(valid=False, errors=_encode(earlier + errors).decode())

    return check
