"""Group commit: one transaction for many hydrations, a cause per entity, isolation on refusal."""

from __future__ import annotations

from datetime import UTC, datetime

from mlgraph.catalog import Entity
from mlgraph.ingest.committer import Committer, merge
from mlgraph.ingest.hydrator import Dead, Done, Writes
from mlgraph.ingest.inbox import Claim
from mlgraph.store import Provenance, Store
from tests.builders import entity, uri

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def claim(subject: str) -> Claim:
    return Claim(subject, (1,), (f"evt-{subject}",), 0, NOW)


def writes(*entities: Entity, retract: tuple[str, ...] = (), event: str = "e") -> Writes:
    return Writes(list(entities), list(retract), Provenance("datasets", event))


def test_later_writes_to_the_same_entity_win() -> None:
    a1 = entity("Dataset", "a", description="first")
    a2 = entity("Dataset", "a", description="second")
    b = entity("Dataset", "b")
    upsert, retract, causes = merge(
        [writes(a1, b, event="1"), writes(a2, event="2"), writes(retract=(b.uri,), event="3")]
    )
    assert [e.description for e in upsert] == ["second"]
    assert retract == [b.uri]
    assert causes[a1.uri].event_id == "2" and causes[b.uri].event_id == "3"


def test_a_batch_is_one_transaction_with_a_cause_per_entity(store: Store) -> None:
    items = [
        (claim("datasets/dataset/a"), writes(entity("Dataset", "a"), event="ea")),
        (claim("datasets/dataset/b"), writes(entity("Dataset", "b"), event="eb")),
    ]
    results = Committer(store).commit(items)
    assert results == [Done(1), Done(1)]
    assert store.history(uri("Dataset", "b"))[0].provenance.event_id == "eb"


def test_a_refused_batch_is_retried_one_by_one_and_only_the_bad_one_dies(store: Store) -> None:
    bad = Entity(uri=uri("Dataset", "bad"), type="Dataset", attributes={"nope": 1})
    items = [
        (claim("datasets/dataset/a"), writes(entity("Dataset", "a"))),
        (claim("datasets/dataset/bad"), writes(bad)),
        (claim("datasets/dataset/c"), writes(entity("Dataset", "c"))),
    ]
    results = Committer(store).commit(items)
    assert isinstance(results[0], Done) and isinstance(results[2], Done)
    assert isinstance(results[1], Dead) and "Dataset has no field 'nope'" in results[1].reason
    assert store.get(uri("Dataset", "a")) is not None and store.get(uri("Dataset", "c")) is not None
