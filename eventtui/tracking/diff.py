"""Two tracking snapshots compared: what regressed, what changed, each reported once.

Regressions (exit 1 in `eventtui diff`): a name the baseline had and the candidate lacks; a
property removed; a property whose values took a type the baseline never saw. Changes (reported,
exit 0): new names and properties, a property no longer always present, strings outside the
recorded domain, the first-appearance order, and counts outside a tolerance.

A path inside one already reported (an object removed, or turned into a string) is not reported
again: one cause, one line.

Pure: snapshots in (dicts as `snapshot.Builder` or `snapshot.load` give them), a `Diff` out.
May import: shapes, text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from eventtui.shapes import parent_paths

# Kinds, in the order a name's details are listed.
MISSING_NAME: Final = "missing_name"
NEW_NAME: Final = "new_name"
REMOVED: Final = "removed_property"
CHANGED_TYPE: Final = "changed_type"
ADDED: Final = "added_property"
NOT_ALWAYS: Final = "no_longer_always"
OUTSIDE_DOMAIN: Final = "values_outside_domain"
COUNT: Final = "count_changed"
ORDER: Final = "order_changed"
REGRESSIONS: Final = frozenset({MISSING_NAME, REMOVED, CHANGED_TYPE})
_KIND_ORDER: Final = (
    MISSING_NAME,
    NEW_NAME,
    REMOVED,
    CHANGED_TYPE,
    ADDED,
    NOT_ALWAYS,
    OUTSIDE_DOMAIN,
    COUNT,
)
_SHOWN_VALUES: Final = 5


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    name: str | None  # None: the whole snapshot (the order)
    path: str | None = None
    before: Any = None
    after: Any = None

    @property
    def regression(self) -> bool:
        return self.kind in REGRESSIONS

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "path": self.path,
            "before": self.before,
            "after": self.after,
            "regression": self.regression,
        }


@dataclass(frozen=True, slots=True)
class Diff:
    changes: tuple[Change, ...]

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.regression]

    @property
    def regressed_names(self) -> dict[str, str]:
        """Each name with a regression, and how: "missing" or "changed"."""
        out: dict[str, str] = {}
        for c in self.regressions:
            if c.name is not None:
                out[c.name] = "missing" if c.kind == MISSING_NAME else "changed"
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "regressions": len(self.regressions),
            "changes": [c.as_json() for c in self.changes],
        }


def parse_tolerance(text: str | None) -> float | None:
    """`--count-tolerance`: "25%" or "0.25" (a relative change beyond which a count is reported);
    None: only none-vs-some, which missing and new names already say. ValueError when unreadable."""
    if text is None:
        return None
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise ValueError(
            f"--count-tolerance: {text!r} is not a fraction (0.25) or a percentage (25%)"
        ) from None
    if not 0 <= value < float("inf"):
        raise ValueError(f"--count-tolerance: {text!r} must be 0 or more")
    return value


def diff(base: dict[str, Any], cand: dict[str, Any], *, tolerance: float | None = None) -> Diff:
    changes: list[Change] = []
    base_events: dict[str, Any] = base["events"]
    cand_events: dict[str, Any] = cand["events"]
    for name in sorted(base_events.keys() | cand_events.keys()):
        if name not in cand_events:
            changes.append(Change(MISSING_NAME, name, before=base_events[name]["count"], after=0))
        elif name not in base_events:
            changes.append(Change(NEW_NAME, name, before=0, after=cand_events[name]["count"]))
        else:
            changes.extend(_name_changes(name, base_events[name], cand_events[name], tolerance))
    order = _order_change(base["order"], cand["order"])
    if order is not None:
        changes.append(order)
    return Diff(tuple(changes))


def _name_changes(
    name: str, base: dict[str, Any], cand: dict[str, Any], tolerance: float | None
) -> list[Change]:
    out: list[Change] = []
    bp: dict[str, Any] = base["properties"]
    cp: dict[str, Any] = cand["properties"]
    reported: set[str] = set()
    optional: set[str] = set()  # reported "no longer always": its children follow from it

    def under_reported(path: str) -> bool:
        return any(p in reported for p in parent_paths(path))

    for path in sorted(bp.keys() | cp.keys()):
        if under_reported(path):
            reported.add(path)
            continue
        b, c = bp.get(path), cp.get(path)
        if c is None:
            assert b is not None  # the path came from one side or the other
            out.append(Change(REMOVED, name, path, before=b["types"]))
            reported.add(path)
        elif b is None:
            out.append(Change(ADDED, name, path, after=c["types"]))
            reported.add(path)
        elif set(c["types"]) - set(b["types"]):
            out.append(Change(CHANGED_TYPE, name, path, before=b["types"], after=c["types"]))
            reported.add(path)
        else:
            if b["always"] and not c["always"]:
                optional.add(path)
                if not any(p in optional for p in parent_paths(path)):
                    out.append(Change(NOT_ALWAYS, name, path))
            domain = b.get("values")
            if domain is not None and "string" in c["types"]:
                seen = c.get("values")
                if seen is None:
                    out.append(Change(OUTSIDE_DOMAIN, name, path, before=domain, after=None))
                else:
                    outside = sorted(set(seen) - set(domain))
                    if outside:
                        out.append(Change(OUTSIDE_DOMAIN, name, path, before=domain, after=outside))
    if tolerance is not None:
        before, after = base["count"], cand["count"]
        if abs(after - before) > tolerance * before:
            out.append(Change(COUNT, name, before=before, after=after))
    rank = {kind: i for i, kind in enumerate(_KIND_ORDER)}
    out.sort(key=lambda c: rank[c.kind])
    return out


def _order_change(base: list[str], cand: list[str]) -> Change | None:
    """The names both sides saw, in first-appearance order, when that order differs."""
    both = set(base) & set(cand)
    before = [n for n in base if n in both]
    after = [n for n in cand if n in both]
    if before == after:
        return None
    return Change(ORDER, None, before=before, after=after)


# --- text ------------------------------------------------------------------------------------------


def render_text(result: Diff, *, clean: Callable[[str], str]) -> str:
    """A `git diff --stat`-like summary, one line per name, then the details."""
    if not result.changes:
        return "no differences\n"
    by_name: dict[str | None, list[Change]] = {}
    for c in result.changes:
        by_name.setdefault(c.name, []).append(c)
    names = [n for n in by_name if n is not None]
    width = min(40, max((len(clean(n)) for n in names), default=5))
    lines: list[str] = []
    for name in names:
        items = by_name[name]
        regressions = sum(c.regression for c in items)
        if items[0].kind == MISSING_NAME:
            what = "missing"
        elif items[0].kind == NEW_NAME:
            what = "new"
        else:
            what = f"{len(items)} change{'s' * (len(items) != 1)}"
        if regressions and items[0].kind != MISSING_NAME:
            what += f" ({regressions} regression{'s' * (regressions != 1)})"
        lines.append(f" {_fit(clean(name), width)} | {what}")
    total = len(result.regressions)
    summary = f" {len(names)} name{'s' * (len(names) != 1)} differ, {total} regression{'s' * (total != 1)}"
    if None in by_name:
        summary += ", first-appearance order changed"
    lines.append(summary)
    lines.append("")
    for name in names:
        lines.append(clean(name))
        lines.extend(f"  {_detail(c, clean)}" for c in by_name[name])
    for c in by_name.get(None, []):
        lines.append(_detail(c, clean))
    return "\n".join(lines) + "\n"


def _fit(text: str, width: int) -> str:
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "…"


def _types(types: list[str]) -> str:
    return " | ".join(types)


def _values(values: list[str], clean: Callable[[str], str]) -> str:
    shown = ", ".join(clean(repr(v)) for v in values[:_SHOWN_VALUES])
    more = len(values) - _SHOWN_VALUES
    return shown + (f" and {more} more" if more > 0 else "")


def _detail(c: Change, clean: Callable[[str], str]) -> str:
    path = clean(c.path or "")
    if c.kind == MISSING_NAME:
        return f"- missing (baseline saw {c.before:,})"
    if c.kind == NEW_NAME:
        return f"+ new ({c.after:,} seen)"
    if c.kind == REMOVED:
        return f"- {path}: removed (was {_types(c.before)})"
    if c.kind == ADDED:
        return f"+ {path}: added ({_types(c.after)})"
    if c.kind == CHANGED_TYPE:
        return f"! {path}: type {_types(c.before)} → {_types(c.after)}"
    if c.kind == NOT_ALWAYS:
        return f"~ {path}: no longer always present"
    if c.kind == OUTSIDE_DOMAIN:
        if c.after is None:
            return f"~ {path}: more than the recorded values ({_values(c.before, clean)})"
        return f"~ {path}: values outside the recorded ones: {_values(c.after, clean)}"
    if c.kind == COUNT:
        return f"~ count {c.before:,} → {c.after:,}"
    before = ", ".join(clean(n) for n in c.before)
    after = ", ".join(clean(n) for n in c.after)
    return f"order of first appearance changed:\n  was {before}\n  now {after}"
