"""The admin API: each change updates ``updated_at`` and emits one thin event."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from mlgraph.sources import RESOURCES
from tests.sources.conftest import Running


def admin(
    running: Running, method: str, source: str, path: str, body: Any = None
) -> httpx.Response:
    return running.client.request(method, f"{running.urls[source]}/admin/{path}", json=body)


def test_create_update_delete_emit_their_events(running: Running) -> None:
    created = admin(
        running,
        "POST",
        "registry",
        "instances",
        {
            "id": "ranking-model-v6-20XX0108",
            "model_id": "ranking-model",
            "pipeline_run_id": None,
            "owner_emails": ["alice@example.com"],
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["labels"] == []  # filled in from the read shape
    served = running.get("registry", "/api/v1/instances/ranking-model-v6-20XX0108").json()
    assert served == created.json()

    updated = admin(
        running, "PUT", "registry", "instances/ranking-model-v6-20XX0108", {"stage": "production"}
    )
    assert updated.status_code == 200
    assert updated.json()["stage"] == "production"
    assert updated.json()["owner_emails"] == ["alice@example.com"]  # untouched fields stay
    assert updated.json()["updated_at"] > created.json()["updated_at"]

    deleted = admin(running, "DELETE", "registry", "instances/ranking-model-v6-20XX0108")
    assert deleted.status_code == 204
    assert running.get("registry", "/api/v1/instances/ranking-model-v6-20XX0108").status_code == 404

    events = running.sink.events
    assert [(e["event_type"], e["instance_id"], e["source"]) for e in events] == [
        ("model_instance_created", "ranking-model-v6-20XX0108", "registry"),
        ("model_instance_updated", "ranking-model-v6-20XX0108", "registry"),
        ("model_instance_deleted", "ranking-model-v6-20XX0108", "registry"),
    ]
    assert len({e["event_id"] for e in events}) == 3
    assert all(
        set(e) == {"event_type", "instance_id", "event_id", "source", "occurred_at"} for e in events
    )


@pytest.mark.parametrize("res", RESOURCES, ids=lambda r: r.collection)
def test_every_collection_has_its_event_names(running: Running, res: Any) -> None:
    id = running.org.ids(res.collection)[-1]
    before = running.org.get(res.collection, id)
    assert before is not None
    response = admin(running, "PUT", res.source, f"{res.collection}/{id}", {})
    assert response.status_code == 200
    assert response.json()["updated_at"] != before["updated_at"]
    assert {k: v for k, v in response.json().items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }
    assert running.sink.events[-1]["event_type"] == f"{res.event_prefix}_updated"
    assert running.sink.events[-1][res.event_id_field] == id


def test_bad_changes_are_refused_and_emit_nothing(running: Running) -> None:
    exists = admin(running, "POST", "identity", "users", {"username": "alice"})
    assert exists.status_code == 409
    unknown_field = admin(running, "POST", "identity", "users", {"username": "x", "shoe": 42})
    assert unknown_field.status_code == 422
    assert "shoe" in unknown_field.json()["detail"]
    no_id = admin(running, "POST", "identity", "teams", {"name": "no id"})
    assert no_id.status_code == 422
    wrong_type = admin(running, "PUT", "identity", "users/alice", {"team_ids": "personalization"})
    assert wrong_type.status_code == 422
    renamed = admin(running, "PUT", "identity", "users/alice", {"username": "bob2"})
    assert renamed.status_code == 422
    missing = admin(running, "PUT", "identity", "users/nobody", {"title": "x"})
    assert missing.status_code == 404
    assert admin(running, "DELETE", "identity", "users/nobody").status_code == 404
    wrong_source = admin(running, "POST", "registry", "users", {"username": "y"})
    assert wrong_source.status_code in (404, 405)
    assert running.sink.events == []


def test_a_batch_update_changes_each_object_and_emits_each_event(running: Running) -> None:
    users = running.org.ids("users")[:3]
    updates = [{"id": id, "fields": {"title": f"title {i}"}} for i, id in enumerate(users)]
    response = admin(running, "POST", "identity", "users:batchUpdate", updates)
    assert response.status_code == 200, response.text
    objects = response.json()["objects"]
    assert [o["title"] for o in objects] == ["title 0", "title 1", "title 2"]
    assert objects == [running.org.get("users", id) for id in users]
    assert [(e["event_type"], e["user_id"]) for e in running.sink.events] == [
        ("user_updated", id) for id in users
    ]


def test_a_batch_update_with_one_bad_update_changes_nothing(running: Running) -> None:
    alice = running.org.get("users", "alice")
    for bad, status in [
        ({"id": "nobody", "fields": {"title": "x"}}, 404),
        ({"id": "bob", "fields": {"team_ids": "not a list"}}, 422),
        ({"id": "alice", "fields": {"display_name": "twice"}}, 422),  # alice again
    ]:
        response = admin(running, "POST", "identity", "users:batchUpdate",
                         [{"id": "alice", "fields": {"title": "changed"}}, bad])  # fmt: skip
        assert response.status_code == status, response.text
    assert admin(running, "POST", "identity", "users:batchUpdate", []).status_code == 422
    assert running.org.get("users", "alice") == alice
    assert running.sink.events == []


def test_updated_at_cannot_be_set_by_hand(running: Running) -> None:
    response = admin(
        running, "PUT", "identity", "teams/personalization", {"updated_at": "1999-01-01T00:00:00Z"}
    )
    assert response.json()["updated_at"] > "2020"


def test_faults_never_touch_the_admin_api(running: Running) -> None:
    running.set_faults("identity", error_rate=1.0)
    assert running.get("identity", "/api/v1/users/alice").status_code in (500, 503)
    assert running.get("identity", "/admin/health").status_code == 200
    assert admin(running, "PUT", "identity", "users/alice", {"title": "Boss"}).status_code == 200
    assert running.get("identity", "/admin/faults").json()["error_rate"] == 1.0
