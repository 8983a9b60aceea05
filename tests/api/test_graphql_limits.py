"""Every GraphQL limit refuses a query past it, with a message that says which and why."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlgraph.api import create_app
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.api.graph import M1, build

LIMITS: dict[str, Any] = {
    "graphql_max_depth": 6,
    "graphql_max_aliases": 3,
    "graphql_max_tokens": 200,
    "api_max_page": 10,
    "graphql_max_cost": 500,
}


@pytest.fixture
def limited(store: Store) -> Iterator[TestClient]:
    build(store)
    service = Service(Settings(workers=False, **LIMITS), store, load_connectors(store.schema))
    with TestClient(create_app(service)) as client:
        yield client


def run(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    return response.json()


def refused(body: dict[str, Any]) -> str:
    assert body.get("data") is None, body
    (error,) = body["errors"]
    return str(error["message"])


def test_within_every_limit_a_query_runs_and_reports_its_cost(limited: TestClient) -> None:
    body = run(limited, f'{{ modelInstance(id: "{M1}") {{ features(first: 5) {{ '
                        f"nodes {{ name owners(first: 2) {{ name }} }} }} }} }}")  # fmt: skip
    assert "errors" not in body
    # modelInstance 1 + features 5 x (1 + nodes 1 x (1 + owners 2 x 1)) = 21
    assert body["extensions"]["cost"] == 21


def test_depth(limited: TestClient) -> None:
    hops = "model { currentInstance { " * 3
    deep = f'{{ modelInstance(id: "{M1}") {{ {hops} name' + " } } " * 3 + "} }"
    assert "exceeds maximum operation depth of 6" in refused(run(limited, deep))


def test_aliases(limited: TestClient) -> None:
    query = "{ " + " ".join(f'a{i}: entity(uri: "{M1}") {{ name }}' for i in range(4)) + " }"
    assert refused(run(limited, query)) == "4 aliases found. Allowed: 3"


def test_tokens(limited: TestClient) -> None:
    query = "{ " + " ".join("__typename" for _ in range(250)) + " }"
    assert "Document contains more than 200 tokens" in refused(run(limited, query))


@pytest.mark.parametrize("given", ["literal", "variable"])
def test_page_size(limited: TestClient, given: str) -> None:
    if given == "literal":
        head, first, variables = "", "11", {}
    else:
        head, first, variables = "($n: Int!)", "$n", {"n": 11}
    query = f"""query{head} {{ modelInstance(id: "{M1}") {{
        features(first: {first}) {{ totalCount }} }} }}"""
    body = run(limited, query, variables)
    message = refused(body)
    assert message == "first of features must be between 0 and 10, got 11"
    assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"


def test_page_size_of_root_lists_and_lineage(limited: TestClient) -> None:
    body = run(limited, f'{{ lineage(uri: "{M1}", first: 50) {{ partial }} }}')
    assert refused(body) == "first of lineage must be between 0 and 10, got 50"
    body = run(limited, "{ entities(first: 50) { totalCount } }")
    assert refused(body) == "first of entities must be between 0 and 10, got 50"


def test_cost(limited: TestClient) -> None:
    # entities 10 x (1 + nodes (1 + owners 10 x (1 + nodes (1 + owners 10 x 1)))) = 1,220 > 500,
    # though each page is allowed
    query = """{ entities(first: 10) { nodes { ownersConnection(first: 10) { nodes {
        ownersConnection(first: 10) { totalCount } } } } } }"""
    body = run(limited, query)
    message = refused(body)
    assert message.startswith("the query's estimated cost 1,220 exceeds the limit of 500")
    assert body["errors"][0]["extensions"]["code"] == "LIMIT_EXCEEDED"
    # Defaults count at their value: owners lists default to the largest page.
    defaults = run(limited, "{ entities { nodes { owners { owners { name } } } } }")
    assert "estimated cost" in refused(defaults)


def test_fragments_are_costed_like_inline_selections(limited: TestClient) -> None:
    query = """query { entities(first: 10) { ...deep } }
        fragment deep on EntityListing { nodes { ownersConnection(first: 10) {
        nodes { ownersConnection(first: 10) { totalCount } } } } }"""
    assert "estimated cost 1,220" in refused(run(limited, query))
