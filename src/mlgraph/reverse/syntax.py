"""Parsing a saved search into a syntax tree whose every part knows where it came from.

The tree is what was written, not yet checked against the search document:
``checker.py`` does that. Syntax errors are reworded from Lark's terminal
names into the words a person typing a search uses.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import lark
from lark import Token

from mlgraph.reverse.errors import DslError, Span, span_at
from mlgraph.reverse.grammar import GRAMMAR, OPERATOR_TERMINALS, TERMINAL_WORDS, VALUE_TERMINALS

ValueKind = Literal["string", "number", "date", "relative", "boolean"]

OPERATORS_IN_WORDS = "==, !=, >, >=, <, <=, IN, ANY, CONTAINS, LIKE or EXISTS"
MAX_LENGTH = 20_000  # characters: a saved search is a filter, not a document

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"now(?:\s*([+-])\s*(\d+)\s*([smhdw]))?", re.IGNORECASE)
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class Value:
    """A literal as written: text, a number, a date's text, an offset from now, true/false."""

    kind: ValueKind
    value: str | int | float | bool
    span: Span


@dataclass(frozen=True, slots=True)
class Path:
    name: str  # dotted, backquotes removed
    span: Span


@dataclass(frozen=True, slots=True)
class Comparison:
    path: Path
    operator: str  # ==, !=, >, >=, <, <=, IN, ANY, CONTAINS, LIKE, EXISTS
    negated: bool  # `owners NOT EXISTS`, `type NOT IN [...]`
    values: tuple[Value, ...]
    span: Span
    operator_span: Span
    is_list: bool = False  # IN and ANY take a list, even of one value


@dataclass(frozen=True, slots=True)
class Junction:
    operator: Literal["AND", "OR"]
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    item: Expr


Expr = Comparison | Junction | Negation


@cache
def _parser() -> lark.Lark:
    # The tree is built while parsing (no intermediate Lark tree): a third faster.
    return lark.Lark(
        GRAMMAR,
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        transformer=_Build(),
    )


class _NotFinite(Exception):
    def __init__(self, text: str, span: Span) -> None:
        self.text = text
        self.span = span


def parse(text: str) -> Expr:
    """The syntax tree of ``text``; a DslError says what is wrong and where."""
    if len(text) > MAX_LENGTH:
        raise DslError(
            f"the search is {len(text):,} characters long; at most {MAX_LENGTH:,} are allowed",
            text,
            span_at(text, MAX_LENGTH),
        )
    if not text.strip() or all(
        not line.strip() or line.lstrip().startswith("#") for line in text.splitlines()
    ):
        raise DslError("the search is empty", text, span_at(text, 0))
    try:
        expr: Expr = _parser().parse(text)  # type: ignore[assignment]
    except lark.exceptions.UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except _NotFinite as exc:
        raise DslError(f"{exc.text} is not a finite number", text, exc.span) from None
    return expr


def _token_span(token: Token) -> Span:
    start = token.start_pos or 0
    end = token.end_pos if token.end_pos is not None else start + len(token)
    return Span(start, end, token.line or 1, token.column or 1)


def _join(a: Span, b: Span) -> Span:
    return Span(a.start, b.end, a.line, a.column)


class _Build(lark.Transformer[Token, Any]):
    """Lark's tree into the syntax tree above, keeping spans (run by the parser)."""

    def start(self, items: list[Expr]) -> Expr:
        return items[0]

    def or_expr(self, items: list[Expr]) -> Expr:
        return Junction("OR", tuple(items))

    def and_expr(self, items: list[Expr]) -> Expr:
        return Junction("AND", tuple(items))

    def negation(self, items: list[Any]) -> Expr:
        return Negation(items[1])

    def path(self, segments: list[Token]) -> Path:
        name = ".".join(str(s).strip("`") for s in segments)
        return Path(name, _join(_token_span(segments[0]), _token_span(segments[-1])))

    def value(self, items: list[Token]) -> Value:
        token = items[0]
        span = _token_span(token)
        text = str(token)
        kind = token.type
        if kind == "STRING":
            body = text[1:-1]
            return Value("string", _ESCAPE.sub(_unescape, body), span)
        if kind == "NUMBER":
            number = float(text) if any(c in text for c in ".eE") else int(text)
            try:
                finite = math.isfinite(number)
            except OverflowError:  # an integer no float can hold: ranges would crash on it
                finite = False
            if not finite:
                raise _NotFinite(text, span)
            return Value("number", number, span)
        if kind == "DATE":
            return Value("date", text, span)
        if kind == "RELATIVE":
            return Value("relative", _relative_seconds(text), span)
        return Value("boolean", kind == "TRUE", span)

    def value_list(self, items: list[Value | None]) -> tuple[Value, ...]:
        return tuple(v for v in items if v is not None)

    def compare(self, items: list[Any]) -> Comparison:
        path, operator, value = items
        return Comparison(
            path,
            str(operator),
            False,
            (value,),
            _join(path.span, value.span),
            _token_span(operator),
        )

    def _listed(self, items: list[Any], last: Span, values: tuple[Value, ...]) -> Comparison:
        path, negated, operator = items[0], items[1], items[2]
        return Comparison(
            path,
            str(operator).upper(),
            negated is not None,
            values,
            _join(path.span, last),
            _token_span(operator),
            is_list=True,
        )

    def within(self, items: list[Any]) -> Comparison:
        return self._list_comparison(items)

    def any_of(self, items: list[Any]) -> Comparison:
        return self._list_comparison(items)

    def _list_comparison(self, items: list[Any]) -> Comparison:
        values: tuple[Value, ...] = items[3]
        last = values[-1].span if values else _token_span(items[2])
        return self._listed(items, last, values)

    def contains(self, items: list[Any]) -> Comparison:
        return self._single(items)

    def like(self, items: list[Any]) -> Comparison:
        return self._single(items)

    def _single(self, items: list[Any]) -> Comparison:
        path, negated, operator, value = items
        return Comparison(
            path,
            str(operator).upper(),
            negated is not None,
            (value,),
            _join(path.span, value.span),
            _token_span(operator),
        )

    def exists(self, items: list[Any]) -> Comparison:
        path, negated, operator = items
        span = _token_span(operator)
        return Comparison(path, "EXISTS", negated is not None, (), _join(path.span, span), span)


def _unescape(match: re.Match[str]) -> str:
    char = match.group(1)
    return {"n": "\n", "t": "\t"}.get(char, char)


def _relative_seconds(text: str) -> float:
    found = _RELATIVE.fullmatch(text.strip())
    assert found is not None  # the grammar only lets these through
    sign, amount, unit = found.groups()
    if amount is None:
        return 0.0
    seconds = float(int(amount) * UNIT_SECONDS[unit.lower()])
    return -seconds if sign == "-" else seconds


# -- syntax errors, in words --------------------------------------------------------


def _expected_words(expected: set[str]) -> str:
    words: list[str] = []
    if expected & OPERATOR_TERMINALS:
        words.append(f"an operator ({OPERATORS_IN_WORDS})")
    if expected & VALUE_TERMINALS:
        words.append("a value ('text', 42, true, 2025-01-31 or now-7d)")
    for name in sorted(expected - OPERATOR_TERMINALS - VALUE_TERMINALS):
        word = TERMINAL_WORDS.get(name, name)
        if word not in words:
            words.append(word)
    if len(words) <= 1:
        return "".join(words) or "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _describe(token: Token) -> str:
    if token.type == "SEGMENT":
        return f"the word {str(token)!r}"
    if token.type in VALUE_TERMINALS:
        return f"the value {token!s}"
    return repr(str(token))


def _syntax_error(text: str, exc: lark.exceptions.UnexpectedInput) -> DslError:
    if isinstance(exc, lark.exceptions.UnexpectedToken):
        token = exc.token
        expected = set(exc.expected)
        if token.type == "$END":
            return DslError(
                f"the search ends too early: expected {_expected_words(expected)}",
                text,
                span_at(text, len(text.rstrip())),
            )
        span = _token_span(token)
        if token.type == "SEGMENT" and expected & VALUE_TERMINALS:
            return DslError(
                f"{str(token)!r} is not a value: quote text ('{token!s}'), or write a number, "
                "true/false, a date (2025-01-31) or now-7d",
                text,
                span,
            )
        if expected & OPERATOR_TERMINALS:
            return DslError(
                f"expected an operator ({OPERATORS_IN_WORDS}) after the field, "
                f"found {_describe(token)}",
                text,
                span,
            )
        return DslError(
            f"unexpected {_describe(token)}: expected {_expected_words(expected)}", text, span
        )
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos] if pos < len(text) else ""
        span = span_at(text, pos)
        allowed = set(exc.allowed or ())
        if char in "'\"":
            return DslError(f"unterminated text: add the closing {char}", text, span)
        if char == "=" and "OPERATOR" in allowed:
            return DslError("'=' is not an operator: did you mean '=='?", text, span)
        if char == "`":
            return DslError("unterminated field name: add the closing `", text, span)
        return DslError(
            f"unexpected character {char!r}: expected {_expected_words(allowed)}", text, span
        )
    return DslError(f"the search does not parse ({exc})", text, span_at(text, 0))
