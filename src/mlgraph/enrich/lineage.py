"""Lineage over the store: upstream and downstream, impact, and the paths between two entities.

Lineage itself is ``Store.traverse`` (one recursive CTE); this module adds
what a user asks next. *Impact* is what a change to one entity reaches: its
downstream lineage, plus the inferred relationships that say who relies on
an entity without being downstream of it (a feature's consuming models, a
model's A/B tests), and the owners to tell. *Paths* are the shortest chains
of edges between two entities, found by a breadth-first search from both ends
that asks the store for one whole level at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from mlgraph.catalog.schema import Schema
from mlgraph.catalog.validation import OWNERS, canonical
from mlgraph.errors import LimitExceeded, NotFound, ValidationError
from mlgraph.store import Store, Traversal
from mlgraph.store.steps import Step
from mlgraph.store.store import MAX_DEPTH

LineageDirection = Literal["upstream", "downstream"]
PathEdges = Literal["all", "lineage"]

# Inferred relationships that name who relies on an entity without being in its
# downstream lineage: a feature's models (through their instances) and the A/B
# tests a model or an instance was trained for. Read from the affected entity.
IMPACT_RELATIONSHIPS = ("consuming_models", "associated_ab_tests")

MAX_PATHS = 100
MAX_PATH_VISITS = 100_000


def lineage(
    store: Store,
    uri: str,
    direction: LineageDirection = "downstream",
    *,
    depth: int = 3,
    relationships: Iterable[str] | None = None,
    types: Iterable[str] | None = None,
    limit: int = 1000,
) -> Traversal:
    """Entities upstream or downstream of ``uri``, nearest first, with ``partial`` at the cap."""
    if direction not in ("upstream", "downstream"):
        raise ValidationError(f"direction must be upstream or downstream, got {direction!r}")
    return store.traverse(
        uri, direction, depth=depth, relationships=relationships, types=types, limit=limit
    )


def consumer_labels(schema: Schema) -> tuple[set[str], set[str]]:
    """Edge labels that lead from an entity to something relying on it: (outwards, inwards).

    Downstream lineage and the impact relationships; impact and the quality
    report's deprecation candidates share this one notion of a consumer.
    """
    out, inward = schema.lineage_labels("downstream")
    impact_out, impact_in = schema.labels_named(IMPACT_RELATIONSHIPS)
    return out | impact_out, inward | impact_in


# -- impact ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Affected:
    """An entity a change reaches; ``via`` is None for lineage, else the inferred
    relationship (its edge label) that led to it from ``source``."""

    uri: str
    type: str | None
    depth: int
    via: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Owner:
    """A user or group to notify, with the affected entities it owns."""

    uri: str
    type: str | None
    owns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Impact:
    start: str
    affected: tuple[Affected, ...]
    owners: tuple[Owner, ...]
    partial: bool  # a cap cut the answer short: there may be more

    @property
    def by_type(self) -> dict[str, tuple[Affected, ...]]:
        grouped: dict[str, list[Affected]] = {}
        for a in self.affected:
            grouped.setdefault(a.type or "?", []).append(a)
        return {t: tuple(items) for t, items in sorted(grouped.items())}


def impact(store: Store, uri: str, *, depth: int = 5, limit: int = 1000) -> Impact:
    """What is affected if ``uri`` changes, grouped by type, and whom to tell.

    The downstream lineage up to ``depth``, then one hop of the impact
    relationships from the start and from everything in it. Those hops are
    not followed further: a model reached through a feature is affected, but
    the rest of that model's instances are not.
    """
    walk = store.traverse(uri, "downstream", depth=depth, limit=limit)
    start = walk.start
    affected = {r.uri: Affected(r.uri, r.type, r.depth) for r in walk.nodes}
    depth_of = {start: 0, **{a.uri: a.depth for a in affected.values()}}
    out, inward = store.schema.labels_named(IMPACT_RELATIONSHIPS)
    # Nearest source first, so an entity reached twice keeps its shortest reason.
    steps = sorted(
        store.step(depth_of, out, inward), key=lambda s: (depth_of[s.frm], s.frm, s.label, s.to)
    )
    added: dict[str, Affected] = {}
    for s in steps:
        if s.to not in depth_of and s.to not in added:
            added[s.to] = Affected(s.to, None, depth_of[s.frm] + 1, s.label, s.frm)
    room = limit - len(affected)
    kept = sorted(added.values(), key=lambda a: (a.depth, a.uri))[: max(room, 0)]
    types = store.states(a.uri for a in kept)
    for a in kept:
        affected[a.uri] = Affected(a.uri, types.get(a.uri, (None,))[0], a.depth, a.via, a.source)
    ordered = tuple(sorted(affected.values(), key=lambda a: (a.depth, a.uri)))
    return Impact(
        start,
        ordered,
        _owners(store, [a.uri for a in ordered]),
        walk.partial or len(kept) < len(added),
    )


def _owners(store: Store, uris: Sequence[str]) -> tuple[Owner, ...]:
    labels, _ = store.schema.labels_named([OWNERS])
    owned: dict[str, list[str]] = {}
    for s in store.step(uris, labels, ()):
        owned.setdefault(s.to, []).append(s.frm)
    types = store.states(owned)
    return tuple(
        Owner(o, types.get(o, (None,))[0], tuple(sorted(owns))) for o, owns in sorted(owned.items())
    )


# -- paths -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hop:
    """One edge of a path, read from where the hop starts.

    ``relationship`` is the name as seen from ``frm`` (``features`` from an
    instance, ``used_by`` from a feature); ``label`` is the stored edge
    (``ModelInstance.features``) and ``direction`` says whether ``frm`` is its
    source (``out``) or its target (``in``).
    """

    frm: str
    relationship: str
    to: str
    label: str
    direction: Literal["out", "in"]


@dataclass(frozen=True, slots=True)
class Paths:
    start: str
    end: str
    edges: PathEdges
    paths: tuple[tuple[Hop, ...], ...]  # all of the same, shortest, length
    partial: bool  # the visit budget ended the search before it could answer

    @property
    def length(self) -> int | None:
        return len(self.paths[0]) if self.paths else None


@dataclass
class _Side:
    """One end of the bidirectional search: every node reached, at its level, and how."""

    root: str
    out: frozenset[str]
    inward: frozenset[str]
    depth: int = 0
    frontier: set[str] = field(default_factory=set)
    level: dict[str, int] = field(default_factory=dict)
    parents: dict[str, list[Step]] = field(default_factory=dict)  # steps arriving at a node

    def __post_init__(self) -> None:
        self.frontier = {self.root}
        self.level = {self.root: 0}

    def expand(self, store: Store) -> None:
        """Take one level: a single set-at-a-time step from the whole frontier."""
        reached: set[str] = set()
        for s in store.step(self.frontier, self.out, self.inward):
            if s.to not in self.level:
                self.level[s.to] = self.depth + 1
                reached.add(s.to)
            if self.level[s.to] == self.depth + 1:
                self.parents.setdefault(s.to, []).append(s)
        self.frontier = reached
        self.depth += 1

    def chains(self, node: str) -> Iterator[tuple[Step, ...]]:
        """Every shortest chain of steps from the root to ``node``, in a fixed order."""
        if node == self.root:
            yield ()
            return
        for s in sorted(self.parents[node], key=lambda s: (s.frm, s.label, s.direction)):
            for chain in self.chains(s.frm):
                yield (*chain, s)


def _read(schema: Schema, label: str, direction: Literal["out", "in"]) -> str:
    rel = schema.edge(label)
    return rel.name if direction == "out" else (rel.inverse or f"~{rel.name}")


def _flip(direction: Literal["out", "in"]) -> Literal["out", "in"]:
    return "in" if direction == "out" else "out"


def paths(
    store: Store,
    frm: str,
    to: str,
    *,
    edges: PathEdges = "all",
    max_depth: int = 6,
    max_paths: int = 5,
    max_visits: int = MAX_PATH_VISITS,
) -> Paths:
    """The shortest paths from ``frm`` to ``to``, at most ``max_paths`` of them.

    ``edges="all"`` follows every current edge either way. ``edges="lineage"``
    follows the lineage flow only: downstream from ``frm`` to ``to``, or, when
    there is no such path, upstream (``to`` feeds ``frm``).
    """
    if edges not in ("all", "lineage"):
        raise ValidationError(f"edges must be 'all' or 'lineage', got {edges!r}")
    if not 1 <= max_depth <= MAX_DEPTH:
        raise LimitExceeded(f"max_depth must be between 1 and {MAX_DEPTH}, got {max_depth}")
    if not 1 <= max_paths <= MAX_PATHS:
        raise LimitExceeded(f"max_paths must be between 1 and {MAX_PATHS}, got {max_paths}")
    schema = store.schema
    frm, to = canonical(schema, frm, "from"), canonical(schema, to, "to")
    known = store.states([frm, to])
    for uri in (frm, to):
        if uri not in known:
            raise NotFound(f"no entity {uri}")
    limits = _Limits(max_depth, max_paths, max_visits)
    if edges == "all":
        every = frozenset(schema.labels)
        found, partial = _search(store, _Side(frm, every, every), _Side(to, every, every), limits)
        return Paths(frm, to, edges, found, partial)
    down, up = _flow(schema, "downstream"), _flow(schema, "upstream")
    # The side walking back from ``to`` takes the opposite flow.
    found, partial = _search(store, _Side(frm, *down), _Side(to, *up), limits)
    if not found and not partial:
        found, partial = _search(store, _Side(frm, *up), _Side(to, *down), limits)
    return Paths(frm, to, edges, found, partial)


@dataclass(frozen=True, slots=True)
class _Limits:
    depth: int  # the longest path looked for
    paths: int  # how many of the shortest to return
    visits: int  # nodes both sides may reach before giving up


def _flow(schema: Schema, direction: LineageDirection) -> tuple[frozenset[str], frozenset[str]]:
    out, inward = schema.lineage_labels(direction)
    return frozenset(out), frozenset(inward)


def _search(
    store: Store, forward: _Side, backward: _Side, limits: _Limits
) -> tuple[tuple[tuple[Hop, ...], ...], bool]:
    """The shortest paths from ``forward.root`` to ``backward.root``, and whether the
    visit budget ran out first."""
    if forward.root == backward.root:
        return ((),), False
    # Invariant: no node is known to both sides until the shortest length is
    # found. When expanding one side to level a+1 first meets the other (at
    # level b), every shortest path has length a+b+1 and its node at position
    # a+1 is one of the meeting nodes: so the meeting nodes of that one
    # expansion give all shortest paths, and none is counted twice.
    while forward.depth + backward.depth < limits.depth:
        if len(forward.frontier) <= len(backward.frontier):
            side, other = forward, backward
        else:
            side, other = backward, forward
        side.expand(store)
        if len(forward.level) + len(backward.level) > limits.visits:
            return (), True
        meeting = sorted(n for n in side.frontier if n in other.level)
        if meeting:
            return _join(store.schema, forward, backward, meeting, limits.paths), False
        if not side.frontier:
            break  # that side's component is exhausted: no path at any length
    return (), False


def _join(
    schema: Schema, forward: _Side, backward: _Side, meeting: list[str], max_paths: int
) -> tuple[tuple[Hop, ...], ...]:
    """Paths through the meeting nodes: each node's chains from ``forward.root``
    joined with its chains to ``backward.root``, lazily, up to ``max_paths``."""

    def hop(s: Step, *, backwards: bool) -> Hop:
        if not backwards:
            return Hop(s.frm, _read(schema, s.label, s.direction), s.to, s.label, s.direction)
        # The backward side stepped from its root towards the meeting node:
        # on the path, the step is taken the other way round.
        direction = _flip(s.direction)
        return Hop(s.to, _read(schema, s.label, direction), s.frm, s.label, direction)

    def joined() -> Iterator[tuple[Hop, ...]]:
        for node in meeting:
            for head in forward.chains(node):
                there = tuple(hop(s, backwards=False) for s in head)
                for tail in backward.chains(node):
                    yield there + tuple(hop(s, backwards=True) for s in reversed(tail))

    return tuple(sorted(itertools.islice(joined(), max_paths), key=_path_key))


def _path_key(path: tuple[Hop, ...]) -> tuple[tuple[str, str, str], ...]:
    return tuple((h.to, h.label, h.direction) for h in path)
