"""The quality report: each section's exact findings, counts, caps and windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mlgraph.enrich.quality import consumable_types, quality_report
from mlgraph.errors import LimitExceeded
from mlgraph.store import Store
from tests.builders import entity, uri

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=200)
RECENT = NOW - timedelta(days=1)

ALICE, BOB, CAROL = uri("User", "alice"), uri("User", "bob"), uri("User", "carol")
RAW, LONELY = uri("Dataset", "raw"), uri("Dataset", "lonely")
TOUCHED, REWRITTEN, GONE = (
    uri("Dataset", "touched"),
    uri("Dataset", "rewritten"),
    uri("Dataset", "gone"),
)
CTR, UNUSED = uri("Feature", "ctr"), uri("Feature", "unused")
ETL, M1 = uri("Pipeline", "etl"), uri("ModelInstance", "m1")


def build(store: Store) -> None:
    """Eight hydrated entities written 200 days ago, two changed yesterday; see each test."""
    store.transact(
        upsert=[
            entity("Dataset", "raw", owners=[BOB], description="raw clicks"),
            entity("Feature", "ctr", owners=[ALICE], description="ctr", references={"data": RAW}),
            entity("Feature", "unused", owners=[ALICE], description="unused",
                   references={"data": RAW}),
            entity("Dataset", "lonely", source_updated_at=NOW - timedelta(days=150)),
            entity("Dataset", "touched", owners=[BOB], description="d",
                   source_updated_at=NOW - timedelta(days=10)),
            entity("Dataset", "rewritten", owners=[BOB], description="v1"),
            entity("User", "carol"),
            entity("Pipeline", "etl", owners=[BOB], references={"inputs": GONE}),
        ],
        at=OLD,
    )  # fmt: skip
    store.transact(
        upsert=[
            entity("ModelInstance", "m1", references={"features": CTR,
                                                      "model": uri("Model", "model-m")}),
            entity("Dataset", "rewritten", owners=[BOB], description="v2"),
        ],
        at=RECENT,
    )  # fmt: skip
    store.mark_hydrated([RAW], NOW - timedelta(days=30))
    store.mark_hydrated([CTR], NOW - timedelta(days=20))
    store.mark_hydrated([M1, UNUSED], RECENT)
    store.mark_unresolved({GONE: "the source has no such object (404)"}, RECENT)


def found(store: Store, **options: object) -> dict[str, tuple[dict[str, int], list[str]]]:
    report = quality_report(store, now=NOW, **options)  # type: ignore[arg-type]
    return {s.key: (s.by_type, [e.uri for e in s.examples]) for s in report.sections}


def test_every_section_finds_exactly_what_it_should(store: Store) -> None:
    build(store)
    sections = found(store)
    # Hydrated only (alice and bob are stubs), people exempt (carol).
    assert sections["missing_owners"] == ({"Dataset": 1, "ModelInstance": 1}, [LONELY, M1])
    assert sections["missing_description"] == (
        {"Dataset": 1, "ModelInstance": 1, "Pipeline": 1}, [LONELY, M1, ETL]
    )  # fmt: skip
    # Oldest hydration first; m1 and unused were read yesterday, the rest never by a worker.
    assert sections["stale"] == ({"Dataset": 1, "Feature": 1}, [RAW, CTR])
    assert sections["unresolved"] == ({"Dataset": 1}, [GONE])
    assert sections["orphans"] == ({"Dataset": 1, "User": 1}, [LONELY, CAROL])
    # raw and ctr have consumers; touched changed at its source and rewritten in the
    # store within the window; m1 is new; carol is not something one consumes.
    assert sections["deprecation_candidates"] == (
        {"Dataset": 1, "Feature": 1, "Pipeline": 1}, [LONELY, UNUSED, ETL]
    )  # fmt: skip


def test_examples_say_when(store: Store) -> None:
    build(store)
    report = quality_report(store, now=NOW)
    stale = report.section("stale").examples
    assert [e.at for e in stale] == [NOW - timedelta(days=30), NOW - timedelta(days=20)]
    assert {e.at for e in report.section("deprecation_candidates").examples} == {OLD}
    (gone,) = report.section("unresolved").examples
    assert (gone.uri, gone.type, gone.state, gone.at) == (GONE, "Dataset", "stub", RECENT)
    assert report.stale_before == NOW - timedelta(days=7)
    assert report.idle_before == NOW - timedelta(days=90)


def test_limit_caps_the_examples_not_the_counts(store: Store) -> None:
    build(store)
    report = quality_report(store, now=NOW, limit=1)
    for section in report.sections:
        assert len(section.examples) == min(1, section.count)
    assert report.section("deprecation_candidates").count == 3
    assert all(s.examples == () for s in quality_report(store, now=NOW, limit=0).sections)
    with pytest.raises(LimitExceeded):
        quality_report(store, limit=1001)


def test_windows_are_configurable(store: Store) -> None:
    build(store)
    wide = found(store, stale_after=timedelta(days=60), idle_after=timedelta(days=300))
    assert wide["stale"] == ({}, [])
    assert wide["deprecation_candidates"] == ({}, [])
    # Narrow: yesterday's hydrations are stale too, and "touched" (its source
    # changed ten days ago) is idle in a five-day window.
    narrow = found(store, stale_after=timedelta(hours=1), idle_after=timedelta(days=5))
    assert narrow["stale"][1] == [RAW, CTR, UNUSED, M1]
    assert narrow["deprecation_candidates"][1] == [LONELY, TOUCHED, UNUSED, ETL]
    with pytest.raises(LimitExceeded, match="stale window must be positive"):
        quality_report(store, stale_after=timedelta(0))


def test_an_empty_store_reports_nothing(store: Store) -> None:
    report = quality_report(store)
    assert [(s.key, s.count, s.examples) for s in report.sections] == [
        (key, 0, ()) for key in (
            "missing_owners", "missing_description", "stale", "unresolved", "orphans",
            "deprecation_candidates",
        )
    ]  # fmt: skip


def test_json_carries_every_section(store: Store) -> None:
    build(store)
    data = quality_report(store, now=NOW, limit=2).to_json()
    assert data["sections"]["orphans"]["count"] == 2
    assert data["sections"]["stale"]["examples"][0] == {
        "uri": RAW, "type": "Dataset", "state": "hydrated", "name": "raw",
        "at": (NOW - timedelta(days=30)).isoformat(),
    }  # fmt: skip


def test_only_types_something_can_consume_are_candidates(store: Store) -> None:
    assert consumable_types(store.schema) == {
        "AbTestCell", "Dataset", "DatasetVersion", "Feature", "Model", "ModelInstance",
        "Pipeline", "PipelineRun",
    }  # fmt: skip
