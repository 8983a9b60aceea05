"""Reading the serving index version, always as of its latest commit.

Before each query the reader compares the alias and the indexes' commit
files with what it saw last time (a ``stat`` each): a cut-over opens the new
version, a commit reloads the searcher. Nothing polls in the background, and
a commit is visible to the next query after it, in this process or another.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import tantivy

from mlgraph.errors import MlgraphError
from mlgraph.search.index import open_index
from mlgraph.search.versions import Version, Versions

COMMIT_FILE = "meta.json"  # tantivy rewrites it on every commit


class IndexUnavailable(MlgraphError):
    """There is no index to search (yet), or not one this code can read."""


def _stamp(path: Path) -> int:
    try:
        return (path / COMMIT_FILE).stat().st_mtime_ns
    except FileNotFoundError:
        return 0


class _Fresh:
    """One tantivy index, reloaded when its commit file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.index = open_index(path)
        self.stamp = -1

    def searcher(self) -> tantivy.Searcher:
        stamp = _stamp(self.path)
        if stamp != self.stamp:
            self.index.reload()
            self.stamp = stamp
        return self.index.searcher()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one query reads: a version and a searcher on each of its indexes."""

    version: Version
    entities: tantivy.Searcher
    owners: tantivy.Searcher
    schema: tantivy.Schema


class Reader:
    def __init__(self, versions: Versions, mapping: str) -> None:
        self.versions = versions
        self.mapping = mapping
        self._lock = threading.Lock()
        self._alias_stamp: int | None = None
        self._version: Version | None = None
        self._indexes: tuple[_Fresh, _Fresh] | None = None

    def snapshot(self) -> Snapshot:
        with self._lock:
            stamp = self.versions.stamp()
            if stamp is None:
                raise IndexUnavailable(
                    "there is no search index yet: the service builds one when it starts, "
                    "or run `mlgraph reindex`"
                )
            if stamp != self._alias_stamp or self._indexes is None:
                version = self.versions.current()
                assert version is not None
                if version.mapping != self.mapping:
                    raise IndexUnavailable(
                        f"the search index ({version.name}) was built with another document "
                        "mapping and is being rebuilt: try again shortly, or run "
                        "`mlgraph reindex`"
                    )
                self._indexes = (_Fresh(version.entities), _Fresh(version.owners))
                self._version, self._alias_stamp = version, stamp
            entities, owners = self._indexes
            assert self._version is not None
            return Snapshot(
                self._version, entities.searcher(), owners.searcher(), entities.index.schema
            )
