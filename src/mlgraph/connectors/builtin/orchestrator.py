"""The Pipeline Orchestrator: pipelines, their runs, and job attempts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlgraph.catalog import Entity, Schema
from mlgraph.connectors.base import BatchGet, Connector, EventRule, Resource
from mlgraph.connectors.people import owners_from_emails, tags_from_labels
from mlgraph.connectors.registry import ConnectorContext

NAME = "orchestrator"


def _events(prefix: str, id_field: str) -> dict[str, EventRule]:
    return {f"{prefix}_{verb}": EventRule(id_field) for verb in ("created", "updated", "deleted")}


RESOURCES = {
    "pipeline": Resource("pipeline", "Pipeline", "/api/v1/pipelines/{id}", "/api/v1/pipelines",
                         _events("pipeline", "pipeline_id"),
                         BatchGet("/api/v1/pipelines:batchGet", "id")),
    "pipeline-run": Resource("pipeline-run", "PipelineRun", "/api/v1/pipeline-runs/{id}",
                             "/api/v1/pipeline-runs", _events("pipeline_run", "run_id"),
                             BatchGet("/api/v1/pipeline-runs:batchGet", "run_id")),
    "job-attempt": Resource("job-attempt", "JobAttempt", "/api/v1/job-attempts/{id}",
                            "/api/v1/job-attempts", _events("job_attempt", "attempt_id"),
                            BatchGet("/api/v1/job-attempts:batchGet", "attempt_id")),
}  # fmt: skip


def cell_id(test_id: object, cell_number: object) -> str:
    """An A/B test cell's id at the experimentation source: ``{test_id}-{cell_number}``."""
    return f"{test_id}-{cell_number}"


class OrchestratorConnector(Connector):
    def __init__(self, base_url: str, schema: Schema) -> None:
        super().__init__(NAME, base_url, RESOURCES, schema)

    def normalize(self, resource: Resource, payload: Mapping[str, Any]) -> list[Entity]:
        build = {"pipeline": self.pipeline, "pipeline-run": self.run, "job-attempt": self.attempt}
        return [build[resource.name](payload)]

    def pipeline(self, p: Mapping[str, Any]) -> Entity:
        return Entity(
            uri=self.uri("Pipeline", p["id"]),
            type="Pipeline",
            name=p.get("name") or p["id"],
            description=p.get("description"),
            owners=owners_from_emails(p.get("owner_emails"), self.schema),
            tags=tags_from_labels(p.get("labels")),
            attributes={"schedule": p.get("schedule"), "repository": p.get("repository")},
            references={
                "inputs": tuple(
                    self.uri("Dataset", d, "datasets") for d in p.get("input_dataset_ids") or ()
                )
            },
            source_updated_at=p.get("updated_at"),
        )

    def run(self, p: Mapping[str, Any]) -> Entity:
        cells = p.get("ab_test_cells") or ()
        return Entity(
            uri=self.uri("PipelineRun", p["run_id"]),
            type="PipelineRun",
            name=p["run_id"],
            owners=owners_from_emails(p.get("owner_emails"), self.schema),
            attributes={
                "status": p.get("status"),
                "run_number": p.get("run_number"),
                "started_at": p.get("started_at"),
                "ended_at": p.get("ended_at"),
            },
            references={
                "pipeline": (self.uri("Pipeline", p["pipeline"]),) if p.get("pipeline") else (),
                "input_datasets": tuple(
                    self.uri("DatasetVersion", v, "datasets")
                    for v in p.get("input_dataset_version_ids") or ()
                ),
                "ab_test_cells": tuple(
                    self.uri(
                        "AbTestCell", cell_id(c["test_id"], c["cell_number"]), "experimentation"
                    )
                    for c in cells
                ),
            },
            source_created_at=p.get("started_at"),
            source_updated_at=p.get("updated_at"),
        )

    def attempt(self, p: Mapping[str, Any]) -> Entity:
        return Entity(
            uri=self.uri("JobAttempt", p["attempt_id"]),
            type="JobAttempt",
            name=p["attempt_id"],
            attributes={
                "attempt_number": p.get("attempt_number"),
                "status": p.get("status"),
                "host": p.get("host"),
                "started_at": p.get("started_at"),
                "ended_at": p.get("ended_at"),
            },
            references={
                "pipeline_run": (self.uri("PipelineRun", p["run_id"]),) if p.get("run_id") else ()
            },
            source_updated_at=p.get("updated_at"),
        )


def connector(context: ConnectorContext) -> Connector:
    return OrchestratorConnector(context.base_url(NAME, "http://127.0.0.1:9102"), context.schema)
