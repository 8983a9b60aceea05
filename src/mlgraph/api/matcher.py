"""Reverse search for the API: one percolator over every saved search, kept per app.

Building a percolator compiles (or loads) every saved search, so the API
builds it once and brings it up to date before each use, the way the reverse
follower does (``reverse/follower.py``): searches saved or edited since (a
higher ``revision``) are indexed again, and deleted ones (a delete bumps no
revision; the count tells) are dropped. A request costs one small query
when nothing changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI

from mlgraph.errors import MlgraphError
from mlgraph.reverse import DocumentMapping
from mlgraph.reverse import tables as rt
from mlgraph.reverse.percolator import Percolator
from mlgraph.reverse.reading import DocumentReader
from mlgraph.reverse.saved import compiled_of
from mlgraph.search.mapping import filter_mapping
from mlgraph.store import Store

log = logging.getLogger("mlgraph.api")


class SearchMatcher:
    """Which saved searches does a document match? Safe to share between threads."""

    def __init__(self, store: Store, mapping: DocumentMapping | None = None) -> None:
        self.store = store
        self.mapping = mapping or filter_mapping(store.schema)
        self.reader = DocumentReader(store)
        self.percolator = Percolator(self.mapping)
        self._seen_revision = 0
        self._known: set[int] = set()  # every search taken in, indexed or not
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Take in the searches saved, edited or deleted since the last look."""
        s = rt.saved_search
        with self.store.engine.connect() as conn:
            top, count = conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(s.c.revision), 0), sa.func.count())
            ).one()
            if top == self._seen_revision and count == len(self._known):
                return
            rows = conn.execute(
                sa.select(s).where(s.c.revision > self._seen_revision).order_by(s.c.revision)
            ).all()
            gone: set[int] = set()
            if count != len(self._known | {r.id for r in rows}):
                gone = self._known - {int(i) for i in conn.execute(sa.select(s.c.id)).scalars()}
        for search_id in gone:
            self.percolator.remove(search_id)
            self._known.discard(search_id)
        for row in rows:
            self._known.add(row.id)
            self._seen_revision = max(self._seen_revision, int(row.revision))
            if row.invalid_reason is not None:  # no longer compiles: matches nothing
                self.percolator.remove(row.id)
                continue
            try:
                self.percolator.add(row.id, compiled_of(row, self.mapping))
            except MlgraphError as exc:  # no longer fits the mapping: it matches nothing
                self.percolator.remove(row.id)
                log.warning("saved search %s does not compile: %s", row.id, exc)

    def match(self, document: Mapping[str, Any], now: float | None = None) -> list[int]:
        """The ids of the saved searches ``document`` matches, in id order."""
        with self._lock:
            self.refresh()
            return self.percolator.match(document, time.time() if now is None else now)

    def document(self, uri: str) -> dict[str, Any] | None:
        """The reverse-search document of the entity ``uri`` as the store holds it now."""
        return self.reader.documents([uri]).get(uri)


_creating = threading.Lock()


def matcher_of(app: FastAPI) -> SearchMatcher:
    """The app's matcher, made on first use (it lives and dies with the app)."""
    found: SearchMatcher | None = getattr(app.state, "saved_search_matcher", None)
    if found is None:
        with _creating:
            found = getattr(app.state, "saved_search_matcher", None)
            if found is None:
                found = SearchMatcher(app.state.service.store)
                app.state.saved_search_matcher = found
    return found
