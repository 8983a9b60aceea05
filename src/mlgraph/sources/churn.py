"""Churn: keep the organisation changing the way a busy ML platform does.

Each step is one believable change - a pipeline run starts, a run finishes
(a trainer's success registers a model instance, which may become the model's
current one; an ETL success writes dataset versions), a model is rolled back,
an owner, a description or a label changes, an old run is deleted. Every
change goes through ``Editor``, the admin API's code path, so it emits its
event. References stay whole: new objects point at existing ones, and a run
is deleted only when nothing but its own job attempts refers to it (they go
first).

Seed 000's example objects (``SEED_EXAMPLE``) are never touched, so the
example reads the same however long churn runs. Randomness is a seeded
``random.Random``: the same org, seed and number of steps give the same
changes (ids and timestamps aside, which come from the clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from mlgraph.sources import names
from mlgraph.sources.editor import Editor, ObjectExists, ObjectNotFound
from mlgraph.sources.generator import SEED_EXAMPLE, job_attempts
from mlgraph.sources.org import Object, Organisation, isoformat
from mlgraph.sources.resources import email_of, resource

log = logging.getLogger(__name__)

OWNED = ("models", "pipelines", "datasets", "features", "tests")
DESCRIBED = ("models", "instances", "pipelines", "datasets", "features", "teams")
LABELLED = ("models", "pipelines", "datasets", "features")
DESCRIPTION_NOTES = (
    "Migrated to the new feature store.",
    "Backfilled after the January incident.",
    "Owned jointly with the platform team.",
    "Deprecated soon: talk to the owners before depending on it.",
    "Now refreshed hourly.",
    "Schema reviewed.",
)


class _Ids:
    """The ids of a collection as a container, for ``names.unique``."""

    def __init__(self, org: Organisation, collection: str) -> None:
        self.org, self.collection = org, collection

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and self.org.has(self.collection, id)


class Churn:
    """Makes ``rate`` changes a second through ``editor`` once started."""

    def __init__(self, editor: Editor, *, rate: float = 10.0, seed: int = 0) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.editor = editor
        self.org = editor.org
        self.rate = rate
        self.rng = random.Random(seed)
        self.done: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None
        self._actions: list[tuple[Callable[[], Awaitable[bool]], int]] = [
            (self.start_run, 25),
            (self.finish_run, 25),
            (self.roll_back_model, 4),
            (self.change_owner, 10),
            (self.edit_description, 10),
            (self.edit_labels, 8),
            (self.delete_old_run, 8),
        ]

    # --- running -------------------------------------------------------------------

    async def step(self) -> str:
        """Make one change; returns its name ("skipped" when nothing fitted)."""
        actions, weights = zip(*self._actions, strict=True)
        action = self.rng.choices(actions, weights)[0]
        name = action.__name__
        try:
            changed = await action()
        except (ObjectNotFound, ObjectExists) as exc:
            # Someone else (the admin API, another churn) changed the same object.
            log.debug("churn %s lost a race: %s", name, exc)
            changed = False
        self.done[name if changed else "skipped"] += 1
        return name if changed else "skipped"

    async def run(self, steps: int | None = None) -> None:
        """Step at ``rate`` per second, ``steps`` times or until cancelled."""
        interval = 1 / self.rate
        due = time.monotonic()
        count = 0
        while steps is None or count < steps:
            await self.step()
            count += 1
            due += interval
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def start(self) -> None:
        """Run in the background of the current event loop until ``stop``."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="churn")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    # --- changes -------------------------------------------------------------------

    async def start_run(self) -> bool:
        pipeline = self._pick("pipelines", protect=False)
        if pipeline is None:
            return False
        number = 1 + max((r["run_number"] for r in self._runs_of(pipeline["id"])), default=0)
        run_id = names.unique(f"{pipeline['id']}-run-{number}", _Ids(self.org, "pipeline-runs"))
        now = datetime.now(UTC)
        run: Object = {
            "run_id": run_id,
            "pipeline": pipeline["id"],
            "status": "RUNNING",
            "run_number": number,
            "started_at": isoformat(now),
            "ended_at": None,
            "input_dataset_version_ids": [
                v for d in pipeline["input_dataset_ids"] if (v := self._latest_version(d))
            ],
            "ab_test_cells": [],
            "owner_emails": list(pipeline["owner_emails"]),
        }
        await self.editor.create("pipeline-runs", run)
        for attempt in job_attempts(self.rng, run):
            await self.editor.create("job-attempts", attempt)
        return True

    async def finish_run(self) -> bool:
        running = [r for r in self.org.iter_objects("pipeline-runs") if r["status"] == "RUNNING"]
        if not running:
            return False
        run = self.rng.choice(running)
        status = self.rng.choices(("SUCCEEDED", "FAILED"), (85, 15))[0]
        now = isoformat(datetime.now(UTC))
        await self.editor.update(
            "pipeline-runs", run["run_id"], {"status": status, "ended_at": now}
        )
        for attempt in self.org.iter_objects("job-attempts"):
            if attempt["run_id"] == run["run_id"] and attempt["status"] == "RUNNING":
                changes = {"status": status, "ended_at": now}
                await self.editor.update("job-attempts", attempt["attempt_id"], changes)
        if status == "SUCCEEDED":
            await self._register_outputs(run)
        return True

    async def roll_back_model(self) -> bool:
        model = self._pick("models")
        if model is None:
            return False
        others = [
            i["id"]
            for i in self.org.iter_objects("instances")
            if i["model_id"] == model["id"] and i["id"] != model["current_instance_id"]
        ]
        if not others:
            return False
        await self._make_current(model, self.rng.choice(sorted(others)))
        return True

    async def change_owner(self) -> bool:
        collection = self.rng.choice(OWNED)
        obj = self._pick(collection)
        users = self.org.ids("users")
        if obj is None or not users:
            return False
        owners = list(obj["owner_emails"])
        newcomer = email_of(self.rng.choice(users))
        if owners and self.rng.random() < 0.7:
            owners[self.rng.randrange(len(owners))] = newcomer  # a hand-over
        else:
            owners.append(newcomer)
        owners = list(dict.fromkeys(owners))
        await self.editor.update(collection, self._id(collection, obj), {"owner_emails": owners})
        return True

    async def edit_description(self) -> bool:
        collection = self.rng.choice(DESCRIBED)
        obj = self._pick(collection)
        if obj is None:
            return False
        first = obj["description"].split(" (")[0]
        description = f"{first} ({self.rng.choice(DESCRIPTION_NOTES)})"
        await self.editor.update(
            collection, self._id(collection, obj), {"description": description}
        )
        return True

    async def edit_labels(self) -> bool:
        collection = self.rng.choice(LABELLED)
        obj = self._pick(collection)
        if obj is None:
            return False
        key, value = self.rng.choice(
            (("env", "prod"), ("env", "staging"), ("tier", "1"), ("tier", "2"), ("pii", "true"))
        )
        kept = [label for label in obj["labels"] if label["key"] != key]
        await self.editor.update(
            collection, self._id(collection, obj), {"labels": [*kept, {"key": key, "value": value}]}
        )
        return True

    async def delete_old_run(self) -> bool:
        """Retention: the oldest of a few finished runs nothing refers to goes, attempts first."""
        kept = {i["pipeline_run_id"] for i in self.org.iter_objects("instances")}
        kept |= {v["produced_by_run_id"] for v in self.org.iter_objects("dataset-versions")}
        kept |= set(SEED_EXAMPLE["pipeline-runs"])
        finished = [
            r
            for r in self.org.iter_objects("pipeline-runs")
            if r["status"] != "RUNNING" and r["run_id"] not in kept
        ]
        if not finished:
            return False
        candidates = self.rng.sample(finished, min(10, len(finished)))
        run = min(candidates, key=lambda r: (r["started_at"], r["run_id"]))
        for attempt in list(self.org.iter_objects("job-attempts")):
            if attempt["run_id"] == run["run_id"]:
                await self.editor.delete("job-attempts", attempt["attempt_id"])
        await self.editor.delete("pipeline-runs", run["run_id"])
        return True

    # --- helpers -------------------------------------------------------------------

    async def _register_outputs(self, run: Object) -> None:
        """What a successful run leaves behind: dataset versions, or a model instance."""
        for dataset in self.org.iter_objects("datasets"):
            if dataset["produced_by_pipeline_id"] == run["pipeline"]:
                await self._add_dataset_version(dataset["id"], run["run_id"])
        # A pipeline trains the models whose instances its earlier runs produced.
        own_runs = {r["run_id"] for r in self._runs_of(run["pipeline"])}
        trained = {
            i["model_id"]
            for i in self.org.iter_objects("instances")
            if i["pipeline_run_id"] in own_runs and i["pipeline_run_id"] != run["run_id"]
        }
        for model_id in sorted(trained):
            await self._add_instance(model_id, run)

    async def _add_dataset_version(self, dataset_id: str, run_id: str) -> None:
        versions = [
            v for v in self.org.iter_objects("dataset-versions") if v["dataset_id"] == dataset_id
        ]
        previous = max(versions, key=lambda v: int(v["version"]), default=None)
        number = 1 + (int(previous["version"]) if previous else 0)
        rows = int((previous["row_count"] if previous else 100_000) * self.rng.uniform(1.0, 1.05))
        width = previous["size_bytes"] // max(1, previous["row_count"]) if previous else 200
        await self.editor.create(
            "dataset-versions",
            {
                "id": names.unique(f"{dataset_id}.v{number}", _Ids(self.org, "dataset-versions")),
                "dataset_id": dataset_id,
                "version": str(number),
                "row_count": rows,
                "size_bytes": rows * width,
                "created_at": isoformat(datetime.now(UTC)),
                "produced_by_run_id": run_id,
            },
        )

    async def _add_instance(self, model_id: str, run: Object) -> None:
        model = self.org.get("models", model_id)
        if model is None:
            return
        siblings = [i for i in self.org.iter_objects("instances") if i["model_id"] == model_id]
        latest = max(siblings, key=lambda i: int(i["version"]), default=None)
        number = 1 + (int(latest["version"]) if latest else 0)
        now = datetime.now(UTC)
        instance_id = names.unique(
            f"{model_id}-v{number}-{now:%Y%m%d}", _Ids(self.org, "instances")
        )
        features = list(latest["feature_ids"]) if latest else []
        all_features = self.org.ids("features")
        if all_features and self.rng.random() < 0.3:
            features = list(dict.fromkeys([*features, self.rng.choice(all_features)]))
        await self.editor.create(
            "instances",
            {
                "id": instance_id,
                "model_id": model_id,
                "version": str(number),
                "stage": "staging",
                "pipeline_run_id": run["run_id"],
                "feature_ids": features,
                "metrics": dict(latest["metrics"]) if latest else {},
                "owner_emails": list(model["owner_emails"]),
                "labels": [label for label in model["labels"] if label["key"] == "team"],
                "description": f"{model['name']} v{number}, trained by run {run['run_id']}.",
                "created_at": isoformat(now),
            },
        )
        if model_id not in SEED_EXAMPLE["models"] and self.rng.random() < 0.5:
            await self._make_current(model, instance_id)

    async def _make_current(self, model: Object, instance_id: str) -> None:
        previous = model["current_instance_id"]
        await self.editor.update("instances", instance_id, {"stage": "production"})
        if previous and previous != instance_id and self.org.has("instances", previous):
            await self.editor.update("instances", previous, {"stage": "archived"})
        await self.editor.update("models", model["id"], {"current_instance_id": instance_id})

    def _pick(self, collection: str, *, protect: bool = True) -> Object | None:
        """A random object of ``collection``, never one of the seed example's when ``protect``."""
        ids = self.org.ids(collection)
        if protect:
            protected = SEED_EXAMPLE.get(collection, ())
            ids = [i for i in ids if i not in protected]
        for _ in range(3):  # it may be deleted between listing and reading
            if not ids:
                return None
            found = self.org.get(collection, self.rng.choice(ids))
            if found is not None:
                return found
        return None

    def _id(self, collection: str, obj: Object) -> str:
        return str(obj[resource(collection).id_field])

    def _runs_of(self, pipeline_id: str) -> list[Object]:
        return [r for r in self.org.iter_objects("pipeline-runs") if r["pipeline"] == pipeline_id]

    def _latest_version(self, dataset_id: str) -> str | None:
        versions = [
            v for v in self.org.iter_objects("dataset-versions") if v["dataset_id"] == dataset_id
        ]
        if not versions:
            return None
        return str(max(versions, key=lambda v: int(v["version"]))["id"])
