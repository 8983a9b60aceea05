"""Search documents are derived from the entity and the type schema alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import yaml

from mlgraph.catalog import Entity, LifecycleState, Schema, load_schema
from mlgraph.reverse.forward import search_filter
from mlgraph.search import Discovery, analysis, ranking
from mlgraph.search.documents import Related, Subject, build
from mlgraph.search.mapping import index_fields, mapping_hash
from mlgraph.store import Store
from tests.builders import entity, uri

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_words_split_on_separators_case_and_digits() -> None:
    assert analysis.terms("rankingModelV5") == ["ranking", "model", "v", "5"]
    assert analysis.terms("ranking-model-v5") == ["ranking", "model", "v", "5"]
    assert analysis.terms("user_click_through_rate_7d") == [
        "user", "click", "through", "rate", "7", "d",
    ]  # fmt: skip
    assert analysis.terms("HTTPServer.log") == ["http", "server", "log"]
    assert analysis.terms("Café crème") == ["cafe", "creme"]
    assert analysis.name_key("Ranking-Model_v5") == analysis.name_key("rankingModelV5")


def test_the_document_holds_what_the_seed_says(schema: Schema) -> None:
    model = entity(
        "ModelInstance",
        "ranking-model-v5-20XX0101",
        description="ranking-model v5",
        owners=[uri("User", "alice")],
        tags={"team": "personalization", "model.state": "released"},
        attributes={"stage": "production", "version": "5", "created_at": NOW},
        source_updated_at=NOW - timedelta(days=3),
    )
    related = (
        Related("owners", uri("User", "alice"), "User", "Alice Chen"),
        Related("pipeline_run", uri("PipelineRun", "train-weekly"), "PipelineRun", "train-weekly"),
        Related("associated_ab_tests", uri("AbTest", "12345"), "AbTest", "Ranking Model v5 vs v4"),
    )
    doc = build(schema, Subject(model, related), NOW.timestamp())
    assert doc.type == "ModelInstance" and doc.name == "ranking-model-v5-20XX0101"
    assert doc.tags == ("model.state::released", "team::personalization")
    assert doc.owner_keys == (uri("User", "alice"), "alice", "alice chen")
    assert "Ranking Model v5 vs v4" not in doc.related_words  # split into words
    assert analysis.terms(doc.related_words) == analysis.terms(
        "Ranking Model v5 vs v4 train-weekly"
    )
    # The type's string fields, not its datetimes.
    assert analysis.terms(doc.attribute_words) == ["5", "production"]
    assert doc.states == ("hydrated", "active", "fresh")
    assert doc.demote == 1 - ranking.BREVITY_PER_WORD * 6


def test_retired_stub_and_stale_entities_are_demoted(schema: Schema) -> None:
    old = NOW - ranking.STALE_AFTER - timedelta(days=1)
    archived = entity("ModelInstance", "m", attributes={"stage": "archived"})
    stub = Entity(uri=uri("Model", "x"), type="Model", state=LifecycleState.STUB)
    stale = entity("Dataset", "d", source_updated_at=old)
    tagged = entity("Dataset", "e", tags={"deprecated": "true"})
    status_true = entity("Dataset", "f", tags={"status": "true"})
    docs = {
        e.uri: build(schema, Subject(e), NOW.timestamp())
        for e in (archived, stub, stale, tagged, status_true)
    }
    assert docs[archived.uri].demote == ranking.DEPRECATED
    assert docs[archived.uri].states[1] == "deprecated"
    assert docs[stub.uri].demote == ranking.STUB and docs[stub.uri].name == "x"
    assert docs[stale.uri].demote == ranking.STALE and docs[stale.uri].states[2] == "stale"
    assert docs[tagged.uri].states[1] == "deprecated"
    assert docs[status_true.uri].states[1] == "active"


def test_a_new_type_is_searchable_with_no_code_change(tmp_path: Path) -> None:
    declared = yaml.safe_load(resources.files("mlgraph.catalog").joinpath("types.yaml").read_text())
    declared["types"]["Dashboard"] = {
        "kind": "dashboard",
        "description": "A BI dashboard.",
        "fields": {"tool": "string", "refresh": "integer"},
        "relationships": {"shows": {"target": "Model", "inverse": "shown_on"}},
    }
    path = tmp_path / "types.yaml"
    path.write_text(yaml.safe_dump(declared))
    schema = load_schema(path)
    assert mapping_hash(schema) != mapping_hash(load_schema())  # the index would be rebuilt
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}", schema) as store:
        model = entity("Model", "churn-scorer")
        board = Entity(
            uri="aip://dashboard/bi/retention-board",
            type="Dashboard",
            name="Retention Board",
            attributes={"tool": "superset", "refresh": 3600},
            references={"shows": (model.uri,)},
        )
        store.transact(upsert=[model, board])
        discovery = Discovery(tmp_path / "search", store)
        discovery.indexer().catch_up()
        page = discovery.search("retention superset churn scorer")
        assert [h.uri for h in page.hits] == [board.uri]
        assert discovery.search("type:Dashboard").total == 1
        assert discovery.search("type:dashboard").facets["type"] == {"Dashboard": 1}
        # Its number field gets a float field of its own; its inverse is a filter path too.
        assert "num_refresh" in {f.name for f in index_fields(schema)}
        assert "num_refresh" not in {f.name for f in index_fields(load_schema())}
        where = search_filter(schema, "refresh >= 3600 AND shows.name == 'churn-scorer'")
        assert [h.uri for h in discovery.search("", where=where).hits] == [board.uri]
        where = search_filter(schema, "shown_on.name == 'retention board'")
        assert [h.uri for h in discovery.search("", where=where).hits] == [model.uri]
