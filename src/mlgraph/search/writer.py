"""Writing documents into one index version: its entities index and its owners index.

Documents are keyed by URI: an upsert deletes whatever the URI had and adds
the new document in the same commit, so applying the same change twice leaves
the index as applying it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import tantivy

from mlgraph.search.documents import OWNER_TYPES, SearchDocument
from mlgraph.search.index import WRITER_HEAP, open_index, writer
from mlgraph.search.mapping import FIELDS, FieldSpec
from mlgraph.search.versions import Version


def uri_kind(uri: str) -> str:
    return uri.partition("://")[2].split("/", 1)[0]


class VersionWriter:
    """Open writers on a version; ``commit`` makes what was written visible to readers."""

    def __init__(
        self,
        version: Version,
        owner_kinds: Iterable[str],
        heap: int = WRITER_HEAP,
        fields: Sequence[FieldSpec] = FIELDS,
    ) -> None:
        """``fields``: what a new version's indexes get (``mapping.index_fields``)."""
        self.version = version
        self.owner_kinds = frozenset(owner_kinds)
        self.entities = open_index(version.entities, fields)
        self.owners = open_index(version.owners, fields)
        self._entities_writer = writer(self.entities, heap)
        self._owners_writer = writer(self.owners)
        # Committing costs an fsync or two: the owners index only when it changed.
        self._owners_dirty = False

    def upsert(self, docs: Iterable[SearchDocument]) -> int:
        n = 0
        for doc in docs:
            self._entities_writer.delete_documents_by_term("uri", doc.uri)
            built = doc.to_tantivy()
            self._entities_writer.add_document(built)
            if doc.type in OWNER_TYPES or uri_kind(doc.uri) in self.owner_kinds:
                self._owners_writer.delete_documents_by_term("uri", doc.uri)
                if doc.type in OWNER_TYPES:
                    self._owners_writer.add_document(doc.to_tantivy())
                self._owners_dirty = True
            n += 1
        return n

    def add_new(self, docs: Iterable[SearchDocument]) -> int:
        """Add documents known to be absent (a fresh build): no delete to pay for."""
        n = 0
        for doc in docs:
            self._entities_writer.add_document(doc.to_tantivy())
            if doc.type in OWNER_TYPES:
                self._owners_writer.add_document(doc.to_tantivy())
                self._owners_dirty = True
            n += 1
        return n

    def delete(self, uris: Iterable[str]) -> None:
        for uri in uris:
            self._entities_writer.delete_documents_by_term("uri", uri)
            if uri_kind(uri) in self.owner_kinds:
                self._owners_writer.delete_documents_by_term("uri", uri)
                self._owners_dirty = True

    def commit(self) -> None:
        self._entities_writer.commit()
        if self._owners_dirty:
            self._owners_writer.commit()
            self._owners_dirty = False

    def close(self) -> None:
        """Drop uncommitted work and release the directories' writer locks."""
        for w in (self._entities_writer, self._owners_writer):
            w.rollback()
            w.wait_merging_threads()

    def cards(self, uris: Sequence[str]) -> dict[str, dict[str, Any]]:
        """What the entities index holds now for ``uris`` (as last committed)."""
        if not uris:
            return {}
        self.entities.reload()
        searcher = self.entities.searcher()
        query = tantivy.Query.term_set_query(self.entities.schema, "uri", list(uris))
        found: dict[str, dict[str, Any]] = {}
        for _, address in searcher.search(query, len(uris), count=False).hits:
            card = json.loads(searcher.doc(address)["card"][0])
            found[card["uri"]] = card
        return found

    def linking_to(self, uris: Sequence[str], limit: int) -> list[str]:
        """Documents that show the name of any of ``uris`` (owners, related), up to ``limit``."""
        if not uris:
            return []
        self.entities.reload()
        searcher = self.entities.searcher()
        query = tantivy.Query.term_set_query(self.entities.schema, "links", list(uris))
        hits = searcher.search(query, limit, count=False).hits
        return [searcher.doc(address)["uri"][0] for _, address in hits]

    def turning_stale(self, before: int, limit: int) -> list[str]:
        """Documents built as fresh whose update time is now older than ``before``."""
        self.entities.reload()
        searcher = self.entities.searcher()
        schema = self.entities.schema
        old = tantivy.Query.range_query(
            schema, "updated_ts", tantivy.FieldType.Integer, upper_bound=before,
            include_upper=False,
        )  # fmt: skip
        fresh = tantivy.Query.term_query(schema, "state", "fresh")
        query = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, old), (tantivy.Occur.Must, fresh)]
        )
        hits = searcher.search(query, limit, count=False).hits
        return [searcher.doc(address)["uri"][0] for _, address in hits]

    def doc_counts(self) -> tuple[int, int]:
        self.entities.reload()
        self.owners.reload()
        return self.entities.searcher().num_docs, self.owners.searcher().num_docs
