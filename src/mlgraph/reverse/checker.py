"""Checking a syntax tree against the document mapping, giving the normalized tree.

Every error points at the part of the text at fault: an unknown field (with
the closest known one), an operator its field's kind does not take, a value
of the wrong kind.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlgraph.reverse.errors import DslError
from mlgraph.reverse.query import (
    Atom,
    Node,
    Op,
    Scalar,
    all_of,
    canonical_values,
    either,
    negate,
)
from mlgraph.reverse.syntax import Comparison, Expr, Junction, Negation, Value
from mlgraph.search.filter_document import parse_date
from mlgraph.search.filter_fields import DocumentMapping, FieldInfo, Kind

RANGES: Mapping[str, Op] = {">": Op.GT, ">=": Op.GE, "<": Op.LT, "<=": Op.LE}

OPERATORS: Mapping[Kind, tuple[str, ...]] = {
    Kind.KEYWORD: ("==", "!=", "IN", "CONTAINS", "LIKE", "EXISTS"),
    Kind.TEXT: ("CONTAINS", "LIKE", "EXISTS"),
    Kind.NUMBER: ("==", "!=", ">", ">=", "<", "<=", "IN", "EXISTS"),
    Kind.DATE: ("==", "!=", ">", ">=", "<", "<=", "EXISTS"),
    Kind.BOOLEAN: ("==", "!=", "IN", "EXISTS"),
    Kind.KEYWORDS: ("==", "!=", "IN", "ANY", "CONTAINS", "LIKE", "EXISTS"),
}

MAX_VALUES = 1000  # in one IN/ANY list

_HINTS: Mapping[tuple[Kind, str], str] = {
    (Kind.TEXT, "=="): "text is searched with CONTAINS or LIKE",
    (Kind.TEXT, "!="): "text is searched with NOT ... CONTAINS or NOT ... LIKE",
    (Kind.KEYWORD, "ANY"): "ANY is for list fields; use IN to give one field several values",
    (Kind.NUMBER, "ANY"): "ANY is for list fields; use IN to give one field several values",
    (Kind.BOOLEAN, "ANY"): "ANY is for list fields; use IN to give one field several values",
}


class Checker:
    """Turns one search's syntax tree into its normalized tree, or raises DslError."""

    def __init__(self, text: str, mapping: DocumentMapping) -> None:
        self.text = text
        self.mapping = mapping
        self.kinds: dict[str, Kind] = {}  # every field the search reads, with its kind

    def check(self, expr: Expr) -> Node:
        if isinstance(expr, Junction):
            items = [self.check(i) for i in expr.items]
            return all_of(items) if expr.operator == "AND" else either(items)
        if isinstance(expr, Negation):
            return negate(self.check(expr.item))
        return self.comparison(expr)

    def fail(self, reason: str, at: Comparison | Value) -> DslError:
        span = at.span if isinstance(at, Value) else at.operator_span
        return DslError(reason, self.text, span)

    def field(self, c: Comparison) -> FieldInfo:
        info = self.mapping.lookup(c.path.name)
        if info is None:
            close = self.mapping.suggest(c.path.name)
            hint = f" (did you mean {close!r}?)" if close else ""
            raise DslError(f"unknown field {c.path.name!r}{hint}", self.text, c.path.span)
        return info

    def comparison(self, c: Comparison) -> Node:
        info = self.field(c)
        allowed = OPERATORS[info.kind]
        if c.operator not in allowed:
            hint = _HINTS.get((info.kind, c.operator))
            if hint is None and c.operator in RANGES:
                hint = "only numbers and dates are ordered"
            raise self.fail(
                f"{c.operator} does not apply to {info.path!r}, a {info.kind.value} field; "
                f"it takes {', '.join(allowed)}" + (f" ({hint})" if hint else ""),
                c,
            )
        if c.is_list and not c.values:
            raise self.fail(f"{c.operator} needs at least one value in its list", c)
        if len(c.values) > MAX_VALUES:
            raise self.fail(f"{c.operator} takes at most {MAX_VALUES} values", c)
        self.kinds[info.path] = info.kind
        node = self.atom(c, info)
        negated = c.negated or c.operator == "!="
        return negate(node) if negated else node

    def atom(self, c: Comparison, info: FieldInfo) -> Node:
        path = info.path
        if c.operator == "EXISTS":
            return Atom(path, Op.EXISTS)
        if c.operator in RANGES:
            value, relative = self.ordered(c.values[0], info, c.operator)
            return Atom(path, RANGES[c.operator], (value,), relative)
        if c.operator in ("CONTAINS", "LIKE"):
            text = self.textual(c.values[0], info, c.operator)
            return Atom(path, Op.CONTAINS if c.operator == "CONTAINS" else Op.LIKE, (text,))
        values = [self.equal(v, info) for v in c.values]
        if info.is_reference:
            return self.references(path, values)
        return Atom(path, Op.EQ, canonical_values(values))

    def references(self, path: str, values: list[Scalar]) -> Node:
        """A relationship compares with URIs; a bare id compares with the URIs' id part."""
        uris = [v for v in values if "://" in str(v)]
        ids = [v for v in values if "://" not in str(v)]
        id_path = f"{path}.id"
        if ids:
            self.kinds[id_path] = Kind.KEYWORDS
        atoms: list[Node] = []
        if uris:
            atoms.append(Atom(path, Op.EQ, canonical_values(uris)))
        if ids:
            atoms.append(Atom(id_path, Op.EQ, canonical_values(ids)))
        return either(atoms)

    # -- literals ------------------------------------------------------------------

    def textual(self, v: Value, info: FieldInfo, operator: str) -> str:
        if v.kind != "string":
            raise self.fail(
                f"{operator} takes text in quotes, e.g. '{_plain(v)}'; got {_written(v)}", v
            )
        return str(v.value).lower()

    def equal(self, v: Value, info: FieldInfo) -> Scalar:
        kind = info.kind
        if kind.textual:
            if v.kind != "string":
                raise self.fail(
                    f"{info.path!r} holds text: write it in quotes, e.g. '{_plain(v)}'; "
                    f"got {_written(v)}",
                    v,
                )
            return str(v.value).lower()
        if kind is Kind.NUMBER:
            if v.kind != "number":
                raise self.fail(f"{info.path!r} is a number field; got {_written(v)}", v)
            return v.value
        if kind is Kind.BOOLEAN:
            if v.kind != "boolean":
                raise self.fail(
                    f"{info.path!r} is a boolean field: compare it with true or false; "
                    f"got {_written(v)}",
                    v,
                )
            return v.value
        if v.kind == "relative":
            raise self.fail(
                "a relative date (now-7d) moves; compare with >, >=, < or <= instead of ==", v
            )
        return self.date(v, info)

    def ordered(self, v: Value, info: FieldInfo, operator: str) -> tuple[float, bool]:
        if info.kind is Kind.NUMBER:
            if v.kind != "number":
                raise self.fail(f"{info.path!r} is a number field; got {_written(v)}", v)
            return float(v.value), False
        if v.kind == "relative":
            return float(v.value), True
        return self.date(v, info), False

    def date(self, v: Value, info: FieldInfo) -> float:
        if v.kind not in ("date", "string"):
            raise self.fail(
                f"{info.path!r} is a date field: write a date (2025-01-31, "
                f"2025-01-31T12:00:00Z) or a relative one (now-7d); got {_written(v)}",
                v,
            )
        moment = parse_date(str(v.value))
        if moment is None:
            raise self.fail(
                f"{_written(v)} is not a date: write 2025-01-31, 2025-01-31T12:00:00Z or now-7d",
                v,
            )
        return moment


def _plain(v: Value) -> str:
    return str(v.value).lower() if v.kind == "boolean" else str(v.value)


def _written(v: Value) -> str:
    """A literal as the user wrote it, roughly, with what kind of value it is."""
    if v.kind == "string":
        return f"the text '{v.value}'"
    if v.kind == "boolean":
        return f"the boolean {str(v.value).lower()}"
    if v.kind == "relative":
        return "a relative date"
    return f"the {v.kind} {v.value}"
