"""Search over HTTP: results, facets, pages, typeahead, and the errors for bad requests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlgraph.api import create_app
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.builders import entity, uri


@pytest.fixture
def service(store: Store, tmp_path: Path) -> Service:
    return Service(Settings(workers=False, data_dir=tmp_path), store, load_connectors(store.schema))


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    with TestClient(create_app(service, workers=False)) as client:
        yield client


@pytest.fixture
def indexed(service: Service, store: Store) -> Service:
    team = entity("Group", "personalization", name="Personalization")
    store.transact(
        upsert=[
            team,
            entity("User", "alice", name="Alice Chen", references={"member_of": team.uri}),
            *(
                entity(
                    "Model",
                    f"ranking-model-{i}",
                    owners=[team.uri],
                    tags={"team": "personalization"},
                    description="ranks the <home> rows",
                )
                for i in range(5)
            ),
            entity("Dataset", "ranking_labels", owners=[uri("User", "alice")]),
        ]
    )
    service.search.indexer().catch_up()
    return service


def test_search_returns_hits_facets_and_highlights(indexed: Service, client: TestClient) -> None:
    response = client.get("/v1/search", params={"q": "ranking"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 6
    assert body["facets"]["type"] == {"Model": 5, "Dataset": 1}
    assert body["facets"]["owner"] == {"personalization": 5, "alice": 1}
    assert body["facets"]["tag"] == {"team::personalization": 5}
    top = body["hits"][0]
    assert top["type"] in ("Model", "Dataset") and top["highlights"]["name"].startswith("<b>")
    model = next(h for h in body["hits"] if h["type"] == "Model")
    assert model["owners"] == [{"uri": uri("Group", "personalization"), "name": "Personalization"}]
    filtered = client.get("/v1/search", params={"q": "ranking type:Dataset owner:alice"}).json()
    assert [h["uri"] for h in filtered["hits"]] == [uri("Dataset", "ranking_labels")]


def test_snippets_are_escaped(indexed: Service, client: TestClient) -> None:
    hit = client.get("/v1/search", params={"q": "home rows"}).json()["hits"][0]
    assert hit["highlights"]["description"] == "ranks the &lt;<b>home</b>&gt; <b>rows</b>"


def test_cursor_pages_cover_every_hit_once(indexed: Service, client: TestClient) -> None:
    seen: list[str] = []
    params = {"q": "ranking", "limit": "2"}
    while True:
        body = client.get("/v1/search", params=params).json()
        seen.extend(h["uri"] for h in body["hits"])
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert len(seen) == len(set(seen)) == 6


def test_typeahead_completes_names(indexed: Service, client: TestClient) -> None:
    body = client.get("/v1/search/typeahead", params={"prefix": "ranking-mo"}).json()
    names = [s["name"] for s in body["suggestions"]]
    assert sorted(names) == [f"ranking-model-{i}" for i in range(5)]
    assert body["suggestions"][0]["highlight"].startswith("<b>ranking</b>-<b>mo")
    owners = client.get("/v1/search/typeahead", params={"prefix": "ali", "index": "owners"})
    assert [s["name"] for s in owners.json()["suggestions"]] == ["Alice Chen"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "typ:Model"}, "unknown filter 'typ:'"),
        ({"q": "type:Modle"}, "did you mean 'Model'?"),
        ({"q": '"open quote'}, "unterminated quote"),
        ({"q": "ranking", "cursor": "not-a-cursor"}, "not one this service handed out"),
    ],
)
def test_bad_queries_are_400_with_the_reason(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    """Checked before the index is read: the same answer with or without one."""
    response = client.get("/v1/search", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_a_cursor_of_another_query_is_refused(indexed: Service, client: TestClient) -> None:
    cursor = client.get("/v1/search", params={"q": "ranking", "limit": 1}).json()["next_cursor"]
    response = client.get("/v1/search", params={"q": "model", "cursor": cursor})
    assert response.status_code == 400 and "another query" in response.json()["error"]
    nothing = client.get("/v1/search", params={"q": "-ranking"})
    assert nothing.status_code == 400 and "nothing to search for" in nothing.json()["error"]


@pytest.mark.parametrize(
    "params",
    [{}, {"q": "x", "limit": "0"}, {"q": "x", "limit": "101"}, {"q": "x", "index": "people"}],
)
def test_bad_parameters_are_422(
    indexed: Service, client: TestClient, params: dict[str, str]
) -> None:
    assert client.get("/v1/search", params=params).status_code == 422


def test_no_index_yet_is_503(client: TestClient) -> None:
    response = client.get("/v1/search", params={"q": "ranking"})
    assert response.status_code == 503 and "no search index yet" in response.json()["error"]
    assert client.get("/v1/search/typeahead", params={"prefix": "r"}).status_code == 503


def test_a_filter_narrows_the_search(indexed: Service, client: TestClient) -> None:
    """The saved-search DSL as `filter`: the hits that pass it, and with no words every one."""
    owned = "owners.id ANY ['personalization'] AND name LIKE '*-[0-2]'"
    response = client.get("/v1/search", params={"q": "ranking", "filter": owned})
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0  # LIKE is not a character class: `[0-2]` is literal
    response = client.get("/v1/search", params={"q": "ranking", "filter": "owners.id == 'alice'"})
    assert [h["name"] for h in response.json()["hits"]] == ["ranking_labels"]
    response = client.get(
        "/v1/search", params={"q": "", "filter": "type == 'Model' AND name LIKE '*-?'"}
    )
    body = response.json()
    assert body["total"] == 5 and {h["type"] for h in body["hits"]} == {"Model"}
    # An inverse relationship: the team's document lists what it owns, the user's its group.
    response = client.get("/v1/search", params={"q": "", "filter": "members.id == 'alice'"})
    assert [h["name"] for h in response.json()["hits"]] == ["Personalization"]


def test_a_bad_filter_is_400_pointing_at_the_mistake(indexed: Service, client: TestClient) -> None:
    response = client.get("/v1/search", params={"q": "ranking", "filter": "type == 'Model' AND"})
    assert response.status_code == 400
    body = response.json()
    assert body["line"] == 1 and body["column"] >= 17 and "^" in body["excerpt"]
    response = client.get("/v1/search", params={"q": "", "filter": "ownr.id == 'alice'"})
    assert response.status_code == 400 and "did you mean 'owners.id'" in response.json()["error"]


def test_graphql_search_takes_a_filter(indexed: Service, client: TestClient) -> None:
    query = """query($f: String) { search(query: "ranking", first: 10, filter: $f)
        { total hits { entity { uri } } } }"""
    answer = client.post(
        "/graphql", json={"query": query, "variables": {"f": "type == 'Dataset'"}}
    ).json()
    assert answer["data"]["search"]["total"] == 1, answer
    answer = client.post(
        "/graphql", json={"query": query, "variables": {"f": "type = 'Dataset'"}}
    ).json()
    assert answer["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "column" in answer["errors"][0]["message"]
