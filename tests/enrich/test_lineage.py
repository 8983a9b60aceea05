"""Lineage, impact and paths over a small graph, and paths against networkx on random ones."""

from __future__ import annotations

import itertools
import math

import networkx as nx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mlgraph.catalog import Entity, load_schema
from mlgraph.enrich.inference import Inference
from mlgraph.enrich.lineage import Affected, Hop, Impact, Owner, Paths, impact, lineage, paths
from mlgraph.errors import LimitExceeded, NotFound, ValidationError
from mlgraph.store import Store
from tests.builders import entity, uri

SCHEMA = load_schema()

D, F, G = uri("Dataset", "d"), uri("Feature", "f"), uri("Feature", "g")
M, M1, M2 = uri("Model", "model-m"), uri("ModelInstance", "m1"), uri("ModelInstance", "m2")
R, P, C, T = (
    uri("PipelineRun", "r"),
    uri("Pipeline", "p"),
    uri("AbTestCell", "c"),
    uri("AbTest", "t"),
)
ALICE, BOB, TEAM = uri("User", "alice"), uri("User", "bob"), uri("Group", "team")


def build(store: Store) -> None:
    """d -> f -> m1 (of model M, run r -> cell c -> test t); g -> m2 (of M); inferences derived.

    Inferred: f and g consuming_models M; m1 and M associated_ab_tests t.
    """
    store.transact(
        upsert=[
            entity("Dataset", "d", owners=[BOB]),
            entity("Feature", "f", owners=[ALICE], references={"data": D}),
            entity("Feature", "g", references={"data": uri("Dataset", "e")}),
            entity("Model", "model-m", owners=[TEAM]),
            entity("ModelInstance", "m1", owners=[ALICE],
                   references={"model": M, "features": F, "pipeline_run": R}),
            entity("ModelInstance", "m2", owners=[BOB], references={"model": M, "features": G}),
            entity("PipelineRun", "r", references={"pipeline": P, "ab_test_cells": C}),
            entity("AbTestCell", "c", references={"test": T}),
            entity("AbTest", "t", owners=[BOB, TEAM]),
        ]
    )  # fmt: skip
    Inference(store).rederive()


def uris(result: Paths) -> list[list[str]]:
    return [[path[0].frm, *(h.to for h in path)] for path in result.paths]


# -- lineage ------------------------------------------------------------------------


def test_lineage_wraps_the_traversal_with_its_filters_and_errors(store: Store) -> None:
    build(store)
    down = lineage(store, D, "downstream", depth=5)
    assert [(n.uri, n.depth) for n in down.nodes] == [(F, 1), (M1, 2)]
    up = lineage(store, M1, "upstream", depth=2, types=["Dataset", "Pipeline"])
    assert [(n.uri, n.depth) for n in up.nodes] == [(D, 2), (P, 2)]
    only_features = lineage(store, M1, "upstream", depth=3, relationships=["features", "data"])
    assert {n.uri for n in only_features.nodes} == {F, D}
    capped = lineage(store, M1, "upstream", depth=3, limit=2)
    assert len(capped.nodes) == 2 and capped.partial
    with pytest.raises(ValidationError, match="upstream or downstream"):
        lineage(store, D, "both")  # type: ignore[arg-type]
    with pytest.raises(LimitExceeded, match="depth must be between"):
        lineage(store, D, depth=0)
    with pytest.raises(NotFound):
        lineage(store, uri("Dataset", "nope"))


# -- impact -------------------------------------------------------------------------


def test_impact_of_a_feature_adds_its_models_and_their_tests_and_names_owners(
    store: Store,
) -> None:
    build(store)
    result = impact(store, F)
    assert result.start == F and not result.partial
    assert result.affected == (
        Affected(M1, "ModelInstance", 1),
        Affected(M, "Model", 1, "Feature.consuming_models", F),
        Affected(T, "AbTest", 2, "ModelInstance.associated_ab_tests", M1),
    )
    # m2 is an instance of the affected model but does not use f: not affected.
    assert set(result.by_type) == {"AbTest", "Model", "ModelInstance"}
    assert [a.uri for a in result.by_type["ModelInstance"]] == [M1]
    assert result.owners == (
        Owner(TEAM, "Group", (T, M)),
        Owner(ALICE, "User", (M1,)),
        Owner(BOB, "User", (T,)),
    )


def test_impact_of_a_dataset_and_of_a_run(store: Store) -> None:
    build(store)
    assert [(a.uri, a.depth, a.via) for a in impact(store, D).affected] == [
        (F, 1, None), (M1, 2, None), (M, 2, "Feature.consuming_models"),
        (T, 3, "ModelInstance.associated_ab_tests"),
    ]  # fmt: skip
    # The run's test is downstream lineage already; the inference adds nothing new.
    assert [(a.uri, a.via) for a in impact(store, R).affected] == [
        (C, None), (M1, None), (T, None)
    ]  # fmt: skip
    # A model: its instances downstream, and the A/B tests of any of them.
    assert {(a.uri, a.via) for a in impact(store, M).affected} == {
        (M1, None), (M2, None), (T, "Model.associated_ab_tests")
    }  # fmt: skip


def test_impact_is_capped_with_partial(store: Store) -> None:
    build(store)
    lineage_cut = impact(store, D, depth=5, limit=1)
    assert [a.uri for a in lineage_cut.affected] == [F] and lineage_cut.partial
    # Lineage fits (f, m1), the inferred additions (M, t) do not all fit.
    added_cut = impact(store, D, limit=3)
    assert [a.uri for a in added_cut.affected] == [F, M1, M] and added_cut.partial
    assert {o.uri for o in added_cut.owners} == {ALICE, TEAM}
    with pytest.raises(LimitExceeded):
        impact(store, D, depth=11)
    with pytest.raises(NotFound):
        impact(store, uri("Dataset", "nope"))


def test_impact_of_an_entity_nothing_depends_on_is_empty(store: Store) -> None:
    build(store)
    assert impact(store, T) == Impact(T, (), (), False)


# -- paths --------------------------------------------------------------------------


def test_all_shortest_paths_over_every_edge_read_from_where_each_hop_starts(
    store: Store,
) -> None:
    build(store)
    result = paths(store, F, T)
    assert result.length == 2 and not result.partial
    assert result.paths == (
        (Hop(F, "used_by", M1, "ModelInstance.features", "in"),
         Hop(M1, "associated_ab_tests", T, "ModelInstance.associated_ab_tests", "out")),
        (Hop(F, "consuming_models", M, "Feature.consuming_models", "out"),
         Hop(M, "associated_ab_tests", T, "Model.associated_ab_tests", "out")),
    )  # fmt: skip
    # Backwards, each hop is named from its own start.
    back = paths(store, T, F)
    assert uris(back) == [[T, M1, F], [T, M, F]]
    assert back.paths[0] == (
        Hop(T, "model_instances", M1, "ModelInstance.associated_ab_tests", "in"),
        Hop(M1, "features", F, "ModelInstance.features", "out"),
    )
    assert back.paths[1][0] == Hop(T, "models", M, "Model.associated_ab_tests", "in")
    assert paths(store, F, T, max_paths=1).paths == result.paths[:1]
    assert paths(store, F, T, max_depth=1).paths == ()


def test_lineage_paths_follow_the_flow_either_way(store: Store) -> None:
    build(store)
    down = paths(store, R, T, edges="lineage")
    assert down.paths == (
        (Hop(R, "ab_test_cells", C, "PipelineRun.ab_test_cells", "out"),
         Hop(C, "test", T, "AbTestCell.test", "out")),
    )  # fmt: skip
    up = paths(store, T, R, edges="lineage")
    assert up.paths == (
        (Hop(T, "cells", C, "AbTestCell.test", "in"),
         Hop(C, "pipeline_runs", R, "PipelineRun.ab_test_cells", "in")),
    )  # fmt: skip
    assert uris(paths(store, D, M1, edges="lineage")) == [[D, F, M1]]
    # Siblings are connected, but neither feeds the other.
    assert paths(store, M1, T, edges="lineage").paths == ()
    assert paths(store, M1, T).length == 1


def test_paths_edge_cases_and_errors(store: Store) -> None:
    build(store)
    assert paths(store, F, F).paths == ((),)
    # Through the feature's model, and through an owner: lineage is not all there is.
    e = uri("Dataset", "e")
    assert uris(paths(store, D, e)) == [[D, F, M, G, e], [D, BOB, M2, G, e]]
    budget = paths(store, D, T, max_visits=3)
    assert budget.partial and budget.paths == ()
    with pytest.raises(NotFound, match="no entity"):
        paths(store, F, uri("Feature", "nope"))
    with pytest.raises(LimitExceeded, match="max_depth"):
        paths(store, F, T, max_depth=11)
    with pytest.raises(LimitExceeded, match="max_paths"):
        paths(store, F, T, max_paths=0)
    with pytest.raises(ValidationError, match="edges must be"):
        paths(store, F, T, edges="some")  # type: ignore[arg-type]


# -- paths against networkx on random graphs ----------------------------------------

_examples = itertools.count()
GROUPS, USERS = 5, 3
DATASETS, PIPELINES = 4, 3


@st.composite
def people(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """Random (owner-, parent-, membership-) edges among groups and users, as (src, rel, dst)."""
    g = [f"g{i}" for i in range(GROUPS)]
    u = [f"u{i}" for i in range(USERS)]
    edges = []
    for name in g:
        if draw(st.booleans()):
            edges.append((name, "parent", draw(st.sampled_from(g))))
        edges += [(name, "owners", o) for o in draw(st.sets(st.sampled_from(g + u), max_size=2))]
    for name in u:
        edges += [(name, "member_of", o) for o in draw(st.sets(st.sampled_from(g), max_size=2))]
        edges += [(name, "owners", o) for o in draw(st.sets(st.sampled_from(u), max_size=1))]
    return edges


@st.composite
def flows(draw: st.DrawFn) -> list[tuple[str, str, str]]:
    """Random datasets produced by pipelines and pipelines reading datasets (cycles allowed)."""
    d = [f"d{i}" for i in range(DATASETS)]
    p = [f"p{i}" for i in range(PIPELINES)]
    edges = []
    for name in d:
        edges += [(name, "produced_by", x) for x in draw(st.sets(st.sampled_from(p), max_size=2))]
    for name in p:
        edges += [
            (name, "inputs", x) for x in draw(st.sets(st.sampled_from(d), min_size=1, max_size=3))
        ]
    return edges


TYPES = {"g": "Group", "u": "User", "d": "Dataset", "p": "Pipeline"}


def load(store: Store, edges: list[tuple[str, str, str]], names: list[str]) -> dict[str, str]:
    """Write the entities with their references under a fresh source; {short name: URI}."""
    source = f"x{next(_examples)}"
    full = {n: uri(TYPES[n[0]], n, source) for n in names}
    refs: dict[str, dict[str, list[str]]] = {n: {} for n in names}
    for src, rel, dst in edges:
        refs[src].setdefault(rel, []).append(full[dst])
    store.transact(
        upsert=[
            Entity(uri=full[n], type=TYPES[n[0]],
                   owners=tuple(refs[n].pop("owners", ())),
                   references={k: tuple(v) for k, v in refs[n].items()})
            for n in names
        ]
    )  # fmt: skip
    return full


def stored(full: dict[str, str], edges: list[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    return {(full[s], f"{TYPES[s[0]]}.{rel}", full[d]) for s, rel, d in edges}


def check_chain(result: Paths, frm: str, to: str, edges: set[tuple[str, str, str]]) -> None:
    """Every path runs frm -> to through stored edges, each hop named as read from its start."""
    assert len(set(result.paths)) == len(result.paths)
    for path in result.paths:
        if not path:
            assert frm == to
            continue
        assert path[0].frm == frm and path[-1].to == to
        for a, b in itertools.pairwise(path):
            assert a.to == b.frm
        for hop in path:
            edge = (hop.frm, hop.label, hop.to) if hop.direction == "out" else (
                hop.to, hop.label, hop.frm)  # fmt: skip
            assert edge in edges
            rel = SCHEMA.edge(hop.label)
            assert hop.relationship == (rel.name if hop.direction == "out" else rel.inverse)


def count_shortest(graph: nx.MultiGraph | nx.MultiDiGraph, a: str, b: str) -> int:
    """Shortest paths counted edge by edge: parallel edges make distinct paths."""
    return sum(
        math.prod(graph.number_of_edges(x, y) for x, y in itertools.pairwise(nodes))
        for nodes in nx.all_shortest_paths(graph, a, b)
    )


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def two_of(n: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, n - 1), min_size=2, max_size=2, unique=True)


@SETTINGS
@given(people(), two_of(GROUPS + USERS), st.integers(1, 4), st.integers(1, 4))
def test_paths_over_all_edges_are_the_shortest_networkx_finds(
    store: Store, edges: list[tuple[str, str, str]], ends: list[int], depth: int, cap: int
) -> None:
    names = [f"g{k}" for k in range(GROUPS)] + [f"u{k}" for k in range(USERS)]
    full = load(store, edges, names)
    i, j = ends
    graph = nx.MultiGraph()
    graph.add_nodes_from(full.values())
    graph.add_edges_from((s, d) for s, _, d in stored(full, edges) if s != d)
    a, b = full[names[i]], full[names[j]]
    result = paths(store, a, b, max_depth=depth, max_paths=cap)
    event(f"{len(result.paths)} paths of length {result.length}")
    assert not result.partial
    check_chain(result, a, b, stored(full, edges))
    if not nx.has_path(graph, a, b) or nx.shortest_path_length(graph, a, b) > depth:
        assert result.paths == ()
    else:
        assert result.length == nx.shortest_path_length(graph, a, b)
        assert len(result.paths) == min(cap, count_shortest(graph, a, b))


@SETTINGS
@given(flows(), two_of(DATASETS + PIPELINES), st.integers(1, 5))
def test_lineage_paths_are_the_shortest_along_the_flow(
    store: Store, edges: list[tuple[str, str, str]], ends: list[int], depth: int
) -> None:
    names = [f"d{k}" for k in range(DATASETS)] + [f"p{k}" for k in range(PIPELINES)]
    full = load(store, edges, names)
    i, j = ends
    # Both relationships flow upstream: the target feeds the source.
    downstream = nx.MultiDiGraph()
    downstream.add_nodes_from(full.values())
    downstream.add_edges_from((d, s) for s, _, d in stored(full, edges))
    a, b = full[names[i]], full[names[j]]
    result = paths(store, a, b, edges="lineage", max_depth=depth, max_paths=100)
    event(f"{len(result.paths)} paths of length {result.length}")
    check_chain(result, a, b, stored(full, edges))

    def within(x: str, y: str) -> bool:
        return bool(nx.has_path(downstream, x, y)) and bool(
            nx.shortest_path_length(downstream, x, y) <= depth
        )

    if within(a, b):
        flow, x, y = "down", a, b
    elif within(b, a):
        flow, x, y = "up", b, a
    else:
        assert result.paths == ()
        return
    assert result.length == nx.shortest_path_length(downstream, x, y)
    assert len(result.paths) == count_shortest(downstream, x, y)
    for path in result.paths:
        for hop in path:  # every hop goes with the flow (down) or against it (up)
            assert hop.direction == ("in" if flow == "down" else "out")
