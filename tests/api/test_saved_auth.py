"""Who may read and manage saved searches, over REST and GraphQL (api/saved_ops.py).

Reading needs `read`; a token manages its own searches with `read` (its name is
the owner); another owner, or someone else's search, needs `admin`; an
anonymous reader may read but not save.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from mlgraph.api import create_app
from mlgraph.api.tokens import Tokens
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.reverse import SavedSearches
from mlgraph.runtime import Service
from mlgraph.store import Store

PATH = "/v1/saved-searches"
UPSERT = """mutation($input: UpsertSavedSearchInput!) {
  upsertSavedSearch(input: $input) { created savedSearch { id owner name } error { reason } }
}"""
DELETE = "mutation($id: ID!) { deleteSavedSearch(id: $id) { deletedId } }"
READ_QUERY = "{ savedSearches(first: 5) { totalCount } }"


def make_client(store: Store, **settings: Any) -> TestClient:
    service = Service(Settings(workers=False, **settings), store, load_connectors(store.schema))
    return TestClient(create_app(service))


@pytest.fixture
def tokens(store: Store) -> dict[str, str]:
    made = Tokens(store.engine)
    return {
        "alice": made.create("alice", ["read"]).secret,
        "bob": made.create("bob", ["read"]).secret,
        "webhook": made.create("registry webhook", ["write"]).secret,
        "admin": made.create("operator", ["admin"]).secret,
    }


@pytest.fixture
def client(store: Store, tokens: dict[str, str]) -> Iterator[TestClient]:
    with make_client(store) as c:
        yield c


@pytest.fixture
def search_id(store: Store) -> int:
    """A search of alice's, saved before any request."""
    return SavedSearches(store).save("alice", "models", "type == 'Model'").id


def routes(search_id: int) -> list[tuple[str, str, Any]]:
    """Every saved-search route: (method, path, body)."""
    return [
        ("POST", PATH, {"name": "new", "filter": "type == 'Model'"}),
        ("PUT", PATH, {"name": "new", "filter": "type == 'Model'"}),
        ("GET", PATH, None),
        ("GET", f"{PATH}/{search_id}", None),
        ("GET", f"{PATH}/{search_id}/members", None),
        ("GET", f"{PATH}/{search_id}/transitions", None),
        ("POST", "/v1/reverse-search", {"document": {"type": "Model"}}),
        ("DELETE", f"{PATH}/{search_id}", None),  # last: it deletes
    ]


def call(client: TestClient, method: str, path: str, body: Any, token: str | None) -> Any:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    return client.request(method, path, json=body, headers=headers)


def gql(client: TestClient, query: str, variables: dict[str, Any], token: str | None) -> Any:
    return call(client, "POST", "/graphql", {"query": query, "variables": variables}, token)


def test_every_route_needs_a_token_with_read(
    client: TestClient, tokens: dict[str, str], search_id: int
) -> None:
    for method, path, body in routes(search_id):
        response = call(client, method, path, body, None)
        assert response.status_code == 401, (method, path)
        assert "authentication required" in response.json()["error"]
        assert response.headers["www-authenticate"].startswith("Bearer")
        response = call(client, method, path, body, "mlg_not-a-token")
        assert response.status_code == 401, (method, path)
        response = call(client, method, path, body, tokens["webhook"])
        assert response.status_code == 403, (method, path)
        assert "lacks the 'read' scope" in response.json()["error"]
    for method, path, body in routes(search_id):
        response = call(client, method, path, body, tokens["alice"])
        assert response.status_code in (200, 201), (method, path, response.text)


def test_a_reader_manages_its_own_searches_only(
    client: TestClient, tokens: dict[str, str], search_id: int, store: Store
) -> None:
    alice, bob, admin = tokens["alice"], tokens["bob"], tokens["admin"]
    model = {"filter": "type == 'Model'"}

    created = call(client, "POST", PATH, {"name": "mine"} | model, bob)
    assert created.status_code == 201
    assert created.json()["saved_search"]["owner"] == "bob"

    refusals: list[tuple[str, str, Any, str]] = [
        ("POST", PATH, {"name": "x", "owner": "alice"} | model, "needs the 'admin' scope"),
        ("PUT", PATH, {"id": search_id, "filter": "type == 'Dataset'"}, "belongs to 'alice'"),
        ("PUT", PATH, {"id": search_id, "name": "renamed"} | model, "belongs to 'alice'"),
        ("DELETE", f"{PATH}/{search_id}", None, "belongs to 'alice'"),
    ]
    for method, path, body, message in refusals:
        response = call(client, method, path, body, bob)
        assert response.status_code == 403, (method, body, response.text)
        assert message in response.json()["error"]
        assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert SavedSearches(store).require(search_id).dsl == "type == 'Model'"
    assert SavedSearches(store).require(search_id).name == "models"

    # Bob may read alice's search, and alice may edit it.
    assert call(client, "GET", f"{PATH}/{search_id}", None, bob).status_code == 200
    edited = call(client, "PUT", PATH, {"id": search_id, "filter": "type == 'Dataset'"}, alice)
    assert edited.status_code == 200
    # (owner, name) with no owner means the caller's own: bob gets a new search, not alice's.
    again = call(client, "PUT", PATH, {"name": "models"} | model, bob)
    assert again.status_code == 201 and again.json()["saved_search"]["owner"] == "bob"

    # An admin saves for anyone and manages anyone's.
    for_carol = call(client, "POST", PATH, {"name": "x", "owner": "carol"} | model, admin)
    assert for_carol.status_code == 201 and for_carol.json()["saved_search"]["owner"] == "carol"
    edited = call(client, "PUT", PATH, {"id": search_id, "filter": "type == 'Feature'"}, admin)
    assert edited.status_code == 200 and edited.json()["saved_search"]["owner"] == "alice"
    assert call(client, "DELETE", f"{PATH}/{search_id}", None, admin).status_code == 200


def test_an_anonymous_reader_reads_but_does_not_save(
    store: Store, tokens: dict[str, str], search_id: int
) -> None:
    with make_client(store, anonymous_read=True) as client:
        for method, path, body in routes(search_id):
            response = call(client, method, path, body, None)
            if method == "GET" or path == "/v1/reverse-search":
                assert response.status_code == 200, (method, path)
            else:
                assert response.status_code == 401, (method, path)
                assert "needs an API token" in response.json()["error"]
        body = gql(client, UPSERT, {"input": {"name": "x", "filter": "type == 'Model'"}}, None)
        assert body.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        body = gql(client, DELETE, {"id": str(search_id)}, None)
        assert body.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert gql(client, READ_QUERY, {}, None).json()["data"]["savedSearches"]["totalCount"] == 1
    assert [s.id for s in SavedSearches(store).all()] == [search_id]


def test_graphql_mutations_check_tokens_and_ownership(
    client: TestClient, tokens: dict[str, str], search_id: int, store: Store
) -> None:
    mine = {"input": {"name": "mine", "filter": "type == 'Model'"}}
    assert gql(client, UPSERT, mine, None).status_code == 401
    assert gql(client, UPSERT, mine, tokens["webhook"]).status_code == 403
    assert gql(client, DELETE, {"id": str(search_id)}, None).status_code == 401
    assert gql(client, DELETE, {"id": str(search_id)}, tokens["webhook"]).status_code == 403
    assert gql(client, READ_QUERY, {}, None).status_code == 401

    body = gql(client, UPSERT, mine, tokens["bob"]).json()
    assert body["data"]["upsertSavedSearch"]["savedSearch"]["owner"] == "bob"

    refusals: list[tuple[str, dict[str, Any]]] = [
        (UPSERT, {"input": {"name": "x", "owner": "alice", "filter": "type == 'Model'"}}),
        (UPSERT, {"input": {"id": str(search_id), "filter": "type == 'Dataset'"}}),
        (DELETE, {"id": str(search_id)}),
    ]
    for query, variables in refusals:
        body = gql(client, query, variables, tokens["bob"]).json()
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", variables
        assert "admin" in body["errors"][0]["message"]
    assert SavedSearches(store).require(search_id).dsl == "type == 'Model'"

    edit = {"input": {"id": str(search_id), "filter": "type == 'Dataset'"}}
    body = gql(client, UPSERT, edit, tokens["alice"]).json()
    assert body["data"]["upsertSavedSearch"]["created"] is False
    for_carol = {"input": {"name": "y", "owner": "carol", "filter": "type == 'Model'"}}
    body = gql(client, UPSERT, for_carol, tokens["admin"]).json()
    assert body["data"]["upsertSavedSearch"]["savedSearch"]["owner"] == "carol"
    body = gql(client, DELETE, {"id": str(search_id)}, tokens["admin"]).json()
    assert body["data"]["deleteSavedSearch"]["deletedId"] == str(search_id)
    assert (
        gql(client, READ_QUERY, {}, tokens["bob"]).json()["data"]["savedSearches"]["totalCount"]
        == 2
    )
