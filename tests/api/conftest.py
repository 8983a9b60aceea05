from __future__ import annotations

import pytest

from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.runtime import Service
from mlgraph.store import Store


@pytest.fixture
def service(store: Store) -> Service:
    """The service over the test store, with the built-in connectors (workers off)."""
    return Service(Settings(workers=False), store, load_connectors(store.schema))
