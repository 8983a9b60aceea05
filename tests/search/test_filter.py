"""Forward search with a saved-search filter agrees with reverse search, on a real store.

A generated organisation goes into the store (SQLite and PostgreSQL) and
through the indexer into the search index. For searches written over every
kind of field the documents have (declared and inverse relationships, tags,
numbers, dates, booleans, text), ``Discovery.search(where=...)`` must return
exactly the entities whose reverse-search document (``DocumentReader``) the
predicate accepts, and the percolator must say the same. Then the graph
changes (a rename seen through an inverse relationship, a new edge) and, once
the indexer has followed the feed, the three still agree.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from mlgraph.reverse import CompiledSearch, Percolator, compile_search, document_mapping
from mlgraph.reverse.forward import parse_filter, where
from mlgraph.reverse.reading import DocumentReader
from mlgraph.search import Discovery, QueryError, source
from mlgraph.search import documents as search_documents
from mlgraph.search.filter_document import Document, prepare
from mlgraph.search.filter_fields import DocumentMapping, Kind
from mlgraph.store import Store
from tests.builders import entity
from tests.search.org import load_organisation

NOW = datetime(2025, 6, 1, tzinfo=UTC).timestamp()
FIXED = [
    "type == 'PipelineRun' AND status == 'failed'",
    "owners.id ANY ['alice', 'bob'] AND NOT tags.team == 'ads'",
    "runs.name LIKE '*run-8?'",  # an inverse relationship: a pipeline's runs
    "pipeline IN ['daily-profile-exporter', 'nope']",  # bare ids match the URIs' id part
    "updated_at > now-365d OR created_at < '2024-06-01'",
    "row_count >= 1000 AND size_bytes < 1e12",
    "active == true",
    "description CONTAINS 'daily' AND NOT description LIKE '*dataset(s).'",
    "version == '1'",  # a field two types declare differently: text for both
    "NOT owners EXISTS",
    "tags EXISTS AND NOT tags.env EXISTS",
]


def all_documents(store: Store) -> list[Document]:
    return [d for batch in DocumentReader(store).every_document() for d in batch]


def generated_searches(docs: list[Document], mapping: DocumentMapping, n: int) -> list[str]:
    """Searches over the values the documents hold, so that most of them match something."""
    rng = random.Random(7)
    values: dict[str, list[Any]] = {}
    for doc in docs:
        for path, prepared in prepare(doc, lambda p: _kind(mapping, p)).items():
            values.setdefault(path, []).extend(prepared)
    found: list[str] = []
    paths = sorted(values)
    while len(found) < n:
        path = rng.choice(paths)
        kind = _kind(mapping, path)
        value = rng.choice(values[path])
        if kind in (Kind.NUMBER, Kind.DATE):
            op = rng.choice([">", ">=", "<", "<=", "=="])
            literal = repr(value) if kind is Kind.NUMBER else f"'{_iso(value)}'"
            found.append(f"{path} {op} {literal}")
        elif kind is Kind.BOOLEAN:
            found.append(f"{path} == {str(value).lower()}")
        else:
            text = str(value).replace("\\", "\\\\").replace("'", "\\'")
            cut = rng.randrange(0, max(1, len(text)))
            found.append(
                rng.choice(
                    [
                        f"{path} == '{text}'" if kind is not Kind.TEXT else f"{path} EXISTS",
                        f"{path} CONTAINS '{text[cut : cut + 4]}'",
                        f"{path} LIKE '{text[:cut]}*'",
                        f"NOT {path} EXISTS",
                    ]
                )
            )
    # Pairs of them, both ways: conjunctions, disjunctions and negations over the index.
    pairs = [
        f"({a}) {rng.choice(['AND', 'OR', 'AND NOT'])} ({b})"
        for a, b in zip(found[::2], found[1::2], strict=False)
    ]
    return found + pairs


def _kind(mapping: DocumentMapping, path: str) -> Kind | None:
    info = mapping.lookup(path)
    return None if info is None else info.kind


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


def forward_uris(discovery: Discovery, search: CompiledSearch, text: str = "") -> set[str]:
    found: list[str] = []
    cursor = None
    while True:
        page = discovery.search(
            text, limit=100, cursor=cursor, facets=False, where=where(search, NOW)
        )
        found += [h.uri for h in page.hits]
        cursor = page.next_cursor
        if cursor is None:
            assert not text and page.total == len(found)  # every hit was paged through
            return set(found)


def assert_agree(discovery: Discovery, store: Store, texts: list[str]) -> None:
    mapping = document_mapping(store.schema)
    docs = all_documents(store)
    compiled = [compile_search(t, mapping) for t in texts]
    percolator = Percolator(mapping)
    for i, c in enumerate(compiled):
        percolator.add(i, c)
    percolated: dict[int, set[str]] = {i: set() for i in range(len(compiled))}
    for doc in docs:
        for i in percolator.match(doc, NOW):
            percolated[i].add(doc["uri"])
    matched = 0
    for i, c in enumerate(compiled):
        expected = {d["uri"] for d in docs if c.matches(d, NOW)}
        assert percolated[i] == expected, c.text
        assert forward_uris(discovery, c) == expected, c.text
        matched += bool(expected)
    assert matched >= len(compiled) // 3  # the searches are not vacuous


@pytest.fixture
def organisation(store: Store, tmp_path: Path) -> Discovery:
    load_organisation(store, 6)
    discovery = Discovery(tmp_path / "search", store)
    indexer = discovery.indexer()
    indexer.catch_up()
    indexer.close()
    return discovery


def test_the_indexer_reads_what_reverse_search_reads(organisation: Discovery, store: Store) -> None:
    """Same inputs: the filter document the index is built from is the reverse document."""
    docs = {d["uri"]: d for d in all_documents(store)}
    subjects = source.subjects(store, docs)
    assert subjects.keys() == docs.keys()
    for uri, subject in subjects.items():
        assert search_documents.filter_values(store.schema, subject) == docs[uri], uri


def test_filtered_search_agrees_with_the_predicate_and_the_percolator(
    organisation: Discovery, store: Store
) -> None:
    mapping = document_mapping(store.schema)
    texts = FIXED + generated_searches(all_documents(store), mapping, 60)
    assert_agree(organisation, store, texts)

    # A filter narrows a text search, and keeps every hit it would have had that passes.
    failed = compile_search("status == 'failed'", mapping)
    expected = {d["uri"] for d in all_documents(store) if failed.matches(d, NOW)}
    plain = {h.uri for h in organisation.search("daily", limit=100).hits}
    narrowed = {
        h.uri for h in organisation.search("daily", limit=100, where=where(failed, NOW)).hits
    }
    assert narrowed and narrowed <= expected and plain & expected <= narrowed


def test_changes_reach_the_filter_fields_through_the_feed(
    organisation: Discovery, store: Store
) -> None:
    run_uri = "aip://pipeline-run/orchestrator/daily-profile-exporter-run-83"
    pipeline = "aip://pipeline/orchestrator/daily-profile-exporter"
    mapping = document_mapping(store.schema)

    def only_the_pipeline(text: str) -> None:
        assert_agree(organisation, store, [text])
        assert forward_uris(organisation, compile_search(text, mapping)) == {pipeline}, text

    # A new run's edge changes the document at its far end too: the pipeline lists it.
    store.transact(upsert=[entity("PipelineRun", "extra-run", references={"pipeline": pipeline})])
    organisation.indexer().catch_up()
    only_the_pipeline("runs.id ANY ['extra-run']")

    # A run's new name shows in its pipeline's document, under the inverse `runs`.
    run = store.get(run_uri)
    assert run is not None
    store.transact(upsert=[run.model_copy(update={"name": "renamed-run"})])
    organisation.indexer().catch_up()
    only_the_pipeline("runs.name == 'renamed-run'")
    assert_agree(
        organisation,
        store,
        ["runs.name CONTAINS 'run-83'", "name == 'renamed-run'", "runs ANY ['extra-run']"],
    )


def test_a_filter_alone_browses_and_a_bad_one_says_where(organisation: Discovery) -> None:
    mapping = document_mapping(organisation.store.schema)
    page = organisation.search("", limit=5, where=parse_filter("type == 'Pipeline'", mapping))
    assert page.total == 21 and all(h.type == "Pipeline" for h in page.hits)
    with pytest.raises(QueryError):
        organisation.search("")  # no text and no filter: nothing to search for
