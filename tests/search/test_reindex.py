"""Index versions: reindex while the old version serves, counts checked, atomic cut-over,
and a rebuild when the document mapping changes."""

from __future__ import annotations

import json
import threading

import pytest

from mlgraph.search import CURSOR, CountMismatch, Discovery, IndexUnavailable, source
from mlgraph.store import Store
from tests.builders import entity
from tests.search.checks import assert_index_matches_store
from tests.search.org import load_organisation

RANKING = "aip://model/registry/ranking-model"


@pytest.fixture
def organisation(indexed: Discovery, store: Store) -> Discovery:
    load_organisation(store, 2)
    indexed.indexer().catch_up()
    return indexed


def test_reindex_serves_the_old_version_until_it_cuts_over(
    organisation: Discovery, store: Store
) -> None:
    live = organisation.indexer()
    seen: list[str] = []

    def meanwhile(written: int) -> None:
        # The new version is half built: searches still hit the old one...
        page = organisation.search("ranking model")
        assert page.hits[0].uri == RANKING
        seen.append(page.version)
        # ...and the store and the live indexer carry on.
        store.transact(upsert=[entity("Model", f"late-arrival-{written}")])
        live.step()

    report = organisation.rebuild(meanwhile)
    assert seen and set(seen) == {"v000001"}
    assert (report.previous, report.version) == ("v000001", "v000002")
    page = organisation.search("late arrival")
    assert page.version == "v000002" and page.total == len(seen)
    assert report.position == store.last_tx() == store.cursor(CURSOR)
    assert_index_matches_store(organisation, store)
    # The live indexer moves over to the new version on its next step.
    store.transact(upsert=[entity("Model", "after-the-cut")])
    live.catch_up()
    assert organisation.search("after the cut").hits[0].name == "after-the-cut"
    assert_index_matches_store(organisation, store)


def test_searching_during_a_reindex_in_another_thread_never_fails(
    organisation: Discovery, store: Store
) -> None:
    done = threading.Event()
    failures: list[BaseException] = []

    def reindex() -> None:
        try:
            organisation.rebuild()
        except BaseException as exc:
            failures.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=reindex)
    thread.start()
    versions: list[str] = []
    while True:
        finished = done.is_set()
        page = organisation.search("ranking model", limit=5)
        assert page.hits[0].uri == RANKING
        versions.append(page.version)
        if finished:
            break
    thread.join()
    assert not failures
    assert versions[-1] == "v000002" and len(versions) >= 2
    assert_index_matches_store(organisation, store)


def test_a_count_mismatch_keeps_the_old_version(
    organisation: Discovery, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = source.counts
    monkeypatch.setattr(source, "counts", lambda s: tuple(n + 1 for n in real(s)))
    with pytest.raises(CountMismatch, match="not cutting over"):
        organisation.rebuild()
    current = organisation.versions.current()
    assert current is not None and current.name == "v000001"
    assert [p.name for p in organisation.versions.versions_dir.iterdir()] == ["v000001"]
    assert organisation.search("ranking model").hits[0].uri == RANKING


def test_a_changed_mapping_is_rebuilt_at_startup(organisation: Discovery, store: Store) -> None:
    alias = organisation.versions.alias_path
    stale = {**json.loads(alias.read_text()), "mapping": "built-by-older-code"}
    alias.write_text(json.dumps(stale))
    with pytest.raises(IndexUnavailable, match="another document mapping"):
        organisation.search("ranking model")
    indexer = organisation.indexer()
    assert indexer.needs_rebuild()
    indexer.catch_up()
    current = organisation.versions.current()
    assert current is not None and current.name == "v000002"
    assert organisation.search("ranking model").hits[0].uri == RANKING
    assert_index_matches_store(organisation, store)


def test_old_versions_are_pruned_keeping_the_previous_one(organisation: Discovery) -> None:
    for _ in range(3):
        organisation.rebuild()
    kept = sorted(p.name for p in organisation.versions.versions_dir.iterdir())
    assert kept == ["v000003", "v000004"]
