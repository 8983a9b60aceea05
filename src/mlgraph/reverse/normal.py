"""Disjunctive normal form: a search as an OR of conjunctions of (possibly negated) atoms.

The percolator indexes each conjunction on its own: a document that matches
the search matches at least one conjunction, so the conjunctions' keys are
enough to find every search that can match. Distribution can multiply terms
(``(a OR b) AND (c OR d)`` has four conjunctions), so past ``MAX_CONJUNCTIONS``
a search is not split and is checked whole instead.
"""

from __future__ import annotations

from itertools import product

from mlgraph.reverse.query import All, Atom, Node, Not

MAX_CONJUNCTIONS = 64

Literal = tuple[Atom, bool]  # the atom, and whether it must hold (True) or must not
Conjunction = tuple[Literal, ...]


class TooLarge(Exception):
    """The normal form would have more than MAX_CONJUNCTIONS conjunctions."""


def disjunctive(node: Node, limit: int = MAX_CONJUNCTIONS) -> tuple[Conjunction, ...] | None:
    """The conjunctions of ``node``, simplified; None when there would be more than ``limit``.

    An empty result is a search that can never match (``a == 1 AND NOT a == 1``).
    """
    try:
        terms = _dnf(node, True, limit)
    except TooLarge:
        return None
    return _simplify(terms)


def _dnf(node: Node, positive: bool, limit: int) -> list[frozenset[Literal]]:
    if isinstance(node, Atom):
        return [frozenset({(node, positive)})]
    if isinstance(node, Not):
        return _dnf(node.item, not positive, limit)
    # De Morgan: a negated AND is an OR of negations, and the other way round.
    conjunctive = isinstance(node, All) == positive
    parts = [_dnf(item, positive, limit) for item in node.items]
    if not conjunctive:
        terms = [t for part in parts for t in part]
        if len(terms) > limit:
            raise TooLarge
        return terms
    size = 1
    for part in parts:
        size *= len(part)
        if size > limit:
            raise TooLarge
    return [frozenset().union(*combo) for combo in product(*parts)]


def _key(literal: Literal) -> tuple[str, str, str, bool, bool]:
    atom, positive = literal
    return (atom.field, atom.op.value, repr(atom.values), atom.relative, positive)


def _simplify(terms: list[frozenset[Literal]]) -> tuple[Conjunction, ...]:
    """Drop contradictions (a AND NOT a) and conjunctions another one already implies."""
    kept: list[frozenset[Literal]] = []
    for term in dict.fromkeys(terms):
        if any((atom, not positive) in term for atom, positive in term):
            continue
        kept.append(term)
    # Absorption: with `a` in the OR, `a AND b` adds nothing.
    minimal = [t for t in kept if not any(o < t for o in kept)]
    ordered = [tuple(sorted(t, key=_key)) for t in minimal]
    return tuple(sorted(ordered, key=lambda c: [_key(lit) for lit in c]))
