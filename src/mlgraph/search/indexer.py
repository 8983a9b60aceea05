"""The indexer: follows the store's change feed into the serving index version.

Each step, under the writer's lock: read the cursor, take the next batch of
transactions, rebuild the documents of every entity they touched from the
store's current state, commit the index, and only then save the cursor. A
crash between the two means the batch is applied again on restart, which
changes nothing: documents are keyed by URI and built from current state.

Nothing else writes the index, and nothing in the ingest path waits for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlgraph.search import documents, ranking, source
from mlgraph.search.mapping import index_fields, mapping_hash
from mlgraph.search.versions import Version, Versions
from mlgraph.search.writer import VersionWriter
from mlgraph.store import Change, Store
from mlgraph.store.following import FeedFollower

log = logging.getLogger("mlgraph.search")

CURSOR = "indexer"
# A rename shows in the documents of everything pointing at the entity; past
# this many, they are left for the next reindex rather than stall the feed.
MAX_RENAME_FANOUT = 10_000
# Staleness depends on the clock, not on any change: every so often the
# documents that went stale since they were built are built again.
SWEEP_EVERY_S = 600.0
SWEEP_BATCH = 5_000


@dataclass
class IndexStats:
    steps: int = 0
    transactions: int = 0
    upserted: int = 0
    deleted: int = 0
    renames: int = 0  # entities whose new name was carried into the documents linking to them
    turned_stale: int = 0


def touched(changes: Sequence[Change]) -> set[str]:
    """Entities whose documents a batch may change: every entity item, and both ends of
    every edge item (a filter document lists its edges both ways)."""
    return {uri for change in changes for uri in change.uris}


def store_key(store: Store) -> str:
    """Which store an index version follows: a directory shared by two stores rebuilds."""
    return store.engine.url.render_as_string(hide_password=True)


def owner_kinds(store: Store) -> set[str]:
    return {t.kind for t in store.schema.types.values() if t.name in documents.OWNER_TYPES}


def apply(store: Store, writer: VersionWriter, uris: set[str], stats: IndexStats) -> None:
    """Bring the documents of ``uris`` in line with the store (uncommitted)."""
    subjects = source.subjects(store, uris)
    docs = {uri: documents.build(store.schema, s) for uri, s in subjects.items()}
    before = writer.cards(sorted(uris))
    renamed = sorted(
        uri
        for uri in uris
        if uri in before and before[uri].get("name") != (docs[uri].name if uri in docs else None)
    )
    if renamed:
        linking = set(writer.linking_to(renamed, MAX_RENAME_FANOUT)) - uris
        if len(linking) >= MAX_RENAME_FANOUT:
            log.warning("a rename reaches over %d documents: run `mlgraph reindex`", len(linking))
        more = source.subjects(store, linking)
        docs.update((uri, documents.build(store.schema, s)) for uri, s in more.items())
        stats.renames += len(renamed)
    gone = uris - docs.keys()
    writer.delete(gone)
    writer.upsert(docs.values())
    stats.upserted += len(docs)
    stats.deleted += len(gone)


class Indexer(FeedFollower[IndexStats]):
    """Follows the feed into whichever version the alias names."""

    cursor_name = CURSOR
    activity = "indexing"

    def __init__(
        self,
        store: Store,
        versions: Versions,
        *,
        batch: int = 500,
        idle_poll_s: float = 0.05,
        rebuild: Callable[[], object] | None = None,
    ) -> None:
        self.store = store
        self.versions = versions
        self.batch = batch
        self.idle_poll_s = idle_poll_s
        self.mapping = mapping_hash(store.schema)
        self.owner_kinds = owner_kinds(store)
        self.fields = index_fields(store.schema)
        self.stats = IndexStats()
        # How to build a version when there is none, or it has another mapping.
        self._rebuild = rebuild
        self._writer: VersionWriter | None = None
        self._swept_at = -SWEEP_EVERY_S  # monotonic seconds: sweep on the first idle step

    def needs_rebuild(self) -> bool:
        """No version yet, or one built with another mapping or from another store."""
        current = self.versions.current()
        return (
            current is None
            or current.mapping != self.mapping
            or current.store != store_key(self.store)
        )

    def _writer_for(self, version: Version) -> VersionWriter:
        if self._writer is not None and self._writer.version.name != version.name:
            self._writer.close()  # the alias moved on (a reindex cut over)
            self._writer = None
        if self._writer is None:
            self._writer = VersionWriter(version, self.owner_kinds, fields=self.fields)
        return self._writer

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def step(self) -> bool:
        """Apply one batch of the feed; False when there was nothing new."""
        if self.needs_rebuild():
            if self._rebuild is None:
                raise RuntimeError("no search index version to follow the feed into")
            self.close()
            self._rebuild()
            return True
        with self.versions.lock():
            version = self.versions.current()
            assert version is not None
            changes = self.store.changes_since(self.store.cursor(CURSOR), self.batch)
            writer = self._writer_for(version)
            if not changes:
                return self._sweep(writer)
            try:
                apply(self.store, writer, touched(changes), self.stats)
                writer.commit()
            except BaseException:
                self.close()  # drop the half-applied batch with the writer
                raise
            # The index first, then the cursor: a crash in between repeats the batch.
            self.store.save_cursor(CURSOR, changes[-1].tx)
        self.stats.steps += 1
        self.stats.transactions += len(changes)
        return True

    def _sweep(self, writer: VersionWriter) -> bool:
        """Rebuild the documents that turned stale (when the feed is idle); True if any."""
        if time.monotonic() - self._swept_at < SWEEP_EVERY_S:
            return False
        before = int(time.time() - ranking.STALE_AFTER.total_seconds())
        uris = set(writer.turning_stale(before, SWEEP_BATCH))
        if len(uris) < SWEEP_BATCH:
            self._swept_at = time.monotonic()
        if not uris:
            return False
        try:
            apply(self.store, writer, uris, IndexStats())
            writer.commit()
        except BaseException:
            self.close()
            raise
        self.stats.turned_stale += len(uris)
        return True
