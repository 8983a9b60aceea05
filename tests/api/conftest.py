from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

import mlgraph.api.tables  # noqa: F401 - the token table is emptied between PostgreSQL tests too
from mlgraph.api import create_app
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.runtime import Service
from mlgraph.store import Store

GraphQL = Callable[..., dict[str, Any]]


@pytest.fixture
def service(store: Store) -> Service:
    """The service over the test store, with the built-in connectors (workers off)."""
    return Service(Settings(workers=False), store, load_connectors(store.schema))


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service)) as c:
        yield c


@pytest.fixture
def gql(client: TestClient) -> GraphQL:
    """POST a query to /graphql; the JSON answer (``data``, ``errors``, ``extensions``)."""

    def run(query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
        response = client.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return run
