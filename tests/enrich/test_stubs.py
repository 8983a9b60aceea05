"""Progressive hydration of stubs, and references that cannot be resolved."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from mlgraph.catalog import Entity
from mlgraph.enrich.enricher import Enricher
from mlgraph.sources import CollectingSink
from mlgraph.store import Store
from tests.e2e.harness import make_service, running_sources, settle

RUN = "aip://pipeline-run/orchestrator/run-with-a-ghost-cell"
GHOST_CELL = "aip://ab-test-cell/experimentation/999-1"


def test_a_reference_the_source_does_not_have_is_reported_not_retried(store: Store) -> None:
    sink = CollectingSink()
    with running_sources(sink) as (_, thread, urls):
        service = make_service(store, urls)
        with httpx.Client(base_url=urls["orchestrator"]) as admin:
            created = admin.post("/admin/pipeline-runs", json={
                "run_id": "run-with-a-ghost-cell", "pipeline": "weekly-ranking-trainer",
                "ab_test_cells": [{"test_id": "999", "cell_number": 1, "cell_name": "ghost"}],
            })  # fmt: skip
            assert created.status_code == 201, created.text
        thread.flush()
        service.accept(list(sink.events))
        settle(service)

        assert store.require(RUN).state == "hydrated"
        # The pipeline was a stub too, and was hydrated with no event of its own.
        pipeline = store.require(RUN).references["pipeline"][0]
        assert store.require(pipeline).state == "hydrated"
        # The cell's test does not exist at the experimentation platform: the
        # cell stays a stub, reported with the reason, and nothing is pending.
        assert store.require(GHOST_CELL).state == "stub"
        (unresolved,) = store.unresolved()
        assert unresolved.uri == GHOST_CELL and unresolved.referenced_by == 1
        assert "404" in unresolved.reason
        stats = service.inbox.stats()
        assert (stats.pending, stats.processing, stats.dead_letters) == (0, 0, 0)

        # Another event for the run does not ask for the ghost again.
        enricher = service.make_enricher()
        enricher.catch_up()
        service.accept({"event_type": "pipeline_run_updated",
                        "run_id": "run-with-a-ghost-cell"})  # fmt: skip
        settle(service)
        assert service.inbox.stats().pending == 0
        assert [u.uri for u in store.unresolved()] == [GHOST_CELL]


def test_a_stub_no_connector_can_fetch_is_marked_unresolved(store: Store) -> None:
    asked: list[tuple[str, str]] = []

    def request(stubs: Sequence[tuple[str, str]]) -> dict[str, str]:
        asked.extend(stubs)
        return {uri: "no connector serves the source 'nowhere'" for uri, _ in asked}

    store.transact(upsert=[Entity(
        uri="aip://feature/featurestore/f1", type="Feature", name="f1",
        references={"data": ("aip://dataset/nowhere/raw",)},
    )])  # fmt: skip
    Enricher(store, request).catch_up()
    assert asked == [("aip://dataset/nowhere/raw", "Dataset")]
    (unresolved,) = store.unresolved()
    assert unresolved.reason == "no connector serves the source 'nowhere'"
    status = store.status("aip://dataset/nowhere/raw")
    assert status is not None and status.hydrated_at is None and status.unresolved_at

    # Once the entity is hydrated after all, it is no longer unresolved.
    store.transact(upsert=[Entity(uri="aip://dataset/nowhere/raw", type="Dataset", name="raw")])
    store.record_hydration(["aip://dataset/nowhere/raw"], [], status.unresolved_at)
    assert store.unresolved() == []
