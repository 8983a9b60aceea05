"""A deterministic, believable ML organisation of any size.

``generate(size, seed)`` builds teams (with parent teams), users in them,
datasets with versions, features computed from datasets, pipelines reading
datasets (ETL pipelines also producing them) with runs and job attempts,
models whose instances are trained by pipeline runs and use features, and A/B
tests whose cells pipeline runs were executed for. Every reference points at
an object that exists; lineage has no cycles (a pipeline reads only datasets
"below" the ones it writes).

Everything comes from one ``random.Random(seed)`` and a fixed clock: the same
size and seed always give the same organisation, ``updated_at`` included.

Every organisation also holds seed 000's example exactly (``SEED_EXAMPLE``):
model ``ranking-model`` whose current instance ``ranking-model-v5-20XX0101``
was trained by run ``train-weekly-ranking-20XX0101`` of
``weekly-ranking-trainer``, executed for cell 2 of A/B test ``12345``, all
owned by ``alice`` of team ``personalization``.

Size: every collection grows linearly. size=1 is about a hundred objects,
size=100 about ten thousand.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from mlgraph.sources import names
from mlgraph.sources.org import Object, Organisation, isoformat
from mlgraph.sources.resources import email_of

END = datetime(2025, 1, 15, tzinfo=UTC)
START = END - timedelta(days=180)

# The objects of seed 000's example, by collection. Churn leaves them alone so
# the example reads the same however long the sources have been running.
SEED_EXAMPLE: dict[str, tuple[str, ...]] = {
    "teams": ("personalization",),
    "users": ("alice",),
    "models": ("ranking-model",),
    "instances": ("ranking-model-v5-20XX0101",),
    "pipelines": ("weekly-ranking-trainer",),
    "pipeline-runs": ("train-weekly-ranking-20XX0101",),
    "tests": ("12345",),
}
EXAMPLE_FEATURE = "user_click_through_rate_7d"

CADENCE_INTERVALS = {
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
    "nightly": timedelta(days=1),
    "weekly": timedelta(days=7),
}


def generate(size: int = 1, seed: int = 7) -> Organisation:
    """A new organisation; ``size`` scales every collection (1: ~100 objects, 100: ~10k)."""
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    return _Builder(size, random.Random(seed)).build()


def labels(**pairs: str) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in pairs.items()]


class Popularity:
    """Picks items with probability ~ 1 / (rank + offset): a few are used by very many."""

    def __init__(self, items: Sequence[str], offset: float = 3.0) -> None:
        self.items = list(items)
        self.cumulative = list(
            itertools.accumulate(1 / (rank + offset) for rank in range(len(items)))
        )

    def sample(self, rng: random.Random, k: int) -> list[str]:
        k = min(k, len(self.items))
        chosen: dict[str, None] = {}
        while len(chosen) < k:
            chosen[rng.choices(self.items, cum_weights=self.cumulative)[0]] = None
        return list(chosen)


@dataclass
class _Pipeline:
    obj: Object
    team: str
    cadence: str
    trainer_of: str | None = None  # the model id a trainer pipeline trains
    outputs: list[str] = field(default_factory=list)
    runs: list[Object] = field(default_factory=list)


class _Builder:
    def __init__(self, size: int, rng: random.Random) -> None:
        self.size = size
        self.rng = rng
        self.org = Organisation()
        self.teams: dict[str, Object] = {}
        self.domain_of: dict[str, str] = {}  # team id -> top-level team id
        self.members: dict[str, list[str]] = {}  # team id -> usernames
        self.users: dict[str, Object] = {}
        self.datasets: list[Object] = []  # lineage order: a pipeline reads only earlier ones
        self.versions: dict[str, list[Object]] = {}  # dataset id -> versions, oldest first
        self.pipelines: list[_Pipeline] = []
        self.attempts: list[Object] = []
        self.features: list[Object] = []
        self.models: list[Object] = []
        self.model_team: dict[str, str] = {}
        self.instances: dict[str, list[Object]] = {}  # model id -> instances, oldest first
        self.tests: list[Object] = []

    def build(self) -> Organisation:
        self._teams()
        self._users()
        self._datasets()
        self._models()
        self._pipelines()
        for pipeline in self.pipelines:
            self._runs(pipeline)
        self._dataset_versions()
        self._features()
        self._instances()
        self._ranking_example()
        for pipeline in self.pipelines:
            for run in pipeline.runs:
                run["input_dataset_version_ids"] = self._inputs_at(
                    pipeline.obj["input_dataset_ids"], run["started_at"]
                )
        self._tests()
        self._store()
        return self.org

    # --- helpers -----------------------------------------------------------------

    def _moment(self, lo: datetime = START, hi: datetime = END) -> datetime:
        # Whole seconds: generated times then all have one format and sort as text.
        return (lo + (hi - lo) * self.rng.random()).replace(microsecond=0)

    def _owners(self, team: str, most: int = 2) -> list[str]:
        people = self.members[team]
        return [
            email_of(u)
            for u in self.rng.sample(people, min(len(people), self.rng.randint(1, most)))
        ]

    def _team_labels(self, team: str, env: str | None = None) -> list[dict[str, str]]:
        env = env or self.rng.choices(("prod", "staging", "dev"), (6, 2, 1))[0]
        extra = {"tier": str(self.rng.randint(1, 3))} if self.rng.random() < 0.3 else {}
        return labels(team=team, env=env, **extra)

    def _any_team(self) -> str:
        return self.rng.choice(list(self.teams))

    # --- identity ------------------------------------------------------------------

    def _teams(self) -> None:
        count = 4 + self.size // 2
        tops = ["personalization", "ml-platform"]
        spare_domains = list(names.DOMAINS[2:])
        self.rng.shuffle(spare_domains)
        tops += spare_domains[: max(0, min(len(names.DOMAINS), count // 4) - 2)]
        for top in tops:
            self._add_team(top, None)
        while len(self.teams) < count:
            parent = self.rng.choice(tops)
            base = f"{parent}-{self.rng.choice(names.TEAM_ROLES)}"
            team_id = names.unique(base, self.teams)
            self._add_team(team_id, parent)

    def _add_team(self, team_id: str, parent: str | None) -> None:
        title = names.title_case(team_id)
        self.teams[team_id] = {
            "team_id": team_id,
            "name": title,
            "description": f"{title}: builds and runs the {title.lower()} models and data.",
            "email": email_of(team_id),
            "slack_channel": f"#{team_id}",
            "parent_team_id": parent,
            "updated_at": isoformat(self._moment()),
        }
        self.domain_of[team_id] = parent or team_id
        self.members[team_id] = []

    def _users(self) -> None:
        count = 4 + 6 * self.size
        team_ids = list(self.teams)
        # Every first name once before any repeats, so the first users are alice, bob, ...
        pairs = itertools.cycle(
            (first, last) for last in names.LAST_NAMES for first in names.FIRST_NAMES
        )
        while len(self.users) < count:
            first, last = next(pairs) if len(self.users) else ("alice", "chen")
            candidate = first if first not in self.users else f"{first}.{last}"
            username = names.unique(candidate, self.users, "{}{}")
            if len(self.users) == 0:
                teams = ["personalization"]  # alice, of the seed's example
            else:
                # The first users cover every team once, so no team is empty.
                i = len(self.users)
                teams = [team_ids[i] if i < len(team_ids) else self._any_team()]
                if self.rng.random() < 0.15:
                    second = self._any_team()
                    if second not in teams:
                        teams.append(second)
            for team in teams:
                self.members[team].append(username)
            self.users[username] = {
                "username": username,
                "email": email_of(username),
                "display_name": f"{first.capitalize()} {last.capitalize()}",
                "title": self.rng.choice(names.TITLES),
                "active": username == "alice" or self.rng.random() > 0.05,
                "team_ids": teams,
                "updated_at": isoformat(self._moment()),
            }

    # --- data ------------------------------------------------------------------------

    def _datasets(self) -> None:
        count = 3 + 5 * self.size
        ids: set[str] = set()
        while len(self.datasets) < count:
            team = self._any_team()
            domain = self.domain_of[team]
            name = names.dataset_name(self.rng)
            base = f"{domain.replace('-', '_')}.{name}"
            dataset_id = names.unique(base, ids, "{}_{}")
            ids.add(dataset_id)
            name = dataset_id.split(".", 1)[1]
            self.datasets.append(
                {
                    "id": dataset_id,
                    "name": name,
                    "description": f"{names.title_case(name)} for {names.title_case(domain)}, "
                    "one partition per day.",
                    "location": f"s3://example-datalake/{domain}/{name}/",
                    "format": self.rng.choice(names.FORMATS),
                    "domain": domain,
                    "produced_by_pipeline_id": None,
                    "owner_emails": self._owners(team),
                    "labels": self._team_labels(team),
                    "updated_at": isoformat(self._moment()),
                }
            )

    def _dataset_versions(self) -> None:
        """Produced datasets get a version per successful run of their producer; the rest
        (raw data landing from outside) get a few versions spread over time."""
        produced_by: dict[str, _Pipeline] = {d: p for p in self.pipelines for d in p.outputs}
        for dataset in self.datasets:
            rows = self.rng.randint(10_000, 50_000_000)
            width = self.rng.randint(80, 2_000)
            producer = produced_by.get(dataset["id"])
            if producer is not None:
                origins: list[tuple[datetime, str | None]] = [
                    (datetime.fromisoformat(r["ended_at"]), r["run_id"])
                    for r in producer.runs
                    if r["status"] == "SUCCEEDED"
                ]
            else:
                times = sorted(
                    self._moment() for _ in range(self.rng.randint(1, 2 + min(self.size, 4)))
                )
                origins = [(t, None) for t in times]
            versions = self.versions[dataset["id"]] = []
            for number, (created, run_id) in enumerate(origins, start=1):
                rows = int(rows * self.rng.uniform(1.0, 1.08))
                versions.append(
                    {
                        "id": f"{dataset['id']}.v{number}",
                        "dataset_id": dataset["id"],
                        "version": str(number),
                        "row_count": rows,
                        "size_bytes": rows * width,
                        "created_at": isoformat(created),
                        "produced_by_run_id": run_id,
                        "updated_at": isoformat(created),
                    }
                )

    def _inputs_at(self, dataset_ids: list[str], started_at: str) -> list[str]:
        """The version of each input a run read: the newest created before it started."""
        chosen = []
        for dataset_id in dataset_ids:
            versions = self.versions.get(dataset_id, [])
            if not versions:
                continue
            created = [v["created_at"] for v in versions]
            i = bisect.bisect_right(created, started_at) - 1
            chosen.append(versions[max(i, 0)]["id"])
        return chosen

    def _features(self) -> None:
        count = 4 + 8 * self.size
        popular = Popularity([d["id"] for d in self.datasets])
        taken: set[str] = set()
        while len(self.features) < count:
            name = EXAMPLE_FEATURE if not taken else names.feature_name(self.rng)
            name = names.unique(name, taken, "{}_v{}")
            taken.add(name)
            team = "personalization" if name == EXAMPLE_FEATURE else self._any_team()
            sources = popular.sample(self.rng, self.rng.randint(1, 2))
            self.features.append(
                {
                    "name": name,
                    "description": f"{name}: computed from {', '.join(sources)}.",
                    "version": self.rng.choices((1, 2, 3), (6, 3, 1))[0],
                    "value_type": self.rng.choice(names.VALUE_TYPES),
                    "entity_key": self.rng.choice(names.ENTITY_KEYS),
                    "freshness_sla_s": self.rng.choice((900, 3600, 21600, 86400)),
                    "source_dataset_ids": sources,
                    "owner_emails": self._owners(team),
                    "labels": self._team_labels(team),
                    "updated_at": isoformat(self._moment()),
                }
            )

    # --- pipelines -------------------------------------------------------------------

    def _pipelines(self) -> None:
        taken = set(SEED_EXAMPLE["pipelines"])
        # Raw data first: the first ~40% of datasets land from outside, the rest
        # are written by ETL pipelines in order, each reading only earlier ones.
        raw = max(2, len(self.datasets) * 2 // 5)
        writable = iter(self.datasets[raw:])
        for _ in range(2 + 2 * self.size):
            cadence = self.rng.choice(("hourly", "daily", "daily", "nightly", "weekly"))
            outputs = list(itertools.islice(writable, self.rng.randint(1, 2)))
            readable = self.datasets[
                : self._index_of(outputs[0]) if outputs else len(self.datasets)
            ]
            inputs = Popularity([d["id"] for d in readable]).sample(
                self.rng, self.rng.randint(1, 3)
            )
            team = self._any_team()
            pipeline = self._add_pipeline(
                names.pipeline_name(self.rng, cadence), taken, team, cadence, inputs
            )
            for dataset in outputs:
                dataset["produced_by_pipeline_id"] = pipeline.obj["id"]
                pipeline.outputs.append(dataset["id"])
        everything = Popularity([d["id"] for d in self.datasets])
        for model in self.models:
            cadence = self.rng.choice(("daily", "weekly", "weekly"))
            stem = model["id"].removesuffix("-model")
            team = self.model_team[model["id"]]
            inputs = everything.sample(self.rng, self.rng.randint(1, 3))
            pipeline = self._add_pipeline(f"{cadence}-{stem}-trainer", taken, team, cadence, inputs)
            pipeline.trainer_of = model["id"]

    def _index_of(self, dataset: Object) -> int:
        return next(i for i, d in enumerate(self.datasets) if d is dataset)

    def _add_pipeline(
        self, base: str, taken: set[str], team: str, cadence: str, inputs: list[str]
    ) -> _Pipeline:
        pipeline_id = names.unique(base, taken)
        taken.add(pipeline_id)
        pipeline = _Pipeline(
            obj={
                "id": pipeline_id,
                "name": pipeline_id,
                "description": f"{names.title_case(pipeline_id)}: runs {cadence}, reads "
                f"{len(inputs)} dataset(s).",
                "schedule": names.CADENCES[cadence],
                "repository": f"git@github.example.com:{team}/{pipeline_id}.git",
                "owner_emails": self._owners(team),
                "input_dataset_ids": inputs,
                "labels": self._team_labels(team),
                "updated_at": isoformat(self._moment(START, START + timedelta(days=30))),
            },
            team=team,
            cadence=cadence,
        )
        self.pipelines.append(pipeline)
        return pipeline

    def _runs(self, pipeline: _Pipeline) -> None:
        count = self.rng.randint(2, 3 + min(self.size, 9))
        interval = CADENCE_INTERVALS[pipeline.cadence]
        first_number = self.rng.randint(1, 400)
        trainer = pipeline.trainer_of is not None
        taken: set[str] = set()
        for k in range(count):
            started = END - interval * (count - k) + timedelta(minutes=self.rng.randint(0, 50))
            number = first_number + k
            if trainer:
                base = f"train-{pipeline.obj['id'].removesuffix('-trainer')}-{started:%Y%m%d}"
            else:
                base = f"{pipeline.obj['id']}-run-{number}"
            run_id = names.unique(base, taken)
            taken.add(run_id)
            if k == count - 1 and self.rng.random() < 0.15:
                status = "RUNNING"
            else:
                status = self.rng.choices(("SUCCEEDED", "FAILED", "CANCELLED"), (85, 12, 3))[0]
            if trainer and k == 0:
                status = "SUCCEEDED"  # every model has at least one instance
            minutes = self.rng.randint(60, 480) if trainer else self.rng.randint(5, 55)
            self._add_run(pipeline, run_id, number, status, started, timedelta(minutes=minutes))

    def _add_run(
        self,
        pipeline: _Pipeline,
        run_id: str,
        number: int,
        status: str,
        started: datetime,
        duration: timedelta,
    ) -> Object:
        ended = None if status == "RUNNING" else started + duration
        run: Object = {
            "run_id": run_id,
            "pipeline": pipeline.obj["id"],
            "status": status,
            "run_number": number,
            "started_at": isoformat(started),
            "ended_at": isoformat(ended) if ended else None,
            "input_dataset_version_ids": [],
            "ab_test_cells": [],
            "owner_emails": list(pipeline.obj["owner_emails"]),
            "updated_at": isoformat(ended or started),
        }
        pipeline.runs.append(run)
        self.attempts.extend(job_attempts(self.rng, run))
        return run

    # --- models ----------------------------------------------------------------------

    def _models(self) -> None:
        taken = set(SEED_EXAMPLE["models"])
        for _ in range(self.size):
            base = names.model_name(self.rng)
            model_id = names.unique(base, taken)
            taken.add(model_id)
            team = self._any_team()
            kind = next((k for k in names.MODEL_KINDS if f"-{k}" in model_id), "model")
            self.model_team[model_id] = team
            self.models.append(
                {
                    "id": model_id,
                    "name": model_id,
                    "description": f"{names.title_case(model_id)}: "
                    f"{names.TASKS[kind]} model owned by {names.title_case(team)}.",
                    "task": names.TASKS[kind],
                    "framework": self.rng.choice(names.FRAMEWORKS),
                    "owner_emails": self._owners(team),
                    "labels": self._team_labels(team, env="prod"),
                    "current_instance_id": None,
                    "updated_at": isoformat(START),
                }
            )

    def _instances(self) -> None:
        popular = Popularity([f["name"] for f in self.features])
        trainers = {p.trainer_of: p for p in self.pipelines if p.trainer_of}
        for model in self.models:
            features = popular.sample(self.rng, self.rng.randint(3, 8))
            runs = [r for r in trainers[model["id"]].runs if r["status"] == "SUCCEEDED"]
            for run in runs:
                self._add_instance(model, run, features)
                if self.rng.random() < 0.3:  # retrained with a feature more
                    features = [*features, *popular.sample(self.rng, 1)]
                    features = list(dict.fromkeys(features))
            self._promote(model, self.rng.random() < 0.2)

    def _add_instance(self, model: Object, run: Object, features: list[str]) -> Object:
        instances = self.instances.setdefault(model["id"], [])
        number = len(instances) + 1
        created = run["ended_at"]
        instance = {
            "id": f"{model['id']}-v{number}-{created[:10].replace('-', '')}",
            "model_id": model["id"],
            "version": str(number),
            "stage": "archived",
            "pipeline_run_id": run["run_id"],
            "feature_ids": list(features),
            "metrics": self._metrics(model["task"]),
            "owner_emails": list(model["owner_emails"]),
            "labels": [label for label in model["labels"] if label["key"] == "team"],
            "description": f"{model['name']} v{number}, trained by run {run['run_id']}.",
            "created_at": created,
            "updated_at": created,
        }
        instances.append(instance)
        return instance

    def _promote(self, model: Object, keep_previous: bool) -> None:
        """The newest instance serves, unless it is still in staging behind the previous one."""
        instances = self.instances[model["id"]]
        current = instances[-2] if keep_previous and len(instances) > 1 else instances[-1]
        current["stage"] = "production"
        if current is not instances[-1]:
            instances[-1]["stage"] = "staging"
        model["current_instance_id"] = current["id"]
        model["updated_at"] = max(model["updated_at"], current["created_at"])

    def _metrics(self, task: str) -> dict[str, Any]:
        r = self.rng
        if task == "ranking":
            return {
                "ndcg@10": round(r.uniform(0.3, 0.6), 4),
                "recall@50": round(r.uniform(0.4, 0.8), 4),
            }
        if task == "classification":
            return {
                "auc": round(r.uniform(0.7, 0.95), 4),
                "log_loss": round(r.uniform(0.1, 0.5), 4),
            }
        if task == "embedding":
            return {"hit_rate@20": round(r.uniform(0.2, 0.6), 4)}
        return {"rmse": round(r.uniform(0.5, 3.0), 4), "mape": round(r.uniform(0.05, 0.3), 4)}

    # --- experiments -------------------------------------------------------------------

    def _tests(self) -> None:
        """One test per (model, version pair): control = the older instance's run."""
        taken = set(SEED_EXAMPLE["tests"])
        pairs = [
            (model, instances[k - 1], instances[k])
            for model in self.models
            for instances in [self.instances[model["id"]]]
            for k in range(1, len(instances))
            if model["id"] != "ranking-model"
        ]
        self.rng.shuffle(pairs)
        runs = {r["run_id"]: r for p in self.pipelines for r in p.runs}
        for model, control, treatment in pairs[: self.size]:
            test_id = "12345"
            while test_id in taken:
                test_id = str(self.rng.randint(10_000, 99_999))
            taken.add(test_id)
            latest = treatment is self.instances[model["id"]][-1]
            status = (
                self.rng.choice(("ACTIVE", "DRAFT"))
                if latest
                else self.rng.choice(("COMPLETED", "STOPPED"))
            )
            started = datetime.fromisoformat(treatment["created_at"]) + timedelta(days=1)
            ended = (
                None
                if status in ("ACTIVE", "DRAFT")
                else started + timedelta(days=self.rng.randint(7, 28))
            )
            stem = model["id"].removesuffix("-model").replace("-", "_")
            cells = [
                (1, f"control_{stem}_v{control['version']}", control),
                (2, f"treatment_{stem}_v{treatment['version']}", treatment),
            ]
            test = self._add_test(
                test_id,
                f"{names.title_case(model['id'])} v{treatment['version']} vs v{control['version']}",
                status,
                model["owner_emails"],
                cells,
                started,
                ended,
            )
            for number, name, instance in cells:
                cell = {"test_id": test["test_id"], "cell_number": number, "cell_name": name}
                runs[instance["pipeline_run_id"]]["ab_test_cells"].append(cell)

    def _add_test(
        self,
        test_id: str,
        name: str,
        status: str,
        owners: list[str],
        cells: list[tuple[int, str, Object]],
        started: datetime,
        ended: datetime | None,
    ) -> Object:
        share = round(1 / len(cells), 4)
        test = {
            "test_id": test_id,
            "name": name,
            "status": status,
            "hypothesis": f"{name}: the new version improves engagement without hurting retention.",
            "started_at": isoformat(started),
            "ended_at": isoformat(ended) if ended else None,
            "owner_emails": list(owners),
            "cells": [
                {"cell_number": n, "name": cell_name, "allocation": share}
                for n, cell_name, _ in cells
            ],
            "updated_at": isoformat(ended or started),
        }
        self.tests.append(test)
        return test

    def _ranking_example(self) -> None:
        """Seed 000's example, field for field, in the middle of the generated org."""
        alice = [email_of("alice")]
        team_labels = labels(team="personalization")
        model: Object = {
            "id": "ranking-model",
            "name": "ranking-model",
            "description": "Personalized ranking of the homepage rows.",
            "task": "ranking",
            "framework": "pytorch",
            "owner_emails": alice,
            "labels": labels(team="personalization", env="prod"),
            "current_instance_id": None,
            "updated_at": isoformat(START),
        }
        self.models.append(model)
        inputs = Popularity([d["id"] for d in self.datasets]).sample(self.rng, 3)
        pipeline = self._add_pipeline(
            "weekly-ranking-trainer", set(), "personalization", "weekly", inputs
        )
        pipeline.obj.update(owner_emails=alice, labels=labels(team="personalization", env="prod"))
        pipeline.trainer_of = "ranking-model"
        features = [
            EXAMPLE_FEATURE,
            *Popularity([f["name"] for f in self.features[1:]]).sample(self.rng, 4),
        ]
        last = datetime(2025, 1, 1, 4, tzinfo=UTC)
        for k in range(5):
            started = last - timedelta(weeks=4 - k)
            run_id = (
                "train-weekly-ranking-20XX0101"
                if k == 4
                else f"train-weekly-ranking-{started:%Y%m%d}"
            )
            run = self._add_run(pipeline, run_id, 48 + k, "SUCCEEDED", started, timedelta(hours=5))
            instance = self._add_instance(model, run, features)
            instance["labels"] = list(team_labels)
            if k == 4:
                instance["id"] = "ranking-model-v5-20XX0101"
        self._promote(model, keep_previous=False)
        control, treatment = self.instances["ranking-model"][3:5]
        test = self._add_test(
            "12345",
            "Ranking Model v5 vs v4",
            "ACTIVE",
            alice,
            [(1, "control_ranking_v4", control), (2, "treatment_ranking_v5", treatment)],
            datetime(2025, 1, 3, tzinfo=UTC),
            None,
        )
        test["hypothesis"] = "Ranking v5 (new watch-time features) lifts play starts over v4."
        for run, (number, name) in zip(
            pipeline.runs[3:5],
            ((1, "control_ranking_v4"), (2, "treatment_ranking_v5")),
            strict=True,
        ):
            run["ab_test_cells"].append(
                {"test_id": "12345", "cell_number": number, "cell_name": name}
            )

    # --- storing -------------------------------------------------------------------------

    def _store(self) -> None:
        collections: dict[str, list[Object]] = {
            "teams": list(self.teams.values()),
            "users": list(self.users.values()),
            "datasets": self.datasets,
            "dataset-versions": [v for vs in self.versions.values() for v in vs],
            "pipelines": [p.obj for p in self.pipelines],
            "pipeline-runs": [r for p in self.pipelines for r in p.runs],
            "job-attempts": self.attempts,
            "features": self.features,
            "models": self.models,
            "instances": [i for instances in self.instances.values() for i in instances],
            "tests": self.tests,
        }
        for collection, objects in collections.items():
            for obj in objects:
                self.org.insert(collection, obj)


def job_attempts(rng: random.Random, run: Object) -> list[Object]:
    """The attempts of a run: failed ones retried, the last one sharing the run's fate."""
    status = run["status"]
    retries = (
        rng.choices((0, 1, 2), (80, 15, 5))[0]
        if status in ("SUCCEEDED", "FAILED", "RUNNING")
        else 0
    )
    if status == "FAILED":
        retries = max(retries, 1)
    started = datetime.fromisoformat(run["started_at"])
    ended = datetime.fromisoformat(run["ended_at"]) if run["ended_at"] else None
    span = (ended - started) if ended else timedelta(minutes=30)
    step = span / (retries + 1)
    attempts = []
    for n in range(retries + 1):
        last = n == retries
        attempt_status = status if last else "FAILED"
        attempt_start = started + step * n
        attempt_end = None if attempt_status == "RUNNING" else attempt_start + step
        attempts.append(
            {
                "attempt_id": f"{run['run_id']}-attempt-{n + 1}",
                "run_id": run["run_id"],
                "attempt_number": n + 1,
                "status": attempt_status,
                "host": f"ml-worker-{rng.randint(1, 256):03d}.us-east-1.internal",
                "started_at": isoformat(attempt_start),
                "ended_at": isoformat(attempt_end) if attempt_end else None,
                "updated_at": isoformat(attempt_end or attempt_start),
            }
        )
    return attempts
