from __future__ import annotations

import pytest

from mlgraph.sources import (
    COLLECTIONS,
    RESOURCES,
    SEED_EXAMPLE,
    dangling_references,
    generate,
    referrers,
)
from mlgraph.sources.org import Organisation

# Seed 000's example, field for field (the fields the seed shows).
EXAMPLE: dict[tuple[str, str], dict[str, object]] = {
    ("instances", "ranking-model-v5-20XX0101"): {
        "id": "ranking-model-v5-20XX0101",
        "model_id": "ranking-model",
        "pipeline_run_id": "train-weekly-ranking-20XX0101",
        "owner_emails": ["alice@example.com"],
        "labels": [{"key": "team", "value": "personalization"}],
    },
    ("models", "ranking-model"): {"current_instance_id": "ranking-model-v5-20XX0101"},
    ("pipeline-runs", "train-weekly-ranking-20XX0101"): {
        "run_id": "train-weekly-ranking-20XX0101",
        "pipeline": "weekly-ranking-trainer",
        "ab_test_cells": [
            {"test_id": "12345", "cell_number": 2, "cell_name": "treatment_ranking_v5"}
        ],
    },
    ("tests", "12345"): {
        "test_id": "12345",
        "name": "Ranking Model v5 vs v4",
        "status": "ACTIVE",
    },
    ("pipelines", "weekly-ranking-trainer"): {"id": "weekly-ranking-trainer"},
    ("users", "alice"): {"username": "alice", "email": "alice@example.com"},
    ("teams", "personalization"): {"team_id": "personalization"},
}


def assert_seed_example(get: object) -> None:
    """``get(collection, id)`` returns the seed's example objects with the seed's values."""
    assert callable(get)
    for (collection, id), fields in EXAMPLE.items():
        obj = get(collection, id)
        assert obj is not None, f"{collection}/{id} is missing"
        assert {k: obj[k] for k in fields} == fields, f"{collection}/{id}"
    test = get("tests", "12345")
    assert [(c["cell_number"], c["name"]) for c in test["cells"]] == [
        (1, "control_ranking_v4"),
        (2, "treatment_ranking_v5"),
    ]
    assert "personalization" in get("users", "alice")["team_ids"]


@pytest.mark.parametrize("size", [1, 7])
def test_the_seed_example_is_there_exactly(size: int) -> None:
    org = generate(size)
    assert_seed_example(org.get)
    assert {c: list(ids) for c, ids in SEED_EXAMPLE.items()} == {
        c: [i for i in ids if org.has(c, i)] for c, ids in SEED_EXAMPLE.items()
    }


def snapshot(org: Organisation) -> dict[str, list[dict[str, object]]]:
    return {collection: org.objects(collection) for collection in COLLECTIONS}


def test_the_same_seed_gives_the_same_organisation() -> None:
    assert snapshot(generate(4, seed=11)) == snapshot(generate(4, seed=11))
    assert snapshot(generate(4, seed=11)) != snapshot(generate(4, seed=12))


@pytest.mark.parametrize("size", [1, 3, 25])
def test_every_reference_points_at_an_object_that_exists(size: int) -> None:
    assert dangling_references(generate(size)) == []


def test_dangling_references_are_reported() -> None:
    org = generate(1)
    run = org.get("pipeline-runs", "train-weekly-ranking-20XX0101")
    assert run is not None
    org.insert("pipeline-runs", {**run, "pipeline": "gone", "owner_emails": ["nobody@example.com"]})
    org.delete("tests", "12345")
    problems = dangling_references(org)
    where = "pipeline-runs/train-weekly-ranking-20XX0101"
    assert f"{where}.pipeline -> 'gone'" in problems
    assert f"{where}.owner_emails -> 'nobody@example.com'" in problems
    assert any(p.startswith(f"{where}.ab_test_cells") for p in problems)
    assert referrers(org, "models", "ranking-model")  # its instances


def test_every_object_has_its_read_shape() -> None:
    org = generate(5)
    for res in RESOURCES:
        for obj in org.iter_objects(res.collection):
            shaped = res.shape.model_validate(obj).model_dump()
            assert set(shaped) == set(obj), res.collection
            assert obj["updated_at"]


def test_size_scales_every_collection() -> None:
    small, large = generate(1), generate(100)
    assert 30 <= small.total() <= 150
    assert 10_000 <= large.total() <= 20_000
    for collection in COLLECTIONS:
        assert large.count(collection) > small.count(collection), collection


def test_lineage_has_no_cycles() -> None:
    """pipeline -> dataset it produces -> pipeline reading it never comes back round."""
    org = generate(20)
    readers: dict[str, list[str]] = {}
    for pipeline in org.iter_objects("pipelines"):
        for dataset in pipeline["input_dataset_ids"]:
            readers.setdefault(dataset, []).append(pipeline["id"])
    downstream = {
        p["id"]: [
            reader
            for d in org.iter_objects("datasets")
            if d["produced_by_pipeline_id"] == p["id"]
            for reader in readers.get(d["id"], [])
        ]
        for p in org.iter_objects("pipelines")
    }
    done: set[str] = set()

    def visit(node: str, path: set[str]) -> None:
        assert node not in path, f"cycle through {node}"
        if node in done:
            return
        for nxt in downstream[node]:
            visit(nxt, path | {node})
        done.add(node)

    for pipeline_id in downstream:
        visit(pipeline_id, set())


def test_the_organisation_looks_like_a_real_one() -> None:
    org = generate(10)
    teams = org.objects("teams")
    assert any(t["parent_team_id"] for t in teams) and any(not t["parent_team_id"] for t in teams)
    assert all(u["team_ids"] for u in org.iter_objects("users"))
    members = {t for u in org.iter_objects("users") for t in u["team_ids"]}
    assert members == {t["team_id"] for t in teams}, "every team has members"
    features = org.ids("features")
    assert any("_" in f and f.islower() for f in features)
    assert any(f != f.lower() for f in features), "someone used camelCase"
    model = org.objects("models")[1]
    assert {label["key"] for label in model["labels"]} >= {"team", "env"}
    runs = org.objects("pipeline-runs")
    assert {r["status"] for r in runs} >= {"SUCCEEDED", "FAILED"}
    assert any(r["ab_test_cells"] for r in runs if r["pipeline"] != "weekly-ranking-trainer")
    assert all(i["pipeline_run_id"] for i in org.iter_objects("instances"))
    assert any(v["produced_by_run_id"] for v in org.iter_objects("dataset-versions"))
    assert any(v["produced_by_run_id"] is None for v in org.iter_objects("dataset-versions"))


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="size"):
        generate(0)
