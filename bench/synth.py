"""A synthetic ML organisation for benchmarks: deterministic, skewed, schema-true.

Every entity uses a type and relationship names from ``types.yaml``. Entities
come out in load order, so a reference always points at an entity yielded
before it (in an earlier batch, or earlier in the same one): loading never
creates stubs, and the graph is the same for a given size and seed.

Popularity follows ``1 / (rank + offset)``: a few datasets, features and
pipelines are used by very many entities, most by a handful. The offsets are
chosen so that a 3-hop downstream walk from the most popular nodes reaches a
few thousand entities at every size, well under the store's 10,000-result cap.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlgraph.catalog import Entity
from mlgraph.catalog.uri import DEFAULT_SCHEME

# Share of all entities per type. Runs, job attempts and model instances
# dominate, as they do in a real platform: definitions are few, executions many.
MIX: dict[str, float] = {
    "Group": 0.0005,
    "User": 0.005,
    "Dataset": 0.02,
    "Pipeline": 0.01,
    "DatasetVersion": 0.16,
    "Feature": 0.05,
    "Model": 0.005,
    "AbTest": 0.0045,
    "AbTestCell": 0.045,
    "PipelineRun": 0.25,
    "JobAttempt": 0.30,
    "ModelInstance": 0.15,
}

# (URI kind, source, id prefix) per type. Model and ModelInstance share the
# kind "model" (types.yaml says so), so their id prefixes keep them apart.
URIS: dict[str, tuple[str, str, str]] = {
    "Group": ("group", "ldap", "team-"),
    "User": ("user", "ldap", "user-"),
    "Dataset": ("dataset", "hive", "warehouse.table_"),
    "Pipeline": ("pipeline", "airflow", "dag_"),
    "DatasetVersion": ("dataset-version", "hive", "snapshot_"),
    "Feature": ("feature", "feast", "feature_"),
    "Model": ("model", "mlflow", "model_"),
    "AbTest": ("ab-test", "exp", "test_"),
    "AbTestCell": ("ab-test-cell", "exp", "cell_"),
    "PipelineRun": ("pipeline-run", "airflow", "run_"),
    "JobAttempt": ("job-attempt", "airflow", "attempt_"),
    "ModelInstance": ("model", "mlflow", "instance_"),
}

RAW_SHARE = 0.5  # datasets (and their versions) ingested from outside, not built by a pipeline
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def uri(type_name: str, index: int) -> str:
    """The URI of the ``index``-th entity of a type (canonical: ids are plain ASCII)."""
    kind, source, prefix = URIS[type_name]
    return f"{DEFAULT_SCHEME}://{kind}/{source}/{prefix}{index:07d}"


def counts(total: int) -> dict[str, int]:
    """Entities per type for ``total`` in all; every type gets at least two."""
    out = {name: max(2, int(total * share)) for name, share in MIX.items()}
    # Rounding leaves a few over or under: the most numerous type absorbs it.
    out["JobAttempt"] += total - sum(out.values())
    return out


class Popularity:
    """Picks among ``n`` items with weight ``1 / (rank + offset)``; rank 0 is the favourite.

    ``offset = n * flatness``: the smaller ``flatness``, the more the head
    dominates. Scaling the offset with ``n`` keeps the favourite's share of
    picks about the same at every size.
    """

    def __init__(self, n: int, flatness: float, first: int = 0) -> None:
        offset = max(1.0, n * flatness)
        self.items = range(first, first + n)
        self.cum = list(itertools.accumulate(1.0 / (rank + offset) for rank in range(n)))

    def pick(self, rng: random.Random) -> int:
        return rng.choices(self.items, cum_weights=self.cum)[0]

    def sample(self, rng: random.Random, k: int) -> list[int]:
        """Up to ``k`` distinct items (repeats collapse, as a real reference list would)."""
        return sorted(set(rng.choices(self.items, cum_weights=self.cum, k=k)))


@dataclass(frozen=True, slots=True)
class Spread:
    """How often a relationship is used: between ``low`` and ``high`` targets per entity."""

    low: int
    high: int

    def draw(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)


class Org:
    """The organisation: ``entities()`` yields it in load order."""

    def __init__(self, total: int, seed: int = 7) -> None:
        self.total = total
        self.n = counts(total)
        self.rng = random.Random(seed)
        n = self.n
        self.raw_datasets = max(1, int(n["Dataset"] * RAW_SHARE))
        self.raw_versions = max(1, int(n["DatasetVersion"] * RAW_SHARE))
        derived_datasets = n["Dataset"] - self.raw_datasets
        # Who is popular for what. Raw datasets are the sources everyone reads.
        self.pop_raw_dataset_versions = Popularity(self.raw_datasets, 0.02)
        self.pop_derived_dataset_versions = Popularity(
            derived_datasets, 0.02, first=self.raw_datasets
        )
        self.pop_raw_dataset_readers = Popularity(self.raw_datasets, 0.05)
        self.pop_dataset_features = Popularity(n["Dataset"], 0.05)
        self.pop_raw_versions = Popularity(self.raw_versions, 0.01)
        self.pop_pipelines = Popularity(n["Pipeline"], 0.01)
        self.pop_features = Popularity(n["Feature"], 0.005)
        self.pop_models = Popularity(n["Model"], 0.05)
        self.pop_groups = Popularity(n["Group"], 0.1)
        # Filled while generating, for references that must agree with each other.
        self.producer: dict[int, int] = {}  # derived dataset -> the pipeline producing it
        self.runs_of: dict[int, list[int]] = {}  # pipeline -> its runs

    def entities(self) -> Iterator[Entity]:
        """Every entity, each referring only to entities yielded before it."""
        yield from self.groups()
        yield from self.users()
        yield from self.datasets(range(self.raw_datasets))
        yield from self.pipelines()
        yield from self.datasets(range(self.raw_datasets, self.n["Dataset"]))
        yield from self.dataset_versions(range(self.raw_versions))
        yield from self.features()
        yield from self.models()
        yield from self.ab_tests()
        yield from self.pipeline_runs()
        yield from self.dataset_versions(range(self.raw_versions, self.n["DatasetVersion"]))
        yield from self.job_attempts()
        yield from self.model_instances()

    # -- helpers ---------------------------------------------------------------

    def entity(self, type_name: str, index: int, **fields: Any) -> Entity:
        refs = {k: tuple(v) for k, v in fields.pop("references", {}).items() if v}
        return Entity(
            uri=uri(type_name, index),
            type=type_name,
            name=f"{URIS[type_name][2]}{index:07d}",
            references=refs,
            **fields,
        )

    def owners(self) -> tuple[str, ...]:
        """A team, and for half of the entities a person as well."""
        team = uri("Group", self.pop_groups.pick(self.rng))
        if self.rng.random() < 0.5:
            return (team, uri("User", self.rng.randrange(self.n["User"])))
        return (team,)

    def when(self) -> datetime:
        return EPOCH + timedelta(seconds=self.rng.randrange(365 * 86400))

    # -- one generator per type, in load order ---------------------------------

    def groups(self) -> Iterator[Entity]:
        for i in range(self.n["Group"]):
            parent = [uri("Group", self.rng.randrange(i))] if i else []
            yield self.entity("Group", i, references={"parent": parent})

    def users(self) -> Iterator[Entity]:
        for i in range(self.n["User"]):
            teams = self.pop_groups.sample(self.rng, Spread(1, 3).draw(self.rng))
            yield self.entity(
                "User",
                i,
                attributes={"email": f"user{i}@example.com", "active": i % 10 != 0},
                references={"member_of": [uri("Group", g) for g in teams]},
            )

    def datasets(self, indices: range) -> Iterator[Entity]:
        for i in indices:
            produced_by: list[str] = []
            if i >= self.raw_datasets:
                pipeline = self.rng.randrange(self.n["Pipeline"])
                self.producer[i] = pipeline
                produced_by = [uri("Pipeline", pipeline)]
            yield self.entity(
                "Dataset",
                i,
                owners=self.owners(),
                attributes={"format": "parquet", "domain": f"domain{i % 40}"},
                tags={"tier": "raw" if i < self.raw_datasets else "curated"},
                references={"produced_by": produced_by},
            )

    def pipelines(self) -> Iterator[Entity]:
        for i in range(self.n["Pipeline"]):
            inputs = self.pop_raw_dataset_readers.sample(self.rng, Spread(1, 5).draw(self.rng))
            yield self.entity(
                "Pipeline",
                i,
                owners=self.owners(),
                attributes={"schedule": "@daily", "repository": f"git@example.com:dags/{i}"},
                references={"inputs": [uri("Dataset", d) for d in inputs]},
            )

    def dataset_versions(self, indices: range) -> Iterator[Entity]:
        for i in indices:
            refs: dict[str, list[str]] = {}
            if i < self.raw_versions:
                dataset = self.pop_raw_dataset_versions.pick(self.rng)
            else:
                dataset = self.pop_derived_dataset_versions.pick(self.rng)
                runs = self.runs_of.get(self.producer[dataset], [])
                # A version of a curated dataset comes from a run of its pipeline.
                refs["produced_by_run"] = (
                    [uri("PipelineRun", self.rng.choice(runs))] if runs else []
                )
            refs["dataset"] = [uri("Dataset", dataset)]
            yield self.entity(
                "DatasetVersion",
                i,
                owners=self.owners(),
                attributes={"version": str(i), "row_count": self.rng.randrange(10**9)},
                references=refs,
            )

    def features(self) -> Iterator[Entity]:
        for i in range(self.n["Feature"]):
            data = self.pop_dataset_features.sample(self.rng, Spread(1, 2).draw(self.rng))
            yield self.entity(
                "Feature",
                i,
                owners=self.owners(),
                attributes={"value_type": "float", "version": 1 + i % 3},
                references={"data": [uri("Dataset", d) for d in data]},
            )

    def models(self) -> Iterator[Entity]:
        for i in range(self.n["Model"]):
            yield self.entity("Model", i, owners=self.owners(), attributes={"framework": "xgboost"})

    def ab_tests(self) -> Iterator[Entity]:
        cells_per_test = self.n["AbTestCell"] // self.n["AbTest"]
        for i in range(self.n["AbTest"]):
            yield self.entity("AbTest", i, owners=self.owners(), attributes={"status": "done"})
        for i in range(self.n["AbTestCell"]):
            test = min(i // max(1, cells_per_test), self.n["AbTest"] - 1)
            yield self.entity(
                "AbTestCell",
                i,
                owners=self.owners(),
                attributes={"number": i % max(1, cells_per_test)},
                references={"test": [uri("AbTest", test)]},
            )

    def pipeline_runs(self) -> Iterator[Entity]:
        for i in range(self.n["PipelineRun"]):
            pipeline = self.pop_pipelines.pick(self.rng)
            self.runs_of.setdefault(pipeline, []).append(i)
            inputs = self.pop_raw_versions.sample(self.rng, Spread(1, 3).draw(self.rng))
            # One run in ten serves an A/B test.
            cells = (
                [uri("AbTestCell", self.rng.randrange(self.n["AbTestCell"]))]
                if self.rng.random() < 0.1
                else []
            )
            yield self.entity(
                "PipelineRun",
                i,
                owners=self.owners(),
                attributes={"status": "success", "started_at": self.when(), "run_number": i},
                references={
                    "pipeline": [uri("Pipeline", pipeline)],
                    "input_datasets": [uri("DatasetVersion", v) for v in inputs],
                    "ab_test_cells": cells,
                },
            )

    def job_attempts(self) -> Iterator[Entity]:
        for i in range(self.n["JobAttempt"]):
            run = self.rng.randrange(self.n["PipelineRun"])
            yield self.entity(
                "JobAttempt",
                i,
                owners=self.owners(),
                attributes={"attempt_number": 1 + i % 3, "status": "success"},
                references={"pipeline_run": [uri("PipelineRun", run)]},
            )

    def model_instances(self) -> Iterator[Entity]:
        for i in range(self.n["ModelInstance"]):
            features = self.pop_features.sample(self.rng, Spread(4, 17).draw(self.rng))
            yield self.entity(
                "ModelInstance",
                i,
                owners=self.owners(),
                attributes={"version": str(i), "stage": "production" if i % 7 == 0 else "archived"},
                references={
                    "model": [uri("Model", self.pop_models.pick(self.rng))],
                    "pipeline_run": [uri("PipelineRun", self.rng.randrange(self.n["PipelineRun"]))],
                    "features": [uri("Feature", f) for f in features],
                },
            )
