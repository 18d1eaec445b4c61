"""The tracking plan: JSON Schema checks of event properties, used by the collector and the monitor.

`Plan` is built once from `[plan]` in the config: the collector calls `plan.check(name,
properties_json)` for every event at ingest (`collector/validation.py`) and stores the event with
``valid = 0`` and the returned one-line errors when the list is not empty. `plan.is_unplanned(name)`
says whether a name is missing from a ``strict`` plan (a warning, not an invalid event); the
monitor's `PlanWatch` (`monitor/plan_watch.py`) turns both into anomaly states for viewers.

Validation is on the ingest path, so its cost is designed, not hoped for. jsonschema alone costs
about 80 µs for a 10-property event, four times what decoding the event costs; so each schema is
also compiled once with fastjsonschema (drafts 4, 6 and 7; about 5 µs). Its answer is trusted only
when it is "valid"; a failure, or a schema it cannot compile, goes to jsonschema, which has the last
word and writes the messages. It is used only where its reading of the schema cannot accept more
than jsonschema's (see `_fast_path_fits`: later drafts qualify when they use nothing whose draft 7
meaning differs). Valid events never reach jsonschema; invalid ones do, and their errors are cached
by payload, so a producer repeating one mistake costs one validation. Names without a schema are not
even decoded. ``format`` is an annotation, as in the JSON Schema default: it is not asserted.

A schema is read and checked (`check_schema`) when the plan is built; a file that cannot be read or
is not a valid JSON Schema raises `PlanError` naming the event and the file. ``$ref`` to other
files resolves relative to the schema file (an inline schema's, relative to the config file). Every
schema file, named in the config or by a ``$ref``, is read by one loader (`SchemaFiles`): only
regular files of at most MAX_SCHEMA_BYTES, each read once per plan, so a reference to a FIFO or
to /dev/zero is an error instead of a hang or a read until memory runs out. Nothing is fetched
over the network: a remote ``$ref`` (http, https, ...) in the schema is a `PlanError` at load;
one met only while validating (below a subschema with its own ``$id``, or inside a referenced
file) makes the event invalid with a "cannot resolve" error.

May import: msgspec, eventtui.config, and `eventtui.plan_schema` (jsonschema, referencing and
fastjsonschema) only when a plan names a schema: that import costs ~0.1 s of start-up, which a
viewer or collector without schemas does not pay. Reads schema files at construction (and, once
each, a file first referred to while validating); no other IO, no Textual.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from eventtui.config import Config, PlanConfig, PlanEvent

# The limits and the error are part of this module's interface: callers import them from here.
from eventtui.plan_files import MAX_ERRORS as MAX_ERRORS
from eventtui.plan_files import MAX_SCHEMA_BYTES as MAX_SCHEMA_BYTES
from eventtui.plan_files import PlanError as PlanError
from eventtui.plan_files import SchemaFileError, SchemaFiles

# Cached results of the slow path, keyed by (name, properties JSON). Cleared when full: the cache is
# for a producer repeating one payload, not a store of history.
CACHE_ENTRIES: Final = 2048

if TYPE_CHECKING:
    from eventtui.plan_schema import CompiledSchema

_decoder: Final = msgspec.json.Decoder()


class Plan:
    """The tracking plan (see the module docstring)."""

    def __init__(self, config: PlanConfig, *, resolve: Callable[[str], Path] | None = None) -> None:
        self.strict = config.strict
        self._descriptions = {name: event.description for name, event in config.events.items()}
        resolve_path = resolve or (lambda path: Path(path).resolve())
        files = SchemaFiles()
        self._schemas: dict[str, CompiledSchema | None] = {
            name: _load(name, event, resolve_path, files) if event.schema is not None else None
            for name, event in config.events.items()
        }
        self._cache: dict[tuple[str, str | bytes], list[str]] = {}

    @classmethod
    def from_config(cls, config: Config) -> Plan:
        """The plan of a loaded config; schema paths are relative to the config file."""
        return cls(config.plan, resolve=config.resolve)

    def __contains__(self, name: object) -> bool:
        return name in self._schemas

    def __len__(self) -> int:
        return len(self._schemas)

    def names(self) -> Iterator[str]:
        return iter(self._schemas)

    def description(self, name: str) -> str | None:
        return self._descriptions.get(name)

    def has_schema(self, name: str) -> bool:
        return self._schemas.get(name) is not None

    def is_unplanned(self, name: str) -> bool:
        """True for a name the plan does not list, when the plan is strict."""
        return self.strict and name not in self._schemas

    def check(self, name: str, properties: str | bytes | Mapping[str, Any] | None) -> list[str]:
        """Errors of `properties` (JSON text or decoded) against `name`'s schema; [] when valid.

        One line each, ``properties.path: message``, at most MAX_ERRORS (+ a line saying more were
        left out). Unplanned names are not errors here: see `is_unplanned`.
        """
        schema = self._schemas.get(name)
        if schema is None:
            return []
        if isinstance(properties, str | bytes):
            try:
                instance = _decoder.decode(properties) if properties else {}
            except msgspec.DecodeError:
                return ["properties: not valid JSON"]
        else:
            instance = {} if properties is None else properties
        if schema.fast is not None:
            # A JsonSchemaValueException, or any other failure of the fast path: jsonschema judges.
            try:
                schema.fast(instance)
            except Exception:
                pass
            else:
                return []
        # Only the slow path is cached: hashing every payload would cost the valid ones too.
        key = (name, properties) if isinstance(properties, str | bytes) else None
        if key is not None:
            cached = self._cache.get(key)
            if cached is not None:
                return list(cached)
        errors = schema.errors(instance)
        if key is not None:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = errors
        return list(errors)


def _load(
    name: str, event: PlanEvent, resolve: Callable[[str], Path], files: SchemaFiles
) -> CompiledSchema:
    if isinstance(event.schema, str):
        path = resolve(event.schema)
        where = f'plan.events.{name}: schema file "{path}"'
        try:
            schema = files.load(path)
        except SchemaFileError as exc:
            raise PlanError(f"{where}: {exc.reason}") from None
        base_dir = path.parent
        source = str(path)
    else:
        schema = event.schema
        where = f"plan.events.{name}: inline schema"
        source = "(inline)"
        # Relative "$ref"s of an inline schema start where its relative paths do: the config's folder.
        base_dir = resolve(".")
    # Imported here, not at the top: see the module docstring.
    from eventtui.plan_schema import build

    try:
        return build(schema, where, source, base_dir, files)
    except RecursionError:
        raise PlanError(f"{where}: nested too deeply to check") from None
