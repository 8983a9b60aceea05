from __future__ import annotations

from fastapi.testclient import TestClient

from mlgraph.api import create_app
from mlgraph.runtime import Service
from mlgraph.store import Store
from mlgraph.store.engine import create_engine
from tests.builders import entity


def test_health_readiness_and_summary(service: Service, store: Store) -> None:
    store.transact(upsert=[entity("Dataset", "d", owners=["aip://user/identity/alice"])])
    with TestClient(create_app(service)) as client:
        assert client.get("/healthz").json()["status"] == "ok"
        assert client.get("/readyz").json() == {"status": "ready", "last_tx": 1}
        summary = client.get("/v1/summary").json()
    assert summary["entities"] == 2
    assert summary["entities_by_type"] == {"Dataset": {"hydrated": 1}, "User": {"stub": 1}}
    assert summary["edges"] == 1
    assert summary["backend"] == store.backend


def test_readiness_fails_when_the_store_is_unreachable(service: Service, store: Store) -> None:
    app = create_app(service)
    store.engine.dispose()
    store.engine = create_engine("postgresql://postgres@127.0.0.1:1/nowhere")  # nothing listens
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
