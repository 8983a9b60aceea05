"""Inferred relationships: derive them from rule paths, and keep them in step with the graph.

An inferred edge ``a --rule--> z`` holds while at least one path the rule
describes leads from ``a`` to ``z``. Maintenance never patches edges one
derivation at a time: a change to an edge the rule reads marks the rule's
*start* entities it may affect (found by walking the rule backwards from the
changed edge), and those starts are derived again from the current graph and
compared with the inferred edges they have. Re-deriving every start is then
the same computation over all of them, so the incremental and the full
results agree by construction, and "another derivation still supports it"
needs no bookkeeping.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlgraph.catalog.rules import Hop, Rule
from mlgraph.store import ChangeItem, Edge, Op, Provenance, Store

SUPPORT_KEPT = 3  # derivations recorded on each inferred edge (the first, in URI order)
PROVENANCE = Provenance("enricher", None, "enricher")

Path = tuple[tuple[str, str, str], ...]  # the supporting edges, as (src, label, dst)


@dataclass(frozen=True, slots=True)
class Derived:
    """One inferred edge as the rule derives it now."""

    src: str
    dst: str
    provenance: dict[str, Any]


@dataclass
class Report:
    """What one round of maintenance (or a full re-derivation) did, or would do."""

    starts: int = 0
    asserted: int = 0
    retracted: int = 0
    updated: int = 0  # same edge, different supporting derivations
    tx: list[int] = field(default_factory=list)
    by_rule: dict[str, int] = field(default_factory=dict)  # changes per rule

    @property
    def changes(self) -> int:
        return self.asserted + self.retracted + self.updated


def _reverse(hop: Hop) -> Hop:
    return Hop(out=hop.inward, inward=hop.out)


def derive(store: Store, rule: Rule, starts: Iterable[str]) -> dict[tuple[str, str], Derived]:
    """Every inferred edge ``rule`` gives from ``starts``, with its supporting derivations."""
    types = store.states(starts)
    layer: dict[tuple[str, str], list[Path]] = {
        (uri, uri): [()] for uri, (type_, _) in types.items() if type_ == rule.source
    }
    counts: dict[tuple[str, str], int] = dict.fromkeys(layer, 1)
    for hop in rule.hops:
        if not layer:
            return {}
        adjacency: dict[str, list[tuple[str, str, str, str]]] = defaultdict(list)
        for s in store.step({node for _, node in layer}, hop.out, hop.inward):
            edge = (s.frm, s.label, s.to) if s.direction == "out" else (s.to, s.label, s.frm)
            adjacency[s.frm].append((s.to, *edge))
        grown: dict[tuple[str, str], list[Path]] = defaultdict(list)
        grown_counts: dict[tuple[str, str], int] = defaultdict(int)
        for (start, node), paths in layer.items():
            for to, src, label, dst in adjacency.get(node, ()):
                key = (start, to)
                grown[key].extend((*path, (src, label, dst)) for path in paths)
                grown_counts[key] += counts[(start, node)]
        # Keep the first few derivations in a fixed order: the answer must not
        # depend on the order rows come back in, or on which starts share a batch.
        layer = {key: sorted(paths)[:SUPPORT_KEPT] for key, paths in grown.items()}
        counts = grown_counts
    ends = store.states({node for _, node in layer})
    derived: dict[tuple[str, str], Derived] = {}
    for (start, end), paths in layer.items():
        if end in ends and ends[end][0] in rule.targets:
            # Not the count itself: it would rewrite a popular feature's edges
            # (a new version each) whenever one more instance uses it.
            provenance = {
                "rule": str(rule),
                "support": [[list(edge) for edge in path] for path in paths],
                "more_support": counts[(start, end)] > len(paths),
            }
            derived[(start, end)] = Derived(start, end, provenance)
    return derived


def affected_starts(store: Store, rule: Rule, items: Sequence[ChangeItem]) -> set[str]:
    """Start entities whose derivations ``items`` (edge changes) may have changed."""
    at_position: dict[int, set[str]] = defaultdict(set)
    for item in items:
        if item.kind != "edge" or item.label is None or item.other is None:
            continue
        for i, hop in enumerate(rule.hops):
            for direction in hop.directions(item.label):
                # The end the walk stands on before taking this edge.
                at_position[i].add(item.uri if direction == "out" else item.other)
    starts: set[str] = set(at_position.pop(0, set()))
    for i, nodes in at_position.items():
        frontier = nodes
        for hop in reversed(rule.hops[:i]):
            if not frontier:
                break
            back = _reverse(hop)
            frontier = {s.to for s in store.step(frontier, back.out, back.inward)}
        starts |= frontier
    return starts


class Inference:
    """Maintains every rule of the schema on one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.rules = store.schema.rules

    def apply(self, items: Sequence[ChangeItem]) -> Report:
        """Bring the inferred edges in step with the changes ``items`` describe."""
        report = Report()
        if any(i.kind == "entity" and i.op is Op.PURGE for i in items):
            # A purge removes edges without feed entries: derive everything again.
            return self.rederive()
        assert_edges: list[Edge] = []
        retract_edges: list[Edge] = []
        for rule in self.rules:
            starts = affected_starts(self.store, rule, items)
            if not starts:
                continue
            report.starts += len(starts)
            self._diff(rule, starts, assert_edges, retract_edges, report)
        self._write(assert_edges, retract_edges, report)
        return report

    def rederive(self, *, dry_run: bool = False, chunk: int = 1000) -> Report:
        """Derive every rule from every start; with ``dry_run``, only say what would change."""
        report = Report()
        for rule in self.rules:
            everywhere = f"{self.store.schema.scheme}://"
            every = [e.uri for e in self.store.listing(everywhere, rule.source)]
            stray = {src for src, _ in self.store.inferred_edges(rule.label)} - set(every)
            starts = [*every, *sorted(stray)]
            report.starts += len(starts)
            for i in range(0, len(starts), chunk):
                assert_edges: list[Edge] = []
                retract_edges: list[Edge] = []
                self._diff(rule, starts[i : i + chunk], assert_edges, retract_edges, report)
                if not dry_run:
                    self._write(assert_edges, retract_edges, report)
        return report

    def _diff(
        self,
        rule: Rule,
        starts: Iterable[str],
        assert_edges: list[Edge],
        retract_edges: list[Edge],
        report: Report,
    ) -> None:
        starts = set(starts)
        want = derive(self.store, rule, starts)
        have = self.store.inferred_edges(rule.label, starts)
        name = rule.relationship.name
        changed = 0
        for key, derived in want.items():
            if key not in have:
                report.asserted += 1
            elif have[key] != derived.provenance:
                report.updated += 1
            else:
                continue
            changed += 1
            assert_edges.append(Edge(key[0], name, key[1], "inferred", derived.provenance))
        for key in have.keys() - want.keys():
            report.retracted += 1
            changed += 1
            retract_edges.append(Edge(key[0], name, key[1], "inferred"))
        if changed:
            report.by_rule[rule.label] = report.by_rule.get(rule.label, 0) + changed

    def _write(self, assert_edges: list[Edge], retract_edges: list[Edge], report: Report) -> None:
        if not assert_edges and not retract_edges:
            return
        result = self.store.transact(
            assert_edges=assert_edges, retract_edges=retract_edges, provenance=PROVENANCE
        )
        if result.tx is not None:
            report.tx.append(result.tx)
