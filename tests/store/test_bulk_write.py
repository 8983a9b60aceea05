"""A big transaction (written by COPY on PostgreSQL) stores exactly what small ones store."""

from __future__ import annotations

from typing import Any

from mlgraph.catalog import Entity
from mlgraph.store import Edge, Provenance, Store
from mlgraph.store.transactor import COPY_MIN
from tests.builders import entity, uri
from tests.conftest import StoreFactory

N = COPY_MIN + 10  # features; each also brings two edges and three feed entries


def content() -> tuple[list[Entity], list[Edge]]:
    entities = [entity("Dataset", "d", description=None, tags={"pii": "no"})]
    entities += [
        entity(
            "Feature",
            f"f{i:03}",
            owners=["aip://user/identity/alice"],
            references={"data": uri("Dataset", "d")},
            description='it\'s a "quoted"\ttab\nnewline \\ back\\slash é',
            tags={"team": "ranking", "n": str(i)},
        )
        for i in range(N)
    ]
    # Inferred edges, half of them with provenance: JSON on one, SQL NULL on the other.
    edges = [
        Edge(
            uri("Feature", f"f{i:03}"),
            "consuming_models",
            uri("ModelInstance", f"m{i:03}"),
            origin="inferred",
            provenance={"rule": "name-match", "score": 0.5} if i % 2 else None,
        )
        for i in range(N)
    ]
    return entities, edges


def snapshot(store: Store, entities: list[Entity]) -> dict[str, Any]:
    """Everything a reader can see, without transaction ids."""
    out: dict[str, Any] = {}
    for e in entities:
        found = store.require(e.uri)
        near = [(n.relationship, n.uri, n.origin, n.provenance) for n in store.neighbors(e.uri)]
        out[e.uri] = (found, sorted(near, key=str))
    feed = [item for change in store.changes_since(0, limit=100_000) for item in change.items]
    out["feed"] = sorted((i.kind, i.op, i.uri, i.label or "", i.other or "") for i in feed)
    out["summary"] = {k: v for k, v in store.summary().items() if k not in ("last_tx", "cursors")}
    return out


def test_a_big_transaction_stores_what_small_ones_store(store_factory: StoreFactory) -> None:
    entities, edges = content()
    with store_factory() as big:
        report = big.transact(upsert=entities, assert_edges=edges)
        assert (report.entities_written, report.stubs_created) == (N + 1, N + 1)  # m*, alice
        assert report.edges_asserted == 3 * N
        expected = snapshot(big, entities)
    with store_factory() as small:
        for e in entities:
            small.transact(upsert=[e])
        for edge in edges:
            small.transact(assert_edges=[edge])
        assert snapshot(small, entities) == expected
    near = dict((n[0], n[3]) for n in expected[uri("Feature", "f001")][1])
    assert near["consuming_models"] == {"rule": "name-match", "score": 0.5}
    assert (
        dict((n[0], n[3]) for n in expected[uri("Feature", "f002")][1])["consuming_models"] is None
    )


def test_a_big_transaction_keeps_its_provenance(store_factory: StoreFactory) -> None:
    entities, _ = content()
    with store_factory() as store:
        store.transact(upsert=entities, provenance=Provenance("datasets", "evt-1", "loader"))
        (change,) = store.changes_since(0)
        assert change.provenance == Provenance("datasets", "evt-1", "loader")
        assert len(change.items) == 1 + N + 1 + 2 * N  # entities, alice, owners and data edges
