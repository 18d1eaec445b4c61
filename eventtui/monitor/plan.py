"""The tracking plan: JSON Schema checks of event properties, and the anomalies they give viewers.

Owns two things:

- `Plan`, built once from `[plan]` in the config: the collector calls `plan.check(name,
  properties_json)` for every event at ingest and stores the event with ``valid = 0`` and the
  returned one-line errors when the list is not empty. `plan.is_unplanned(name)` says whether a name
  is missing from a ``strict`` plan (a warning, not an invalid event).
- `PlanWatch`, the viewer side: invalid and unplanned events as anomaly states per event name.

Validation is on the ingest path, so its cost is designed, not hoped for. jsonschema alone costs
about 80 µs for a 10-property event, four times what decoding the event costs; so each schema is
also compiled into a small Python predicate over the keywords tracking plans use (type, enum, const,
properties, required, additionalProperties, items, lengths, pattern, bounds, allOf, anyOf). The
predicate only ever answers "certainly valid"; anything else (a failure, a keyword it does not
know, a float where an integer is expected) goes to jsonschema, which has the last word and writes
the messages. Valid events never reach jsonschema; invalid ones do, and their errors are cached by
payload, so a producer repeating one mistake costs one validation. Names without a schema are not
even decoded. ``format`` is an annotation, as in the JSON Schema default: it is not asserted.

A schema is read and checked (`check_schema`) when the plan is built; a file that cannot be read or
is not a valid JSON Schema raises `PlanError` naming the event and the file. ``$ref`` to other
files resolves relative to the schema file (local files only; nothing is fetched over the network).

May import: jsonschema, referencing, msgspec, eventtui.config. Reads schema files at construction;
no other IO, no Textual.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import msgspec
from jsonschema import (
    Draft3Validator,
    Draft4Validator,
    Draft6Validator,
    Draft7Validator,
    Draft202012Validator,
)
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource, Specification
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import specification_with

from eventtui.config import Config, PlanConfig, PlanEvent
from eventtui.monitor.anomaly import (
    INVALID,
    UNPLANNED,
    Anomaly,
    Episode,
    EpisodeLog,
)

MAX_ERRORS: Final = 10
MAX_ERROR_CHARS: Final = 300
# Cached results of the slow path, keyed by (name, properties JSON). Cleared when full: the cache is
# for a producer repeating one payload, not a store of history.
CACHE_ENTRIES: Final = 2048
DEFAULT_PLAN_WINDOW: Final = 15 * 60.0

if TYPE_CHECKING:
    # Documented API, but referencing does not re-export the type.
    from referencing._core import Resolver

_decoder: Final = msgspec.json.Decoder()
_MISSING: Final = object()


class PlanError(Exception):
    """A tracking plan that cannot be used; the message names the event and the schema file."""


Check = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class _Schema:
    validator: Validator
    # Answers True only for instances the validator certainly accepts; None: no fast path.
    fast: Check | None
    source: str


class Plan:
    """The tracking plan (see the module docstring)."""

    def __init__(self, config: PlanConfig, *, resolve: Callable[[str], Path] | None = None) -> None:
        self.strict = config.strict
        self._descriptions = {name: event.description for name, event in config.events.items()}
        resolve_path = resolve or (lambda path: Path(path).resolve())
        self._schemas: dict[str, _Schema | None] = {
            name: _load(name, event, resolve_path) if event.schema is not None else None
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
        if schema.fast is not None and schema.fast(instance):
            return []
        # Only the slow path is cached: hashing every payload would cost the valid ones too.
        key = (name, properties) if isinstance(properties, str | bytes) else None
        if key is not None:
            cached = self._cache.get(key)
            if cached is not None:
                return list(cached)
        errors = _errors(schema, instance)
        if key is not None:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key] = errors
        return list(errors)


def _errors(schema: _Schema, instance: Any) -> list[str]:
    try:
        found = list(itertools.islice(schema.validator.iter_errors(instance), MAX_ERRORS + 1))
    except Unresolvable as exc:
        return [f"schema {schema.source}: cannot resolve {exc}"]
    lines = [_format_error(error) for error in found[:MAX_ERRORS]]
    if len(found) > MAX_ERRORS:
        lines.append(f"(more errors not shown; the first {MAX_ERRORS} are above)")
    return lines


_IDENTIFIER: Final = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


def _format_error(error: ValidationError) -> str:
    # The path reads like the filter language's `properties.cart.total`; keys that would not read
    # back (spaces, dots, control characters) are quoted as JSON, which also keeps the line one line.
    path = "properties"
    for part in error.absolute_path:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(part)}]"
    line = f"{path}: {error.message}".replace("\n", " ").replace("\r", " ")
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 1] + "…"


# --- loading ---------------------------------------------------------------------------------------


def _load(name: str, event: PlanEvent, resolve: Callable[[str], Path]) -> _Schema:
    base_dir = Path.cwd()
    if isinstance(event.schema, str):
        path = resolve(event.schema)
        where = f'plan.events.{name}: schema file "{path}"'
        try:
            schema = json.loads(path.read_bytes())
        except OSError as exc:
            raise PlanError(f"{where}: cannot read it ({exc.strerror})") from None
        except ValueError as exc:
            raise PlanError(f"{where}: not valid JSON ({exc})") from None
        base_dir = path.parent
        source = str(path)
    else:
        schema = event.schema
        where = f"plan.events.{name}: inline schema"
        source = "(inline)"
    if not isinstance(schema, dict | bool):
        raise PlanError(f"{where}: a JSON Schema is an object, not {type(schema).__name__}")
    cls = validator_for(schema, default=Draft202012Validator)
    # An unknown "$schema" falls back to the default; asking with two defaults reveals it (and
    # avoids jsonschema's deprecation warning). A typo there should not silently change the rules.
    if (
        isinstance(schema, dict)
        and "$schema" in schema
        and cls is not validator_for(schema, default=Draft7Validator)
    ):
        raise PlanError(f'{where}: unknown "$schema" {json.dumps(schema["$schema"])}')
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        at = "/".join(str(p) for p in exc.absolute_path) or "the top level"
        raise PlanError(f"{where}: not a valid JSON Schema at {at}: {exc.message}") from None
    spec = _specification(cls)
    # `retrieve` is an attrs alias that mypy's attrs plugin does not see.
    registry: Registry[Any] = Registry(retrieve=_local_files(base_dir, spec))  # type: ignore[call-arg]
    validator = cls(schema, registry=registry)
    resolver = registry.resolver_with_root(
        Resource.from_contents(schema, default_specification=spec)
    )
    _check_refs(schema, resolver, where)
    fast = None
    if cls is not Draft3Validator:
        try:
            fast = _FastPath.build(
                schema,
                frozenset(cls.VALIDATORS),
                resolver,
                ref_overrides_siblings=cls in _REF_OVERRIDES_SIBLINGS,
            )
        except re.error as exc:
            raise PlanError(f"{where}: bad pattern {exc.pattern!r}: {exc}") from None
    return _Schema(validator, fast, source)


def _specification(cls: type[Validator]) -> Specification[Any]:
    dialect = cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id")
    return specification_with(str(dialect))


def _local_files(base_dir: Path, spec: Specification[Any]) -> Callable[[str], Resource[Any]]:
    def retrieve(uri: str) -> Resource[Any]:
        parts = urlsplit(uri)
        if parts.scheme == "file":
            path = Path(url2pathname(parts.path))
        elif not parts.scheme and not parts.netloc:
            path = base_dir / unquote(parts.path)
        else:
            raise NoSuchResource(ref=uri)  # type: ignore[call-arg]
        try:
            contents = json.loads(path.read_bytes())
        except (OSError, ValueError):
            raise NoSuchResource(ref=uri) from None  # type: ignore[call-arg]
        return Resource.from_contents(contents, default_specification=spec)

    return retrieve


def _check_refs(schema: Any, resolver: Resolver[Any], where: str) -> None:
    """Resolve the schema's "$ref"s now, so a missing file or definition fails at load, not at ingest."""
    for ref in _refs(schema, root=True):
        try:
            resolver.lookup(ref)
        except Unresolvable as exc:
            raise PlanError(f'{where}: cannot resolve "$ref" {json.dumps(ref)} ({exc})') from None


def _refs(node: Any, *, root: bool = False) -> Iterator[str]:
    # A subschema with its own "$id" has its own base URI; its references are left to validation.
    if isinstance(node, dict):
        if not root and "$id" in node:
            return
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


# --- the fast path -------------------------------------------------------------------------------

_JSON_TYPES: Final[dict[str, frozenset[type]]] = {
    "string": frozenset({str}),
    # Only Python ints: whether 1.0 is an integer depends on the draft, so jsonschema decides.
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
}
# Values compared by (type, value): bool is not int, and 1.0 against 1 is left to jsonschema.
_SCALARS: Final = frozenset({str, int, bool, type(None)})
_NUMBERS: Final = frozenset({int, float})
_STR: Final = frozenset({str})
_DICT: Final = frozenset({dict})
_LIST: Final = frozenset({list})


# The drafts in which "$ref" makes jsonschema ignore the keywords beside it.
_REF_OVERRIDES_SIBLINGS: Final = (Draft4Validator, Draft6Validator, Draft7Validator)


class _Unsupported(Exception):
    """The schema uses something the fast path does not implement: jsonschema alone judges it."""


class _FastPath:
    """Generates a Python predicate that returns True only for instances the schema accepts.

    The approach of fastjsonschema: one generated function per schema, with every check inline, is
    about 5x faster than a tree of closures. Only code templates written here reach the source;
    every value from the schema (keys, bounds, patterns, enums) is passed in as a named constant.

    Any validation keyword the validator class knows and this class does not make the whole schema
    `_Unsupported`: a known keyword must never be skipped. Keywords the validator does not know
    (title, description, $defs, vendor extensions) are ignored by jsonschema too. A failing check
    only means "ask jsonschema".

    A "$ref" is followed and its target generated inline (shared definitions are common in tracking
    plans), unless it is recursive or cannot be resolved. Drafts 4 to 7 ignore the siblings of a
    "$ref"; later drafts apply them; so does this.
    """

    # Inlining the same definition many times could grow without bound: past this, jsonschema.
    MAX_LINES: Final = 5000

    def __init__(
        self,
        keywords: Collection[str],
        resolver: Resolver[Any] | None = None,
        *,
        ref_overrides_siblings: bool = False,
    ) -> None:
        self.keywords = keywords
        self.resolver = resolver
        self.ref_overrides_siblings = ref_overrides_siblings
        self.consts: dict[str, Any] = {"_MISSING": _MISSING, "_SCALARS": _SCALARS}
        self.functions: list[list[str]] = []
        self.names = itertools.count()
        self.lines = 0
        # The schemas being expanded right now (by id), to notice a reference back into one.
        self.expanding: list[int] = []

    @classmethod
    def build(
        cls,
        schema: Any,
        keywords: Collection[str],
        resolver: Resolver[Any] | None = None,
        *,
        ref_overrides_siblings: bool = False,
    ) -> Check | None:
        generator = cls(keywords, resolver, ref_overrides_siblings=ref_overrides_siblings)
        try:
            name = generator.function(schema, root=True)
        except _Unsupported:
            return None
        source = "\n".join(line for function in generator.functions for line in function)
        namespace = dict(generator.consts)
        try:
            exec(compile(source, "<tracking-plan schema>", "exec"), namespace)
        except (SyntaxError, RecursionError, MemoryError):
            return None  # nesting beyond what Python compiles: jsonschema copes
        check: Check = namespace[name]
        return check

    def function(self, schema: Any, *, root: bool = False) -> str:
        name = f"_f{next(self.names)}"
        lines = [f"def {name}(x):"]
        self.emit(schema, "x", lines, 1, root=root)
        lines.append("    return True")
        self.functions.append(lines)
        self.lines += len(lines)
        if self.lines > self.MAX_LINES:
            raise _Unsupported
        return name

    def const(self, value: Any) -> str:
        name = f"_c{len(self.consts)}"
        self.consts[name] = value
        return name

    def var(self) -> str:
        return f"v{next(self.names)}"

    def emit(
        self, schema: Any, v: str, lines: list[str], depth: int, *, root: bool = False
    ) -> None:
        pad = "    " * depth
        if schema is True:
            return
        if schema is False:
            lines.append(f"{pad}return False")
            return
        if not isinstance(schema, dict):
            raise _Unsupported
        if not root and ("$id" in schema or isinstance(schema.get("id"), str)):
            raise _Unsupported  # a new base URI for references: left to jsonschema
        if len(lines) > self.MAX_LINES:
            raise _Unsupported
        if "$ref" in schema and "$ref" in self.keywords:
            self.follow(schema["$ref"], v, lines, depth)
            if self.ref_overrides_siblings:
                return
        types: frozenset[type] | None = None
        if "type" in schema and "type" in self.keywords:
            names = [schema["type"]] if isinstance(schema["type"], str) else schema["type"]
            if not all(isinstance(n, str) and n in _JSON_TYPES for n in names):
                raise _Unsupported
            types = frozenset().union(*(_JSON_TYPES[n] for n in names))
            if len(types) == 1:
                (only,) = types
                lines.append(f"{pad}if type({v}) is not {self.const(only)}: return False")
            else:
                lines.append(f"{pad}if type({v}) not in {self.const(types)}: return False")
        for keyword, value in schema.items():
            if keyword in ("type", "format", "$ref") or keyword not in self.keywords:
                continue
            if keyword == "additionalProperties" and "properties" in schema:
                continue  # generated together with "properties"
            method = getattr(self, f"_kw_{keyword}", None)
            if method is None:
                raise _Unsupported
            method(value, schema, v, lines, depth, types)

    def follow(self, ref: Any, v: str, lines: list[str], depth: int) -> None:
        if self.resolver is None or not isinstance(ref, str):
            raise _Unsupported
        try:
            resolved = self.resolver.lookup(ref)
        except Unresolvable:
            raise _Unsupported from None
        target = resolved.contents
        if id(target) in self.expanding:
            raise _Unsupported  # recursive: a tree of any depth, not a fixed check
        outer = self.resolver
        self.resolver = resolved.resolver
        self.expanding.append(id(target))
        try:
            self.emit(target, v, lines, depth, root=True)
        finally:
            self.expanding.pop()
            self.resolver = outer

    @staticmethod
    def guard(v: str, types: frozenset[type] | None, applies_to: frozenset[type]) -> str | None:
        """The condition prefix limiting a keyword to the types it applies to; None: it never does."""
        if types is not None:
            if types <= applies_to:
                return ""
            if not types & applies_to:
                return None
        if applies_to == _NUMBERS:
            return f"(type({v}) is int or type({v}) is float) and "
        (only,) = applies_to
        return f"type({v}) is {only.__name__} and "

    def _check(
        self,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
        applies_to: frozenset[type],
        failing: str,
    ) -> None:
        guard = self.guard(v, types, applies_to)
        if guard is not None:
            lines.append(f"{'    ' * depth}if {guard}{failing}: return False")

    def _kw_enum(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        keys = frozenset((type(item), item) for item in value if type(item) in _SCALARS)
        pad = "    " * depth
        if not keys:
            lines.append(f"{pad}return False")
        else:
            c = self.const(keys)
            lines.append(
                f"{pad}if type({v}) not in _SCALARS or (type({v}), {v}) not in {c}: return False"
            )

    def _kw_const(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        self._kw_enum([value], schema, v, lines, depth, types)

    def _kw_required(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        c = self.const(frozenset(value))
        self._check(v, lines, depth, types, _DICT, f"not ({v}.keys() >= {c})")

    def _kw_minProperties(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        self._check(v, lines, depth, types, _DICT, f"len({v}) < {self.const(value)}")

    def _kw_maxProperties(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        self._check(v, lines, depth, types, _DICT, f"len({v}) > {self.const(value)}")

    def _kw_minItems(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        self._check(v, lines, depth, types, _LIST, f"len({v}) < {self.const(value)}")

    def _kw_maxItems(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        self._check(v, lines, depth, types, _LIST, f"len({v}) > {self.const(value)}")

    def _kw_minLength(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        # len() counts code points, as JSON Schema does.
        self._check(v, lines, depth, types, _STR, f"len({v}) < {self.const(value)}")

    def _kw_maxLength(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        self._check(v, lines, depth, types, _STR, f"len({v}) > {self.const(value)}")

    def _kw_pattern(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        # jsonschema applies `re.search`; so does this.
        c = self.const(re.compile(value))
        self._check(v, lines, depth, types, _STR, f"{c}.search({v}) is None")

    def _kw_minimum(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        # Draft 4 spells an exclusive bound as a boolean beside "minimum".
        op = "<=" if schema.get("exclusiveMinimum") is True else "<"
        self._check(v, lines, depth, types, _NUMBERS, f"{v} {op} {self.const(value)}")

    def _kw_maximum(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        op = ">=" if schema.get("exclusiveMaximum") is True else ">"
        self._check(v, lines, depth, types, _NUMBERS, f"{v} {op} {self.const(value)}")

    def _kw_exclusiveMinimum(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        if isinstance(value, bool):
            raise _Unsupported
        self._check(v, lines, depth, types, _NUMBERS, f"{v} <= {self.const(value)}")

    def _kw_exclusiveMaximum(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        if isinstance(value, bool):
            raise _Unsupported
        self._check(v, lines, depth, types, _NUMBERS, f"{v} >= {self.const(value)}")

    def _kw_properties(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        self._object(value, schema.get("additionalProperties", True), v, lines, depth, types)

    def _kw_additionalProperties(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        self._object({}, value, v, lines, depth, types)

    def _object(
        self,
        properties: Any,
        additional: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        guard = self.guard(v, types, _DICT)
        if guard is None:
            return
        inner = depth if guard == "" else depth + 1
        body: list[str] = []
        pad = "    " * inner
        known = self.const(frozenset(properties))
        if additional is False:
            body.append(f"{pad}if not ({v}.keys() <= {known}): return False")
        elif additional is not True:
            key, item = self.var(), self.var()
            scratch: list[str] = []
            self.emit(additional, item, scratch, inner + 2)
            if scratch:
                body.append(f"{pad}for {key}, {item} in {v}.items():")
                body.append(f"{pad}    if {key} not in {known}:")
                body.extend(scratch)
        for name, sub in properties.items():
            item = self.var()
            scratch = []
            self.emit(sub, item, scratch, inner + 1)
            if scratch:
                body.append(f"{pad}{item} = {v}.get({self.const(name)}, _MISSING)")
                body.append(f"{pad}if {item} is not _MISSING:")
                body.extend(scratch)
        if body and guard:
            lines.append(f"{'    ' * depth}if type({v}) is dict:")
        lines.extend(body)

    def _kw_items(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        if not isinstance(value, dict | bool):
            raise _Unsupported  # the tuple form of draft 4-2019
        guard = self.guard(v, types, _LIST)
        if guard is None:
            return
        inner = depth if guard == "" else depth + 1
        item = self.var()
        scratch: list[str] = []
        self.emit(value, item, scratch, inner + 1)
        if scratch:
            if guard:
                lines.append(f"{'    ' * depth}if type({v}) is list:")
            lines.append(f"{'    ' * inner}for {item} in {v}:")
            lines.extend(scratch)

    def _kw_allOf(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        for sub in value:
            self.emit(sub, v, lines, depth)

    def _kw_anyOf(
        self,
        value: Any,
        schema: Any,
        v: str,
        lines: list[str],
        depth: int,
        types: frozenset[type] | None,
    ) -> None:
        # A branch that cannot be generated proves nothing, but the others still can.
        names = []
        for sub in value:
            try:
                names.append(self.function(sub))
            except _Unsupported:
                continue
        if not names:
            raise _Unsupported
        calls = " or ".join(f"{name}({v})" for name in names)
        lines.append(f"{'    ' * depth}if not ({calls}): return False")


# --- the viewer side -------------------------------------------------------------------------------


class _Run:
    """A run of invalid (or unplanned) events of one name, each within `window` of the previous."""

    __slots__ = ("count", "last", "log", "since")

    def __init__(self, log: EpisodeLog, at: float) -> None:
        self.log = log
        self.since = at
        self.last = at
        self.count = 0


class PlanWatch:
    """Invalid and unplanned events as anomalies, per event name.

    A name is **invalid** (firing) from its first invalid event until `window` (15 minutes by
    default, as `eventtui check --window`) has passed without another, and **unplanned** (a
    warning) likewise while events of a name a strict plan does not list keep arriving.
    """

    def __init__(self, plan: Plan | None = None, *, window: float = DEFAULT_PLAN_WINDOW) -> None:
        self.plan = plan
        self.window = window
        self.strict = plan is not None and plan.strict
        self._runs: dict[tuple[str, str], _Run] = {}

    def observe(self, name: str, at: float, valid: bool) -> None:
        if not valid:
            self._mark(INVALID, name, at)
        if self.plan is not None and self.plan.is_unplanned(name):
            self._mark(UNPLANNED, name, at)

    def _mark(self, state: str, name: str, at: float) -> None:
        run = self._runs.get((state, name))
        if run is None:
            run = self._runs[(state, name)] = _Run(EpisodeLog("plan", name), at)
        elif at >= run.last + self.window:
            run.log.close(state, run.since, run.last + self.window, _episode_detail(state))
            run.since = at
            run.count = 0
        run.count += 1
        run.last = max(run.last, at)
        run.log.open(state, run.since, _episode_detail(state))

    def evaluate(self, now: float) -> list[Anomaly]:
        out = []
        for (state, name), run in self._runs.items():
            if now < run.last + self.window:
                out.append(Anomaly("plan", name, state, run.since, _live_detail(state, run.count)))
            else:
                run.log.close(state, run.since, run.last + self.window, _episode_detail(state))
        return out

    def episodes(self) -> list[Episode]:
        return [e for run in self._runs.values() for e in run.log.episodes()]


def _episode_detail(state: str) -> str:
    if state == INVALID:
        return "events break their tracking-plan schema"
    return "not in the tracking plan"


def _live_detail(state: str, count: int) -> str:
    plural = "" if count == 1 else "s"
    if state == INVALID:
        return f"{count} invalid event{plural}"
    return f"not in the tracking plan ({count} event{plural})"
