"""The discovery index of one data directory: search it, follow the feed into it, rebuild it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlgraph.search.engine import Engine, IndexName, SearchPage, Suggestion, Where
from mlgraph.search.indexer import CURSOR, Indexer
from mlgraph.search.mapping import mapping_hash
from mlgraph.search.reader import Reader
from mlgraph.search.rebuild import Progress, RebuildReport, rebuild
from mlgraph.search.versions import Versions
from mlgraph.store import Store


class Discovery:
    def __init__(self, root: Path, store: Store) -> None:
        self.root = root
        self.store = store
        self.versions = Versions(root)
        self.mapping = mapping_hash(store.schema)
        self.reader = Reader(self.versions, self.mapping)
        self.engine = Engine(self.reader, store.schema)

    def search(
        self,
        text: str,
        *,
        limit: int = 20,
        cursor: str | None = None,
        facets: bool = True,
        index: IndexName = "entities",
        where: Where | None = None,
    ) -> SearchPage:
        return self.engine.search(
            text, limit=limit, cursor=cursor, facets=facets, index=index, where=where
        )

    def typeahead(
        self, prefix: str, *, limit: int = 10, index: IndexName = "entities"
    ) -> list[Suggestion]:
        return self.engine.typeahead(prefix, limit=limit, index=index)

    def indexer(self, *, batch: int = 500, idle_poll_s: float = 0.05) -> Indexer:
        """A feed follower for this directory; it rebuilds first when the index is missing
        or was built with another mapping."""
        return Indexer(
            self.store, self.versions, batch=batch, idle_poll_s=idle_poll_s, rebuild=self.rebuild
        )

    def rebuild(self, progress: Progress | None = None) -> RebuildReport:
        """Build a new version from the store and cut over to it (the old one serves meanwhile)."""
        return rebuild(self.store, self.versions, progress)

    def status(self) -> dict[str, Any]:
        current = self.versions.current()
        cursor = self.store.cursor(CURSOR)
        return {
            "directory": str(self.root),
            "version": None if current is None else current.name,
            "mapping": None if current is None else current.mapping,
            "mapping_current": current is not None and current.mapping == self.mapping,
            "built": {} if current is None else current.meta(),
            "cursor": cursor,
            "lag": self.store.last_tx() - cursor,
        }
