"""The indexer follows the change feed: creates, updates, retractions, renames, crashes."""

from __future__ import annotations

import pytest

from mlgraph.search import CURSOR, Discovery
from mlgraph.store import Edge, Store
from tests.builders import entity, uri
from tests.search.checks import assert_index_matches_store


def names_found(discovery: Discovery, query: str) -> list[str]:
    return [h.name for h in discovery.search(query, limit=50).hits]


def test_an_empty_store_gets_an_empty_index_and_a_cursor(indexed: Discovery, store: Store) -> None:
    status = indexed.status()
    assert status["version"] == "v000001" and status["mapping_current"]
    assert status["built"]["documents"] == 0
    assert indexed.search("anything").total == 0


def test_committed_entities_become_searchable(indexed: Discovery, store: Store) -> None:
    team = entity("Group", "personalization", name="Personalization")
    model = entity("Model", "ranking-model", owners=[team.uri], tags={"team": "personalization"})
    store.transact(upsert=[team, model])
    assert names_found(indexed, "ranking model") == []  # nothing writes the index but the indexer
    indexed.indexer().catch_up()
    page = indexed.search("ranking model")
    assert [h.uri for h in page.hits][:1] == [model.uri]
    assert page.hits[0].owners == [{"uri": team.uri, "name": "Personalization"}]
    assert page.facets["owner"] == {"personalization": 1}
    assert store.cursor(CURSOR) == store.last_tx()


def test_camel_and_kebab_names_are_both_found_by_their_words(
    indexed: Discovery, store: Store
) -> None:
    store.transact(
        upsert=[
            entity("Model", "rankingModelV5"),
            entity("Model", "ranking-model-v5"),
            entity("Model", "ranking_model_v5_legacy"),
            entity("Model", "unrelated"),
        ]
    )
    indexed.indexer().catch_up()
    found = set(names_found(indexed, "ranking model"))
    assert found == {"rankingModelV5", "ranking-model-v5", "ranking_model_v5_legacy"}
    assert set(names_found(indexed, "ranking model v5")) == found
    # Either spelling is an exact name for the other; the longer name only starts with it.
    exact = names_found(indexed, "rankingModelV5")
    assert set(exact[:2]) == {"rankingModelV5", "ranking-model-v5"}
    assert exact[2] == "ranking_model_v5_legacy"


def test_updates_and_retractions_follow(indexed: Discovery, store: Store) -> None:
    indexer = indexed.indexer()
    store.transact(upsert=[entity("Dataset", "clicks", description="raw click events")])
    indexer.catch_up()
    assert names_found(indexed, "click events") == ["clicks"]
    store.transact(upsert=[entity("Dataset", "clicks", description="impressions, deduplicated")])
    indexer.catch_up()
    assert names_found(indexed, "click events") == []
    assert names_found(indexed, "impressions deduplicated") == ["clicks"]
    store.retract(uri("Dataset", "clicks"))
    indexer.catch_up()
    assert names_found(indexed, "clicks") == []
    assert_index_matches_store(indexed, store)


def test_a_purge_removes_the_document(indexed: Discovery, store: Store) -> None:
    indexer = indexed.indexer()
    store.transact(upsert=[entity("Dataset", "scratch")])
    indexer.catch_up()
    store.purge(uri("Dataset", "scratch"))
    indexer.catch_up()
    assert indexed.search("scratch").total == 0
    assert_index_matches_store(indexed, store)


def test_a_rename_reaches_the_documents_that_show_the_name(
    indexed: Discovery, store: Store
) -> None:
    indexer = indexed.indexer()
    team = entity("Group", "recsys", name="Recommendations")
    models = [entity("Model", f"model-{i}", owners=[team.uri]) for i in range(3)]
    feature = entity("Feature", "watch_time")
    instance = entity("ModelInstance", "model-0-v1", references={"features": feature.uri})
    store.transact(upsert=[team, *models, feature, instance])
    indexer.catch_up()
    assert set(names_found(indexed, "recommendations type:Model")) == {m.name for m in models}
    store.transact(upsert=[team.model_copy(update={"name": "Discovery Science"})])
    store.transact(upsert=[feature.model_copy(update={"name": "minutes_watched"})])
    indexer.catch_up()
    assert names_found(indexed, "recommendations type:Model") == []
    assert set(names_found(indexed, "discovery science type:Model")) == {m.name for m in models}
    assert names_found(indexed, "minutes watched type:ModelInstance") == ["model-0-v1"]
    assert indexer.stats.renames == 2
    assert_index_matches_store(indexed, store)


def test_edges_change_the_source_document(indexed: Discovery, store: Store) -> None:
    indexer = indexed.indexer()
    run = entity("PipelineRun", "nightly-run-7")
    test = entity("AbTest", "987", name="Homepage Rows Test")
    cell = entity("AbTestCell", "987-1", references={"test": test.uri})
    store.transact(upsert=[run, test, cell])
    indexer.catch_up()
    assert names_found(indexed, "homepage rows type:PipelineRun") == []
    store.transact(assert_edges=[Edge(run.uri, "ab_test_cells", cell.uri)])
    indexer.catch_up()
    assert names_found(indexed, "987-1 type:PipelineRun") == ["nightly-run-7"]


def test_applying_a_batch_twice_changes_nothing(indexed: Discovery, store: Store) -> None:
    store.transact(upsert=[entity("Model", f"m{i}", description="twice") for i in range(20)])
    indexer = indexed.indexer()
    indexer.catch_up()
    store.save_cursor(CURSOR, 0)  # as if the cursor had not been saved: everything again
    indexer.catch_up()
    assert indexed.search("twice").total == 20
    assert_index_matches_store(indexed, store)


def test_a_crash_between_index_commit_and_cursor_save_loses_nothing(
    indexed: Discovery, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexer = indexed.indexer(batch=3)
    store.transact(upsert=[entity("Model", "before")])
    indexer.catch_up()
    for i in range(10):
        store.transact(upsert=[entity("Feature", f"f{i}", description="crash test")])
    saved = store.save_cursor
    calls = 0

    def crash_on_second_save(name: str, position: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("killed between the index commit and the cursor save")
        saved(name, position)

    monkeypatch.setattr(store, "save_cursor", crash_on_second_save)
    with pytest.raises(RuntimeError, match="killed"):
        indexer.catch_up()
    indexer.close()
    monkeypatch.setattr(store, "save_cursor", saved)
    # The second batch is in the index, but the cursor still says the first.
    assert indexed.search("crash test").total == 6
    restarted = indexed.indexer()
    restarted.catch_up()
    assert indexed.search("crash test").total == 10
    assert store.cursor(CURSOR) == store.last_tx()
    assert_index_matches_store(indexed, store)
