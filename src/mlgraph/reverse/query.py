"""The normalized boolean form of a saved search: what it means, not how it was written.

``status != 'failed'`` and ``NOT status == 'failed'`` are the same tree;
``IN`` and ``ANY`` are one equality with several values; values are in the
form documents are compared in (text lowercased, dates as epoch seconds).
The tree is stored as JSON next to the search's text, so loading a hundred
thousand searches does not parse a hundred thousand texts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

Scalar = str | int | float | bool


class Op(StrEnum):
    """What an atom asks of a field; each holds if *any* of the field's values satisfies it."""

    EQ = "eq"  # the value is one of ``values``
    GT = "gt"
    GE = "ge"
    LT = "lt"
    LE = "le"
    CONTAINS = "contains"  # the value contains ``values[0]``
    LIKE = "like"  # the value matches the pattern ``values[0]`` (``*``, ``?``)
    EXISTS = "exists"  # the field has a value at all

    @property
    def is_range(self) -> bool:
        return self in (Op.GT, Op.GE, Op.LT, Op.LE)


@dataclass(frozen=True, slots=True)
class Atom:
    field: str
    op: Op
    values: tuple[Scalar, ...] = ()
    relative: bool = False  # a range bound in seconds from "now" (``now-7d``)


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Either:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


Node = Atom | All | Either | Not


def all_of(items: list[Node]) -> Node:
    """AND of ``items``, flattened: nested ANDs become one."""
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, All) else (item,))
    return flat[0] if len(flat) == 1 else All(tuple(flat))


def either(items: list[Node]) -> Node:
    """OR of ``items``, flattened."""
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, Either) else (item,))
    return flat[0] if len(flat) == 1 else Either(tuple(flat))


def negate(item: Node) -> Node:
    return item.item if isinstance(item, Not) else Not(item)


def canonical_values(values: list[Scalar]) -> tuple[Scalar, ...]:
    """Distinct values in one order, so equal atoms compare and hash equal."""
    unique: dict[tuple[str, Scalar], Scalar] = {}
    for v in values:
        group = "bool" if isinstance(v, bool) else "number" if isinstance(v, int | float) else "str"
        unique.setdefault((group, v), v)
    return tuple(unique[k] for k in sorted(unique, key=lambda k: (k[0], k[1])))


def fields_of(node: Node) -> set[str]:
    if isinstance(node, Atom):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.item)
    return set().union(*(fields_of(i) for i in node.items))


def to_json(node: Node) -> list[Any]:
    if isinstance(node, Atom):
        return ["atom", node.field, node.op.value, list(node.values), node.relative]
    if isinstance(node, Not):
        return ["not", to_json(node.item)]
    return ["and" if isinstance(node, All) else "or", [to_json(i) for i in node.items]]


def from_json(data: Any) -> Node:
    tag = data[0]
    if tag == "atom":
        _, field, op, values, relative = data
        return Atom(field, Op(op), tuple(values), bool(relative))
    if tag == "not":
        return Not(from_json(data[1]))
    items = tuple(from_json(i) for i in data[1])
    if tag == "and":
        return All(items)
    if tag == "or":
        return Either(items)
    raise ValueError(f"not a compiled search node: {tag!r}")
