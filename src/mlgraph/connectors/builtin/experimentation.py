"""The Experimentation Platform: an A/B test and its cells, from one response."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlgraph.catalog import Entity, Schema
from mlgraph.connectors.base import BatchGet, Connector, EventRule, Resource, Subject
from mlgraph.connectors.builtin.orchestrator import cell_id
from mlgraph.connectors.people import owners_from_emails
from mlgraph.connectors.registry import ConnectorContext

NAME = "experimentation"
RESOURCES = {
    "test": Resource(
        "test", "AbTest", "/api/v1/tests/{id}", "/api/v1/tests",
        {f"ab_test_{verb}": EventRule("test_id") for verb in ("created", "updated", "deleted")},
        BatchGet("/api/v1/tests:batchGet", "test_id"),
    ),
}  # fmt: skip


class ExperimentationConnector(Connector):
    def __init__(self, base_url: str, schema: Schema) -> None:
        super().__init__(NAME, base_url, RESOURCES, schema)
        self.parts = {"test": ("cells",)}

    def subject_for(self, entity_type: str, id: str) -> Subject | None:
        if entity_type == "AbTestCell":
            test_id, sep, _ = id.rpartition("-")  # cell ids are {test_id}-{cell_number}
            return Subject(NAME, "test", test_id) if sep and test_id else None
        return super().subject_for(entity_type, id)

    def normalize(self, resource: Resource, payload: Mapping[str, Any]) -> list[Entity]:
        p = payload
        test_uri = self.uri("AbTest", p["test_id"])
        owners = owners_from_emails(p.get("owner_emails"), self.schema)
        test = Entity(
            uri=test_uri,
            type="AbTest",
            name=p.get("name") or str(p["test_id"]),
            owners=owners,
            attributes={
                "status": p.get("status"),
                "hypothesis": p.get("hypothesis"),
                "started_at": p.get("started_at"),
                "ended_at": p.get("ended_at"),
            },
            source_updated_at=p.get("updated_at"),
        )
        cells = [
            Entity(
                uri=self.uri("AbTestCell", cell_id(p["test_id"], c["cell_number"])),
                type="AbTestCell",
                name=c.get("name"),
                owners=owners,
                attributes={"number": c["cell_number"], "allocation": c.get("allocation")},
                references={"test": (test_uri,)},
                source_updated_at=p.get("updated_at"),
            )
            for c in p.get("cells") or ()
        ]
        return [test, *cells]


def connector(context: ConnectorContext) -> Connector:
    return ExperimentationConnector(context.base_url(NAME, "http://127.0.0.1:9104"), context.schema)
