"""Saved searches and reverse search over GraphQL, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from mlgraph.api.graphql import graphql_schema
from mlgraph.api.graphql.paging import encode
from mlgraph.api.limits import Limits
from mlgraph.catalog import load_schema
from mlgraph.reverse import ReverseFollower, SavedSearches, compile_search, document_mapping
from mlgraph.reverse import tables as rt
from mlgraph.store import Store
from tests.api.conftest import GraphQL
from tests.builders import entity, uri

UPSERT = """
mutation($input: UpsertSavedSearchInput!) {
  upsertSavedSearch(input: $input) {
    created
    savedSearch { id owner name filter index revision builtTx }
    error { message reason line column excerpt }
  }
}"""
DELETE = "mutation($id: ID!) { deleteSavedSearch(id: $id) { deletedId savedSearch { name } } }"
LIST = """
query($owner: String, $first: Int!, $after: String) {
  savedSearches(owner: $owner, first: $first, after: $after) {
    totalCount
    nodes { id name }
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage endCursor }
  }
}"""
REVERSE = """
query($document: JSON!, $first: Int!, $after: String) {
  reverseSearch(index: ENTITIES, document: $document, first: $first, after: $after) {
    totalCount
    nodes { id name }
    pageInfo { hasNextPage endCursor }
  }
}"""


def upsert(gql: GraphQL, **fields: Any) -> dict[str, Any]:
    body = gql(UPSERT, {"input": fields})
    assert "errors" not in body, body
    found: dict[str, Any] = body["data"]["upsertSavedSearch"]
    return found


def codes(body: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in body.get("errors", [])]


def test_the_schema_has_seed_003s_fields() -> None:
    sdl = graphql_schema(load_schema(), Limits())[0].as_str()
    for line in (
        "reverseSearch(index: SearchIndex!, document: JSON!, first: Int!, after: String = null): "
        "SavedSearchConnection",
        "upsertSavedSearch(input: UpsertSavedSearchInput!): UpsertSavedSearchPayload!",
        "deleteSavedSearch(id: ID!): DeleteSavedSearchPayload!",
        "savedSearch(id: ID!): SavedSearch",
        "savedSearches(owner: String = null, first: Int! = 20, after: String = null): "
        "SavedSearchConnection!",
        "reverseSearchEntity(uri: String!, first: Int! = 20, after: String = null): "
        "SavedSearchConnection!",
    ):
        assert line in sdl, line
    saved = sdl[sdl.index("type SavedSearch {") :]
    saved = saved[: saved.index("\n}")]
    for field in (
        "filter: String!",
        "index: SearchIndex!",
        "members(first: Int! = 20",
        "transitions(",
    ):
        assert field in saved, field


def test_upsert_edit_rename_read_and_delete(gql: GraphQL) -> None:
    created = upsert(gql, name="models", filter="type == 'Model'")
    assert created["created"] is True and created["error"] is None
    search = created["savedSearch"]
    assert (search["owner"], search["name"], search["index"]) == ("anonymous", "models", "ENTITIES")
    assert search["builtTx"] is None

    edited = upsert(gql, name="models", filter="type == 'Dataset'")
    assert edited["created"] is False
    assert edited["savedSearch"]["id"] == search["id"]
    assert edited["savedSearch"]["revision"] > search["revision"]

    renamed = upsert(gql, id=search["id"], name="sets", filter="type == 'Dataset'")
    assert renamed["savedSearch"]["name"] == "sets"
    body = gql("query($id: ID!) { savedSearch(id: $id) { name filter } }", {"id": search["id"]})
    assert body["data"]["savedSearch"] == {"name": "sets", "filter": "type == 'Dataset'"}

    body = gql(DELETE, {"id": search["id"]})
    assert body["data"]["deleteSavedSearch"] == {
        "deletedId": search["id"],
        "savedSearch": {"name": "sets"},
    }
    body = gql("query($id: ID!) { savedSearch(id: $id) { name } }", {"id": search["id"]})
    assert body["data"]["savedSearch"] is None
    assert codes(gql(DELETE, {"id": search["id"]})) == ["NOT_FOUND"]
    assert codes(gql(DELETE, {"id": "seven"})) == ["BAD_REQUEST"]
    body = gql('{ savedSearch(id: "99999999999999999999") { name } }')
    assert body["data"]["savedSearch"] is None


def test_a_dsl_error_comes_back_in_the_payload(gql: GraphQL, store: Store) -> None:
    text = "type == 'Model' AND\n(status == 'failed' OR owners ANY alice)"
    done = upsert(gql, name="broken", filter=text)
    assert done["savedSearch"] is None and done["created"] is False
    error = done["error"]
    assert (error["line"], error["column"]) == (2, 35)
    assert error["reason"] == "unexpected the word 'alice': expected '['"
    assert error["message"].startswith(error["reason"] + " (line 2, column 35)")
    assert error["excerpt"].splitlines()[1].strip() == "^^^^^"
    assert SavedSearches(store).all() == []

    # Bad input that is not the filter's fault is an error with a code.
    body = gql(UPSERT, {"input": {"filter": "type == 'Model'"}})
    assert codes(body) == ["BAD_REQUEST"] and "name is required" in body["errors"][0]["message"]
    body = gql(UPSERT, {"input": {"id": "12345", "filter": "type == 'Model'"}})
    assert codes(body) == ["NOT_FOUND"]


def test_saved_searches_page_with_cursors(gql: GraphQL) -> None:
    ids = [
        upsert(gql, name=f"s{i}", filter="type == 'Model'")["savedSearch"]["id"] for i in range(5)
    ]
    upsert(gql, name="bob's", filter="type == 'Model'", owner="bob")
    seen: list[str] = []
    after = None
    while True:
        body = gql(LIST, {"owner": "anonymous", "first": 2, "after": after})
        page = body["data"]["savedSearches"]
        assert page["totalCount"] == 5
        assert [e["node"]["id"] for e in page["edges"]] == [n["id"] for n in page["nodes"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        seen += [n["id"] for n in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == ids
    body = gql(LIST, {"first": 100})
    assert body["data"]["savedSearches"]["totalCount"] == 6
    assert codes(gql(LIST, {"first": 101})) == ["LIMIT_EXCEEDED"]
    assert codes(gql(LIST, {"first": 2, "after": "bm90IGEgY3Vyc29y"})) == ["BAD_REQUEST"]


def test_reverse_search_answers_what_each_predicate_does(gql: GraphQL, store: Store) -> None:
    texts = {
        "models": "type == 'Model'",
        "team": "tags.team == 'personalization'",
        "ranking": "type == 'Model' AND name LIKE 'ranking*'",
        "not failed": "NOT status == 'failed'",
        "big": "row_count >= 1000",
    }
    for name, text in texts.items():
        upsert(gql, name=name, filter=text)
    mapping = document_mapping(store.schema)
    compiled = {s.id: compile_search(s.dsl, mapping) for s in SavedSearches(store).all()}
    documents: list[dict[str, Any]] = [
        {},
        {"type": "Model", "name": "ranking-v1", "tags.team": "personalization"},
        {"type": "model", "status": "failed", "row_count": 5000},
        {"type": "Dataset", "row_count": "many", "name": ["Ranking", "x"]},
    ]
    for document in documents:
        expected = [str(i) for i, c in sorted(compiled.items()) if c.matches(document)]
        found: list[str] = []
        after = None
        while True:
            body = gql(REVERSE, {"document": document, "first": 2, "after": after})
            page = body["data"]["reverseSearch"]
            assert page["totalCount"] == len(expected)
            found += [n["id"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert found == expected, document
    assert codes(gql(REVERSE, {"document": [1], "first": 2})) == ["BAD_REQUEST"]
    assert codes(gql(REVERSE, {"document": {}, "first": 101})) == ["LIMIT_EXCEEDED"]
    body = gql("{ reverseSearch(index: ENTITIES, document: {}) { totalCount } }")
    assert codes(body) == ["GRAPHQL_VALIDATION_FAILED"]  # first is required, as in the seed


def test_members_transitions_and_entity_matches(
    client: TestClient, gql: GraphQL, store: Store
) -> None:
    search = upsert(gql, name="team", filter="tags.team == 'personalization'")["savedSearch"]
    upsert(gql, name="datasets", filter="type == 'Dataset'")
    names = ["a", "b", "c"]
    written = store.transact(
        upsert=[entity("Model", n, tags={"team": "personalization"}) for n in names]
    )
    ReverseFollower(store).catch_up()
    left = store.transact(upsert=[entity("Model", "a", tags={"team": "ads"})])
    ReverseFollower(store).catch_up()

    query = """
    query($id: ID!, $after: String, $moved: String) {
      savedSearch(id: $id) {
        builtTx
        members(first: 1, after: $after) {
          totalCount nodes { uri sinceTx entity { name } } pageInfo { hasNextPage endCursor }
        }
        transitions(first: 3, after: $moved) {
          nodes { uri tx transition entity { tags { key value } } }
          pageInfo { hasNextPage endCursor }
        }
      }
    }"""
    body = gql(query, {"id": search["id"]})
    found = body["data"]["savedSearch"]
    assert found["builtTx"] == 0
    assert found["members"]["totalCount"] == 2
    assert found["members"]["nodes"] == [
        {"uri": uri("Model", "b"), "sinceTx": written.tx, "entity": {"name": "b"}}
    ]
    after = found["members"]["pageInfo"]["endCursor"]
    body = gql(query, {"id": search["id"], "after": after})
    assert [n["uri"] for n in body["data"]["savedSearch"]["members"]["nodes"]] == [
        uri("Model", "c")
    ]
    moves = found["transitions"]
    assert [(n["transition"], n["tx"]) for n in moves["nodes"]] == [("ENTERED", written.tx)] * 3
    # Each transition's entity is read as of its transaction.
    assert moves["nodes"][0]["entity"]["tags"] == [{"key": "team", "value": "personalization"}]
    body = gql(query, {"id": search["id"], "moved": moves["pageInfo"]["endCursor"]})
    rest = body["data"]["savedSearch"]["transitions"]
    assert [(n["transition"], n["uri"], n["tx"]) for n in rest["nodes"]] == [
        ("LEFT", uri("Model", "a"), left.tx)
    ]
    assert rest["nodes"][0]["entity"]["tags"] == [{"key": "team", "value": "ads"}]
    assert rest["pageInfo"]["hasNextPage"] is False

    entity_query = (
        "query($uri: String!) { reverseSearchEntity(uri: $uri, first: 5) { nodes { name } } }"
    )
    body = gql(entity_query, {"uri": uri("Model", "b")})
    assert body["data"]["reverseSearchEntity"]["nodes"] == [{"name": "team"}]
    body = gql(entity_query, {"uri": uri("Model", "a")})  # no longer matching, as stored now
    assert body["data"]["reverseSearchEntity"]["nodes"] == []
    assert codes(gql(entity_query, {"uri": uri("Model", "zzz")})) == ["NOT_FOUND"]
    assert codes(gql(entity_query, {"uri": "nope"})) == ["BAD_REQUEST"]
    over = gql(query.replace("first: 1", "first: 500"), {"id": search["id"]})
    assert codes(over) == ["LIMIT_EXCEEDED"]


def test_text_the_database_cannot_hold_is_a_bad_request(gql: GraphQL, store: Store) -> None:
    """PostgreSQL refuses NUL characters: each is a BAD_REQUEST, never an internal error."""
    search = upsert(gql, name="models", filter="type == 'Model'")["savedSearch"]
    members = """query($id: ID!, $after: String) {
      savedSearch(id: $id) { members(after: $after) { totalCount } }
    }"""
    entity_query = "query($uri: String!) { reverseSearchEntity(uri: $uri) { totalCount } }"
    cases: list[tuple[str, dict[str, Any]]] = [
        (members, {"id": search["id"], "after": encode("m", "aip://model/test/a\x00")}),
        (entity_query, {"uri": uri("Model", "a") + "\x00"}),
        (LIST, {"owner": "a\x00", "first": 1}),
        (UPSERT, {"input": {"name": "a\x00", "filter": "type == 'Model'"}}),
        (UPSERT, {"input": {"name": "a", "filter": "name == 'a\x00'"}}),
        (UPSERT, {"input": {"name": "a", "owner": "\x00", "filter": "type == 'Model'"}}),
        (DELETE, {"id": str(2**64)}),
    ]
    for query, variables in cases:
        assert codes(gql(query, variables)) in (["BAD_REQUEST"], ["NOT_FOUND"]), variables
    assert [s.name for s in SavedSearches(store).all()] == ["models"]


def test_a_search_marked_invalid_matches_nothing_and_says_why(
    client: TestClient, gql: GraphQL, store: Store
) -> None:
    """As the index-version recompile leaves it: a reason, a new revision, an `invalid` row."""
    search = upsert(gql, name="models", filter="type == 'Model'")["savedSearch"]
    first = gql(REVERSE, {"document": {"type": "Model"}, "first": 5})
    assert first["data"]["reverseSearch"]["totalCount"] == 1
    s, tr = rt.saved_search, rt.transition
    with store.engine.begin() as conn:
        top = conn.execute(sa.select(sa.func.max(s.c.revision))).scalar_one()
        conn.execute(s.update().values(invalid_reason="unknown field 'type'", revision=top + 1))
        conn.execute(
            tr.insert().values(
                search=int(search["id"]), uri="", tx=0, transition="invalid", at=datetime.now(UTC)
            )
        )
    again = gql(REVERSE, {"document": {"type": "Model"}, "first": 5})
    assert again["data"]["reverseSearch"]["totalCount"] == 0
    query = """query($id: ID!) { savedSearch(id: $id) {
      invalidReason transitions { nodes { uri transition entity { uri } } } } }"""
    found = gql(query, {"id": search["id"]})["data"]["savedSearch"]
    assert found == {
        "invalidReason": "unknown field 'type'",
        "transitions": {"nodes": [{"uri": "", "transition": "INVALID", "entity": None}]},
    }
    rest = client.get(f"/v1/saved-searches/{search['id']}/transitions").json()
    assert [(t["uri"], t["transition"]) for t in rest["items"]] == [("", "invalid")]
    saved = client.get(f"/v1/saved-searches/{search['id']}").json()
    assert saved["invalid_reason"] == "unknown field 'type'"
