"""Building a new index version from the store while the old one keeps serving.

1. Note the store's last transaction, then write every current entity into a
   new version (no lock: the serving version and its indexer carry on).
2. Follow the feed from the noted transaction into the new version until it
   is nearly caught up (re-applying a change is harmless).
3. Under the writer's lock: catch up to the end, check the document counts
   against the store, replace the alias and move the ``indexer`` cursor to
   where the new version stands. The indexer's next step writes the new one.

If anything fails, the new version is discarded and the old one still serves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from mlgraph.errors import MlgraphError
from mlgraph.search import documents, source
from mlgraph.search.index import BULK_HEAP
from mlgraph.search.indexer import CURSOR, IndexStats, apply, owner_kinds, store_key, touched
from mlgraph.search.mapping import index_fields, mapping_hash
from mlgraph.search.versions import Versions
from mlgraph.search.writer import VersionWriter
from mlgraph.store import Store

log = logging.getLogger("mlgraph.search")

BATCH = 1000
COUNT_ATTEMPTS = 20  # tries at counting while the store stands still


class CountMismatch(MlgraphError):
    """The new version does not hold one document per entity: it is not served."""


@dataclass(frozen=True, slots=True)
class RebuildReport:
    version: str
    previous: str | None
    documents: int
    owners: int
    position: int  # the last transaction the new version reflects
    seconds: float


Progress = Callable[[int], None]


class Rebuild:
    def __init__(self, store: Store, versions: Versions, progress: Progress | None = None) -> None:
        self.store = store
        self.versions = versions
        self.progress = progress or (lambda _n: None)
        self.stats = IndexStats()

    def run(self) -> RebuildReport:
        started = time.monotonic()
        previous = self.versions.current()
        version = self.versions.create(mapping_hash(self.store.schema), store_key(self.store))
        writer = VersionWriter(
            version, owner_kinds(self.store), BULK_HEAP, index_fields(self.store.schema)
        )
        try:
            position = self._load(writer)
            position = self._follow(writer, position)
            with self.versions.lock():
                position, docs, owners = self._verify(writer, self._settle(writer, position))
                self.versions.cut_over(version, position=position, documents=docs, owners=owners)
                self.store.save_cursor(CURSOR, position)
        except BaseException:
            writer.close()
            self.versions.discard(version)
            raise
        writer.close()
        report = RebuildReport(
            version.name,
            None if previous is None else previous.name,
            docs,
            owners,
            position,
            time.monotonic() - started,
        )
        log.info("search index %s serves %d documents (tx %d)", version.name, docs, position)
        return report

    def _load(self, writer: VersionWriter) -> int:
        position = self.store.last_tx()
        written = 0
        for subjects in source.every_subject(self.store, BATCH):
            written += writer.add_new(documents.build(self.store.schema, s) for s in subjects)
            self.progress(written)
        writer.commit()
        return position

    def _follow(self, writer: VersionWriter, position: int) -> int:
        """Apply the feed after ``position``; the new position."""
        while changes := self.store.changes_since(position, BATCH):
            apply(self.store, writer, touched(changes), self.stats)
            writer.commit()
            position = changes[-1].tx
        return position

    def _settle(self, writer: VersionWriter, position: int) -> int:
        """Catch up to a moment when the store's last transaction is ours (under the lock)."""
        for _ in range(COUNT_ATTEMPTS):
            position = self._follow(writer, position)
            if self.store.last_tx() == position:
                return position
        return position

    def _verify(self, writer: VersionWriter, position: int) -> tuple[int, int, int]:
        """The position and document counts once they agree with the store's counts."""
        for _ in range(COUNT_ATTEMPTS):
            entities, owners = source.counts(self.store)
            if self.store.last_tx() != position:  # it moved while we counted: catch up again
                position = self._settle(writer, position)
                continue
            docs, owner_docs = writer.doc_counts()
            if (docs, owner_docs) != (entities, owners):
                raise CountMismatch(
                    f"the new index holds {docs} documents ({owner_docs} owners) but the "
                    f"store holds {entities} entities ({owners} users and groups) at tx "
                    f"{position}: not cutting over"
                )
            return position, docs, owner_docs
        raise CountMismatch("the store kept changing while the documents were counted")


def rebuild(store: Store, versions: Versions, progress: Progress | None = None) -> RebuildReport:
    return Rebuild(store, versions, progress).run()
