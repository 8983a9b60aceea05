"""A small lineage graph for the API tests, with inferences derived and statuses stamped.

d -> f -> m1 (instance of model M, current; trained by run r of pipeline p for cell c of
test t); e -> g -> m2 (also of M). Inferred: f and g consuming_models M; m1 and M
associated_ab_tests t; m1 pipeline p.
"""

from __future__ import annotations

from datetime import UTC, datetime

from mlgraph.enrich.inference import Inference
from mlgraph.store import Store
from tests.builders import entity, uri

D, E = uri("Dataset", "d"), uri("Dataset", "e")
F, G = uri("Feature", "f"), uri("Feature", "g")
M, M1, M2 = uri("Model", "model-m"), uri("ModelInstance", "m1"), uri("ModelInstance", "m2")
R, P = uri("PipelineRun", "r"), uri("Pipeline", "p")
C, T = uri("AbTestCell", "c"), uri("AbTest", "t")
ALICE, BOB, TEAM = uri("User", "alice"), uri("User", "bob"), uri("Group", "team")
HYDRATED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def build(store: Store) -> None:
    store.transact(
        upsert=[
            entity("User", "alice", name="Alice"),
            entity("User", "bob", name="Bob"),
            entity("Group", "team", name="Team"),
            entity("Dataset", "d", owners=[BOB]),
            entity("Dataset", "e"),
            entity("Feature", "f", owners=[ALICE], references={"data": D},
                   attributes={"version": 3, "value_type": "float"}),
            entity("Feature", "g", references={"data": E}),
            entity("Model", "model-m", owners=[TEAM], references={"current_instance": M1}),
            entity("ModelInstance", "m1", owners=[ALICE], attributes={"version": "5"},
                   references={"model": M, "features": F, "pipeline_run": R}),
            entity("ModelInstance", "m2", owners=[BOB], references={"model": M, "features": G}),
            entity("Pipeline", "p", owners=[ALICE]),
            entity("PipelineRun", "r", references={"pipeline": P, "ab_test_cells": C}),
            entity("AbTestCell", "c", references={"test": T}, attributes={"number": 2}),
            entity("AbTest", "t", name="Ranking v5 vs v4", owners=[BOB, TEAM]),
        ]
    )  # fmt: skip
    Inference(store).rederive()
    store.mark_hydrated([M1, F], HYDRATED_AT)
    store.mark_enriched([M1], HYDRATED_AT)
