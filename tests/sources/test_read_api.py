"""The read API over real HTTP, as docs/sources.md specifies it."""

from __future__ import annotations

import pytest

from mlgraph.sources import RESOURCES, resource
from tests.sources.conftest import Running
from tests.sources.test_generator import assert_seed_example


def test_the_seed_example_is_served_exactly(shared: Running) -> None:
    def get(collection: str, id: str) -> dict[str, object]:
        res = resource(collection)
        response = shared.get(res.source, f"/api/v1/{collection}/{id}")
        assert response.status_code == 200, response.text
        body: dict[str, object] = response.json()
        return body

    assert_seed_example(get)


def test_objects_are_served_whole_by_their_own_source(shared: Running) -> None:
    for res in RESOURCES:
        id = shared.org.ids(res.collection)[0]
        response = shared.get(res.source, f"/api/v1/{res.collection}/{id}")
        assert response.json() == shared.org.get(res.collection, id)
        others = [r.source for r in RESOURCES if r.source != res.source]
        assert shared.get(others[0], f"/api/v1/{res.collection}/{id}").status_code == 404


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.collection)
def test_a_missing_object_is_404_with_a_detail(shared: Running, res: object) -> None:
    assert hasattr(res, "collection") and hasattr(res, "source")
    response = shared.get(res.source, f"/api/v1/{res.collection}/no-such-thing")
    assert response.status_code == 404
    assert "no-such-thing" in response.json()["detail"]


def list_all(running: Running, source: str, collection: str, limit: int) -> list[str]:
    ids: list[str] = []
    token: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": limit}
        if token:
            params["page_token"] = token
        page = running.get(source, f"/api/v1/{collection}", **params).json()
        assert len(page["items"]) <= limit
        assert all(set(item) == {"id", "updated_at"} for item in page["items"])
        ids += [item["id"] for item in page["items"]]
        token = page["next_page_token"]
        if token is None:
            return ids


@pytest.mark.parametrize("limit", [1, 7, 500])
def test_paging_returns_every_id_exactly_once_in_id_order(shared: Running, limit: int) -> None:
    for res in RESOURCES:
        ids = list_all(shared, res.source, res.collection, limit)
        assert ids == sorted(shared.org.ids(res.collection)), res.collection


def test_the_list_defaults_to_500_and_allows_at_most_5000(shared: Running) -> None:
    page = shared.get("orchestrator", "/api/v1/job-attempts").json()
    total = shared.org.count("job-attempts")
    assert len(page["items"]) == min(500, total)
    assert shared.get("orchestrator", "/api/v1/job-attempts", limit=5000).status_code == 200
    assert shared.get("orchestrator", "/api/v1/job-attempts", limit=5001).status_code == 422
    assert shared.get("orchestrator", "/api/v1/job-attempts", limit=0).status_code == 422


def test_a_bad_page_token_is_400(shared: Running) -> None:
    response = shared.get("registry", "/api/v1/models", page_token="%%%")
    assert response.status_code == 400
    assert "page_token" in response.json()["detail"]


def test_health_counts_the_objects_of_the_source(shared: Running) -> None:
    health = shared.get("registry", "/admin/health").json()
    assert health["status"] == "ok"
    assert health["source"] == "registry"
    assert health["objects"] == {
        "models": shared.org.count("models"),
        "instances": shared.org.count("instances"),
    }


def test_each_source_documents_its_api(shared: Running) -> None:
    paths = shared.get("registry", "/openapi.json").json()["paths"]
    assert {"/api/v1/models/{object_id}", "/api/v1/instances", "/admin/faults"} <= set(paths)
    assert not any(p.startswith("/api/v1/users") for p in paths)


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.collection)
def test_batch_get_answers_the_objects_it_has_in_the_order_asked(
    shared: Running, res: object
) -> None:
    assert hasattr(res, "collection") and hasattr(res, "source")
    ids = shared.org.ids(res.collection)[:3][::-1]
    asked = [ids[0], "no-such-thing", *ids[1:], ids[0]]  # a missing id and a repeat
    response = shared.client.get(
        f"{shared.urls[res.source]}/api/v1/{res.collection}:batchGet",
        params=[("ids", id) for id in asked],
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"items": [shared.org.get(res.collection, id) for id in ids]}


def test_batch_get_says_what_is_wrong_with_its_ids(shared: Running) -> None:
    url = f"{shared.urls['registry']}/api/v1/models:batchGet"
    missing = shared.client.get(url)
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "ids"]
    too_many = shared.client.get(url, params=[("ids", str(i)) for i in range(501)])
    assert too_many.status_code == 422
    assert "500" in too_many.text
