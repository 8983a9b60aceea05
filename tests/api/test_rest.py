"""REST over the graph: entities by URI (every accepted spelling), lineage, impact, history,
the entity listing and Prometheus metrics."""

from __future__ import annotations

from urllib.parse import quote

from fastapi.testclient import TestClient

from mlgraph.store import Store
from tests.api.graph import ALICE, BOB, HYDRATED_AT, M1, TEAM, D, F, M, T, build
from tests.builders import entity, uri


def test_an_entity_by_uri_in_every_accepted_spelling(store: Store, client: TestClient) -> None:
    build(store)
    rest = M1.removeprefix("aip://")
    spellings = [
        f"/v1/entities/{rest}",  # the documented form: the URI without its scheme
        f"/v1/entities/{M1}",  # the whole URI
        f"/v1/entities/{quote(M1, safe='')}",  # the whole URI, percent-encoded
        f"/v1/entities/aip:/{rest}",  # a proxy merged the double slash
    ]
    answers = [client.get(path) for path in spellings]
    assert {a.status_code for a in answers} == {200}
    assert all(a.json() == answers[0].json() for a in answers)
    body = answers[0].json()
    assert body["uri"] == M1 and body["type"] == "ModelInstance"
    assert body["owners"] == [ALICE] and body["references"]["model"] == [M]
    assert body["last_hydrated_at"] == HYDRATED_AT.isoformat().replace("+00:00", "Z")
    assert body["neighbors"] is None


def test_ids_with_slashes_and_percent_signs(store: Store, client: TestClient) -> None:
    odd = entity("Dataset", "warehouse/clicks 100%")
    store.transact(upsert=[odd])
    assert odd.uri == "aip://dataset/test/warehouse/clicks%20100%25"
    path = quote(odd.uri.removeprefix("aip://"), safe="/")
    response = client.get(f"/v1/entities/{path}")
    assert response.status_code == 200, response.text
    assert response.json()["uri"] == odd.uri


def test_neighbors_and_reads_as_of(store: Store, client: TestClient) -> None:
    build(store)
    before = store.last_tx()
    store.transact(upsert=[entity("Feature", "f", description="v2", references={"data": D})])
    path = "/v1/entities/" + F.removeprefix("aip://")
    now = client.get(path, params={"neighbors": "true"}).json()
    assert now["description"] == "v2" and now["owners"] == [] and now["as_of_tx"] is None
    around = {(n["relationship"], n["uri"]) for n in now["neighbors"]}
    assert around >= {("data", D), ("used_by", M1)}
    then = client.get(path, params={"as_of": str(before)}).json()
    assert then["description"] is None and then["owners"] == [ALICE] and then["as_of_tx"] == before
    first = client.get(path, params={"as_of": "1970-01-01T00:00:00Z"})
    assert first.status_code == 404 and "as of tx 0" in first.json()["error"]
    bad = client.get(path, params={"as_of": "last tuesday"})
    assert bad.status_code == 422 and "as_of: expected an ISO-8601 datetime" in bad.json()["error"]


def test_unknown_and_malformed_uris(store: Store, client: TestClient) -> None:
    missing = client.get("/v1/entities/model/test/nothing")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no entity aip://model/test/nothing"}
    for path in ("/v1/entities/nothing", "/v1/entities/", "/v1/lineage/Model/x/y"):
        response = client.get(path)
        assert response.status_code == 422, path
        assert "invalid URI" in response.json()["error"]


def test_lineage_impact_and_history(store: Store, client: TestClient) -> None:
    build(store)
    lineage = client.get("/v1/lineage/" + D.removeprefix("aip://"), params={"depth": 2}).json()
    assert [(n["uri"], n["depth"]) for n in lineage["nodes"]] == [(F, 1), (M1, 2)]
    params = {"direction": "upstream", "depth": 1, "relationships": ["features"]}
    upstream = client.get(f"/v1/lineage/{M1}", params=params).json()
    assert [n["uri"] for n in upstream["nodes"]] == [F]
    impact = client.get(f"/v1/impact/{F}").json()
    assert impact["by_type"] == {"AbTest": 1, "Model": 1, "ModelInstance": 1}
    assert {o["uri"] for o in impact["owners"]} == {ALICE, BOB, TEAM}
    via = {a["uri"]: a["via"] for a in impact["affected"]}
    assert via[T] == "ModelInstance.associated_ab_tests"
    history = client.get(f"/v1/history/{F}").json()
    assert history["total"] >= 1 and history["versions"][0]["op"] == "created"
    assert client.get("/v1/history/feature/test/none").status_code == 404
    too_deep = client.get(f"/v1/lineage/{F}", params={"depth": 11})
    assert too_deep.status_code == 422


def test_entity_listing_pages_in_uri_order(store: Store, client: TestClient) -> None:
    build(store)
    first = client.get("/v1/entities", params={"type": "User", "limit": 1}).json()
    assert first == {"total": 2, "uris": [ALICE], "next": ALICE}
    second = client.get("/v1/entities", params={"type": "User", "after": first["next"]}).json()
    assert second["uris"] == [uri("User", "bob")] and second["next"] is None
    unknown = client.get("/v1/entities", params={"type": "Nope"})
    assert unknown.status_code == 422 and "unknown entity type 'Nope'" in unknown.json()["error"]


def test_metrics_count_requests_by_route_template(store: Store, client: TestClient) -> None:
    build(store)
    client.get(f"/v1/entities/{M1}")
    client.get("/v1/entities/model/test/nothing")
    client.post("/graphql", json={"query": "{ __typename }"})
    text = client.get("/metrics").text
    assert ('mlgraph_http_requests_total{method="GET",route="/v1/entities/{uri:path}",'
            'status="200"} 1.0') in text  # fmt: skip
    assert 'route="/v1/entities/{uri:path}",status="404"} 1.0' in text
    assert 'mlgraph_http_requests_total{method="POST",route="/graphql",status="200"} 1.0' in text
    assert "mlgraph_inbox_events" in text and "mlgraph_last_tx" in text
    assert M1 not in text  # paths never become labels


def test_the_openapi_spec_documents_the_graph_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/v1/entities/{uri}", "/v1/lineage/{uri}", "/v1/impact/{uri}",
                 "/v1/history/{uri}", "/v1/events", "/v1/dlq/replay", "/metrics"):  # fmt: skip
        assert path in spec["paths"], path
    assert spec["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


def test_hostile_inputs_get_4xx_on_every_backend(store: Store, client: TestClient) -> None:
    """Inputs the database itself would refuse (64-bit overflow, NUL characters) are
    refused by the API first, with a reason, instead of failing inside the driver."""
    build(store)
    assert client.get("/v1/dlq/99999999999999999999999").status_code == 422
    assert client.post("/v1/dlq/replay", json={"ids": [2**64]}).status_code == 422
    nul = client.post("/v1/events", json={"event_type": "model_instance_updated",
                                          "instance_id": "a\u0000b"})  # fmt: skip
    assert nul.status_code == 422 and "NUL" in nul.json()["error"]
    # A lone surrogate is valid JSON ("\ud800") but not storable text on PostgreSQL.
    lone = client.post("/v1/events", content=b'{"event_type": "model_instance_updated", '
                                             b'"instance_id": "a", "note": {"\\ud800": 1}}',
                       headers={"content-type": "application/json"})  # fmt: skip
    assert lone.status_code == 422 and "surrogate" in lone.json()["error"]
    assert client.get("/v1/entities", params={"after": "aip://x/y/\u0000"}).status_code == 200
    assert client.get("/v1/entities/model/test/a%00b").status_code == 404
    as_of = client.get(f"/v1/entities/{M1}", params={"as_of": "9" * 30})
    assert as_of.status_code == 422
