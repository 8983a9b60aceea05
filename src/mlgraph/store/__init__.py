"""The fact store: immutable versions, a current projection, a change feed, traversal."""

from mlgraph.store.records import (
    Change,
    ChangeItem,
    Edge,
    EdgeChange,
    Listed,
    Neighbor,
    Op,
    Provenance,
    Reached,
    Traversal,
    TxReport,
    Version,
)
from mlgraph.store.store import Store

__all__ = [
    "Change",
    "ChangeItem",
    "Edge",
    "EdgeChange",
    "Listed",
    "Neighbor",
    "Op",
    "Provenance",
    "Reached",
    "Store",
    "Traversal",
    "TxReport",
    "Version",
]
