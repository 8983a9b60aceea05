"""Discovery: the search index over every entity and owner, following the change feed.

    discovery = Discovery(data_dir / "search", store)
    discovery.rebuild()                          # a new version from the store, then cut over
    discovery.indexer().catch_up()               # or `await indexer.run(stop)` in the service
    discovery.search("ranking model type:Model owner:alice")
    discovery.typeahead("rank")

docs/search.md has the document, the ranking, the query syntax and operations.
"""

from mlgraph.search.discovery import Discovery
from mlgraph.search.engine import Hit, SearchPage, Suggestion, Where
from mlgraph.search.indexer import CURSOR, Indexer, IndexStats
from mlgraph.search.query import QueryError
from mlgraph.search.reader import IndexUnavailable
from mlgraph.search.rebuild import CountMismatch, RebuildReport

__all__ = [
    "CURSOR",
    "CountMismatch",
    "Discovery",
    "Hit",
    "IndexStats",
    "IndexUnavailable",
    "Indexer",
    "QueryError",
    "RebuildReport",
    "SearchPage",
    "Suggestion",
    "Where",
]
