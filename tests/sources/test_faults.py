"""Every fault is observable, and the same seed gives the same faults."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest
from pydantic import ValidationError

from mlgraph.sources import CollectingSink, EventFaults, FaultConfig, SourceFaults
from mlgraph.sources.events import Event
from tests.sources.conftest import Running

ALICE = "/api/v1/users/alice"


def statuses(running: Running, n: int) -> list[int]:
    return [running.get("identity", ALICE).status_code for _ in range(n)]


def test_error_rate_answers_that_share_of_reads_with_500_or_503(running: Running) -> None:
    running.set_faults("identity", error_rate=0.5, seed=3)
    first = statuses(running, 200)
    counts = Counter(first)
    assert set(counts) == {200, 500, 503}
    assert 70 <= counts[500] + counts[503] <= 130
    running.set_faults("identity", error_rate=0.5, seed=3)  # re-seeded: the same answers
    assert statuses(running, 200) == first
    assert running.get("registry", "/api/v1/models/ranking-model").status_code == 200, (
        "faults are per source"
    )
    health = running.get("identity", "/admin/health").json()
    assert health["faults_injected"]["error_500"] + health["faults_injected"]["error_503"] > 0


def test_rate_limit_answers_429_with_retry_after(running: Running) -> None:
    running.set_faults("identity", rate_limit=1.0, retry_after_s=7)
    response = running.get("identity", ALICE)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    running.set_faults("identity")  # {} turns faults off
    assert running.get("identity", ALICE).status_code == 200


def test_latency_and_jitter_slow_every_read(running: Running) -> None:
    running.set_faults("identity", latency_ms=150, jitter_ms=50)
    started = time.monotonic()
    assert statuses(running, 3) == [200, 200, 200]
    assert time.monotonic() - started >= 0.45


def test_a_hanging_read_outlasts_the_client_timeout(running: Running) -> None:
    running.set_faults("identity", timeout_rate=1.0, timeout_s=1.5)
    with pytest.raises(httpx.ReadTimeout):
        running.client.get(f"{running.urls['identity']}{ALICE}", timeout=0.3)
    assert running.get("identity", "/admin/health").json()["faults_injected"]["timeout"] == 1


def test_the_fault_config_round_trips_and_is_checked(running: Running) -> None:
    url = f"{running.urls['registry']}/admin/faults"
    config = {"error_rate": 0.1, "rate_limit": 0.2, "drop_rate": 0.3, "reorder_window": 4}
    assert running.client.put(url, json=config).status_code == 200
    current = running.client.get(url).json()
    assert {k: current[k] for k in config} == config
    assert running.client.put(url, json={"error_rate": 0.7, "rate_limit": 0.7}).status_code == 422
    assert running.client.put(url, json={"error_rat": 0.1}).status_code == 422
    with pytest.raises(ValidationError):
        FaultConfig(drop_rate=1.5)


def make_users(running: Running, n: int) -> list[str]:
    names = [f"user-{i:02d}" for i in range(n)]
    for name in names:
        url = f"{running.urls['identity']}/admin/users"
        assert running.client.post(url, json={"username": name}).status_code == 201
    return names


def test_dropped_events_are_never_sent(running: Running) -> None:
    running.set_faults("identity", drop_rate=0.5, seed=1)
    names = make_users(running, 40)
    sent = [e["user_id"] for e in running.sink.events]
    assert 8 <= len(sent) <= 32
    assert sent == [n for n in names if n in sent], "the rest arrive in order"
    injected = running.get("identity", "/admin/health").json()["faults_injected"]
    assert injected["dropped"] == 40 - len(sent)


def test_duplicated_events_keep_their_event_id(running: Running) -> None:
    running.set_faults("identity", duplicate_rate=0.5, seed=1)
    make_users(running, 20)
    events = running.sink.events
    assert len(events) > 20
    by_id = Counter(e["event_id"] for e in events)
    assert len(by_id) == 20
    twice = [event_id for event_id, n in by_id.items() if n == 2]
    assert len(twice) == len(events) - 20
    for event_id in twice:
        copies = [e for e in events if e["event_id"] == event_id]
        assert copies[0] == copies[1]


def test_events_are_shuffled_within_the_reorder_window(running: Running) -> None:
    running.set_faults("identity", reorder_window=5, seed=2)
    names = make_users(running, 10)
    events = running.sink.wait_for(10)
    sent = [e["user_id"] for e in events]
    assert sent != names
    assert sorted(sent[:5]) == names[:5] and sorted(sent[5:]) == names[5:]


def test_a_window_that_does_not_fill_is_flushed_soon(running: Running) -> None:
    running.set_faults("identity", reorder_window=50, reorder_flush_ms=800)
    names = make_users(running, 3)
    assert running.sink.events == []  # held back
    assert sorted(e["user_id"] for e in running.sink.wait_for(3, timeout=5)) == names


def run_event_faults(config: FaultConfig, n: int) -> list[Event]:
    async def go() -> list[Event]:
        sink = CollectingSink()
        path = EventFaults(SourceFaults("registry", config), sink)
        for i in range(n):
            await path.emit([{"event_id": str(i)}])
        await path.close()
        return sink.events

    return asyncio.run(go())


def test_the_same_seed_gives_the_same_event_faults() -> None:
    config = FaultConfig(drop_rate=0.2, duplicate_rate=0.2, reorder_window=4, seed=9)
    first = run_event_faults(config, 100)
    assert first == run_event_faults(config, 100)
    assert first != run_event_faults(config.model_copy(update={"seed": 10}), 100)
    ids = [e["event_id"] for e in first]
    assert len(set(ids)) < 100, "some were dropped"
    assert len(ids) > len(set(ids)), "some were doubled"
    assert ids != sorted(ids, key=int)
