"""GraphQL types come from the type schema: a new type in a schema file is in the API."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from mlgraph.api import create_app
from mlgraph.api.graphql import graphql_schema
from mlgraph.api.limits import Limits
from mlgraph.catalog import Entity, load_schema
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.errors import SchemaError
from mlgraph.runtime import Service
from mlgraph.store import Store

NOTEBOOK = {
    "kind": "notebook",
    "description": "A notebook in the notebook service.",
    "fields": {"kernel": "string", "cell_count": "integer", "last_run_at": "datetime"},
    "relationships": {
        "reads": {"target": "Dataset", "inverse": "read_by_notebooks", "flow": "upstream"},
        "author": {"target": "User", "cardinality": "one", "inverse": "notebooks"},
    },
}


def schema_file(tmp_path: Path, **types: Any) -> Path:
    data = yaml.safe_load(resources.files("mlgraph.catalog").joinpath("types.yaml").read_text())
    data["types"].update(types)
    path = tmp_path / "types.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def fields_of(client: TestClient, type_name: str) -> dict[str, dict[str, Any]]:
    query = """query($t: String!) { __type(name: $t) { kind interfaces { name }
        fields { name type { kind name ofType { kind name ofType { kind name } } } } } }"""
    found = client.post("/graphql", json={"query": query, "variables": {"t": type_name}}).json()
    t = found["data"]["__type"]
    assert t is not None, f"no GraphQL type {type_name}"
    assert [i["name"] for i in t["interfaces"]] == ["Entity"]
    return {f["name"]: f["type"] for f in t["fields"]}


def test_a_new_type_in_a_schema_file_appears_in_the_api(tmp_path: Path) -> None:
    settings = Settings(workers=False, schema_file=schema_file(tmp_path, Notebook=NOTEBOOK),
                        data_dir=tmp_path)  # fmt: skip
    schema = load_schema(settings.schema_file)
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}", schema)
    alice, data = "aip://user/identity/alice", "aip://dataset/catalog/clicks"
    store.transact(upsert=[
        Entity(uri="aip://notebook/nb/explore", type="Notebook", name="explore",
               attributes={"kernel": "python3", "cell_count": 12},
               references={"reads": (data,), "author": (alice,)}),
    ])  # fmt: skip
    service = Service(settings, store, load_connectors(schema))
    with TestClient(create_app(service)) as client:
        notebook = fields_of(client, "Notebook")
        assert notebook["kernel"] == {"kind": "SCALAR", "name": "String", "ofType": None}
        assert notebook["cellCount"]["name"] == "BigInt"
        assert notebook["lastRunAt"]["name"] == "DateTime"
        assert notebook["reads"]["ofType"]["name"] == "DatasetConnection"  # lineage: paged
        assert notebook["author"] == {"kind": "OBJECT", "name": "User", "ofType": None}
        assert "owners" in notebook
        assert fields_of(client, "Dataset")["readByNotebooks"]["kind"] == "NON_NULL"
        assert "notebooks" in fields_of(client, "User")
        query = """{ notebook(id: "aip://notebook/nb/explore") {
            name kernel cellCount reads { nodes { uri state } } author { uri } } }"""
        body = client.post("/graphql", json={"query": query}).json()
    assert body == {
        "data": {"notebook": {
            "name": "explore", "kernel": "python3", "cellCount": 12,
            "reads": {"nodes": [{"uri": data, "state": "STUB"}]}, "author": {"uri": alice}}},
        "extensions": body["extensions"],
    }  # fmt: skip
    store.close()


def test_the_built_in_schema_has_every_relationship_kind() -> None:
    sdl = graphql_schema(load_schema(), Limits())[0].as_str()
    instance = sdl[sdl.index("type ModelInstance ") :]
    instance = instance[: instance.index("\n}")]
    for line in (
        "pipeline: Pipeline",  # inferred, cardinality one
        "model: Model",  # declared, cardinality one
        "features(first: Int! = 20, after: String = null): FeatureConnection!",  # lineage
        "associatedAbTests(first: Int! = 100): [AbTest!]!",  # inferred, many: a list
        "currentFor(first: Int! = 100): [Model!]!",  # an inverse
        "owners(first: Int! = 100): [Entity!]!",  # users or groups: the interface
    ):
        assert line in instance, line
    assert "model(id: String!, asOf: AsOf = null): Model" in sdl


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ({"PageInfo": {"kind": "page"}}, "the GraphQL API reserves this name"),
        ({"NotebookConnection": {"kind": "nbc"}}, "the GraphQL API reserves this name"),
        ({"Notebook": {"kind": "notebook", "fields": {"run-count": "integer"}}},
         "field Notebook.run-count"),
    ],
)  # fmt: skip
def test_names_graphql_cannot_take_are_refused_at_startup(
    tmp_path: Path, types: dict[str, Any], message: str
) -> None:
    schema = load_schema(schema_file(tmp_path, **types))
    with pytest.raises(SchemaError, match=message):
        graphql_schema(schema, Limits())
