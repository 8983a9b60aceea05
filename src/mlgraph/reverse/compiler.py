"""Compiling a saved search: text -> syntax tree -> checked, normalized tree -> predicate + DNF.

``COMPILER_VERSION`` is stored with every saved search. A stored compiled form
of another version is not trusted: the search is compiled again from its
text, which is always kept.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlgraph.reverse import query
from mlgraph.reverse.checker import Checker
from mlgraph.reverse.normal import Conjunction, disjunctive
from mlgraph.reverse.predicate import Check, Prepared, check_of, prepare
from mlgraph.reverse.syntax import parse
from mlgraph.search.filter_fields import DocumentMapping, Kind

# Bump when the same text compiles to a different tree or the tree means
# something else (a new operator, another normalization of values).
COMPILER_VERSION = 1


class StaleCompilation(ValueError):
    """A stored compiled search from another compiler version: compile the text again."""


@dataclass(frozen=True)
class CompiledSearch:
    text: str
    tree: query.Node
    kinds: Mapping[str, Kind]  # the fields the search reads
    conjunctions: tuple[Conjunction, ...] | None  # None: too many to split, checked whole
    version: int = COMPILER_VERSION
    check: Check = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "check", check_of(self.tree))

    def prepare(self, document: Mapping[str, Any]) -> Prepared:
        return prepare(document, self.kinds.get)

    def matches(self, document: Mapping[str, Any], now: float | None = None) -> bool:
        """Whether ``document`` (field path -> value or list of values) matches."""
        return self.check(self.prepare(document), time.time() if now is None else now)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "tree": query.to_json(self.tree),
            "kinds": {k: v.value for k, v in sorted(self.kinds.items())},
        }


def compile_search(text: str, mapping: DocumentMapping) -> CompiledSearch:
    """The compiled form of ``text``; raises DslError pointing at the problem."""
    checker = Checker(text, mapping)
    tree = checker.check(parse(text))
    return CompiledSearch(text, tree, checker.kinds, disjunctive(tree))


def load_compiled(text: str, data: Mapping[str, Any]) -> CompiledSearch:
    """A compiled search as ``to_json`` stored it; StaleCompilation if from another version."""
    if data.get("version") != COMPILER_VERSION:
        raise StaleCompilation(f"compiled by version {data.get('version')}")
    tree = query.from_json(data["tree"])
    kinds = {k: Kind(v) for k, v in data["kinds"].items()}
    return CompiledSearch(text, tree, kinds, disjunctive(tree))
