"""Churn keeps the organisation changing, emits an event per change and keeps it whole."""

from __future__ import annotations

import asyncio
from collections import Counter

from mlgraph.sources import (
    RESOURCES,
    SEED_EXAMPLE,
    SOURCES,
    Churn,
    CollectingSink,
    Editor,
    dangling_references,
    generate,
)
from mlgraph.sources.events import Event
from mlgraph.sources.org import Object
from tests.sources.conftest import Running


def churn_steps(size: int, steps: int, seed: int = 0) -> tuple[Churn, list[Event], Object]:
    org = generate(size)
    example = {c: [org.get(c, i) for i in ids] for c, ids in SEED_EXAMPLE.items()}
    sink = CollectingSink()
    churn = Churn(Editor(org, dict.fromkeys(SOURCES, sink)), seed=seed)

    async def go() -> None:
        for _ in range(steps):
            await churn.step()

    asyncio.run(go())
    return churn, sink.events, example


def test_churn_changes_everything_it_should_and_keeps_integrity() -> None:
    churn, events, _ = churn_steps(size=3, steps=400)
    assert dangling_references(churn.org) == []
    assert churn.done["skipped"] < 100
    for action in (
        "start_run",
        "finish_run",
        "roll_back_model",
        "change_owner",
        "edit_description",
        "edit_labels",
        "delete_old_run",
    ):
        assert churn.done[action] > 0, action
    types = Counter(e["event_type"] for e in events)
    for expected in (
        "pipeline_run_created",
        "job_attempt_created",
        "pipeline_run_updated",
        "model_instance_created",
        "model_updated",
        "dataset_version_created",
        "pipeline_run_deleted",
        "job_attempt_deleted",
    ):
        assert types[expected] > 0, expected
    assert sum(churn.done.values()) == 400
    assert len(events) >= 400 - churn.done["skipped"]


def test_every_event_names_an_object_as_it_now_is() -> None:
    churn, events, _ = churn_steps(size=2, steps=200)
    last: dict[tuple[str, str], str] = {}
    for event in events:
        action = event["event_type"].rsplit("_", 1)[1]
        res = next(r for r in RESOURCES if event["event_type"] == r.event_type(action))
        last[(res.collection, event[res.event_id_field])] = action
    for (collection, id), action in last.items():
        assert churn.org.has(collection, id) == (action != "deleted"), (collection, id)


def test_the_seed_example_survives_churn() -> None:
    churn, _, before = churn_steps(size=1, steps=500)
    after = {c: [churn.org.get(c, i) for i in ids] for c, ids in SEED_EXAMPLE.items()}
    assert after == before


def test_the_same_seed_makes_the_same_kinds_of_changes() -> None:
    first, _, _ = churn_steps(size=2, steps=150, seed=4)
    second, _, _ = churn_steps(size=2, steps=150, seed=4)
    assert first.done == second.done


def test_churn_runs_in_the_background_of_the_served_sources(running: Running) -> None:
    churn = running.thread.start_churn(rate=200, seed=1)
    events = running.sink.wait_for(100, timeout=10)
    running.thread.stop_churn(churn)
    assert not churn.running
    assert {e["source"] for e in events} >= {"orchestrator", "registry"}
    # What churn changed is what the sources serve.
    run_ids = {e["run_id"] for e in events if e["event_type"] == "pipeline_run_created"}
    served = [
        running.get("orchestrator", f"/api/v1/pipeline-runs/{r}").status_code for r in run_ids
    ]
    assert set(served) <= {200, 404}  # 404: deleted again by retention
    assert 200 in served
    assert dangling_references(running.org) == []
