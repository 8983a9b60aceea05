"""Saved searches and reverse search over REST, on SQLite and PostgreSQL (auth: test_saved_auth)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlgraph.api.matcher import matcher_of
from mlgraph.reverse import ReverseFollower, SavedSearches, compile_search, document_mapping
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.builders import entity, uri

PATH = "/v1/saved-searches"
SEARCHES = {
    "models": "type == 'Model'",
    "team": "tags.team == 'personalization'",
    "ranking models": "type == 'Model' AND name LIKE 'ranking*'",
    "not failed": "NOT status == 'failed'",
    "big": "row_count >= 1000",
    "people": "owners ANY ['alice', 'bob']",
    "either": "type == 'Dataset' OR (status == 'failed' AND tags.env == 'prod')",
}
DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["Model", "Dataset", "PipelineRun", "model"]),
        "name": st.sampled_from(["ranking-v1", "Ranking", "churn", "rank"]),
        "status": st.sampled_from(["failed", "success"]),
        "tags.team": st.sampled_from(["personalization", "ads"]),
        "tags.env": st.sampled_from(["prod", "dev"]),
        "row_count": st.one_of(st.integers(-5, 5000), st.text(max_size=3)),
        "owners.id": st.lists(st.sampled_from(["alice", "bob", "carol"]), max_size=2),
        "owners": st.lists(st.sampled_from(["alice", "carol"]), max_size=2),
    },
)


def save(client: TestClient, name: str, text: str, **more: Any) -> dict[str, Any]:
    response = client.post(PATH, json={"name": name, "filter": text, **more})
    assert response.status_code in (200, 201), response.text
    found: dict[str, Any] = response.json()["saved_search"]
    return found


def test_create_read_edit_rename_delete(client: TestClient) -> None:
    response = client.post(PATH, json={"name": "models", "filter": "type == 'Model'"})
    assert response.status_code == 201
    created = response.json()
    assert created["created"] is True
    search = created["saved_search"]
    assert (search["owner"], search["name"], search["filter"]) == (
        "anonymous",
        "models",
        "type == 'Model'",
    )
    assert search["built_tx"] is None and search["index"] == "entities"
    assert client.get(f"{PATH}/{search['id']}").json() == search

    # The same (owner, name) again edits it: PUT and POST alike.
    edited = client.put(PATH, json={"name": "models", "filter": "type == 'Dataset'"})
    assert edited.status_code == 200
    assert edited.json()["created"] is False
    assert edited.json()["saved_search"]["id"] == search["id"]
    assert edited.json()["saved_search"]["revision"] > search["revision"]

    # By id: a new name and a new filter.
    renamed = client.put(
        PATH, json={"id": search["id"], "name": "sets", "filter": "type == 'Feature'"}
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["saved_search"]["name"], renamed.json()["saved_search"]["filter"]) == (
        "sets",
        "type == 'Feature'",
    )
    listed = client.get(PATH).json()
    assert listed["total"] == 1 and [s["name"] for s in listed["items"]] == ["sets"]

    deleted = client.delete(f"{PATH}/{search['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted"]["id"] == search["id"]
    for response in (client.get(f"{PATH}/{search['id']}"), client.delete(f"{PATH}/{search['id']}")):
        assert response.status_code == 404
        assert response.json() == {"error": f"no saved search {search['id']}"}
    assert client.get(PATH).json()["total"] == 0


def test_a_dsl_error_points_at_line_and_column_and_saves_nothing(client: TestClient) -> None:
    text = "type == 'Model'\n  AND tagz.team == 'ads'"
    response = client.post(PATH, json={"name": "broken", "filter": text})
    assert response.status_code == 422
    body = response.json()
    assert (body["line"], body["column"]) == (2, 7)
    assert body["reason"] == "unknown field 'tagz.team' (did you mean 'tags.team'?)"
    assert body["excerpt"] == "    AND tagz.team == 'ads'\n        ^^^^^^^^^"
    assert body["error"].startswith(body["reason"] + " (line 2, column 7)")
    assert client.get(PATH).json()["total"] == 0

    # Editing a good search with bad text changes nothing either (nor its name).
    good = save(client, "good", "type == 'Model'")
    response = client.put(PATH, json={"id": good["id"], "name": "renamed", "filter": "type = 'x'"})
    assert response.status_code == 422 and response.json()["column"] == 6
    assert client.get(f"{PATH}/{good['id']}").json() == good


def test_bad_input_is_a_clear_4xx(client: TestClient, store: Store) -> None:
    first = save(client, "a", "type == 'Model'")
    save(client, "b", "type == 'Model'")
    model = {"filter": "type == 'Model'"}
    cases: list[tuple[dict[str, Any], int, str]] = [
        (model, 422, "name is required"),
        ({"name": "x\x00y"} | model, 422, "name must not contain NUL"),
        ({"name": "x", "filter": "name == 'a\x00b'"}, 422, "filter must not contain NUL"),
        ({"id": 2**63 - 1} | model, 404, f"no saved search {2**63 - 1}"),
        ({"id": first["id"], "name": "b"} | model, 422, "already has a saved search named 'b'"),
        ({"id": first["id"], "owner": "bob"} | model, 422, "an owner cannot change"),
    ]
    for body, status, message in cases:
        response = client.post(PATH, json=body)
        assert response.status_code == status, (body, response.text)
        assert message in response.json()["error"], (body, response.text)
    assert client.post(PATH, json={"name": "x", "filter": "x" * 10_001}).status_code == 422
    assert client.post(PATH, json={"name": "x", "filter": "a", "extra": 1}).status_code == 422
    assert client.get(f"{PATH}/{2**63}").status_code == 422
    assert client.get(f"{PATH}/{2**63 - 1}").status_code == 404
    assert client.get(PATH, params={"owner": "a\x00"}).status_code == 422
    assert client.get(f"{PATH}/{first['id']}/members", params={"after": "a\x00"}).status_code == 422
    assert [s.name for s in SavedSearches(store).all()] == ["a", "b"]


def test_page_sizes_are_capped(client: TestClient, service: Service) -> None:
    most = service.settings.api_max_page
    search = save(client, "models", "type == 'Model'")
    for path in (PATH, f"{PATH}/{search['id']}/members", f"{PATH}/{search['id']}/transitions"):
        response = client.get(path, params={"limit": most + 1})
        assert response.status_code == 422, path
        assert f"limit must be at most {most}" in response.json()["error"]
        assert client.get(path, params={"limit": most}).status_code == 200
    response = client.post("/v1/reverse-search", json={"document": {}, "limit": most + 1})
    assert response.status_code == 422


def test_listing_pages_through_everything_by_owner(client: TestClient) -> None:
    ids = [save(client, f"s{i}", "type == 'Model'")["id"] for i in range(5)]
    admin_saved = save(client, "theirs", "type == 'Model'", owner="bob")  # auth off: an admin
    seen: list[int] = []
    after = 0
    while True:
        page = client.get(PATH, params={"owner": "anonymous", "limit": 2, "after": after}).json()
        assert page["total"] == 5
        seen += [s["id"] for s in page["items"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == ids
    bobs = client.get(PATH, params={"owner": "bob"}).json()
    assert [s["id"] for s in bobs["items"]] == [admin_saved["id"]]


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(documents=st.lists(DOCUMENTS, min_size=1, max_size=5))
def test_reverse_search_answers_what_each_predicate_does(
    client: TestClient, store: Store, documents: list[dict[str, Any]]
) -> None:
    if not SavedSearches(store).count():
        for name, text in SEARCHES.items():
            save(client, name, text)
    mapping = document_mapping(store.schema)
    compiled = {s.id: compile_search(s.dsl, mapping) for s in SavedSearches(store).all()}
    for document in documents:
        expected = sorted(i for i, c in compiled.items() if c.matches(document))
        response = client.post("/v1/reverse-search", json={"document": document, "limit": 3})
        assert response.status_code == 200, response.text
        found: list[int] = []
        page = response.json()
        while True:
            assert page["total"] == len(expected)
            found += [s["id"] for s in page["items"]]
            if page["next"] is None:
                break
            body = {"document": document, "limit": 3, "after": page["next"]}
            page = client.post("/v1/reverse-search", json=body).json()
        assert found == expected, document


def test_reverse_search_follows_edits_and_deletes(client: TestClient, store: Store) -> None:
    document = {"type": "Model", "tags.team": "ads"}

    def matched() -> list[str]:
        body = client.post("/v1/reverse-search", json={"document": document}).json()
        return [s["name"] for s in body["items"]]

    a = save(client, "ads", "tags.team == 'ads'")
    save(client, "models", "type == 'Model'")
    assert matched() == ["ads", "models"]
    client.put(PATH, json={"id": a["id"], "filter": "tags.team == 'personalization'"})
    assert matched() == ["models"]
    # Saved by another process (straight into the store): the API sees it too.
    SavedSearches(store).save("carol", "ads again", "tags.team == 'ads'")
    assert matched() == ["models", "ads again"]
    client.delete(f"{PATH}/{a['id']}")
    models = SavedSearches(store).find("anonymous", "models")
    assert models is not None
    SavedSearches(store).delete(models.id)
    assert matched() == ["ads again"]


def test_reverse_search_of_a_stored_entity(client: TestClient, store: Store) -> None:
    alice = uri("User", "alice")
    store.transact(
        upsert=[
            entity("User", "alice", name="Alice"),
            entity("Model", "ranking", tags={"team": "personalization"}, owners=[alice]),
        ]
    )
    team = save(client, "team", SEARCHES["team"])
    people = save(client, "people", SEARCHES["people"])
    save(client, "datasets", "type == 'Dataset'")
    model = uri("Model", "ranking")
    body = client.post("/v1/reverse-search", json={"uri": model}).json()
    assert [s["id"] for s in body["items"]] == [team["id"], people["id"]]
    # The scheme may be left out, as in the entity routes' paths.
    body = client.post("/v1/reverse-search", json={"uri": model.removeprefix("aip://")}).json()
    assert body["total"] == 2

    missing = client.post("/v1/reverse-search", json={"uri": uri("Model", "nope")})
    assert missing.status_code == 404 and "no entity" in missing.json()["error"]
    bad_bodies: list[dict[str, Any]] = [
        {},
        {"uri": model, "document": {}},
        {"uri": "not a uri"},
        {"document": []},
    ]
    for bad in bad_bodies:
        assert client.post("/v1/reverse-search", json=bad).status_code == 422, bad


def test_members_and_transitions_page_after_the_follower_ran(
    client: TestClient, store: Store
) -> None:
    search = save(client, "models", "type == 'Model'")
    names = [f"m{i}" for i in range(5)]
    written = store.transact(upsert=[entity("Model", n) for n in names])
    ReverseFollower(store).catch_up()
    gone = store.retract(uri("Model", "m0"))
    ReverseFollower(store).catch_up()
    assert client.get(f"{PATH}/{search['id']}").json()["built_tx"] == 0

    members: list[tuple[str, int]] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({} if after is None else {"after": after})
        page = client.get(f"{PATH}/{search['id']}/members", params=params).json()
        assert page["total"] == 4
        members += [(m["uri"], m["since_tx"]) for m in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert members == [(uri("Model", n), written.tx) for n in names[1:]]

    moves: list[tuple[str, str, int]] = []
    cursor = 0
    while True:
        params = {"limit": 4, "after": cursor}
        page = client.get(f"{PATH}/{search['id']}/transitions", params=params).json()
        moves += [(t["transition"], t["uri"], t["tx"]) for t in page["items"]]
        if page["next"] is None:
            break
        cursor = page["next"]
    assert moves == [("entered", uri("Model", n), written.tx) for n in names] + [
        ("left", uri("Model", "m0"), gone.tx)
    ]
    for tail in ("members", "transitions"):
        assert client.get(f"{PATH}/{2**62}/{tail}").status_code == 404


def test_the_percolator_is_kept_and_updated_not_rebuilt(client: TestClient, store: Store) -> None:
    for name, text in SEARCHES.items():
        save(client, name, text)
    document = {"type": "Model", "tags.team": "personalization"}
    client.post("/v1/reverse-search", json={"document": document})
    matcher = matcher_of(client.app)  # type: ignore[arg-type]
    percolator = matcher.percolator
    assert len(percolator) == len(SEARCHES)

    statements: list[str] = []

    def count(*args: Any) -> None:
        if args[2].lstrip().upper().startswith("SELECT"):
            statements.append(args[2])

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        body = client.post("/v1/reverse-search", json={"document": document}).json()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert [s["name"] for s in body["items"]] == ["models", "team", "not failed"]
    # Nothing changed: the revision and count, then the page of searches. No compiling.
    assert len(statements) == 2, statements

    SavedSearches(store).save("carol", "team", "tags.team == 'ads'")
    client.post("/v1/reverse-search", json={"document": document})
    assert matcher_of(client.app) is matcher  # type: ignore[arg-type]
    assert matcher.percolator is percolator and len(percolator) == len(SEARCHES) + 1
