"""Documents read from the store, now and as of a past transaction, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlgraph.catalog import load_schema
from mlgraph.errors import ValidationError
from mlgraph.reverse import DslError, SavedSearches
from mlgraph.reverse.reading import DocumentReader
from mlgraph.search.filter_document import Related, build_document, uri_id
from mlgraph.store import Store
from tests.builders import entity, uri

SCHEMA = load_schema()
ALICE = uri("User", "alice")
PIPELINE = uri("Pipeline", "train-weekly")


def test_a_document_has_every_kind_of_field() -> None:
    run = entity(
        "PipelineRun",
        "run-1",
        description="x" * 3000,
        tags={"team": "Personalization"},
        attributes={"status": "failed", "run_number": 7},
        source_updated_at=datetime(2025, 1, 2, tzinfo=UTC),
    )
    doc = build_document(
        SCHEMA,
        run,
        [
            Related("pipeline", PIPELINE, "Train weekly"),
            Related("owners", ALICE, None),
            Related("~nameless", "aip://x/y/z"),
        ],
    )
    assert doc["uri"] == run.uri and doc["type"] == "PipelineRun" and doc["name"] == "run-1"
    assert doc["state"] == "hydrated" and len(doc["description"]) == 2000
    assert doc["tags"] == ["team::Personalization"] and doc["tags.team"] == "Personalization"
    assert doc["status"] == "failed" and doc["run_number"] == 7
    assert doc["updated_at"] == datetime(2025, 1, 2, tzinfo=UTC)
    assert doc["pipeline.name"] == ["Train weekly"] and doc["pipeline.id"] == ["train-weekly"]
    assert doc["owners"] == [ALICE] and doc["owners.name"] == ["alice"]  # the id stands in
    assert not any(k.startswith("~") for k in doc)


def test_uri_ids_are_unquoted() -> None:
    assert uri_id("aip://dataset/hive/warehouse%2Fclicks") == "warehouse/clicks"


def test_reading_now_and_as_of(store: Store) -> None:
    first = store.transact(
        upsert=[
            entity("User", "alice", name="Alice Chen"),
            entity("Pipeline", "train-weekly", name="Train weekly", owners=[ALICE]),
        ]
    )
    run = entity("PipelineRun", "run-1", references={"pipeline": PIPELINE})
    second = store.transact(upsert=[run])
    store.transact(upsert=[entity("Pipeline", "train-weekly", name="Renamed", owners=[ALICE])])
    reader = DocumentReader(store)

    now = reader.documents([run.uri, PIPELINE, ALICE])
    assert now[run.uri]["pipeline.name"] == ["Renamed"]
    assert now[PIPELINE]["runs"] == [run.uri]  # the inverse, read from the other end
    assert now[PIPELINE]["owners.name"] == ["Alice Chen"]
    assert now[ALICE]["owns.id"] == ["train-weekly"]

    then = reader.documents([run.uri, PIPELINE], as_of=second.tx)
    assert then[run.uri]["pipeline.name"] == ["Train weekly"]
    assert set(reader.documents([run.uri, PIPELINE], as_of=first.tx)) == {PIPELINE}

    store.retract(run.uri)
    assert run.uri not in reader.documents([run.uri])
    assert "runs" not in reader.documents([PIPELINE])[PIPELINE]
    every = [d["uri"] for batch in reader.every_document(batch=2) for d in batch]
    assert sorted(every) == sorted([ALICE, PIPELINE])
    at_second = [d["uri"] for b in reader.every_document(as_of=second.tx, batch=1) for d in b]
    assert sorted(at_second) == sorted([ALICE, PIPELINE, run.uri])


def test_a_bad_search_is_refused_and_nothing_is_saved(store: Store) -> None:
    searches = SavedSearches(store)
    with pytest.raises(DslError, match="did you mean 'tags.team'"):
        searches.save("alice", "mine", "tagz.team == 'x'")
    with pytest.raises(ValidationError, match="name"):
        searches.save("alice", " ", "type == 'Model'")
    assert searches.all() == []
