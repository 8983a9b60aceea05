"""Traversal: lineage directions, filters, caps and cycles, in memory and as of a past tx."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from mlgraph.errors import LimitExceeded, NotFound, ValidationError
from mlgraph.store import Edge, Store
from tests.builders import entity, uri
from tests.conftest import StoreFactory


@pytest.fixture(params=["memory", "sql"])
def store(request: pytest.FixtureRequest, store_factory: StoreFactory) -> Iterator[Store]:
    """Every test here twice: walking the in-memory graph, and in SQL only."""
    with store_factory() as opened:
        if request.param == "memory":
            yield opened
        else:
            yield Store(opened.engine, opened.schema, graph_cache="off")


@pytest.fixture
def cached_store(store_factory: StoreFactory) -> Iterator[Store]:
    with store_factory() as opened:
        yield opened


def lineage(store: Store) -> None:
    """dataset -> feature -> model instance -> run -> A/B cell -> A/B test."""
    store.transact(
        upsert=[
            entity("Dataset", "d"),
            entity("Feature", "f", references={"data": uri("Dataset", "d")}),
            entity("ModelInstance", "m", owners=["aip://user/identity/alice"],
                   references={"features": uri("Feature", "f"),
                               "pipeline_run": uri("PipelineRun", "r")}),
            entity("PipelineRun", "r", references={"ab_test_cells": uri("AbTestCell", "c"),
                                                   "pipeline": uri("Pipeline", "p")}),
            entity("AbTestCell", "c", references={"test": uri("AbTest", "t")}),
        ]
    )  # fmt: skip


def names(result: object) -> list[tuple[str, int]]:
    return [(n.uri.rsplit("/", 1)[1], n.depth) for n in result.nodes]  # type: ignore[attr-defined]


def test_downstream_and_upstream_follow_the_flow(store: Store) -> None:
    lineage(store)
    down = store.traverse(uri("Dataset", "d"), "downstream", depth=3)
    assert names(down) == [("f", 1), ("m", 2)]
    assert not down.partial
    up = store.traverse(uri("ModelInstance", "m"), "upstream", depth=5)
    assert names(up) == [("f", 1), ("r", 1), ("d", 2), ("p", 2)]
    # The instance is a sibling of the A/B test (both come out of the run), not upstream of it.
    assert names(store.traverse(uri("AbTest", "t"), "upstream", depth=5)) == [
        ("c", 1), ("r", 2), ("p", 3)
    ]  # fmt: skip
    # Owners are not lineage.
    assert "alice" not in {
        n for n, _ in names(store.traverse(uri("ModelInstance", "m"), "upstream"))
    }


def test_types_filter_what_is_returned_not_what_is_walked(store: Store) -> None:
    lineage(store)
    result = store.traverse(uri("Dataset", "d"), "downstream", depth=5, types=["ModelInstance"])
    assert names(result) == [("m", 2)]


def test_relationships_filter_what_is_followed(store: Store) -> None:
    lineage(store)
    result = store.traverse(
        uri("ModelInstance", "m"), "both", depth=2, relationships=["features", "data"]
    )
    assert names(result) == [("f", 1), ("d", 2)]
    with pytest.raises(ValidationError, match="unknown relationship 'featurs'"):
        store.traverse(uri("ModelInstance", "m"), "both", relationships=["featurs"])


def test_out_in_and_both_follow_stored_edges(store: Store) -> None:
    lineage(store)
    m = uri("ModelInstance", "m")
    assert {n for n, _ in names(store.traverse(m, "out", depth=1))} == {"f", "r", "alice"}
    assert names(store.traverse(uri("Dataset", "d"), "in", depth=2)) == [("f", 1), ("m", 2)]


def test_cycles_end_and_each_entity_comes_once_at_its_nearest_depth(store: Store) -> None:
    # A ring of groups: g0 -> g1 -> ... -> g5 -> g0 (parent), plus a chord g0 -> g3.
    groups = [entity("Group", f"g{i}", references={"parent": uri("Group", f"g{(i + 1) % 6}")})
              for i in range(6)]  # fmt: skip
    store.transact(upsert=groups)
    result = store.traverse(uri("Group", "g0"), "both", depth=10)
    assert sorted(names(result)) == [("g1", 1), ("g2", 2), ("g3", 3), ("g4", 2), ("g5", 1)]
    assert not result.partial


def test_the_result_cap_sets_partial(store: Store) -> None:
    store.transact(
        upsert=[entity("Dataset", "hub")]
        + [
            entity("Feature", f"f{i:02}", references={"data": uri("Dataset", "hub")})
            for i in range(30)
        ]
    )
    full = store.traverse(uri("Dataset", "hub"), "downstream", depth=2)
    assert len(full.nodes) == 30 and not full.partial
    capped = store.traverse(uri("Dataset", "hub"), "downstream", depth=2, limit=10)
    assert len(capped.nodes) == 10 and capped.partial
    assert {n.uri for n in capped.nodes} < {n.uri for n in full.nodes}
    budget = store.traverse(uri("Dataset", "hub"), "downstream", depth=2, limit=1, max_visits=5)
    assert budget.partial


def test_limits_and_unknown_start_are_clear_errors(store: Store) -> None:
    lineage(store)
    with pytest.raises(LimitExceeded, match="depth must be between 1 and 10"):
        store.traverse(uri("Dataset", "d"), depth=11)
    with pytest.raises(LimitExceeded, match="limit must be between"):
        store.traverse(uri("Dataset", "d"), limit=0)
    with pytest.raises(NotFound):
        store.traverse(uri("Dataset", "nope"))
    with pytest.raises(ValidationError, match="direction must be"):
        store.traverse(uri("Dataset", "d"), "sideways")  # type: ignore[arg-type]


def test_traversal_as_of_sees_the_graph_then(store: Store) -> None:
    lineage(store)
    store.transact(retract_edges=[Edge(uri("Feature", "f"), "data", uri("Dataset", "d"))])
    assert names(store.traverse(uri("Dataset", "d"), "downstream")) == []
    assert names(store.traverse(uri("Dataset", "d"), "downstream", as_of=1)) == [("f", 1), ("m", 2)]


def recorded(store: Store, run: Callable[[], object]) -> list[str]:
    """The SQL statements ``run`` sends, BEGIN and ROLLBACK left out."""
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    return [s for s in statements if not s.lstrip().upper().startswith(("BEGIN", "ROLLBACK"))]


def test_traversal_as_of_is_one_statement(store: Store) -> None:
    lineage(store)
    m = uri("ModelInstance", "m")
    statements = recorded(store, lambda: store.traverse(m, "upstream", depth=5, as_of=1))
    assert len([s for s in statements if "WITH RECURSIVE" in s]) == 1
    assert len(statements) <= 3
    assert isinstance(store.engine, sa.engine.Engine)


def test_traversal_of_the_current_graph_asks_the_database_only_what_changed(
    cached_store: Store,
) -> None:
    store = cached_store
    lineage(store)
    m = uri("ModelInstance", "m")
    store.traverse(m, "upstream", depth=5)  # builds the in-memory copy
    # Warm: one statement, for the start node's id and the last transaction id.
    warm = recorded(store, lambda: store.traverse(m, "upstream", depth=5))
    assert len(warm) == 1 and "MAX(id) FROM tx" in warm[0]
    store.transact(upsert=[entity("Feature", "f2", references={"data": uri("Dataset", "d")})])
    # After a commit: one more, for the feed entries after the copy's cursor.
    after = recorded(store, lambda: store.traverse(uri("Dataset", "d"), "downstream"))
    assert len(after) == 2 and "FROM change" in after[1]
    assert ("f2", 1) in names(store.traverse(uri("Dataset", "d"), "downstream"))
