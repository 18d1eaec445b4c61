"""The filter language: one grammar, compiled to parameterised SQL over the `events` table.

Owns the grammar of README.md ("Finding events: the filter language") that the TUI filter bar, `query`, `export`,
`replay` and expectations all share. `compile_filter(text)` returns a `Compiled` WHERE clause and
its parameters, or raises `FilterError` naming the bad term and its position. User text never
reaches the SQL string: every value, pattern and JSON path is a parameter.

Grammar (terms are separated by spaces)::

    checkout              name contains "checkout" (case-insensitive for ASCII letters)
    name:checkout_*       name glob, case-sensitive; `*` any run, `?` one character;
                          without a wildcard it is an exact name (and can use the name index)
    plan=pro              property equals; also != < <= > >= and ~ (contains, case-insensitive)
    cart.total>=100       nested property path; `properties.` may be written, `context.` reads context
    has:coupon            the property exists (even when its value is null)
    user:42               user_id or anonymous_id is 42
    session:3             events of session 3
    type:page             track, page, screen, identify, group or alias
    source:posthog        the protocol it arrived in: eventtui, segment, posthog, snowplow,
                          amplitude, mixpanel or import
    invalid               events that broke the tracking plan (valid = 0)
    "quoted text"         anywhere in the payload: name, type, ids, properties, context, other fields
    -term                 negation; `-(a OR b)` negates a group
    a b                   AND (an explicit `AND` is allowed too)
    a OR b                OR, upper case only; lower-case `or` is a bare word
    ( ... )               grouping

Precedence, as in SQL: `-` binds tightest, then AND, then OR. `a b OR c` is `(a AND b) OR c`;
`a OR b c` is `a OR (b AND c)`. Use parentheses to say otherwise.

Values and paths may be quoted (`plan="pro plan"`, `"cart.total"=5` for a key with a dot); inside
quotes `\\"` and `\\\\` escape, and `* ? ( ) : = < > ~` are plain characters. A quoted value is always
a string. An unquoted value that reads as a number compares as a number (`=` also matches a string
holding exactly that text, as producers often send ids as strings); `true`, `false`, `null` match
those JSON values; anything else compares as a string. Ranges only match values of the same kind
(a number never satisfies `plan<m`). `!=` is the negation of `=`: an event without the property
matches `plan!=pro`, as it matches `-plan=pro`; add `has:plan` to exclude it.

May import: the standard library only (nothing from eventtui, no sqlite3).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Generic, TypeVar

__all__ = [
    "Compiled",
    "FilterError",
    "Group",
    "Node",
    "Not",
    "Term",
    "compile_filter",
    "parse_filter",
]

# Mirrors eventtui.model.EVENT_TYPES (this module imports nothing from eventtui); a test keeps
# the two equal.
EVENT_TYPES: Final = ("track", "page", "screen", "identify", "group", "alias")
# Mirrors eventtui.model.SOURCES, kept equal by a test as EVENT_TYPES is.
SOURCES: Final = ("eventtui", "segment", "posthog", "snowplow", "amplitude", "mixpanel", "import")
FIELDS: Final = ("name", "has", "user", "session", "type", "source")
# Bounds that keep every accepted filter inside SQLite's limits (measured on 3.40: 21 nested
# negated groups overflow its parser stack; an expression deeper than 1000 is an error).
MAX_TERMS: Final = 100
MAX_NESTING: Final = 10
# SQLite refuses LIKE and GLOB patterns over 50,000 bytes; escaping can grow a term 12-fold.
MAX_TERM_CHARS: Final = 1000
_INT64_MAX: Final = 2**63 - 1

_NUMBER: Final = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER: Final = re.compile(r"-?\d+")
_OPERATORS: Final = ("!=", "<=", ">=", ":", "=", "<", ">", "~")


@dataclass(frozen=True, slots=True)
class Compiled:
    """A filter as SQL: `WHERE {where}` over `events`, with `params` bound in order."""

    where: str
    params: tuple[object, ...]


class FilterError(ValueError):
    """A filter that does not compile; `position` is the 0-based offset of `term` in the text."""

    def __init__(self, reason: str, *, term: str, position: int) -> None:
        self.reason = reason
        self.term = term
        self.position = position
        # Columns are counted from 1 for people; `position` stays 0-based for carets.
        super().__init__(f"{term!r} (column {position + 1}): {reason}")


def compile_filter(text: str) -> Compiled:
    """Compile a filter string to a parameterised WHERE clause; raises FilterError."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        # Undecodable command-line bytes arrive as lone surrogates; sqlite3 could not bind them.
        raise FilterError(
            "not valid text (an undecodable character)",
            term=text[exc.start : exc.end],
            position=exc.start,
        ) from None
    tokens = _tokenize(text)
    if not tokens:
        return Compiled("1", ())
    terms = [t for t in tokens if t.kind == "term"]
    if len(terms) > MAX_TERMS:
        extra = terms[MAX_TERMS]
        raise FilterError(
            f"a filter may hold at most {MAX_TERMS} terms",
            term=extra.text,
            position=extra.start,
        )
    where, params = _Parser(tokens, _SQL_BUILD).parse()
    return Compiled(where, tuple(params))


# --- the filter as a tree (to explain why an event does not match) --------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a filter, as written and as understood.

    `kind`: "word" (the name contains `value`), "text" (quoted: anywhere in the payload),
    "invalid", "name" (an exact name), "glob" (a name glob), "has", "user", "session", "type",
    "source", or
    "compare" (a property or context path `op` `value`). `text` is the term's source, itself a
    filter of one term. For "has" and "compare", `column` is "properties" or "context" and `path`
    the keys below it. `literal`: the value was quoted (always a string).
    """

    text: str
    kind: str
    value: str = ""
    op: str = ""
    column: str = ""
    path: tuple[str, ...] = ()
    literal: bool = False


@dataclass(frozen=True, slots=True)
class Group:
    """Terms joined by `op`, "AND" or "OR"."""

    op: str
    parts: tuple[Node, ...]

    @property
    def text(self) -> str:
        return "(" + f" {self.op} ".join(p.text for p in self.parts) + ")"


@dataclass(frozen=True, slots=True)
class Not:
    part: Node

    @property
    def text(self) -> str:
        return "-" + self.part.text


Node = Term | Group | Not


def parse_filter(text: str) -> Node | None:
    """The filter as a tree of terms (None for an empty filter); raises FilterError as
    `compile_filter` does. The tree means what the SQL means: each `Term.text` compiles alone."""
    compile_filter(text)  # the same checks, the same errors
    tokens = _tokenize(text)
    return _Parser(tokens, _TREE_BUILD).parse() if tokens else None


# --- lexing ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "term", "(", ")", "-", "OR", "AND"
    start: int
    text: str  # the source text, for error messages
    # For terms: each character with whether it was inside quotes (quoted characters are literal),
    # and where in `chars` each quoted section began (so `""` still counts as a quoted value).
    chars: tuple[tuple[str, bool], ...] = ()
    quotes: tuple[int, ...] = ()

    def quoted(self, start: int, stop: int) -> bool:
        """Whether anything in chars[start:stop] was written in quotes."""
        return any(start <= q <= stop for q in self.quotes) or any(
            quoted for _, quoted in self.chars[start:stop]
        )


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append(_Token(ch, i, ch))
            i += 1
        elif ch == "-":
            following = text[i + 1] if i + 1 < n else ""
            if not following or following.isspace() or following == ")":
                raise FilterError(
                    "'-' must be followed by the term it negates", term="-", position=i
                )
            if following == "-":
                raise FilterError("negate a term once, with a single '-'", term="--", position=i)
            tokens.append(_Token("-", i, "-"))
            i += 1
        else:
            token, i = _read_term(text, i)
            if token.text in ("OR", "AND"):  # keywords only when written bare, in capitals
                token = _Token(token.text, token.start, token.text)
            tokens.append(token)
    return tokens


def _read_term(text: str, start: int) -> tuple[_Token, int]:
    chars: list[tuple[str, bool]] = []
    quotes: list[int] = []
    i, n = start, len(text)
    while i < n and not text[i].isspace() and text[i] not in "()":
        if text[i] != '"':
            chars.append((text[i], False))
            i += 1
            continue
        quote = i
        quotes.append(len(chars))
        i += 1
        while True:
            if i >= n:
                raise FilterError("this quote is never closed", term=text[quote:], position=quote)
            if text[i] == '"':
                i += 1
                break
            if text[i] == "\\" and i + 1 < n and text[i + 1] in '"\\':
                i += 1
            chars.append((text[i], True))
            i += 1
    if i - start > MAX_TERM_CHARS:
        raise FilterError(
            f"a term may be at most {MAX_TERM_CHARS:,} characters long",
            term=text[start : start + 20] + "...",
            position=start,
        )
    return _Token("term", start, text[start:i], tuple(chars), tuple(quotes)), i


# --- parsing -----------------------------------------------------------------------------------

# A compiled fragment: SQL text and its parameters, in order.
_Sql = tuple[str, list[object]]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class _Build(Generic[_T]):
    """What the parser builds from a term, from terms joined by " AND " or " OR ", from a negation."""

    term: Callable[[_Token], _T]
    join: Callable[[str, list[_T]], _T]
    negate: Callable[[_T], _T]


class _Parser(Generic[_T]):
    """Recursive descent: or_expr := and_expr (OR and_expr)*; and_expr := unary+; unary := -? primary."""

    def __init__(self, tokens: list[_Token], build: _Build[_T]) -> None:
        self.tokens = tokens
        self.build = build
        self.i = 0

    def parse(self) -> _T:
        sql = self._or_expr(depth=0)
        extra = self._peek()
        if extra is not None:  # only a ')' can stop an or_expr early
            raise _error(extra, "this ')' closes nothing")
        return sql

    def _peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def _take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def _or_expr(self, depth: int) -> _T:
        parts = [self._and_expr(depth)]
        while (token := self._peek()) is not None and token.kind == "OR":
            self._take()
            parts.append(self._and_expr(depth, after=token))
        return parts[0] if len(parts) == 1 else self.build.join(" OR ", parts)

    def _and_expr(self, depth: int, after: _Token | None = None) -> _T:
        parts: list[_T] = []
        while (token := self._peek()) is not None and token.kind not in ("OR", ")"):
            if token.kind == "AND":
                self._take()
                following = self._peek()
                if not parts or following is None or following.kind in ("OR", "AND", ")"):
                    raise _error(token, "AND needs a term on each side")
                continue
            parts.append(self._unary(depth))
        if not parts:
            stop = after or self._peek()
            assert stop is not None  # the token list is not empty, and `after` is set past it
            if stop.kind == "OR":
                raise _error(stop, "OR needs a term on each side")
            raise _error(stop, "this ')' closes nothing")
        return parts[0] if len(parts) == 1 else self.build.join(" AND ", parts)

    def _unary(self, depth: int) -> _T:
        token = self._take()
        if token.kind == "-":
            nxt = self._peek()
            if nxt is None or nxt.kind not in ("term", "("):
                raise _error(token, "'-' must be followed by the term it negates")
            return self.build.negate(self._primary(self._take(), depth))
        return self._primary(token, depth)

    def _primary(self, token: _Token, depth: int) -> _T:
        if token.kind == "term":
            return self.build.term(token)
        if token.kind != "(":
            raise _error(token, f"unexpected {token.text!r}")
        if depth >= MAX_NESTING:
            raise _error(token, f"parentheses may nest at most {MAX_NESTING} deep")
        inner = self._peek()
        if inner is None:
            raise _error(token, "this '(' is never closed")
        if inner.kind == ")":
            raise _error(token, "empty parentheses")
        sql = self._or_expr(depth + 1)
        close = self._peek()
        if close is None:
            raise _error(token, "this '(' is never closed")
        self._take()
        return sql


def _describe_term(token: _Token) -> Term:
    """A term as `Term` (the token compiled already, so it is known to be well formed)."""
    chars = token.chars
    found = _find_operator(chars)
    text = "".join(c for c, _ in chars)
    if found is None:
        if token.quoted(0, len(chars)):
            return Term(token.text, "text", text, literal=True)
        return Term(token.text, "invalid" if text == "invalid" else "word", text)
    at, op = found
    key, value = chars[:at], chars[at + len(op) :]
    literal = token.quoted(at + len(op), len(chars))
    value_text = "".join(c for c, _ in value)
    if op == ":":
        field = "".join(c for c, _ in key)
        if field == "name":
            glob = any(c in "*?" and not quoted for c, quoted in value)
            return Term(token.text, "glob" if glob else "name", value_text, literal=literal)
        if field == "has":
            column, names = _path(token, value)
            return Term(token.text, "has", column=column, path=tuple(names))
        return Term(token.text, field, value_text, literal=literal)
    column, names = _path(token, key)
    return Term(token.text, "compare", value_text, op, column, tuple(names), literal)


def _tree_join(op: str, parts: list[Node]) -> Node:
    return Group(op.strip(), tuple(parts))


def _join(op: str, parts: list[_Sql]) -> _Sql:
    return "(" + op.join(sql for sql, _ in parts) + ")", [p for _, params in parts for p in params]


def _negate(part: _Sql) -> _Sql:
    # coalesce: a missing property makes a comparison NULL, and NOT NULL would drop the event;
    # `-plan=pro` must keep events that have no plan.
    sql, params = part
    return f"NOT coalesce({sql}, 0)", params


def _error(token: _Token, reason: str) -> FilterError:
    return FilterError(reason, term=token.text, position=token.start)


# --- terms -------------------------------------------------------------------------------------

# Free text searches the plain-text columns as written and the JSON columns in their stored
# (JSON-escaped) form, so `"say \"hi\""` finds a property holding `say "hi"`.
_PLAIN_COLUMNS: Final = ("name", "type", "user_id", "anonymous_id", "message_id")
_JSON_COLUMNS: Final = ("properties", "context", "extra")
# LIKE, not instr(lower(...)): measured 2.5-4x faster on 100k rows, as it folds case without
# copying the text. Both fold ASCII letters only.
_LIKE: Final = "LIKE ? ESCAPE '\\'"


def _compile_term(token: _Token) -> _Sql:
    chars = token.chars
    found = _find_operator(chars)
    text = "".join(c for c, _ in chars)
    if found is None:
        if token.quoted(0, len(chars)):
            if not text:
                raise _error(token, "empty quotes: nothing to search for")
            plain, escaped = _contains(text), _contains(_json_escaped(text))
            columns = [f"{c} {_LIKE}" for c in _PLAIN_COLUMNS + _JSON_COLUMNS]
            params: list[object] = [plain] * len(_PLAIN_COLUMNS)
            params += [escaped] * len(_JSON_COLUMNS)
            return "(" + " OR ".join(columns) + ")", params
        if text == "invalid":
            return "valid = 0", []
        return f"name {_LIKE}", [_contains(text)]
    at, op = found
    key, value = chars[:at], chars[at + len(op) :]
    key_quoted, value_quoted = token.quoted(0, at), token.quoted(at + len(op), len(chars))
    if not key:
        raise _error(token, f"a property name is missing before {op!r}")
    if not value and not value_quoted:
        raise _error(token, f'a value is missing after {op!r} (write "" for an empty string)')
    if op == ":":
        if key_quoted:
            raise _error(token, "a field name (name:, has:, ...) is written without quotes")
        return _compile_field(token, key, value)
    return _compile_comparison(token, key, op, value, literal=value_quoted)


def _find_operator(chars: tuple[tuple[str, bool], ...]) -> tuple[int, str] | None:
    """The first unquoted operator: it splits the key from the value (which may hold more)."""
    for i, (ch, quoted) in enumerate(chars):
        if quoted:
            continue
        if i + 1 < len(chars) and not chars[i + 1][1]:
            pair = ch + chars[i + 1][0]
            if pair in _OPERATORS:
                return i, pair
        if ch in _OPERATORS:
            return i, ch
    return None


def _compile_field(
    token: _Token, key: tuple[tuple[str, bool], ...], value: tuple[tuple[str, bool], ...]
) -> _Sql:
    field = "".join(c for c, _ in key)
    if field not in FIELDS:
        raise _error(
            token,
            f"unknown field {field + ':'!r} (fields are {', '.join(f + ':' for f in FIELDS)};"
            ' to find a name holding ":", write name:"*a:b*")',
        )
    text = "".join(c for c, _ in value)
    if field == "name":
        if not any(c in "*?" and not quoted for c, quoted in value):
            return "name = ?", [text]
        return "name GLOB ?", [_glob_pattern(value)]
    if field == "has":
        column, path = _json_path(token, value)
        return f"json_type({column}, ?) IS NOT NULL", [path]
    if field == "user":
        return "(user_id = ? OR anonymous_id = ?)", [text, text]
    if field == "session":
        if not re.fullmatch(r"\d+", text) or int(text) > _INT64_MAX:
            raise _error(
                token, f"a session is a number, as `eventtui sessions` lists; got {text!r}"
            )
        return "session_id = ?", [int(text)]
    if field == "source":
        if text not in SOURCES:
            raise _error(token, f"source must be one of {', '.join(SOURCES)}; got {text!r}")
        return "source = ?", [text]
    if text not in EVENT_TYPES:
        raise _error(token, f"type must be one of {', '.join(EVENT_TYPES)}; got {text!r}")
    return "type = ?", [text]


def _glob_pattern(value: tuple[tuple[str, bool], ...]) -> str:
    """SQLite GLOB with only `*` and `?` as wildcards: `[` and quoted wildcards match themselves."""
    out = []
    for ch, quoted in value:
        if ch in "*?[" and (quoted or ch == "["):
            out.append(f"[{ch}]")
        else:
            out.append(ch)
    return "".join(out)


def _json_path(token: _Token, chars: tuple[tuple[str, bool], ...]) -> tuple[str, str]:
    """The column and SQLite JSON path for `cart.total`, `properties.cart.total`, `context.ip`."""
    column, names = _path(token, chars)
    # SQLite matches a quoted path label against the key as stored, escapes included.
    return column, "$" + "".join(f'."{_json_escaped(name)}"' for name in names)


def _path(token: _Token, chars: tuple[tuple[str, bool], ...]) -> tuple[str, list[str]]:
    """The column and the keys below it for `cart.total`, `properties.cart.total`, `context.ip`."""
    segments: list[list[tuple[str, bool]]] = [[]]
    for ch, quoted in chars:
        if ch == "." and not quoted:
            segments.append([])
        else:
            segments[-1].append((ch, quoted))
    names = ["".join(c for c, _ in seg) for seg in segments]
    column = "properties"
    first = segments[0]
    if len(segments) > 1 and not any(q for _, q in first) and names[0] in ("properties", "context"):
        column, names = names[0], names[1:]
    for name in names:
        if not name:
            raise _error(token, "a property path has an empty part (two dots, or a dot at an end)")
        if '"' in name or "\x00" in name:
            raise _error(token, "a property name with a double quote or NUL cannot be addressed")
    return column, names


def _compile_comparison(
    token: _Token,
    key: tuple[tuple[str, bool], ...],
    op: str,
    value: tuple[tuple[str, bool], ...],
    *,
    literal: bool,
) -> _Sql:
    column, path = _json_path(token, key)
    text = "".join(c for c, _ in value)
    extract = f"json_extract({column}, ?)"
    json_type = f"json_type({column}, ?)"
    if op == "~":
        return f"{extract} {_LIKE}", [path, _contains(text)]
    number = None if literal else _number(token, text)
    keyword = None if literal or text not in ("true", "false", "null") else text
    if op in ("=", "!="):
        params: list[object]
        if keyword is not None:
            sql, params = f"{json_type} = ?", [path, keyword]
        elif number is not None:
            # json_extract gives true/false as 1/0, so `x=1` must not take a boolean for a number.
            sql = f"({extract} IN (?, ?) AND {json_type} NOT IN ('true', 'false'))"
            params = [path, number, text, path]
        else:
            sql, params = f"{extract} = ?", [path, text]
        return (f"NOT coalesce({sql}, 0)", params) if op == "!=" else (sql, params)
    if keyword is not None:
        raise _error(token, f"{text} has no order; use = or != with it")
    # SQLite orders every number before every string; the type check keeps ranges to one kind.
    # It comes second so it only runs on rows that already passed the (cheaper to fail) comparison.
    kinds = "('integer', 'real')" if number is not None else "('text')"
    return (
        f"({extract} {op} ? AND {json_type} IN {kinds})",  # `op` is one of < <= > >=
        [path, number if number is not None else text, path],
    )


def _number(token: _Token, text: str) -> int | float | None:
    if not _NUMBER.fullmatch(text):
        return None
    if _INTEGER.fullmatch(text) and abs(int(text)) <= _INT64_MAX:
        return int(text)
    number = float(text)
    if number in (float("inf"), float("-inf")):
        raise _error(token, f"the number {text} is too large")
    return number


def _contains(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own `%`, `_` and `\\` taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _json_escaped(text: str) -> str:
    """`text` as it appears inside a stored JSON string (the store's encoder escapes the same way)."""
    return json.dumps(text, ensure_ascii=False)[1:-1]


_SQL_BUILD: Final[_Build[_Sql]] = _Build(_compile_term, _join, _negate)
_TREE_BUILD: Final[_Build[Node]] = _Build(_describe_term, _tree_join, Not)
