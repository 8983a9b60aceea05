"""GraphQL reads over a small graph: relationships of every kind, paging, generic access,
history and reads as of a past transaction."""

from __future__ import annotations

from typing import Any

from mlgraph.store import Store
from tests.api.conftest import GraphQL
from tests.api.graph import ALICE, BOB, HYDRATED_AT, M1, M2, TEAM, C, D, F, G, M, R, T, build
from tests.builders import entity

SEED_SHAPE = """
query($id: String!) {
  model(id: $id) {
    name owners { name }
    currentInstance {
      uri version
      pipeline { name owners { name } }
      features { edges { node { name data { edges { node { uri } } } } } }
      associatedAbTests { name cells { number uri } }
    }
  }
}"""


def ok(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body["errors"]
    data: dict[str, Any] = body["data"]
    return data


def test_the_seed_query_shape_from_an_instance_uri(store: Store, gql: GraphQL) -> None:
    build(store)
    data = ok(gql(SEED_SHAPE, {"id": M1}))["model"]
    # The instance's model, with its current instance pinned to the instance asked about.
    assert data["name"] == "model-m"
    assert data["owners"] == [{"name": "Team"}]
    current = data["currentInstance"]
    assert current["uri"] == M1 and current["version"] == "5"
    assert current["pipeline"] == {"name": "p", "owners": [{"name": "Alice"}]}
    assert current["features"] == {
        "edges": [{"node": {"name": "f", "data": {"edges": [{"node": {"uri": D}}]}}}]
    }
    assert current["associatedAbTests"] == [
        {"name": "Ranking v5 vs v4", "cells": [{"number": 2, "uri": C}]}
    ]


def test_model_from_another_instance_pins_that_instance(store: Store, gql: GraphQL) -> None:
    build(store)
    data = ok(gql(SEED_SHAPE, {"id": M2}))["model"]
    assert data["name"] == "model-m"
    current = data["currentInstance"]
    assert current["uri"] == M2  # not the model's stored current instance (m1)
    assert current["features"]["edges"][0]["node"]["name"] == "g"
    assert current["associatedAbTests"] == []
    # Asked by its own URI, the model shows its stored current instance.
    assert ok(gql(SEED_SHAPE, {"id": M}))["model"]["currentInstance"]["uri"] == M1


def test_model_instance_from_a_model_uri_is_its_current_instance(
    store: Store, gql: GraphQL
) -> None:
    build(store)
    data = ok(gql("query($id: String!) { modelInstance(id: $id) { uri model { uri } } }",
                  {"id": M}))  # fmt: skip
    assert data["modelInstance"] == {"uri": M1, "model": {"uri": M}}


def test_a_uri_of_another_kind_is_refused_and_an_unknown_one_is_null(
    store: Store, gql: GraphQL
) -> None:
    build(store)
    body = gql("query($id: String!) { model(id: $id) { name } }", {"id": F})
    assert body["data"] == {"model": None}
    assert body["errors"][0]["message"] == f"{F} is a Feature, not a Model"
    assert body["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    missing = gql('{ model(id: "aip://model/test/nothing") { name } }')
    assert missing == {"data": {"model": None}, "extensions": missing["extensions"]}
    bad = gql('{ model(id: "not a uri") { name } }')
    assert bad["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert "invalid URI" in bad["errors"][0]["message"]


def test_the_reverse_query_inverse_and_inferred(store: Store, gql: GraphQL) -> None:
    build(store)
    data = ok(gql(f'{{ abTest(id: "{T}") {{ models {{ uri }} modelInstances {{ uri }} '
                  f'cells {{ uri test {{ uri }} }} }} }}'))["abTest"]  # fmt: skip
    assert data == {
        "models": [{"uri": M}],
        "modelInstances": [{"uri": M1}],
        "cells": [{"uri": C, "test": {"uri": T}}],
    }


def test_connections_page_with_cursors_and_carry_edge_provenance(
    store: Store, gql: GraphQL
) -> None:
    build(store)
    features = [entity("Feature", f"x{i}") for i in range(5)]
    store.transact(upsert=features)
    store.transact(upsert=[entity("ModelInstance", "wide", references={
        "features": [f.uri for f in features]})])  # fmt: skip
    query = """query($after: String) { modelInstance(id: "aip://model/test/wide") {
        features(first: 2, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage
        endCursor } edges { cursor origin node { name } } nodes { name } } } }"""
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = ok(gql(query, {"after": after}))["modelInstance"]["features"]
        assert page["totalCount"] == 5
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert [e["node"] for e in page["edges"]] == page["nodes"]
        assert {e["origin"] for e in page["edges"]} == {"ASSERTED"}
        seen += [e["node"]["name"] for e in page["edges"]]
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [f"x{i}" for i in range(5)] and pages == 3
    inferred = ok(gql(f'{{ modelInstance(id: "{M1}") {{ associatedAbTestsConnection {{ '
                      f"edges {{ origin provenance node {{ uri }} }} }} }} }}"))  # fmt: skip
    edge = inferred["modelInstance"]["associatedAbTestsConnection"]["edges"][0]
    assert edge["origin"] == "INFERRED" and edge["node"]["uri"] == T
    assert edge["provenance"]["rule"].startswith("ModelInstance.associated_ab_tests := ")


def test_entity_interface_related_and_status_times(store: Store, gql: GraphQL) -> None:
    build(store)
    data = ok(
        gql(f"""{{ entity(uri: "{F}") {{
        __typename id type name state tags {{ key value }} attributes
        lastHydratedAt lastEnrichedAt owners {{ uri }}
        related(relationship: "used_by") {{ totalCount nodes {{ uri }} }}
        ... on Feature {{ version valueType consumingModels {{ uri }} }} }} }}""")
    )["entity"]
    assert data["__typename"] == "Feature" and data["id"] == F and data["state"] == "HYDRATED"
    assert data["attributes"] == {"value_type": "float", "version": 3}
    assert data["version"] == 3 and data["valueType"] == "float"
    assert data["lastHydratedAt"] == HYDRATED_AT.isoformat() and data["lastEnrichedAt"] is None
    assert data["owners"] == [{"uri": ALICE}]
    assert data["related"] == {"totalCount": 1, "nodes": [{"uri": M1}]}
    assert data["consumingModels"] == [{"uri": M}]
    bad = gql(f'{{ entity(uri: "{F}") {{ related(relationship: "nope") {{ totalCount }} }} }}')
    assert "Feature has no relationship 'nope'" in bad["errors"][0]["message"]


def test_entities_lists_by_type_with_cursors(store: Store, gql: GraphQL) -> None:
    build(store)
    query = """query($after: String) { entities(type: "User", first: 1, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } nodes { uri } } }"""
    first = ok(gql(query))["entities"]
    assert first["totalCount"] == 2 and first["nodes"] == [{"uri": ALICE}]
    second = ok(gql(query, {"after": first["pageInfo"]["endCursor"]}))["entities"]
    assert second["nodes"] == [{"uri": BOB}]
    unknown = gql('{ entities(type: "Nope") { totalCount } }')
    assert "unknown entity type 'Nope'" in unknown["errors"][0]["message"]


def test_lineage_impact_and_history(store: Store, gql: GraphQL) -> None:
    build(store)
    lineage = ok(
        gql(f"""{{ lineage(uri: "{D}", direction: DOWNSTREAM, depth: 3) {{
        partial start {{ uri }} nodes {{ depth entity {{ uri }} }} }} }}""")
    )["lineage"]
    assert lineage["start"] == {"uri": D} and lineage["partial"] is False
    assert [(n["depth"], n["entity"]["uri"]) for n in lineage["nodes"]] == [(1, F), (2, M1)]
    upstream = ok(
        gql(f"""{{ lineage(uri: "{M1}", direction: UPSTREAM, depth: 1,
        relationships: ["features"]) {{ nodes {{ entity {{ uri }} }} }} }}""")
    )
    assert upstream["lineage"]["nodes"] == [{"entity": {"uri": F}}]

    impact = ok(
        gql(f"""{{ impact(uri: "{F}") {{ partial byType {{ type count }}
        affected {{ depth via entity {{ uri }} source {{ uri }} }}
        owners {{ owner {{ uri }} owns {{ uri }} }} }} }}""")
    )["impact"]
    affected = {a["entity"]["uri"]: a for a in impact["affected"]}
    assert set(affected) == {M1, M, T}
    assert affected[M]["via"] == "Feature.consuming_models" and affected[M]["source"] == {"uri": F}
    assert {o["owner"]["uri"]: [x["uri"] for x in o["owns"]] for o in impact["owners"]} == {
        ALICE: [M1], BOB: [T], TEAM: [T, M]}  # fmt: skip

    store.transact(upsert=[entity("Feature", "f", owners=[ALICE], references={"data": D},
                                  attributes={"version": 4, "value_type": "float"})])  # fmt: skip
    history = ok(
        gql(f"""{{ history(uri: "{F}") {{ totalCount versions {{ tx op
        changes {{ field old new }} edgesAdded {{ relationship uri }}
        entity {{ ... on Feature {{ version }} }} }} }} }}""")
    )["history"]
    assert history["versions"][0]["op"] == "created"
    last = history["versions"][-1]
    assert last["changes"] == [{"field": "attributes.version", "old": 3, "new": 4}]
    assert last["entity"] == {"version": 4}
    assert history["versions"][0]["entity"] == {"version": 3}  # read as of that version
    missing = gql('{ history(uri: "aip://feature/test/none") { totalCount } }')
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_reads_as_of_a_transaction_or_a_time(store: Store, gql: GraphQL) -> None:
    build(store)
    before = store.last_tx()
    store.transact(upsert=[entity("ModelInstance", "m1", owners=[ALICE], attributes={
        "version": "6"}, references={"model": M, "features": G, "pipeline_run": R})])  # fmt: skip
    query = f"""query($asOf: AsOf) {{ modelInstance(id: "{M1}", asOf: $asOf) {{
        version asOfTx features {{ nodes {{ uri }} }} }} }}"""
    now = ok(gql(query))["modelInstance"]
    assert now["version"] == "6" and now["features"]["nodes"] == [{"uri": G}]
    then = ok(gql(query, {"asOf": {"tx": before}}))["modelInstance"]
    assert then == {"version": "5", "asOfTx": before, "features": {"nodes": [{"uri": F}]}}
    with store.engine.connect() as conn:
        from mlgraph.store import tables as t

        when = conn.execute(t.tx.select().where(t.tx.c.id == before)).one().at
    by_time = ok(gql(query, {"asOf": {"at": when.isoformat()}}))["modelInstance"]
    assert by_time["version"] == "5" and by_time["asOfTx"] == before
    both = gql(query, {"asOf": {"tx": 1, "at": when.isoformat()}})
    assert both["errors"][0]["message"] == "asOf takes tx or at, not both"


def test_search_is_wired_to_the_discovery_index(store: Store, gql: GraphQL, service: Any) -> None:
    build(store)
    service.search.rebuild()
    data = ok(
        gql("""{ search(query: "ranking", first: 5) { total hits { score entity { uri } }
        facets { name values { value count } } } }""")
    )["search"]
    assert data["total"] >= 1
    assert T in {h["entity"]["uri"] for h in data["hits"]}
    assert any(f["values"] for f in data["facets"])
