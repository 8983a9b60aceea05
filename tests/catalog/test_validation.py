from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgraph.catalog import Entity, Schema
from mlgraph.catalog.validation import validate_entity
from mlgraph.errors import ValidationError
from tests.builders import entity, uri


def test_a_valid_entity_comes_back_canonical(schema: Schema) -> None:
    raw = entity(
        "ModelInstance", "m1",
        owners=["aip://user/identity/bob", "aip://user/identity/alice"],
        attributes={"version": "v5", "created_at": "2026-01-01T12:00:00+02:00", "stage": None},
        references={"features": [uri("Feature", "b"), uri("Feature", "a"), uri("Feature", "a")]},
    )  # fmt: skip
    valid = validate_entity(schema, raw)
    assert valid.owners == ("aip://user/identity/alice", "aip://user/identity/bob")
    assert valid.attributes == {
        "version": "v5",
        "created_at": datetime(2026, 1, 1, 10, 0, tzinfo=UTC),
    }
    assert valid.references == {"features": (uri("Feature", "a"), uri("Feature", "b"))}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            Entity(uri="aip://model/r/x", type="Modle"),
            "unknown entity type 'Modle' (did you mean 'Model'?)",
        ),
        (
            Entity(uri="aip://user/identity/x", type="Dataset"),
            "a Dataset URI has kind 'dataset', not 'user'",
        ),
        (Entity(uri="not a uri", type="Dataset"), "entity 'not a uri': invalid URI"),
        (entity("Dataset", "d", attributes={"format": 3}), "attribute 'format': expected string"),
        (
            entity("DatasetVersion", "v", attributes={"row_count": True}),
            "attribute 'row_count': expected integer, got bool",
        ),
        (
            entity("PipelineRun", "r", attributes={"started_at": "yesterday"}),
            "attribute 'started_at': expected an ISO-8601 datetime",
        ),
        (entity("Dataset", "d", attributes={"colour": "red"}), "Dataset has no field 'colour'"),
        (
            entity("Dataset", "d", references={"inptus": uri("Dataset", "x")}),
            "Dataset has no relationship 'inptus'",
        ),
        (
            entity("PipelineRun", "r", references={"model_instances": uri("ModelInstance", "m")}),
            "is the inverse of ModelInstance.pipeline_run; state it on the ModelInstance",
        ),
        (
            entity(
                "ModelInstance",
                "m",
                references={"pipeline_run": [uri("PipelineRun", "a"), uri("PipelineRun", "b")]},
            ),
            "ModelInstance.pipeline_run takes one target, got 2",
        ),
        (
            entity("ModelInstance", "m", references={"features": uri("Dataset", "x")}),
            "is a 'dataset' URI; ModelInstance.features points to Feature",
        ),
        (
            entity("Dataset", "d", owners=["aip://dataset/catalog/x"]),
            "owner: 'aip://dataset/catalog/x' is a 'dataset' URI",
        ),
        (entity("Dataset", "d", owners=["alice@example.com"]), "owner: invalid URI"),
        (entity("Dataset", "d", tags={"": "x"}), "a tag key is empty"),
        (
            entity("Dataset", "d", references={"owners": uri("User", "u")}),
            "owners are given in Entity.owners",
        ),
    ],
)
def test_bad_entities_are_rejected_with_the_reason(
    schema: Schema, bad: Entity, message: str
) -> None:
    with pytest.raises(ValidationError) as err:
        validate_entity(schema, bad)
    assert message in str(err.value)
