"""get / neighbors as of a transaction or a time, and history with diffs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mlgraph.store import EdgeChange, Store
from tests.builders import entity, uri

ALICE = "aip://user/identity/alice"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_get_as_of_a_time_reads_the_version_then(store: Store) -> None:
    d = uri("Dataset", "d")
    store.transact(upsert=[entity("Dataset", "d", description="one")], at=T0)
    store.transact(upsert=[entity("Dataset", "d", description="two")], at=T0 + timedelta(hours=1))
    assert store.get(d, as_of=T0 - timedelta(seconds=1)) is None
    assert store.require(d, as_of=T0).description == "one"
    assert store.require(d, as_of=T0 + timedelta(minutes=59)).description == "one"
    assert store.require(d, as_of=T0 + timedelta(hours=2)).description == "two"


def test_transaction_time_never_runs_backwards(store: Store) -> None:
    store.transact(upsert=[entity("Dataset", "a")], at=T0)
    report = store.transact(upsert=[entity("Dataset", "b")], at=T0 - timedelta(days=1))
    assert report.at == T0


def test_neighbors_name_both_directions(store: Store) -> None:
    run, m = uri("PipelineRun", "r"), uri("ModelInstance", "m")
    store.transact(
        upsert=[entity("ModelInstance", "m", owners=[ALICE], references={"pipeline_run": run})]
    )
    out = {(n.relationship, n.direction, n.uri, n.type) for n in store.neighbors(m)}
    assert out == {
        ("owners", "out", ALICE, "User"),
        ("pipeline_run", "out", run, "PipelineRun"),
    }
    (back,) = store.neighbors(run)
    assert (back.relationship, back.direction, back.uri, back.label) == (
        "model_instances", "in", m, "ModelInstance.pipeline_run"
    )  # fmt: skip
    assert store.neighbors(m, direction="in") == []
    assert [n.uri for n in store.neighbors(m, relationships=["owners"])] == [ALICE]
    assert store.neighbors(uri("Dataset", "unknown")) == []


def test_neighbors_as_of_see_edges_that_are_gone(store: Store) -> None:
    m = uri("ModelInstance", "m")
    f1, f2 = uri("Feature", "f1"), uri("Feature", "f2")
    store.transact(upsert=[entity("ModelInstance", "m", references={"features": [f1]})])
    store.transact(upsert=[entity("ModelInstance", "m", references={"features": [f2]})])
    assert [n.uri for n in store.neighbors(m, as_of=1)] == [f1]
    assert [n.uri for n in store.neighbors(m)] == [f2]
    assert store.require(m, as_of=1).references == {"features": (f1,)}


def test_history_lists_every_change_with_what_changed(store: Store) -> None:
    m = uri("ModelInstance", "m")
    f1 = uri("Feature", "f1")
    store.transact(upsert=[entity("ModelInstance", "m", attributes={"stage": "staging"})])
    store.transact(
        upsert=[entity("ModelInstance", "m", attributes={"stage": "production"}, tags={"t": "x"})]
    )
    store.transact(
        upsert=[
            entity(
                "ModelInstance",
                "m",
                attributes={"stage": "production"},
                tags={"t": "x"},
                references={"features": [f1]},
            )
        ]
    )
    store.transact(upsert=[entity("Feature", "f1")])  # the stub hydrates: not m's history
    store.retract(m)
    versions = store.history(m)
    assert [v.op for v in versions] == ["created", "updated", "edges", "retracted"]
    assert versions[0].changes["attributes.stage"] == (None, "staging")
    assert versions[1].changes == {
        "attributes.stage": ("staging", "production"),
        "tags.t": (None, "x"),
    }
    assert versions[2].edges_added == (EdgeChange("features", "out", f1),)
    assert versions[2].changes == {"references.features": (None, (f1,))}
    assert versions[2].entity is not None and versions[2].entity.references == {"features": (f1,)}
    assert versions[3].entity is None
    assert versions[3].edges_removed == (EdgeChange("features", "out", f1),)
    assert [v.tx for v in versions] == [1, 2, 3, 5]


def test_history_of_a_target_shows_incoming_edges(store: Store) -> None:
    f1 = uri("Feature", "f1")
    store.transact(upsert=[entity("ModelInstance", "m", references={"features": [f1]})])
    (created,) = store.history(f1)
    assert created.op == "created"
    assert created.edges_added == (EdgeChange("used_by", "in", uri("ModelInstance", "m")),)


def test_listing_is_exactly_one_prefix(store: Store) -> None:
    store.transact(
        upsert=[
            entity("Model", "ranking", source="registry", source_updated_at=T0),
            entity("ModelInstance", "ranking-v5", source="registry"),
            entity("Model", "other", source="registryx"),
            entity("Dataset", "d", source="registry"),
        ]
    )
    listed = store.listing("aip://model/registry/")
    assert [(i.uri, i.type) for i in listed] == [
        ("aip://model/registry/ranking", "Model"),
        ("aip://model/registry/ranking-v5", "ModelInstance"),
    ]
    assert listed[0].source_updated_at == T0 and listed[0].state == "hydrated"
    assert [i.uri for i in store.listing("aip://model/registry/", type="ModelInstance")] == [
        "aip://model/registry/ranking-v5"
    ]


def test_one_transaction_can_carry_a_cause_per_entity(store: Store) -> None:
    from mlgraph.store import Op, Provenance

    a, b = uri("Dataset", "a"), uri("Feature", "b")
    store.transact(
        upsert=[entity("Dataset", "a"), entity("Feature", "b", references={"data": a})],
        provenance=Provenance("hydrator", None, "worker-1"),
        causes={a: Provenance("datasets", "evt-a"), b: Provenance("featurestore", "evt-b")},
    )
    assert store.history(a)[0].provenance == Provenance("datasets", "evt-a", "worker-1")
    assert store.history(b)[0].provenance == Provenance("featurestore", "evt-b", "worker-1")
    (change,) = store.changes_since(0)
    assert change.provenance == Provenance("hydrator", None, "worker-1")
    edge = next(i for i in change.items if i.op is Op.ASSERT)
    assert edge.cause == Provenance("featurestore", "evt-b")
