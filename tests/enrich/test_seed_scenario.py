"""Seed 000 end to end: one event, and the instance is tied to its A/B test by inference."""

from __future__ import annotations

import httpx
from fastapi.testclient import TestClient

from mlgraph.api import create_app
from mlgraph.sources import CollectingSink
from mlgraph.store import Store
from tests.e2e.harness import make_service, running_sources, settle

INSTANCE = "aip://model/registry/ranking-model-v5-20XX0101"
RUN = "aip://pipeline-run/orchestrator/train-weekly-ranking-20XX0101"
TEST = "aip://ab-test/experimentation/12345"


def related(store: Store, uri: str, relationship: str) -> set[str]:
    return {n.uri for n in store.neighbors(uri, relationships=[relationship])}


def test_one_event_associates_the_instance_with_its_ab_test(store: Store) -> None:
    with running_sources() as (_, _, urls):
        service = make_service(store, urls)
        with TestClient(create_app(service, workers=False)) as client:
            event = {"event_type": "model_instance_created",
                     "instance_id": "ranking-model-v5-20XX0101"}  # fmt: skip
            assert client.post("/v1/events", json=event).status_code == 202
        settle(service)

    assert related(store, INSTANCE, "associated_ab_tests") == {TEST}
    test = store.require(TEST)
    assert test.state == "hydrated" and test.name == "Ranking Model v5 vs v4"
    # The reverse: the test lists the instance and the instance's model.
    model = store.require(INSTANCE).references["model"][0]
    assert related(store, TEST, "model_instances") == {INSTANCE}
    assert related(store, TEST, "models") == {model}
    # Stubs on the way were hydrated from their own sources, with no event of theirs.
    assert store.require(RUN).state == "hydrated"
    assert store.require(model).state == "hydrated"
    # The inferred edge says which rule made it and which edges it rests on.
    (edge,) = [n for n in store.neighbors(INSTANCE, relationships=["associated_ab_tests"])]
    assert edge.origin == "inferred"
    assert edge.provenance is not None
    assert edge.provenance["rule"].startswith("ModelInstance.associated_ab_tests := ")
    (path,) = edge.provenance["support"]
    assert path[0] == [INSTANCE, "ModelInstance.pipeline_run", RUN]
    assert path[-1][1:] == ["AbTestCell.test", TEST]
    status = store.status(INSTANCE)
    assert status is not None and status.hydrated_at and status.enriched_at


def test_removing_the_runs_cell_at_the_source_retracts_the_association(store: Store) -> None:
    sink = CollectingSink()
    with running_sources(sink) as (_, thread, urls):
        service = make_service(store, urls)
        service.accept({"event_type": "model_instance_created",
                        "instance_id": "ranking-model-v5-20XX0101"})  # fmt: skip
        settle(service)
        assert related(store, INSTANCE, "associated_ab_tests") == {TEST}
        associated_at = store.last_tx()

        # The orchestrator drops the run's A/B cell; its thin event reaches us.
        run_id = RUN.rsplit("/", 1)[1]
        with httpx.Client(base_url=urls["orchestrator"]) as admin:
            changed = admin.put(f"/admin/pipeline-runs/{run_id}", json={"ab_test_cells": []})
            assert changed.status_code == 200, changed.text
        thread.flush()
        service.accept(list(sink.events))
        settle(service)

    assert related(store, INSTANCE, "associated_ab_tests") == set()
    assert related(store, TEST, "models") == set()
    # History keeps what was inferred, and when it stopped holding.
    assert related_then(store, INSTANCE, associated_at) == {TEST}
    removed = [v for v in store.history(INSTANCE) if v.edges_removed]
    assert [(e.relationship, e.uri) for e in removed[-1].edges_removed] == [
        ("associated_ab_tests", TEST)
    ]
    assert removed[-1].provenance.actor == "enricher"


def related_then(store: Store, uri: str, tx: int) -> set[str]:
    return {n.uri for n in store.neighbors(uri, tx, relationships=["associated_ab_tests"])}
