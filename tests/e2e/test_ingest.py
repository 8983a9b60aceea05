"""Ingestion end to end: thin events over HTTP, hydration from the reference sources."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.api import create_app
from mlgraph.connectors import Subject
from mlgraph.sources import CollectingSink, FaultConfig
from mlgraph.store import Store
from tests.e2e.harness import assert_store_matches_sources, drain, make_service, running_sources

SEED_INSTANCE = "aip://model/registry/ranking-model-v5-20XX0101"


def test_the_seed_event_becomes_the_seed_entity(store: Store) -> None:
    with running_sources() as (_, _, urls):
        service = make_service(store, urls)
        with TestClient(create_app(service, workers=False)) as client:
            response = client.post(
                "/v1/events",
                json={"event_type": "model_instance_created",
                      "instance_id": "ranking-model-v5-20XX0101"},
            )  # fmt: skip
            assert response.status_code == 202
            assert response.json() == {"accepted": 1, "duplicates": 0, "dead_lettered": 0}
        drain(service)
    instance = store.require(SEED_INSTANCE)
    assert instance.type == "ModelInstance" and instance.state == "hydrated"
    assert instance.references["pipeline_run"] == (
        "aip://pipeline-run/orchestrator/train-weekly-ranking-20XX0101",
    )
    assert instance.owners == ("aip://user/identity/alice",)
    assert instance.tags["team"] == "personalization"
    (version,) = store.history(SEED_INSTANCE)
    assert version.provenance.source == "registry"


def test_malformed_events_are_refused_with_the_reason(store: Store) -> None:
    service = make_service(store, {})
    with TestClient(create_app(service, workers=False)) as client:
        not_json = client.post("/v1/events", content=b"{oops")
        assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
        missing = client.post("/v1/events", json=[
            {"event_type": "feature_created", "feature_id": "f"},
            {"event_type": "feature_created"},
        ])  # fmt: skip
        assert missing.status_code == 422
        assert missing.json()["problems"] == [
            "events[1]: a 'feature_created' event must carry 'feature_id' (the changed "
            "feature's id), got None"
        ]
        unknown = client.post("/v1/events", json={"event_type": "lunch_ordered", "id": "1"})
        assert unknown.json() == {"accepted": 0, "duplicates": 0, "dead_lettered": 1}
        dlq = client.get("/v1/dlq").json()
        assert "unknown event type 'lunch_ordered'" in dlq[0]["reason"]
    assert service.inbox.stats().pending == 0  # the refused batch left nothing behind


Fate = tuple[str, int]  # ("now" | "later" | "drop" | "twice", phase)


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10_000), phases=st.integers(1, 3), data=st.data())
def test_any_order_duplicates_and_drops_heal_with_one_reconciliation(
    tmp_path_factory: Any, seed: int, phases: int, data: st.DataObject
) -> None:
    """Source changes interleave with late, duplicated and dropped events; one sweep heals."""
    sink = CollectingSink()
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('order') / 'store.db'}")
    with running_sources(sink) as (sources, thread, urls):
        service = make_service(store, urls)
        churn = sources.churn(seed=seed)
        rng = random.Random(seed)
        held: list[dict[str, Any]] = []
        for phase in range(phases):
            if phase == 0:
                thread.emit_initial()
            for _ in range(rng.randint(3, 15)):
                thread.call(churn.step())
            thread.flush()
            fresh = list(sink.events)
            sink.events.clear()
            fates = data.draw(
                st.lists(st.sampled_from(["now", "later", "drop", "twice"]),
                         min_size=len(fresh), max_size=len(fresh))
            )  # fmt: skip
            now = [e for e, f in zip(fresh, fates, strict=True) if f in ("now", "twice")]
            now += [e for e, f in zip(fresh, fates, strict=True) if f == "twice"]
            now += held
            held = [e for e, f in zip(fresh, fates, strict=True) if f == "later"]
            order = data.draw(st.permutations(range(len(now))))
            if now:
                service.accept([now[i] for i in order])
            drain(service)
        if held:
            service.accept(held)
        drain(service)
        thread.call(service.reconcile())
        assert_store_matches_sources(store, service.connectors)
    store.close()


def test_faults_end_hydrated_or_dead_lettered_then_replay_heals(tmp_path: Path) -> None:
    faults = FaultConfig(error_rate=0.3, rate_limit=0.1, retry_after_s=0, latency_ms=2,
                         timeout_rate=0.05, timeout_s=3, seed=3)  # fmt: skip
    sink = CollectingSink()
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    with running_sources(sink, faults) as (sources, thread, urls):
        service = make_service(store, urls, max_attempts=2, source_timeout_s=0.5)
        thread.emit_initial()
        thread.flush()
        service.accept(list(sink.events))
        drain(service, timeout_s=120)
        stats = service.inbox.stats()
        assert stats.pending == 0 and stats.processing == 0
        letters = service.inbox.dead_letters(limit=10_000)
        assert letters, "with 40% of reads failing and 2 attempts, some must give up"
        assert all(dl.reason.startswith("gave up after 2 attempts") for dl in letters)
        # Every subject is either hydrated or has a dead letter saying why.
        buried = {dl.subject for dl in letters}
        for event in sink.events:
            route = service.connectors.route(event["event_type"])
            assert route is not None
            connector, resource, rule = route
            subject = Subject(connector.name, resource.name, str(event[rule.id_field]))
            entity = store.get(connector.subject_uri(subject))
            assert subject.key in buried or (entity is not None and entity.state == "hydrated")
        # The faults clear; replaying the dead letters hydrates the rest.
        sources.set_faults(FaultConfig())
        replayed, stuck = service.intake.replay()
        assert replayed == len(letters) and stuck == 0
        drain(service)
        assert service.inbox.stats().dead_letters == 0
        assert_store_matches_sources(store, service.connectors)
    store.close()
