"""The Model Registry: models and their trained instances (seed 000's example source)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlgraph.catalog import Entity, Schema
from mlgraph.connectors.base import BatchGet, Connector, EventRule, Resource
from mlgraph.connectors.people import owners_from_emails, tags_from_labels
from mlgraph.connectors.registry import ConnectorContext

NAME = "registry"
RESOURCES = {
    "model": Resource(
        "model", "Model", "/api/v1/models/{id}", "/api/v1/models",
        {f"model_{verb}": EventRule("model_id") for verb in ("created", "updated", "deleted")},
        BatchGet("/api/v1/models:batchGet", "id"),
    ),
    "instance": Resource(
        "instance", "ModelInstance", "/api/v1/instances/{id}", "/api/v1/instances",
        {f"model_instance_{verb}": EventRule("instance_id")
         for verb in ("created", "updated", "deleted")},
        BatchGet("/api/v1/instances:batchGet", "id"),
    ),
}  # fmt: skip


class RegistryConnector(Connector):
    def __init__(self, base_url: str, schema: Schema) -> None:
        super().__init__(NAME, base_url, RESOURCES, schema)

    def normalize(self, resource: Resource, payload: Mapping[str, Any]) -> list[Entity]:
        if resource.name == "model":
            return [self.model(payload)]
        return [self.instance(payload)]

    def model(self, p: Mapping[str, Any]) -> Entity:
        current = p.get("current_instance_id")
        return Entity(
            uri=self.uri("Model", p["id"]),
            type="Model",
            name=p.get("name") or p["id"],
            description=p.get("description"),
            owners=owners_from_emails(p.get("owner_emails"), self.schema),
            tags=tags_from_labels(p.get("labels")),
            attributes={"task": p.get("task"), "framework": p.get("framework")},
            references={
                "current_instance": (self.uri("ModelInstance", current),) if current else ()
            },
            source_updated_at=p.get("updated_at"),
        )

    def instance(self, p: Mapping[str, Any]) -> Entity:
        # Seed 000: ids become URIs, owner_emails become owners, labels become tags,
        # and the foreign key pipeline_run_id becomes a reference.
        run = p.get("pipeline_run_id")
        return Entity(
            uri=self.uri("ModelInstance", p["id"]),
            type="ModelInstance",
            name=p["id"],
            description=p.get("description"),
            owners=owners_from_emails(p.get("owner_emails"), self.schema),
            tags=tags_from_labels(p.get("labels")),
            attributes={
                "version": p.get("version"),
                "stage": p.get("stage"),
                "metrics": p.get("metrics"),
                "created_at": p.get("created_at"),
            },
            references={
                "model": (self.uri("Model", p["model_id"]),) if p.get("model_id") else (),
                "pipeline_run": (self.uri("PipelineRun", run, "orchestrator"),) if run else (),
                "features": tuple(
                    self.uri("Feature", f, "featurestore") for f in p.get("feature_ids") or ()
                ),
            },
            source_created_at=p.get("created_at"),
            source_updated_at=p.get("updated_at"),
        )


def connector(context: ConnectorContext) -> Connector:
    return RegistryConnector(context.base_url(NAME, "http://127.0.0.1:9101"), context.schema)
