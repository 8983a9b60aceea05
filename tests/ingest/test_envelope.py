from __future__ import annotations

from typing import Any

import pytest

from mlgraph.ingest.envelope import MAX_BATCH, MalformedEvents, parse_events

SEED = {"event_type": "model_instance_created", "instance_id": "ranking-model-v5-20XX0101"}
CLOUD = {
    "specversion": "1.0",
    "id": "evt-1",
    "source": "/registry",
    "type": "model_instance_created",
    "time": "2026-01-01T00:00:00Z",
    "data": {"instance_id": "ranking-model-v5-20XX0101"},
}


def test_the_seed_event_and_a_cloud_event_read_alike() -> None:
    (thin,) = parse_events(SEED)
    (cloud,) = parse_events(CLOUD)
    assert thin.event_type == cloud.event_type == "model_instance_created"
    assert thin.data["instance_id"] == cloud.data["instance_id"]
    assert cloud.event_id == "evt-1" and cloud.source == "/registry"
    assert thin.event_id  # one is made up when the source sends none
    assert cloud.occurred_at is not None and cloud.occurred_at.year == 2026


def test_a_batch_is_a_list() -> None:
    assert len(parse_events([SEED, CLOUD, {**SEED, "event_id": "x"}])) == 3


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ([], "the batch is empty"),
        ("text", "event: expected a JSON object, got str"),
        ({"instance_id": "x"}, "neither a CloudEvent"),
        ({"event_type": ""}, "'event_type' must be a non-empty string"),
        ({**CLOUD, "specversion": "0.3"}, "specversion must be '1.0'"),
        ({k: v for k, v in CLOUD.items() if k != "id"}, "'id' must be a non-empty string"),
        ({**CLOUD, "data": [1]}, "'data' must be a JSON object"),
        ({**CLOUD, "time": "noon"}, "'time': expected an ISO-8601 datetime"),
        ([SEED, 5], "events[1]: expected a JSON object"),
    ],
)
def test_malformed_events_name_the_problem_and_position(body: Any, problem: str) -> None:
    with pytest.raises(MalformedEvents) as err:
        parse_events(body)
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_every_problem_of_a_batch_is_reported() -> None:
    with pytest.raises(MalformedEvents) as err:
        parse_events([SEED, {}, {"event_type": 3}, SEED])
    assert [p.split(":")[0] for p in err.value.problems] == ["events[1]", "events[2]"]


def test_batches_are_bounded() -> None:
    with pytest.raises(MalformedEvents, match="at most"):
        parse_events([SEED] * (MAX_BATCH + 1))
