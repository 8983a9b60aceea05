"""Reverse search: saved searches that say when an entity starts or stops matching.

The DSL (``syntax``, ``checker``) compiles (``compiler``) to a predicate over a
search document (``predicate``, ``documents``) and to conjunctions the
percolator (``percolator``) indexes; the follower (``follower``) matches each
change from the feed before and after, and records the transitions.
"""

from mlgraph.reverse.compiler import COMPILER_VERSION, CompiledSearch, compile_search
from mlgraph.reverse.errors import DslError
from mlgraph.reverse.follower import ReverseFollower
from mlgraph.reverse.percolator import Percolator
from mlgraph.reverse.saved import SavedSearch, SavedSearches, Transition
from mlgraph.search.filter_fields import DocumentMapping, Kind, document_mapping

__all__ = [
    "COMPILER_VERSION",
    "CompiledSearch",
    "DocumentMapping",
    "DslError",
    "Kind",
    "Percolator",
    "ReverseFollower",
    "SavedSearch",
    "SavedSearches",
    "Transition",
    "compile_search",
    "document_mapping",
]
