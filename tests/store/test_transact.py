"""transact(): versions, no-op writes, stubs, references, edges, bad input."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mlgraph.catalog import LifecycleState
from mlgraph.errors import ValidationError
from mlgraph.store import Edge, Op, Provenance, Store
from mlgraph.store import tables as t
from tests.builders import entity, uri

ALICE = "aip://user/identity/alice"
BOB = "aip://user/identity/bob"


def count(store: Store, table: sa.Table) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_upsert_writes_one_transaction_with_provenance(store: Store) -> None:
    report = store.transact(
        upsert=[entity("Dataset", "clicks", description="raw clicks", tags={"pii": "yes"})],
        provenance=Provenance(source="datasets", event_id="e-1", actor="tester"),
    )
    assert report.changed and report.tx == 1 and report.entities_written == 1
    (change,) = store.changes_since(0)
    assert change.provenance == Provenance("datasets", "e-1", "tester")
    got = store.require(uri("Dataset", "clicks"))
    assert (got.description, got.tags, got.state) == ("raw clicks", {"pii": "yes"}, "hydrated")


def test_a_write_that_changes_nothing_leaves_no_trace(store: Store) -> None:
    d = entity("Dataset", "clicks", owners=[ALICE], tags={"a": "1"})
    store.transact(upsert=[d])
    before = (count(store, t.tx), count(store, t.entity_version), count(store, t.edge_version))
    report = store.transact(upsert=[d])
    assert not report.changed and report.tx is None
    assert (
        count(store, t.tx),
        count(store, t.entity_version),
        count(store, t.edge_version),
    ) == before
    assert len(store.changes_since(0)) == 1
    assert store.last_tx() == 1


def test_a_change_opens_a_new_version_and_closes_the_old(store: Store) -> None:
    store.transact(upsert=[entity("Dataset", "clicks", description="v1")])
    store.transact(upsert=[entity("Dataset", "clicks", description="v2")])
    assert store.require(uri("Dataset", "clicks")).description == "v2"
    assert store.require(uri("Dataset", "clicks"), as_of=1).description == "v1"
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.entity_version.c.tx_from, t.entity_version.c.tx_to).order_by("tx_from")
        ).all()
    assert [tuple(r) for r in rows] == [(1, 2), (2, None)]


def test_a_reference_to_an_unknown_entity_creates_a_stub(store: Store) -> None:
    run = uri("PipelineRun", "r1")
    report = store.transact(
        upsert=[entity("ModelInstance", "m1", owners=[ALICE], references={"pipeline_run": run})]
    )
    assert report.stubs_created == 2
    stub = store.require(run)
    assert (stub.type, stub.state, stub.name) == ("PipelineRun", LifecycleState.STUB, None)
    assert store.require(ALICE).type == "User"
    assert [n.uri for n in store.neighbors(run, relationships=["model_instances"])] == [
        uri("ModelInstance", "m1")
    ]


def test_hydrating_a_stub_keeps_its_edges(store: Store) -> None:
    run = uri("PipelineRun", "r1")
    store.transact(upsert=[entity("ModelInstance", "m1", references={"pipeline_run": run})])
    store.transact(upsert=[entity("PipelineRun", "r1", attributes={"status": "ok"})])
    hydrated = store.require(run)
    assert hydrated.state == "hydrated" and hydrated.attributes == {"status": "ok"}
    assert store.neighbors(run)[0].uri == uri("ModelInstance", "m1")


def test_a_stub_never_overwrites_what_is_known(store: Store) -> None:
    store.transact(upsert=[entity("Dataset", "d", description="known")])
    stub = entity("Dataset", "d", state=LifecycleState.STUB, name=None)
    assert not store.transact(upsert=[stub]).changed
    assert store.require(uri("Dataset", "d")).description == "known"


def test_a_hydrated_entity_cannot_change_type(store: Store) -> None:
    store.transact(upsert=[entity("Model", "x")])
    with pytest.raises(ValidationError, match="is a Model; it cannot become a ModelInstance"):
        store.transact(upsert=[entity("ModelInstance", "x")])


def test_stated_references_replace_and_unstated_ones_stay(store: Store) -> None:
    f1, f2, f3 = (uri("Feature", f) for f in ("f1", "f2", "f3"))
    run = uri("PipelineRun", "r")
    store.transact(
        upsert=[
            entity("ModelInstance", "m", references={"features": [f1, f2], "pipeline_run": run})
        ]
    )
    report = store.transact(
        upsert=[entity("ModelInstance", "m", references={"features": [f2, f3]})]
    )
    assert (report.edges_asserted, report.edges_retracted) == (1, 1)
    got = store.require(uri("ModelInstance", "m"))
    assert got.references == {"features": (f2, f3), "pipeline_run": (run,)}
    store.transact(upsert=[entity("ModelInstance", "m", references={"features": []})])
    assert store.require(uri("ModelInstance", "m")).references == {"pipeline_run": (run,)}


def test_owners_are_always_stated_in_full(store: Store) -> None:
    store.transact(upsert=[entity("Dataset", "d", owners=[ALICE, BOB])])
    store.transact(upsert=[entity("Dataset", "d", owners=[BOB])])
    assert store.require(uri("Dataset", "d")).owners == (BOB,)
    owns = store.neighbors(ALICE, relationships=["owns"])
    assert owns == []
    assert [n.uri for n in store.neighbors(BOB, relationships=["owns"])] == [uri("Dataset", "d")]


def test_edges_are_asserted_and_retracted_with_provenance(store: Store) -> None:
    m, test = uri("ModelInstance", "m"), uri("AbTestCell", "c")
    store.transact(upsert=[entity("PipelineRun", "r")])
    store.transact(upsert=[entity("ModelInstance", "m")])
    edge = Edge(uri("PipelineRun", "r"), "ab_test_cells", test, "inferred", {"rule": "x"})
    report = store.transact(assert_edges=[edge])
    assert (report.edges_asserted, report.stubs_created) == (1, 1)
    (n,) = store.neighbors(uri("PipelineRun", "r"), relationships=["ab_test_cells"])
    assert (n.uri, n.origin, n.provenance) == (test, "inferred", {"rule": "x"})
    # Asserting it again unchanged is a no-op; changed provenance is a new version.
    assert not store.transact(assert_edges=[edge]).changed
    moved = Edge(edge.src, edge.rel, edge.dst, "inferred", {"rule": "y"})
    assert store.transact(assert_edges=[moved]).edges_asserted == 1
    report = store.transact(retract_edges=[edge])
    assert report.edges_retracted == 1
    assert store.neighbors(uri("PipelineRun", "r"), relationships=["ab_test_cells"]) == []
    assert m  # the model is untouched
    assert store.get(m) is not None


def test_an_edge_from_an_unknown_source_is_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="edge source .* is not in the store"):
        store.transact(
            assert_edges=[Edge(uri("Dataset", "nope"), "produced_by", uri("Pipeline", "p"))]
        )


def test_an_edge_stated_from_the_inverse_side_is_refused(store: Store) -> None:
    store.transact(upsert=[entity("PipelineRun", "r")])
    with pytest.raises(ValidationError, match="is the inverse of ModelInstance.pipeline_run"):
        store.transact(
            assert_edges=[
                Edge(uri("PipelineRun", "r"), "model_instances", uri("ModelInstance", "m"))
            ]
        )


def test_an_edge_to_an_entity_of_the_wrong_type_is_refused(store: Store) -> None:
    # Model and ModelInstance share the URI kind 'model', so only the stored type tells.
    store.transact(upsert=[entity("Model", "x")])
    with pytest.raises(ValidationError, match="is a Model; Model.current_instance points to"):
        store.transact(
            assert_edges=[Edge(uri("Model", "x"), "current_instance", uri("Model", "x"))]
        )
    bad = entity("Model", "y", references={"current_instance": uri("Model", "x")})
    with pytest.raises(ValidationError, match="is a Model; Model.current_instance points to"):
        store.transact(upsert=[bad])


def test_bad_input_writes_nothing(store: Store) -> None:
    store.transact(upsert=[entity("Dataset", "kept")])
    good = entity("Dataset", "new", owners=[ALICE])
    bad = entity("Dataset", "bad", attributes={"row_count": 3})
    with pytest.raises(ValidationError, match="Dataset has no field 'row_count'"):
        store.transact(upsert=[good, bad])
    store.transact(upsert=[good])  # fine alone
    with pytest.raises(ValidationError, match="edge source"):
        store.transact(
            upsert=[entity("Dataset", "other")],
            assert_edges=[Edge(uri("Dataset", "ghost"), "produced_by", uri("Pipeline", "p"))],
        )
    assert store.get(uri("Dataset", "other")) is None
    assert store.get(uri("Dataset", "bad")) is None
    assert store.last_tx() == 2
    assert store.summary()["entities"] == 3  # kept, new, alice


def test_an_entity_twice_or_upserted_and_retracted_is_refused(store: Store) -> None:
    d = entity("Dataset", "d")
    with pytest.raises(ValidationError, match="upserted twice"):
        store.transact(upsert=[d, d])
    with pytest.raises(ValidationError, match="both upserted and retracted"):
        store.transact(upsert=[d], retract=[d.uri])


def test_retraction_keeps_history_and_drops_edges(store: Store) -> None:
    run = uri("PipelineRun", "r")
    store.transact(
        upsert=[entity("ModelInstance", "m", owners=[ALICE], references={"pipeline_run": run})]
    )
    report = store.retract(uri("ModelInstance", "m"))
    assert (report.entities_retracted, report.edges_retracted) == (1, 2)
    assert store.get(uri("ModelInstance", "m")) is None
    assert store.get(uri("ModelInstance", "m"), as_of=1) is not None
    assert store.neighbors(run) == []
    assert [n.uri for n in store.neighbors(run, as_of=1)] == [uri("ModelInstance", "m")]
    ops = [(i.kind, i.op) for i in store.changes_since(1)[0].items]
    assert ops.count(("entity", Op.RETRACT)) == 1 and ops.count(("edge", Op.RETRACT)) == 2
    assert not store.retract(uri("ModelInstance", "m")).changed  # already gone
    store.transact(upsert=[entity("ModelInstance", "m")])  # and it can come back
    assert store.require(uri("ModelInstance", "m")).references == {}


def test_purge_removes_every_trace_but_tells_the_feed(store: Store) -> None:
    run = uri("PipelineRun", "r")
    store.transact(upsert=[entity("ModelInstance", "m", references={"pipeline_run": run})])
    store.transact(upsert=[entity("ModelInstance", "m", description="changed")])
    report = store.purge(uri("ModelInstance", "m"))
    assert report.changed
    assert store.get(uri("ModelInstance", "m"), as_of=1) is None
    assert store.history(uri("ModelInstance", "m")) == []
    assert store.neighbors(run, as_of=1) == []
    items = [i for c in store.changes_since(0) for i in c.items]
    assert all(i.uri != uri("ModelInstance", "m") or i.op is Op.PURGE for i in items)
    assert items[-1].op is Op.PURGE
    assert not store.purge(uri("ModelInstance", "m")).changed


def test_a_malformed_uri_is_a_validation_error(store: Store) -> None:
    with pytest.raises(ValidationError, match="invalid URI"):
        store.get("not-a-uri")
    with pytest.raises(ValidationError, match="retract: invalid URI"):
        store.retract("aip://x")


def test_restating_a_relationship_leaves_inferred_edges_alone(store: Store) -> None:
    f, d0, d1 = uri("Feature", "f"), uri("Dataset", "d0"), uri("Dataset", "d1")
    store.transact(upsert=[entity("Feature", "f", references={"data": [d0]})])
    store.transact(assert_edges=[Edge(f, "data", d1, "inferred", {"rule": "r"})])
    store.transact(upsert=[entity("Feature", "f", references={"data": []})])
    assert [(n.uri, n.origin) for n in store.neighbors(f)] == [(d1, "inferred")]


def test_retracting_an_entity_others_still_reference_leaves_a_stub(store: Store) -> None:
    run = uri("PipelineRun", "r")
    store.transact(upsert=[entity("ModelInstance", "m", references={"pipeline_run": run})])
    store.transact(upsert=[entity("PipelineRun", "r", owners=[ALICE], attributes={"status": "ok"})])
    report = store.retract(run)
    assert report.entities_retracted == 1 and report.edges_retracted == 1  # its owner edge
    stub = store.require(run)
    assert (stub.state, stub.attributes, stub.owners) == ("stub", {}, ())
    # The instance still says it came from that run: its edge is its own.
    assert store.require(uri("ModelInstance", "m")).references == {"pipeline_run": (run,)}
    assert [v.op for v in store.history(run)] == ["created", "updated", "updated"]
    # Once nothing points to it, retracting removes it.
    store.transact(upsert=[entity("ModelInstance", "m", references={"pipeline_run": []})])
    store.retract(run)
    assert store.get(run) is None
