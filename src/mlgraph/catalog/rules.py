"""Inference rules: relationships the enricher derives by walking relationship paths.

A rule is declared on a relationship in the type schema::

    associated_ab_tests: {target: AbTest, rule: "pipeline_run / ab_test_cells / test"}

Each step names a relationship as read from where the walk stands (declared
or inverse); ``~name`` walks the declared relationship ``name`` backwards, from
its target to the type that declares it. Compiling a rule turns each step
into the edge labels to follow outwards and inwards, so that evaluating it is
one set-at-a-time query per step, whatever types the walk passes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mlgraph.catalog.schema import EntityType, Relationship

Direction = Literal["out", "in"]


class RuleError(ValueError):
    """A rule path that does not fit the schema (the schema loader reports where)."""


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    backwards: bool = False

    def __str__(self) -> str:
        return f"~{self.name}" if self.backwards else self.name


@dataclass(frozen=True, slots=True)
class Hop:
    """One step, compiled: labels followed from ``src`` to ``dst`` and from ``dst`` to ``src``."""

    out: frozenset[str]
    inward: frozenset[str]

    def directions(self, label: str) -> tuple[Direction, ...]:
        found: tuple[Direction, ...] = ()
        if label in self.out:
            found += ("out",)
        if label in self.inward:
            found += ("in",)
        return found


@dataclass(frozen=True, slots=True)
class Rule:
    """``source.name := path``: a compiled inference rule."""

    relationship: Relationship
    steps: tuple[Step, ...]
    hops: tuple[Hop, ...]
    targets: frozenset[str]  # types the walk can end on that the relationship accepts

    @property
    def label(self) -> str:
        return self.relationship.label

    @property
    def source(self) -> str:
        return self.relationship.source

    @property
    def path(self) -> str:
        return " / ".join(str(s) for s in self.steps)

    @property
    def reads(self) -> frozenset[str]:
        """Every edge label the rule's derivations depend on."""
        return frozenset(label for hop in self.hops for label in hop.out | hop.inward)

    def __str__(self) -> str:
        return f"{self.label} := {self.path}"


def parse_path(text: str) -> tuple[Step, ...]:
    """``"a / ~b / c"`` -> steps; a clear error for an empty or malformed step."""
    steps = []
    for i, part in enumerate(text.split("/"), start=1):
        part = part.strip()
        backwards = part.startswith("~")
        name = part[1:].strip() if backwards else part
        if not name.isidentifier():
            raise RuleError(f"step {i} {part!r} is not a relationship name")
        steps.append(Step(name, backwards))
    return tuple(steps)


def compile_rule(types: Mapping[str, EntityType], relationship: Relationship) -> Rule:
    """Resolve every step of ``relationship.rule`` against the declared types."""
    assert relationship.rule is not None
    steps = parse_path(relationship.rule)
    here = {relationship.source}
    hops = []
    for i, step in enumerate(steps, start=1):
        out: set[str] = set()
        inward: set[str] = set()
        there: set[str] = set()
        if step.backwards:
            # Walk the declared relationship ``name`` from its target back to
            # its source. Inverse names are left out: they already read backwards.
            for tname, etype in types.items():
                view = etype.relationships.get(step.name)
                if view is not None and view.direction == "out":
                    decl = view.declarations[0]
                    if here & set(decl.targets):
                        inward.add(decl.label)
                        there.add(tname)
        else:
            for tname in sorted(here):
                view = types[tname].relationships.get(step.name)
                if view is None:
                    continue
                (out if view.direction == "out" else inward).update(view.labels)
                there.update(view.targets)
        if not there:
            raise RuleError(
                f"step {i} {str(step)!r} is not a relationship of {' or '.join(sorted(here))}"
            )
        hops.append(Hop(frozenset(out), frozenset(inward)))
        here = there
    ends = here & set(relationship.targets)
    if not ends:
        raise RuleError(
            f"the path ends on {' or '.join(sorted(here))}, "
            f"but the relationship targets {' or '.join(relationship.targets)}"
        )
    return Rule(relationship, steps, tuple(hops), frozenset(ends))


def in_dependency_order(rules: Mapping[str, Rule]) -> tuple[Rule, ...]:
    """Rules ordered so that each comes after the rules whose edges it reads."""
    ordered: list[Rule] = []
    state: dict[str, str] = {}

    def visit(rule: Rule, chain: tuple[str, ...]) -> None:
        if state.get(rule.label) == "done":
            return
        if state.get(rule.label) == "visiting":
            cycle = " -> ".join((*chain, rule.label))
            raise RuleError(f"rules depend on each other in a cycle: {cycle}")
        state[rule.label] = "visiting"
        for label in sorted(rule.reads):
            if label in rules:
                visit(rules[label], (*chain, rule.label))
        state[rule.label] = "done"
        ordered.append(rule)

    for label in sorted(rules):
        visit(rules[label], ())
    return tuple(ordered)
