"""Personal data in an event's properties: built-in detectors, and the plan's forbidden paths.

Detectors (string values and key names): email addresses, payment card numbers (a card brand's
prefix and length, Luhn-checked), bearer tokens and JWTs, and keys named like passwords or
secrets. A finding names the path and the detector, never the value: it is stored in the event's
`errors` list as ``pii: properties.contact: email address`` (no schema change; the event stays
valid unless the plan says otherwise) and may be shown, logged and printed.

The collector runs this on every event, so the common case is a few substring tests on the
properties' JSON text (`might_hold`): only text that holds an "@", "eyJ", "earer", a secret-like
word or a string value that starts like a card number is decoded and walked to find the path. Ordinary analytics values (ids, URLs,
UUIDs, prices) must never hit: tests/test_pii.py keeps a corpus of them at zero.

May import: shapes, the standard library.
"""

from __future__ import annotations

import fnmatch
import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from eventtui.shapes import ROOT, walk

PII_PREFIX: Final = "pii: "
FORBIDDEN_PREFIX: Final = "forbidden: "

_EMAIL: Final = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_JWT: Final = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
_BEARER: Final = re.compile(r"\b[Bb]earer\s+[A-Za-z0-9\-._~+/]{16,}=*")
# 13 to 19 digits, in groups split by single spaces or dashes (as typed into a card form).
_CARD: Final = re.compile(r"(?<![\d.])\d(?:[ -]?\d){12,18}(?![\d.])")
# Card brands' prefixes: Visa 4; Mastercard 51-55 and 2221-2720; Amex 34, 37; Discover 6011, 65;
# JCB 3528-3589; Diners 36, 38. A bare Luhn check alone passes one in ten 16-digit ids.
_CARD_BRAND: Final = re.compile(
    r"4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]|[3-6]\d|7[01])\d{13}|2720\d{12}|3[47]\d{13}"
    r"|6011\d{12}|65\d{14}|35(?:2[89]|[3-8]\d)\d{12}|3[68]\d{12}"
)
# The raw-text prefilter for cards: a string value that starts like one (a brand's first digit
# right after its opening quote), then 12 or more digits more. A search of the whole text for any
# long digit run cost more than the rest of the check; a card number is a whole value, as typed.
_CARD_OPENERS: Final = ('"2', '"3', '"4', '"5', '"6')
_CARD_VALUE: Final = re.compile(r'"[2-6]\d{3}[ -]?\d{4}[ -]?\d{4}[ -]?\d')
_WORDS: Final = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_SECRET_WORDS: Final = frozenset(
    {"password", "passwd", "pwd", "passphrase", "secret", "apikey", "ssn", "cvv", "cvc"}
)
_SECRET_PAIRS: Final = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("private", "key"),
        ("secret", "key"),
        ("access", "token"),
        ("refresh", "token"),
        ("auth", "token"),
        ("id", "token"),
        ("client", "secret"),
        ("card", "number"),
        ("pass", "word"),
    }
)
# Lower-case fragments one of those keys must hold; a properties text without any skips the walk.
# Substring tests on the lowered text: a case-insensitive regex of the same words cost 6 us an event.
_SECRET_HINTS: Final = ("pass", "pwd", "secret", "key", "token", "ssn", "cvv", "cvc", "card")
# The same hints behind a character each of them needs: a one-character test is a memchr, about
# twenty times cheaper than a substring search, and most properties texts lack most of these
# characters, so most of the searches are never made (`_hinted`).
_GATED_HINTS: Final = (
    ("k", ("key", "token")),
    ("w", ("pwd",)),
    ("v", ("cvv", "cvc")),
    ("c", ("secret", "card")),
    ("ss", ("pass", "ssn")),
)
assert sorted(h for _, hints in _GATED_HINTS for h in hints) == sorted(_SECRET_HINTS)
assert all(gate in hint for gate, hints in _GATED_HINTS for hint in hints)
_key_cache: dict[str, bool] = {}


def value_hit(value: str) -> str | None:
    """The detector that `value` trips, or None."""
    if "@" in value and _EMAIL.search(value):
        return "email address"
    if "eyJ" in value and _JWT.search(value):
        return "JWT"
    if "earer" in value and _BEARER.search(value):
        return "bearer token"
    if len(value) >= 13:
        for match in _CARD.finditer(value):
            digits = re.sub(r"[ -]", "", match.group())
            if _CARD_BRAND.fullmatch(digits) and _luhn(digits):
                return "payment card number"
    return None


def key_hit(key: str) -> bool:
    """Whether a key is named like a password or a secret (`userPassword`, `api_key`, `ssn`)."""
    found = _key_cache.get(key)
    if found is None:
        words = [w.lower() for w in _WORDS.findall(key)]
        found = any(w in _SECRET_WORDS for w in words) or any(
            pair in _SECRET_PAIRS for pair in itertools.pairwise(words)
        )
        if len(_key_cache) < 10_000:  # keys repeat; a producer inventing keys cannot grow this
            _key_cache[key] = found
    return found


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def might_hold(text: str) -> bool:
    """Whether a properties JSON text is worth decoding to look for personal data (cheap)."""
    if "@" in text or "eyJ" in text or "earer" in text:
        return True
    if _hinted(text.lower()):
        return True
    for opener in _CARD_OPENERS:
        if opener in text:
            return _CARD_VALUE.search(text) is not None
    return False


# Every digit to "0", so a run of 13 (a card's shortest) is one substring search; spaces and dashes
# (a card's separators) are deleted first.
_DIGITS_TO_ZERO: Final = bytes.maketrans(b"0123456789", b"0000000000")
_THIRTEEN: Final = b"0" * 13


def any_might_hold(texts: list[str]) -> bool:
    """Whether any of these properties texts is worth a closer look: one pass over all of them.

    Looser than `might_hold` (a long digit run anywhere, not only a string that starts like a
    card) and so much cheaper per event: a frame of 100 ordinary events costs a few C-level scans
    of its joined text, no regular expression and no call per event.
    """
    joined = "\n".join(texts)
    if "@" in joined or ("J" in joined and "eyJ" in joined) or "earer" in joined:
        return True
    if _hinted(joined.lower()):
        return True
    return _THIRTEEN in joined.encode("utf-8", "surrogatepass").translate(_DIGITS_TO_ZERO, b" -")


def _hinted(lowered: str) -> bool:
    """Whether a lowered text holds one of `_SECRET_HINTS`, searching only behind their gates."""
    for gate, hints in _GATED_HINTS:
        if gate in lowered:
            for hint in hints:
                if hint in lowered:
                    return True
    return False


def findings(properties: Any, root: str = ROOT) -> list[str]:
    """`path: detector` for each hit in decoded properties, in walk order; each path once."""
    found: list[str] = []
    for path, value in walk(properties, root):
        leaf = _leaf_key(path)
        if leaf is not None and key_hit(leaf):
            found.append(f"{path}: key named like a secret")
        elif value.__class__ is str:
            hit = value_hit(value)
            if hit:
                found.append(f"{path}: {hit}")
    return found


def _leaf_key(path: str) -> str | None:
    if path.endswith("[]"):
        return None
    if path.endswith('"]'):
        start = path.rfind('["')
        return path[start + 2 : -2] if start >= 0 else None
    return path[path.rfind(".") + 1 :]


# --- forbidden paths ---------------------------------------------------------------------------


class ForbidPatternError(ValueError):
    """A `[plan] forbid` pattern that cannot be used; the message says why."""


def check_pattern(pattern: str) -> str | None:
    """Why a forbid pattern cannot be used, or None.

    A pattern is a property path (`properties.password`, `properties.user.ssn`) where `*` stands
    for any run of characters and `?` for one; `*.ssn` matches `ssn` at any depth.
    """
    if not pattern.strip():
        return "an empty pattern"
    if pattern != pattern.strip():
        return "spaces around the pattern"
    if "[" in pattern and "[]" not in pattern:
        return "brackets other than [] (an array's elements) are not part of a path"
    if ".." in pattern or pattern.endswith(".") or pattern.startswith("."):
        return "an empty segment (two dots, or a dot at an end)"
    return None


def compile_forbid(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One regex for all patterns (a path matches it when some pattern matches it), or None."""
    if not patterns:
        return None
    parts = []
    for pattern in patterns:
        problem = check_pattern(pattern)
        if problem:
            raise ForbidPatternError(f"{pattern!r}: {problem}")
        # fnmatch would read [] as a character class; a path's brackets are literal.
        translated = fnmatch.translate(pattern.replace("[]", "\0")).replace("\0", r"\[\]")
        parts.append(translated)
        if not pattern.startswith((ROOT + ".", "*")):
            # `password` and `user.ssn` mean paths under properties, as written in the plan.
            parts.append(
                fnmatch.translate(f"{ROOT}.{pattern}".replace("[]", "\0")).replace("\0", r"\[\]")
            )
    return re.compile("|".join(f"(?:{p})" for p in parts))


def forbidden(properties: Any, pattern: re.Pattern[str], root: str = ROOT) -> list[str]:
    """The paths of `properties` that a forbid pattern matches, in walk order."""
    return [path for path, _ in walk(properties, root) if pattern.match(path)]


def flagged_paths(errors: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(kind, finding) for the pii and forbidden entries of an event's errors list."""
    for error in errors:
        if error.startswith(PII_PREFIX):
            yield "pii", error[len(PII_PREFIX) :]
        elif error.startswith(FORBIDDEN_PREFIX):
            yield "forbidden", error[len(FORBIDDEN_PREFIX) :]


__all__ = [
    "FORBIDDEN_PREFIX",
    "PII_PREFIX",
    "ForbidPatternError",
    "any_might_hold",
    "check_pattern",
    "compile_forbid",
    "findings",
    "flagged_paths",
    "forbidden",
    "key_hit",
    "might_hold",
    "value_hit",
]
