"""The JSON Schema half of the tracking plan: compile a schema once, judge an event's properties.

`plan.Plan` reads the config and the schema files; for each schema it calls `build`, which checks
the schema, resolves its "$ref"s now (a missing file fails at load, not at ingest) and returns a
`CompiledSchema`: jsonschema's validator, which has the last word and writes the messages, and
fastjsonschema's where its reading cannot accept more than jsonschema's (see `plan.py`'s docstring
for why and `_fast_path_fits` for when). This module is imported only when a plan names a schema:
jsonschema and referencing cost ~0.1 s of start-up that a viewer without schemas need not pay.

May import: jsonschema, referencing, fastjsonschema, eventtui.plan_files (the limits, errors and loader).
"""

from __future__ import annotations

import copy
import itertools
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

import fastjsonschema
from jsonschema import (
    Draft3Validator,
    Draft7Validator,
    Draft201909Validator,
    Draft202012Validator,
)
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource, Specification
from referencing.exceptions import Unresolvable
from referencing.jsonschema import specification_with

from eventtui.plan_files import MAX_ERROR_CHARS, MAX_ERRORS, PlanError, SchemaFileError, SchemaFiles

if TYPE_CHECKING:
    # Documented API, but referencing does not re-export the type.
    from referencing._core import Resolver

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    validator: Validator
    # fastjsonschema's validator: returns only for instances `validator` accepts, raises otherwise
    # (JsonSchemaValueException, or anything else: both mean "ask jsonschema"). None: no fast path.
    fast: Callable[[Any], object] | None
    source: str

    def errors(self, instance: Any) -> list[str]:
        """One line per error of `instance`, at most MAX_ERRORS (+ a line saying more were left out)."""
        try:
            found = list(itertools.islice(self.validator.iter_errors(instance), MAX_ERRORS + 1))
        except Unresolvable as exc:
            return [f"schema {self.source}: cannot resolve {_file_problem(exc) or exc}"]
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


def build(
    schema: Any, where: str, source: str, base_dir: Path, files: SchemaFiles
) -> CompiledSchema:
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
    registry: Registry[Any] = Registry(retrieve=_local_files(base_dir, spec, files))  # type: ignore[call-arg]
    validator = cls(schema, registry=registry)
    resolver = registry.resolver_with_root(
        Resource.from_contents(schema, default_specification=spec)
    )
    _check_refs(schema, resolver, where)
    return CompiledSchema(validator, _fast_path(schema, cls, resolver, base_dir, files), source)


def _specification(cls: type[Validator]) -> Specification[Any]:
    dialect = cls.META_SCHEMA.get("$id") or cls.META_SCHEMA.get("id")
    return specification_with(str(dialect))


def _local_path(base_dir: Path, uri: str) -> Path | None:
    """The file a "$ref" URI names, relative to the schema file; None for anything not a local file."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return Path(url2pathname(parts.path))
    if not parts.scheme and not parts.netloc:
        return base_dir / unquote(parts.path)
    return None


_NOT_FETCHED: Final = (
    "not fetched: references must name local files (nothing is fetched over the network)"
)


def _local_files(
    base_dir: Path, spec: Specification[Any], files: SchemaFiles
) -> Callable[[str], Resource[Any]]:
    def retrieve(uri: str) -> Resource[Any]:
        # referencing reports what this raises as the cause of its Unresolvable (see _check_refs).
        path = _local_path(base_dir, uri)
        if path is None:
            raise SchemaFileError(uri, _NOT_FETCHED)
        contents = files.load(path)
        try:
            return Resource.from_contents(contents, default_specification=spec)
        except Exception as exc:  # CannotDetermineSpecification: referencing would not wrap it
            raise SchemaFileError(path, f"not a schema ({exc!r})") from None

    return retrieve


def _check_refs(schema: Any, resolver: Resolver[Any], where: str) -> None:
    """Resolve the schema's "$ref"s now, so a missing file or definition fails at load, not at ingest."""
    for ref in _refs(schema, root=True):
        try:
            resolver.lookup(ref)
        except Unresolvable as exc:
            reason = _file_problem(exc) or str(exc)
            raise PlanError(
                f'{where}: cannot resolve "$ref" {json.dumps(ref)} ({reason})'
            ) from None


def _file_problem(exc: BaseException) -> str | None:
    """The SchemaFileError behind a failed lookup, as text: the file and what is wrong with it."""
    cause = exc.__cause__
    while cause is not None:
        if isinstance(cause, SchemaFileError):
            return str(cause)
        cause = cause.__cause__
    return None


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

_LATER_DRAFTS: Final = (Draft201909Validator, Draft202012Validator)
# Where drafts 4-7 (and fastjsonschema) find subschemas. Keywords only later drafts know are refused
# before their subschemas would be reached.
_ONE_SCHEMA: Final = frozenset(
    {
        "additionalItems",
        "additionalProperties",
        "contains",
        "else",
        "if",
        "items",
        "not",
        "propertyNames",
        "then",
    }
)
_SCHEMA_LISTS: Final = frozenset({"allOf", "anyOf", "items", "oneOf"})
_SCHEMA_MAPS: Final = frozenset({"dependencies", "patternProperties", "properties"})
# Below these a stricter subschema can make the whole schema accept more.
_TURNING: Final = frozenset({"if", "not", "oneOf"})
# Regex constructs below which a stricter "$" can match more: negative lookarounds, atomic groups,
# possessive quantifiers, conditionals.
_TURNING_REGEX: Final = re.compile(r"\(\?<?!|\(\?>|\(\?\(|[*+?}]\+")
# Later-draft keywords with no draft 7 meaning that act through other keywords, so jsonschema's
# keyword tables do not list them.
_LATER_ONLY: Final = frozenset(
    {"$anchor", "$dynamicAnchor", "$recursiveAnchor", "maxContains", "minContains"}
)


class _NotForFastPath(Exception):
    """A document fastjsonschema must not read: jsonschema alone judges the schema."""


def _fast_path(
    schema: Any, cls: type[Validator], resolver: Resolver[Any], base_dir: Path, files: SchemaFiles
) -> Callable[[Any], Any] | None:
    """fastjsonschema's validator for `schema`, or None where it could judge unlike jsonschema."""
    if cls is Draft3Validator:
        return None
    try:
        if not _fast_path_fits(schema, cls, resolver):
            return None
        # fastjsonschema rewrites the "$ref"s of the schema it is given: it gets a copy.
        return fastjsonschema.compile(
            copy.deepcopy(schema),
            handlers=_fast_path_handlers(base_dir, cls, files),
            use_default=False,  # it would write the defaults into the event
            use_formats=False,  # an annotation, as for jsonschema
            # Left on although no message is read: fastjsonschema 2.22 cannot compile "const" without.
            detailed_exceptions=True,
        )
    # Whatever fastjsonschema cannot compile (its own errors, a refused document, a regex it
    # rewrote, generated code Python refuses) is left to jsonschema.
    except Exception as exc:
        logger.debug("no fast path for this schema: %r", exc)
        return None


def _fast_path_handlers(
    base_dir: Path, cls: type[Validator], files: SchemaFiles
) -> dict[str, Callable[[str], Any]]:
    def local(uri: str) -> Any:
        path = _local_path(base_dir, uri)
        if path is None:
            raise _NotForFastPath(uri)
        # fastjsonschema rewrites the documents it is handed; the loader's copy is shared.
        document = copy.deepcopy(files.load(path))
        # A document's own "$id" moves where its references point, and its "$schema" can change
        # the rules mid-way: fastjsonschema follows neither as jsonschema does.
        if isinstance(document, dict) and (
            _declares_id(document) or validator_for(document, default=cls) is not cls
        ):
            raise _NotForFastPath(uri)
        return document

    def remote(uri: str) -> Any:
        raise _NotForFastPath(uri)

    # fastjsonschema fetches with urlopen every scheme it has no handler for; these are all the
    # schemes urlopen knows besides "file".
    return {"": local, "file": local} | dict.fromkeys(("http", "https", "ftp", "data"), remote)


def _fast_path_fits(schema: Any, cls: type[Validator], resolver: Resolver[Any]) -> bool:
    """Whether fastjsonschema accepts only what jsonschema's `cls` accepts, for every instance.

    fastjsonschema implements drafts 4, 6 and 7 and reads any later schema as draft 7. This walks
    the schema once, following "$ref"s with jsonschema's resolver, and refuses:

    - in 2019-09 and 2020-12 schemas, every keyword whose draft 7 meaning differs or is missing:
      those jsonschema's keyword tables do not share with draft 7 (prefixItems, unevaluated*,
      dependentRequired, dependentSchemas, $dynamicRef, $recursiveRef, and dependencies and
      additionalItems, which draft 7 applies), anchors, min/maxContains, and keywords beside a
      "$ref" (applied since 2019-09; drafts 4-7 and fastjsonschema ignore them). Items as an array
      means in 2019-09 what it means in draft 7, and 2020-12 rejects it (`check_schema`); a
      "$ref" into "$defs" is a JSON pointer in every draft;
    - in every draft: a "$id" below the top, or one at the top with a reference to another file (the
      two libraries disagree on its corners); a "$schema" below the top naming another draft;
      multipleOf (fastjsonschema divides decimals exactly, jsonschema in floats: 19.01 is a multiple
      of 0.01 only for fastjsonschema); percent-escapes in a "$ref" (decoded before splitting);
    - where being stricter is not safe, fastjsonschema's extra strictness: it turns "$" in a
      pattern into "\\Z" (no match before a final newline) and asserts contentEncoding and
      contentMediaType. Under not, oneOf or if, or inside a regex construct that negates or
      commits, stricter can mean accepting more.
    """
    later = cls in _LATER_DRAFTS
    refused = (
        _LATER_ONLY | (cls.VALIDATORS.keys() ^ Draft7Validator.VALIDATORS.keys())
        if later
        else frozenset()
    )
    applied_beside_ref = cls.VALIDATORS.keys() - {"$ref"} if later else frozenset()
    top_id = isinstance(schema, dict) and _declares_id(schema)
    seen: set[tuple[int, bool]] = set()

    def fits(node: Any, resolver: Resolver[Any], turned: bool, top: bool = False) -> bool:
        if not isinstance(node, dict) or (id(node), turned) in seen:
            return True  # booleans mean the same everywhere; a node seen is walked once
        seen.add((id(node), turned))
        if not top and (_declares_id(node) or validator_for(node, default=cls) is not cls):
            return False
        if node.keys() & refused or "multipleOf" in node:
            return False
        pattern = node.get("pattern")
        if (
            isinstance(pattern, str)
            and "$" in pattern
            and (turned or _TURNING_REGEX.search(pattern))
        ):
            return False
        if turned and node.keys() & {"contentEncoding", "contentMediaType"}:
            return False
        if "$ref" in node:
            ref = node["$ref"]
            if not isinstance(ref, str) or "%" in ref or (top_id and not ref.startswith("#")):
                return False
            if node.keys() & applied_beside_ref:
                return False
            try:
                resolved = resolver.lookup(ref)
            except Unresolvable:
                return False
            if not fits(resolved.contents, resolved.resolver, turned):
                return False
            # Drafts 4-7 ignore the keywords beside a "$ref", as fastjsonschema does.
            if not later:
                return True
        return all(fits(sub, resolver, turned or key in _TURNING) for key, sub in _subschemas(node))

    return fits(schema, resolver, turned=False, top=True)


def _subschemas(node: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for key, value in node.items():
        if key in _ONE_SCHEMA and isinstance(value, dict):
            yield key, value
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            yield from ((key, item) for item in value)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            yield from ((key, item) for item in value.values())


def _declares_id(node: dict[str, Any]) -> bool:
    # "id" in drafts up to 4, "$id" since; fastjsonschema reads either in every draft.
    return isinstance(node.get("$id"), str) or isinstance(node.get("id"), str)
