"""The in-memory traversal graph: same answers as SQL, and never behind a commit.

Hypothesis drives random writes (entities, edges, retractions, purges) through
one Store and, after each, compares a random traversal of the in-memory graph
with the same traversal in SQL (a second Store on the same database, without
the graph). Other tests write through another Store instance, from another
thread, and check the next traversal sees every commit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.errors import NotFound, ValidationError
from mlgraph.store import Edge, Store, Traversal
from mlgraph.store import tables as t
from mlgraph.store.graph_cache import GraphCache
from tests.builders import entity, uri
from tests.conftest import StoreFactory

DATASETS = [uri("Dataset", f"d{i}") for i in range(4)]
PIPELINES = [uri("Pipeline", f"p{i}") for i in range(2)]
FEATURES = [uri("Feature", f"f{i}") for i in range(3)]
INSTANCES = [uri("ModelInstance", f"m{i}") for i in range(2)]
USERS = [uri("User", f"u{i}") for i in range(2)]
UNIVERSE = DATASETS + PIPELINES + FEATURES + INSTANCES + USERS
TYPES = {"Dataset": DATASETS, "Pipeline": PIPELINES, "Feature": FEATURES,
         "ModelInstance": INSTANCES, "User": USERS}  # fmt: skip
TYPE_OF = {u: t for t, us in TYPES.items() for u in us}

# (relationship, sources, targets): lineage both ways round (a cycle through
# datasets and pipelines), and owners, which lineage does not follow.
RELATIONSHIPS = [
    ("data", FEATURES, DATASETS),
    ("inputs", PIPELINES, DATASETS),
    ("produced_by", DATASETS, PIPELINES),
    ("features", INSTANCES, FEATURES),
    ("owners", DATASETS + FEATURES + INSTANCES, USERS),
]

edges = st.sampled_from(RELATIONSHIPS).flatmap(
    lambda r: st.tuples(st.just(r[0]), st.sampled_from(r[1]), st.sampled_from(r[2]))
)
writes = st.one_of(
    st.tuples(st.just("upsert"), st.sampled_from(UNIVERSE), st.sampled_from(["a", "b", "c"])),
    st.tuples(st.just("assert"), edges),
    st.tuples(st.just("assert"), edges),
    st.tuples(st.just("retract_edge"), edges),
    st.tuples(st.just("retract"), st.sampled_from(UNIVERSE)),
    st.tuples(st.just("purge"), st.sampled_from(UNIVERSE)),
)
walks = st.fixed_dictionaries(
    {
        "uri": st.sampled_from(UNIVERSE),
        "direction": st.sampled_from(["downstream", "upstream", "out", "in", "both"]),
        "depth": st.integers(1, 4),
        "limit": st.sampled_from([1, 2, 1000]),
        "relationships": st.none() | st.sets(st.sampled_from(["data", "inputs", "owners"])),
        "types": st.none() | st.sets(st.sampled_from(["Dataset", "Feature", "User"])),
    }
)


def write(store: Store, op: tuple[object, ...]) -> None:
    match op:
        case ("upsert", target, name):
            store.transact(upsert=[entity(TYPE_OF[str(target)], str(target).rsplit("/", 1)[1],
                                          name=str(name))])  # fmt: skip
        case ("assert", (rel, src, dst)):
            if store.get(str(src)) is None:
                store.transact(upsert=[entity(TYPE_OF[str(src)], str(src).rsplit("/", 1)[1])])
            store.transact(assert_edges=[Edge(str(src), str(rel), str(dst))])
        case ("retract_edge", (rel, src, dst)) if store.get(str(src)) is not None:
            store.transact(retract_edges=[Edge(str(src), str(rel), str(dst))])
        case ("retract", target):
            store.transact(retract=[str(target)])
        case ("purge", target):
            store.purge(str(target))


def walk(store: Store, params: dict[str, object]) -> Traversal | str:
    try:
        return store.traverse(**params)  # type: ignore[arg-type]
    except NotFound as exc:
        return f"NotFound: {exc}"


@pytest.fixture
def pair(store_factory: StoreFactory) -> Iterator[tuple[Store, Store]]:
    """A store walking its in-memory graph, and one on the same database walking SQL."""
    with store_factory() as memory:
        yield memory, Store(memory.engine, memory.schema, graph_cache="off")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.tuples(writes, walks), min_size=1, max_size=12))
def test_memory_walks_equal_sql_walks_after_every_write(
    pair: tuple[Store, Store], steps: list[tuple[tuple[object, ...], dict[str, object]]]
) -> None:
    # The database carries over from one example to the next: more history, same invariant.
    memory, sql = pair
    for op, params in steps:
        write(memory, op)
        assert walk(memory, params) == walk(sql, params), (op, params)


def lineage(store: Store) -> None:
    store.transact(
        upsert=[
            entity("Dataset", "d0"),
            entity("Feature", "f0", references={"data": DATASETS[0]}),
            entity("ModelInstance", "m0", references={"features": FEATURES[0]}),
        ]
    )


def reached(store: Store, start: str = DATASETS[0]) -> dict[str, tuple[str | None, int]]:
    found = store.traverse(start, "downstream", depth=5)
    return {n.uri: (n.name, n.depth) for n in found.nodes}


def test_a_commit_through_another_store_is_seen_by_the_next_traversal(
    store: Store, store_url: str
) -> None:
    lineage(store)
    assert reached(store) == {FEATURES[0]: ("f0", 1), INSTANCES[0]: ("m0", 2)}
    with Store.open(store_url, store.schema) as other:
        other.transact(upsert=[entity("Feature", "f1", references={"data": DATASETS[0]})])
        assert reached(store)[FEATURES[1]] == ("f1", 1)
        other.transact(upsert=[entity("Feature", "f1", name="renamed",
                                      references={"data": DATASETS[0]})])  # fmt: skip
        assert reached(store)[FEATURES[1]] == ("renamed", 1)
        other.transact(retract_edges=[Edge(FEATURES[0], "data", DATASETS[0])])
        assert reached(store) == {FEATURES[1]: ("renamed", 1)}
        other.transact(retract=[FEATURES[1]])
        assert reached(store) == {}
        other.transact(assert_edges=[Edge(FEATURES[0], "data", DATASETS[0])])
        other.purge(INSTANCES[0])  # deletes feed entries: the copy is built again
        assert reached(store) == {FEATURES[0]: ("f0", 1)}
    stats = store.traversal_cache()
    assert stats is not None and stats.builds == 2 and stats.cursor == store.last_tx()


def test_a_traversal_never_misses_a_commit_made_before_it_began(
    store: Store, store_url: str
) -> None:
    """A writer (another Store) commits while three threads traverse one Store."""
    store.transact(upsert=[entity("Dataset", "d0")])
    reached(store)  # build the copy before the writer starts
    committed = 0
    done = threading.Event()
    failures: list[BaseException] = []
    walks = [0, 0, 0]

    def writer() -> None:
        nonlocal committed
        try:
            with Store.open(store_url, store.schema) as other:
                for i in range(25):
                    other.transact(upsert=[entity("Feature", f"w{i}",
                                                  references={"data": DATASETS[0]})])  # fmt: skip
                    committed = i + 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
        finally:
            done.set()

    def reader(n: int) -> None:
        try:
            while not done.is_set() or walks[n] == 0:
                before = committed
                found = set(reached(store))
                missing = {uri("Feature", f"w{i}") for i in range(before)} - found
                assert not missing, f"committed before the walk, not seen: {missing}"
                walks[n] += 1
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer)]
    threads += [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert min(walks) > 0
    assert len(reached(store)) == 25


def test_many_edits_compact_into_a_new_build(store: Store) -> None:
    lineage(store)
    cache = GraphCache(rebuild_after=3)
    labels = store.labels.ids(store.schema.lineage_labels("downstream")[1])

    def features() -> set[str]:
        with store.engine.connect() as conn:
            found = cache.walk(
                conn, DATASETS[0], out_labels=[], in_labels=labels, depth=1, limit=100, budget=1000
            )
        assert found is not None
        return {r.uri for r in found[0]}

    assert features() == {FEATURES[0]}
    store.transact(upsert=[entity("Feature", "f1", references={"data": DATASETS[0]})])
    assert features() == {FEATURES[0], FEATURES[1]}
    stats = cache.stats()
    assert stats is not None and stats.builds == 1 and stats.edits == 3  # node + edge both ways
    store.transact(upsert=[entity("Feature", "f2", references={"data": DATASETS[0]})])
    assert features() == {FEATURES[0], FEATURES[1], FEATURES[2]}
    stats = cache.stats()
    assert stats is not None and stats.builds == 2 and stats.edits == 0
    assert stats.nodes >= 5 and stats.edges == 4 and stats.bytes > 0


def test_the_cache_reports_nothing_before_its_first_walk(store: Store) -> None:
    lineage(store)
    assert store.traversal_cache() is None
    reached(store)
    stats = store.traversal_cache()
    assert stats is not None and stats.builds == 1 and stats.edges == 2
    assert Store(store.engine, store.schema, graph_cache="off").traversal_cache() is None


def test_a_store_emptied_under_the_copy_is_read_again(store: Store) -> None:
    lineage(store)
    store.transact(upsert=[entity("Feature", "f1", references={"data": DATASETS[0]})])
    assert len(reached(store)) == 3
    with store.engine.begin() as conn:  # as a test suite's truncation does
        for table in (t.change, t.edge, t.edge_version, t.entity, t.entity_version, t.tx, t.node):
            conn.execute(table.delete())
    # Transaction ids start again from 1: behind the copy's cursor.
    store.transact(upsert=[entity("Dataset", "d0"),
                           entity("Feature", "f2", references={"data": DATASETS[0]})])  # fmt: skip
    assert reached(store) == {FEATURES[2]: ("f2", 1)}
    stats = store.traversal_cache()
    assert stats is not None and stats.builds == 2


def test_the_autocommit_read_leaves_the_pooled_connection_transactional(store: Store) -> None:
    lineage(store)
    reached(store)  # on PostgreSQL this reads in autocommit
    with store.engine.connect() as conn:
        dbapi: Any = conn.connection.dbapi_connection
        if store.backend == "postgresql":
            assert dbapi.autocommit is False
    # And a transaction that fails still leaves nothing behind.
    with pytest.raises(ValidationError):
        store.transact(
            upsert=[
                entity("Feature", "f5", references={"data": DATASETS[0]}),
                entity("Feature", "f5"),  # the same entity twice: the whole transaction fails
            ]
        )
    assert FEATURES[0] in reached(store) and uri("Feature", "f5") not in reached(store)


def _wait_until_ready(store: Store) -> None:
    deadline = time.monotonic() + 30
    while store.traversal_cache() is None:
        assert time.monotonic() < deadline, "the background build did not finish"
        time.sleep(0.02)


def test_in_the_background_sql_answers_until_the_copy_is_built(
    store: Store, store_url: str
) -> None:
    lineage(store)
    expected = reached(store)  # built by this walk (the suite's stores block)
    with Store.open(store_url, store.schema) as served:  # a server's default: background
        assert reached(served) == expected  # answered in SQL while the copy is built
        _wait_until_ready(served)
        stats = served.traversal_cache()
        assert stats is not None and stats.builds == 1
        served.transact(upsert=[entity("Feature", "f1", references={"data": DATASETS[0]})])
        assert reached(served)[FEATURES[1]] == ("f1", 1)  # in memory, caught up
        assert served.traversal_cache().builds == 1  # type: ignore[union-attr]
        served.purge(INSTANCES[0])  # the copy cannot follow a purge: SQL, and build again
        assert reached(served) == {FEATURES[0]: ("f0", 1), FEATURES[1]: ("f1", 1)}
        deadline = time.monotonic() + 30
        while (served.traversal_cache() or stats).builds < 2:
            assert time.monotonic() < deadline, "the copy was not built again"
            time.sleep(0.02)
        assert reached(served) == {FEATURES[0]: ("f0", 1), FEATURES[1]: ("f1", 1)}


def test_warm_builds_the_copy_before_the_first_walk(store_url: str, store: Store) -> None:
    lineage(store)
    with Store.open(store_url, store.schema) as served:
        assert served.traversal_cache() is None
        served.warm_traversals()
        _wait_until_ready(served)
        assert served.traversal_cache().edges == 2  # type: ignore[union-attr]
