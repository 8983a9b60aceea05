"""Fixtures for the search tests: a discovery index over a store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlgraph.search import Discovery
from mlgraph.store import Store


@pytest.fixture
def discovery(store: Store, tmp_path: Path) -> Discovery:
    """A discovery index directory over the test store (on both backends), not built yet."""
    return Discovery(tmp_path / "search", store)


@pytest.fixture
def indexed(discovery: Discovery) -> Iterator[Discovery]:
    """``discovery`` with its index built (empty store: an empty index)."""
    indexer = discovery.indexer()
    indexer.catch_up()
    indexer.close()
    yield discovery
