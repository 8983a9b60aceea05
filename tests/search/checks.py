"""Comparing an index with the store it follows."""

from __future__ import annotations

import json
from collections import Counter

import tantivy

from mlgraph.search import Discovery
from mlgraph.search.documents import OWNER_TYPES
from mlgraph.search.index import open_index
from mlgraph.store import Store


def indexed(path_index: tantivy.Index) -> Counter[str]:
    """How many documents the index holds for each URI (one, or it is broken)."""
    path_index.reload()
    searcher = path_index.searcher()
    found: Counter[str] = Counter()
    hits = searcher.search(tantivy.Query.all_query(), max(1, searcher.num_docs)).hits
    for _, address in hits:
        found[searcher.doc(address)["uri"][0]] += 1
    return found


def names(path_index: tantivy.Index) -> dict[str, str]:
    path_index.reload()
    searcher = path_index.searcher()
    hits = searcher.search(tantivy.Query.all_query(), max(1, searcher.num_docs)).hits
    out = {}
    for _, address in hits:
        card = json.loads(searcher.doc(address)["card"][0])
        out[card["uri"]] = card["name"]
    return out


def assert_index_matches_store(discovery: Discovery, store: Store) -> None:
    """One document per current entity, nothing else, each with the entity's name."""
    version = discovery.versions.current()
    assert version is not None
    entities = open_index(version.entities)
    owners = open_index(version.owners)
    listed = store.listing(f"{store.schema.scheme}://")
    expected = {item.uri for item in listed}
    found = indexed(entities)
    duplicates = sorted(uri for uri, n in found.items() if n > 1)
    assert not duplicates, duplicates[:5]
    assert set(found) == expected, sorted(set(found) ^ expected)[:5]
    expected_owners = {item.uri for item in listed if item.type in OWNER_TYPES}
    assert set(indexed(owners)) == expected_owners
    shown = names(entities)
    for item in listed:
        entity = store.get(item.uri)
        assert entity is not None
        assert shown[item.uri] == (entity.name or item.uri.rsplit("/", 1)[1]), item.uri
