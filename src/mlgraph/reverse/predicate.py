"""A compiled search as a predicate over a document.

A document is first *prepared*: each field's values become a tuple in the form
atoms compare with (text lowercased, dates as epoch seconds, values of the
wrong kind dropped). A prepared document is checked by plain closures, one per
atom, built once per search: no tree walking when it counts. Preparing lives
with the document (``search/filter_document.py``): the search index holds the
same prepared values, so forward search compares what this module compares.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

from mlgraph.reverse.query import All, Atom, Node, Not, Op, Scalar

# Re-exported: the compiler and the percolator prepare documents through this module.
from mlgraph.search.filter_document import KindOf as KindOf
from mlgraph.search.filter_document import Prepared as Prepared
from mlgraph.search.filter_document import prepare as prepare

Check = Callable[[Prepared, float], bool]  # (prepared document, now in epoch seconds)


# -- checks -----------------------------------------------------------------------------


def check_of(node: Node) -> Check:
    """A function telling whether a prepared document satisfies ``node``."""
    if isinstance(node, Atom):
        return atom_check(node)
    if isinstance(node, Not):
        inner = check_of(node.item)
        return lambda doc, now: not inner(doc, now)
    checks = tuple(check_of(i) for i in node.items)
    if isinstance(node, All):
        return all_checks(checks)
    return lambda doc, now: any(c(doc, now) for c in checks)


def all_checks(checks: tuple[Check, ...]) -> Check:
    if len(checks) == 1:
        return checks[0]
    if len(checks) == 2:
        first, second = checks
        return lambda doc, now: first(doc, now) and second(doc, now)

    def every(doc: Prepared, now: float) -> bool:
        for check in checks:  # noqa: SIM110 - see _ORDER
            if not check(doc, now):
                return False
        return True

    return every


def literal_check(atom: Atom, positive: bool) -> Check:
    check = atom_check(atom)
    if positive:
        return check
    return lambda doc, now: not check(doc, now)


def atom_check(atom: Atom) -> Check:
    field = atom.field
    op = atom.op
    if op is Op.EXISTS:
        return lambda doc, now: field in doc
    if op is Op.EQ:
        return _equal(field, atom.values)
    if op.is_range:
        return _range(field, op, float(atom.values[0]), atom.relative)
    text = str(atom.values[0])
    if op is Op.CONTAINS:
        return _contains(field, text)
    return _like(field, text)


def _equal(field: str, values: tuple[Scalar, ...]) -> Check:
    if len(values) == 1:
        value = values[0]

        def one(doc: Prepared, now: float) -> bool:
            found = doc.get(field)
            return found is not None and value in found

        return one
    wanted = frozenset(values)

    def several(doc: Prepared, now: float) -> bool:
        found = doc.get(field)
        return found is not None and not wanted.isdisjoint(found)

    return several


# Checks run for every candidate of every document: plain loops, not
# ``any(<generator>)``, which builds a generator per call and costs several
# times as much.
_ORDER: dict[Op, Callable[[Any, Any], bool]] = {
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
}


def _range(field: str, op: Op, bound: float, relative: bool) -> Check:
    compare = _ORDER[op]
    if relative:

        def moving(doc: Prepared, now: float) -> bool:
            limit = now + bound
            for v in doc.get(field, ()):  # noqa: SIM110 - see _ORDER
                if compare(v, limit):
                    return True
            return False

        return moving

    def fixed(doc: Prepared, now: float) -> bool:
        for v in doc.get(field, ()):  # noqa: SIM110 - see _ORDER
            if compare(v, bound):
                return True
        return False

    return fixed


def _contains(field: str, text: str) -> Check:
    def contains(doc: Prepared, now: float) -> bool:
        for v in doc.get(field, ()):  # noqa: SIM110 - see _ORDER
            if text in v:
                return True
        return False

    return contains


def _like(field: str, pattern: str) -> Check:
    matches = like_regex(pattern)

    def like(doc: Prepared, now: float) -> bool:
        for v in doc.get(field, ()):  # noqa: SIM110 - see _ORDER
            if matches(v):
                return True
        return False

    return like


def like_regex(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """``*`` is any run of characters, ``?`` any one character; the rest is literal."""
    parts = ("." if ch == "?" else ".*" if ch == "*" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.DOTALL).fullmatch
