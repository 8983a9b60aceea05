"""The one table every part of the sources is derived from.

A *resource* is a collection at one source: its URL segment, the field that
holds its id in the read shape, the thin event it emits, the pydantic model of
its read shape (docs/sources.md) and the references its objects make to other
objects. The apps, the admin API, the events, the initial load and the
integrity check all read this table, so the six sources share one code path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SOURCES: tuple[str, ...] = (
    "registry",
    "orchestrator",
    "featurestore",
    "experimentation",
    "datasets",
    "identity",
)

EMAIL_DOMAIN = "example.com"


def email_of(username: str) -> str:
    """People are referred to by email; the local part is their identity username."""
    return f"{username}@{EMAIL_DOMAIN}"


def username_of(email: str) -> str:
    return email.split("@", 1)[0]


# --- read shapes ----------------------------------------------------------------


class Shape(BaseModel):
    """Base of the read shapes: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")

    updated_at: str | None = None


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    value: str


class CellRef(BaseModel):
    """A pipeline run's pointer to the A/B test cell it was executed for."""

    model_config = ConfigDict(extra="forbid")

    test_id: str
    cell_number: int
    cell_name: str


class Cell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cell_number: int
    name: str
    allocation: float = 0.0


class ModelShape(Shape):
    id: str
    name: str = ""
    description: str = ""
    task: str = ""
    framework: str = ""
    owner_emails: list[str] = Field(default_factory=list)
    labels: list[Label] = Field(default_factory=list)
    current_instance_id: str | None = None


class InstanceShape(Shape):
    id: str
    model_id: str
    version: str = ""
    stage: str = ""
    pipeline_run_id: str | None = None
    feature_ids: list[str] = Field(default_factory=list)
    metrics: dict[str, Any] = Field(default_factory=dict)
    owner_emails: list[str] = Field(default_factory=list)
    labels: list[Label] = Field(default_factory=list)
    description: str = ""
    created_at: str | None = None


class PipelineShape(Shape):
    id: str
    name: str = ""
    description: str = ""
    schedule: str = ""
    repository: str = ""
    owner_emails: list[str] = Field(default_factory=list)
    input_dataset_ids: list[str] = Field(default_factory=list)
    labels: list[Label] = Field(default_factory=list)


class PipelineRunShape(Shape):
    run_id: str
    pipeline: str
    status: str = "RUNNING"
    run_number: int = 1
    started_at: str | None = None
    ended_at: str | None = None
    input_dataset_version_ids: list[str] = Field(default_factory=list)
    ab_test_cells: list[CellRef] = Field(default_factory=list)
    owner_emails: list[str] = Field(default_factory=list)


class JobAttemptShape(Shape):
    attempt_id: str
    run_id: str
    attempt_number: int = 1
    status: str = "RUNNING"
    host: str = ""
    started_at: str | None = None
    ended_at: str | None = None


class FeatureShape(Shape):
    name: str
    description: str = ""
    version: int = 1
    value_type: str = ""
    entity_key: str = ""
    freshness_sla_s: int = 86400
    source_dataset_ids: list[str] = Field(default_factory=list)
    owner_emails: list[str] = Field(default_factory=list)
    labels: list[Label] = Field(default_factory=list)


class TestShape(Shape):
    __test__ = False  # not a pytest class, whatever its name says

    test_id: str
    name: str = ""
    status: str = "DRAFT"
    hypothesis: str = ""
    started_at: str | None = None
    ended_at: str | None = None
    owner_emails: list[str] = Field(default_factory=list)
    cells: list[Cell] = Field(default_factory=list)


class DatasetShape(Shape):
    id: str
    name: str = ""
    description: str = ""
    location: str = ""
    format: str = ""
    domain: str = ""
    produced_by_pipeline_id: str | None = None
    owner_emails: list[str] = Field(default_factory=list)
    labels: list[Label] = Field(default_factory=list)


class DatasetVersionShape(Shape):
    id: str
    dataset_id: str
    version: str = ""
    row_count: int = 0
    size_bytes: int = 0
    created_at: str | None = None
    produced_by_run_id: str | None = None


class UserShape(Shape):
    username: str
    email: str = ""
    display_name: str = ""
    title: str = ""
    active: bool = True
    team_ids: list[str] = Field(default_factory=list)


class TeamShape(Shape):
    team_id: str
    name: str = ""
    description: str = ""
    email: str = ""
    slack_channel: str = ""
    parent_team_id: str | None = None


# --- the table ------------------------------------------------------------------


@dataclass(frozen=True)
class Reference:
    """A field whose value names objects in another collection.

    ``by_email`` fields hold ``{username}@example.com`` rather than the id.
    ``cells`` is the pipeline run's ``ab_test_cells``: each item names a test
    and one of its cells.
    """

    field: str
    collection: str
    many: bool = False
    by_email: bool = False
    cells: bool = False


OWNERS = Reference("owner_emails", "users", many=True, by_email=True)


@dataclass(frozen=True)
class Resource:
    source: str
    collection: str  # URL segment: /api/v1/{collection}
    id_field: str  # the field holding the id in the read shape
    event_prefix: str  # thin events are {event_prefix}_created|_updated|_deleted
    event_id_field: str  # the field naming the object in a thin event
    shape: type[Shape]
    references: tuple[Reference, ...] = ()

    def event_type(self, action: str) -> str:
        return f"{self.event_prefix}_{action}"


# In load order: an object's references point at collections listed before it,
# except for the few cycles a real platform has (a model and its current
# instance, a dataset and the pipeline producing it).
RESOURCES: tuple[Resource, ...] = (
    Resource(
        "identity",
        "teams",
        "team_id",
        "team",
        "team_id",
        TeamShape,
        (Reference("parent_team_id", "teams"),),
    ),
    Resource(
        "identity",
        "users",
        "username",
        "user",
        "user_id",
        UserShape,
        (Reference("team_ids", "teams", many=True),),
    ),
    Resource(
        "datasets",
        "datasets",
        "id",
        "dataset",
        "dataset_id",
        DatasetShape,
        (Reference("produced_by_pipeline_id", "pipelines"), OWNERS),
    ),
    Resource(
        "orchestrator",
        "pipelines",
        "id",
        "pipeline",
        "pipeline_id",
        PipelineShape,
        (Reference("input_dataset_ids", "datasets", many=True), OWNERS),
    ),
    Resource("experimentation", "tests", "test_id", "ab_test", "test_id", TestShape, (OWNERS,)),
    Resource(
        "orchestrator",
        "pipeline-runs",
        "run_id",
        "pipeline_run",
        "run_id",
        PipelineRunShape,
        (
            Reference("pipeline", "pipelines"),
            Reference("input_dataset_version_ids", "dataset-versions", many=True),
            Reference("ab_test_cells", "tests", many=True, cells=True),
            OWNERS,
        ),
    ),
    Resource(
        "orchestrator",
        "job-attempts",
        "attempt_id",
        "job_attempt",
        "attempt_id",
        JobAttemptShape,
        (Reference("run_id", "pipeline-runs"),),
    ),
    Resource(
        "datasets",
        "dataset-versions",
        "id",
        "dataset_version",
        "version_id",
        DatasetVersionShape,
        (Reference("dataset_id", "datasets"), Reference("produced_by_run_id", "pipeline-runs")),
    ),
    Resource(
        "featurestore",
        "features",
        "name",
        "feature",
        "feature_id",
        FeatureShape,
        (Reference("source_dataset_ids", "datasets", many=True), OWNERS),
    ),
    Resource(
        "registry",
        "models",
        "id",
        "model",
        "model_id",
        ModelShape,
        (Reference("current_instance_id", "instances"), OWNERS),
    ),
    Resource(
        "registry",
        "instances",
        "id",
        "model_instance",
        "instance_id",
        InstanceShape,
        (
            Reference("model_id", "models"),
            Reference("pipeline_run_id", "pipeline-runs"),
            Reference("feature_ids", "features", many=True),
            OWNERS,
        ),
    ),
)

RESOURCE_BY_COLLECTION: dict[str, Resource] = {r.collection: r for r in RESOURCES}
COLLECTIONS: tuple[str, ...] = tuple(r.collection for r in RESOURCES)


def resource(collection: str) -> Resource:
    try:
        return RESOURCE_BY_COLLECTION[collection]
    except KeyError:
        raise KeyError(
            f"unknown collection {collection!r}; known: {', '.join(COLLECTIONS)}"
        ) from None


def resources_of(source: str) -> tuple[Resource, ...]:
    if source not in SOURCES:
        raise KeyError(f"unknown source {source!r}; known: {', '.join(SOURCES)}")
    return tuple(r for r in RESOURCES if r.source == source)
