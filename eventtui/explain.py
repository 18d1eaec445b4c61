"""Why one event does not match a filter, in words a developer can act on.

A test that waited for `name:sign_up plan=pro` and timed out wants to hear "name 'signup' ≠
'sign_up'" or "properties.plan is 'free', wanted 'pro'", not "0 matched". `Explainer` walks the
filter's tree (`filters.parse_filter`), judges each term on its own with `matching` (so a term
means exactly what it means in SQL), and words the terms that failed: names, name globs, property
and context comparisons, `has:`, `user:`, `type:`, `source:`, `session:`, `invalid` and quoted text; a
negated or OR-ed part that fails is named as written. Every piece of event data in a reason passes
through `text.clean` (a reason may be printed on a terminal).

May import: filters, matching, text.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Final

from eventtui.filters import Group, Node, Not, Term, parse_filter
from eventtui.matching import row_matcher
from eventtui.text import clean

__all__ = ["Explainer", "name_likeness"]

# Values in a reason are cut to this many characters: a reason is one line.
SHOWN_CHARS: Final = 60
# Names at least this alike (difflib's ratio, case folded) count as similar: "checkout_started"
# and "checkout_startd" (0.97), "signup" and "sign_up" (0.92), not "signup" and "login" (0.36).
SIMILAR_RATIO: Final = 0.8
_SEPARATORS: Final = re.compile(r"[\s_\-.:/]+")
_MISSING: Final = object()


@lru_cache(maxsize=256)
def _matcher(text: str) -> Callable[[Any], bool]:
    return row_matcher(text)


class Explainer:
    """A filter compiled once, to explain any number of events; raises FilterError."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tree = parse_filter(text)

    def reasons(self, event: Any) -> list[str]:
        """Why `event` (anything with the `events` columns as attributes) does not match: one
        reason per failing term; empty if it matches."""
        if self.tree is None:
            return []
        return _reasons(self.tree, event)

    def wanted_names(self) -> list[Term]:
        """The name terms an event must meet (not negated, not in an OR): where to look for
        events that came close."""
        found: list[Term] = []

        def walk(node: Node) -> None:
            if isinstance(node, Term) and node.kind in ("name", "glob", "word"):
                found.append(node)
            elif isinstance(node, Group) and node.op == "AND":
                for part in node.parts:
                    walk(part)

        if self.tree is not None:
            walk(self.tree)
        return found


def name_likeness(term: Term, name: str) -> float:
    """How close `name` comes to what a name term wants: 1.0 for a name that differs only in case
    or separators, else difflib's ratio of the case-folded texts (0 for a name that matches)."""
    wanted = term.value.replace("*", "").replace("?", "") if term.kind == "glob" else term.value
    if _matcher(term.text)(_NameOnly(name)):
        return 0.0
    if _squash(wanted) == _squash(name):
        return 1.0
    return difflib.SequenceMatcher(None, wanted.casefold(), name.casefold()).ratio()


class _NameOnly:
    """An event that has only a name, to judge name terms by themselves."""

    def __init__(self, name: str) -> None:
        self.name = name


def _squash(name: str) -> str:
    return _SEPARATORS.sub("", name).casefold()


def _reasons(node: Node, event: Any) -> list[str]:
    if isinstance(node, Term):
        return [] if _matcher(node.text)(event) else [_term_reason(node, event)]
    if isinstance(node, Not):
        if _reasons(node.part, event):
            return []
        return [f"it matches {_show(node.part.text)}, which the filter excludes"]
    if node.op == "AND":
        return [reason for part in node.parts for reason in _reasons(part, event)]
    alternatives = []
    for part in node.parts:
        failed = _reasons(part, event)
        if not failed:
            return []
        alternatives.append(" and ".join(failed))
    return ["none of its alternatives: " + "; or ".join(alternatives)]


def _term_reason(term: Term, event: Any) -> str:
    name = getattr(event, "name", "")
    wanted = _show(term.value)
    kind = term.kind
    if kind == "name":
        return f"name {_show(name)} ≠ {wanted}" + _name_hint(term.value, name)
    if kind == "glob":
        return f"name {_show(name)} does not match {wanted}"
    if kind == "word":
        return f"name {_show(name)} does not contain {wanted} (in any case)"
    if kind == "text":
        return f"{wanted} appears nowhere in the event"
    if kind == "invalid":
        return "the event is valid (it met the tracking plan), wanted an invalid one"
    if kind == "type":
        return f"type is {_show(getattr(event, 'type', ''))}, wanted {wanted}"
    if kind == "source":
        source = getattr(event, "source", None)
        return f"source is {_show(source) if source else 'not recorded'}, wanted {wanted}"
    if kind == "session":
        return f"session is {getattr(event, 'session_id', '?')}, wanted {term.value}"
    if kind == "user":
        ids = [
            f"{label} {_show(value)}"
            for label, value in (
                ("userId", getattr(event, "user_id", None)),
                ("anonymousId", getattr(event, "anonymous_id", None)),
            )
            if value is not None
        ]
        return f"{' and '.join(ids) or 'no userId or anonymousId'}, wanted {wanted}"
    label = ".".join((term.column, *term.path))
    actual = _lookup(event, term.column, term.path)
    if kind == "has":
        return f"{label} is missing"
    return _comparison_reason(term, label, actual)


def _comparison_reason(term: Term, label: str, actual: Any) -> str:
    value = term.value
    number = not term.literal and _is_number(value)
    keyword = not term.literal and value in ("true", "false", "null")
    wanted = value if number or keyword else _show(value)
    is_ = "is missing" if actual is _MISSING else f"is {_show_value(actual)}"
    if term.op == "=":
        note = _kind_note(actual, number, value) if actual is not _MISSING else ""
        return f"{label} {is_}, wanted {wanted}{note}"
    if term.op == "!=":
        return f"{label} {is_}, wanted anything but {wanted}"
    if term.op == "~":
        return f"{label} {is_}, wanted it to contain {_show(value)} (in any case)"
    if actual is not _MISSING and _is_numeric(actual) != number:
        kind = "a number" if number else "text"
        return f"{label} {is_}, wanted {kind} {term.op} {wanted}"
    return f"{label} {is_}, wanted {term.op} {wanted}"


def _kind_note(actual: Any, number: bool, value: str) -> str:
    """Why equal-looking values differ: a quoted "98" wants text, so the number 98 fails."""
    if not number and _is_numeric(actual) and _format(actual) == value:
        return " (text, and it is a number)"
    if isinstance(actual, bool) and value in ("1", "0"):
        return " (a number, and it is a boolean)"
    return ""


def _lookup(event: Any, column: str, path: tuple[str, ...]) -> Any:
    raw = getattr(event, column, None)
    try:
        value = json.loads(raw) if isinstance(raw, str | bytes) and raw else {}
    except ValueError:
        return _MISSING
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return _MISSING
        value = value[key]
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip() == text and text.lower() not in ("nan", "inf", "-inf", "infinity")


def _is_numeric(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _format(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _show_value(value: Any) -> str:
    """An event's value as a reason shows it: text quoted, the rest as JSON; short, clean."""
    return _show(value) if isinstance(value, str) else _cut(_format(value))


def _show(text: str) -> str:
    return "'" + _cut(text) + "'"


def _cut(text: str) -> str:
    text = clean(text)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _name_hint(wanted: str, name: str) -> str:
    if name.casefold() == wanted.casefold():
        return " (it differs in case)"
    if _squash(name) == _squash(wanted):
        return " (it differs in separators)"
    return ""
