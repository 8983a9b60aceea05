from __future__ import annotations

from pathlib import Path

import pytest

from mlgraph.catalog import Schema
from mlgraph.connectors import Subject, load_connectors
from mlgraph.connectors.declarative import ConnectorError, load_declarative

SEED_RESPONSE = {
    "id": "ranking-model-v5-20XX0101",
    "model_id": "ranking-model",
    "version": "v5",
    "stage": "production",
    "pipeline_run_id": "train-weekly-ranking-20XX0101",
    "feature_ids": [],
    "metrics": {"auc": 0.81},
    "owner_emails": ["alice@example.com"],
    "labels": [{"key": "team", "value": "personalization"}],
    "description": None,
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


def test_the_six_builtin_connectors_are_found_through_entry_points(schema: Schema) -> None:
    connectors = load_connectors(schema)
    assert sorted(c.name for c in connectors) == [
        "datasets", "experimentation", "featurestore", "identity", "orchestrator", "registry",
    ]  # fmt: skip
    connector, resource, rule = connectors.route("model_instance_created") or (None, None, None)
    assert connector is not None and connector.name == "registry"
    assert resource is not None and resource.name == "instance"
    assert rule is not None and rule.id_field == "instance_id"
    assert connectors.route("nope") is None


def test_the_seed_instance_normalizes_as_seed_000_shows(schema: Schema) -> None:
    registry = load_connectors(schema).get("registry")
    (instance,) = registry.normalize(registry.resources["instance"], SEED_RESPONSE)
    assert instance.uri == "aip://model/registry/ranking-model-v5-20XX0101"
    assert instance.type == "ModelInstance"
    assert instance.references["pipeline_run"] == (
        "aip://pipeline-run/orchestrator/train-weekly-ranking-20XX0101",
    )
    assert instance.owners == ("aip://user/identity/alice",)
    assert instance.tags == {"team": "personalization"}


def test_a_test_response_gives_the_test_and_its_cells(schema: Schema) -> None:
    experimentation = load_connectors(schema).get("experimentation")
    entities = experimentation.normalize(
        experimentation.resources["test"],
        {"test_id": "12345", "name": "Ranking Model v5 vs v4", "status": "ACTIVE",
         "owner_emails": ["alice@example.com"],
         "cells": [{"cell_number": 1, "name": "control_ranking_v4", "allocation": 0.5},
                   {"cell_number": 2, "name": "treatment_ranking_v5", "allocation": 0.5}]},
    )  # fmt: skip
    assert [e.uri for e in entities] == [
        "aip://ab-test/experimentation/12345",
        "aip://ab-test-cell/experimentation/12345-1",
        "aip://ab-test-cell/experimentation/12345-2",
    ]
    assert entities[2].references == {"test": ("aip://ab-test/experimentation/12345",)}


def test_urls_and_configured_base_urls(schema: Schema) -> None:
    connectors = load_connectors(schema, {"featurestore": "http://fs.internal:8080/"})
    fs = connectors.get("featurestore")
    assert fs.url(Subject("featurestore", "feature", "a b/c")) == (
        "http://fs.internal:8080/api/v1/features/a%20b%2Fc"
    )
    with pytest.raises(ConnectorError, match="no connector named 'nope'"):
        connectors.get("nope")


def test_a_yaml_connector_from_a_folder_needs_no_python(schema: Schema, tmp_path: Path) -> None:
    (tmp_path / "wiki.yaml").write_text("""
name: wiki
base_url: http://wiki.internal
headers: {Authorization: "Bearer ${WIKI_TOKEN}"}
resources:
  page:
    type: Dataset
    get: /pages/{id}
    events: {page_edited: page_id}
    map:
      id: slug
      name: title
      tags: {fields: {space: space.key}}
      owners: {emails: 'authors[*].email'}
""")
    connectors = load_connectors(schema, directory=tmp_path)
    wiki = connectors.get("wiki")
    (page,) = wiki.normalize(wiki.resources["page"], {
        "slug": "clicks", "title": "Clicks", "space": {"key": "DATA"},
        "authors": [{"email": "bob@example.com"}],
    })  # fmt: skip
    assert (page.uri, page.name, page.tags, page.owners) == (
        "aip://dataset/wiki/clicks", "Clicks", {"space": "DATA"}, ("aip://user/identity/bob",)
    )  # fmt: skip
    assert connectors.route("page_edited") is not None
    assert wiki.resources["page"].batch is None  # one GET a page: batch_get is optional


def test_a_yaml_connector_may_declare_a_batch_get(schema: Schema, tmp_path: Path) -> None:
    (tmp_path / "wiki.yaml").write_text("""
name: wiki
base_url: http://wiki.internal/
resources:
  page:
    type: Dataset
    get: /pages/{id}
    batch_get: {path: "/pages:batchGet", id_field: slug, param: slug, items: pages, max_ids: 20}
    map: {id: slug}
""")
    batch = load_connectors(schema, directory=tmp_path).get("wiki").resources["page"].batch
    assert batch is not None
    assert (batch.id_field, batch.param, batch.items) == ("slug", "slug", "pages")
    assert batch.max_ids == 20
    assert batch.url("http://wiki.internal/", ["a b", "c/d"]) == (
        "http://wiki.internal/pages:batchGet?slug=a%20b&slug=c%2Fd"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("resources: {}\n", "name: a connector needs a name"),
        ("name: x\nresources: {}\n", "base_url: no base_url"),
        ("name: x\nbase_url: u\nresources: {r: {type: Nope, get: '/{id}', map: {id: a}}}\n",
         "resources.r.type: unknown entity type 'Nope'"),
        ("name: x\nbase_url: u\nresources: {r: {type: Dataset, get: /x, map: {id: a}}}\n",
         "a path template containing {id} is required"),
        ("name: x\nbase_url: u\nresources: {r: {type: Dataset, get: '/{id}', map: {id: 'a[['}}}\n",
         "bad JMESPath 'a[['"),
        ("name: x\nbase_url: u\nresources: {r: {type: Dataset, get: '/{id}', "
         "map: {id: a, attributes: {colour: c}}}}\n", "Dataset has no field 'colour'"),
        ("name: x\nbase_url: u\nresources: {r: {type: Dataset, get: '/{id}', "
         "map: {id: a, references: {versions: {ids: v}}}}}\n",
         "Dataset declares no relationship 'versions'"),
        ("name: x\nbase_url: u\nresources: {r: {type: Dataset, get: '/{id}', map: {nme: a}}}\n",
         "unknown key 'nme'"),
        ("name: x\nbase_url: u\nresources: {r: {type: Dataset, get: '/{id}', map: {id: a}, "
         "batch_get: {path: '/r:batchGet'}}}\n",
         "resources.r.batch_get.id_field: 'id_field' is required"),
        ("name: x\nbase_url: u\nresources: {r: {type: Dataset, get: '/{id}', map: {id: a}, "
         "batch_get: {path: '/r:batchGet', id_field: id, max_ids: 0}}}\n",
         "resources.r.batch_get.max_ids: expected a positive integer, got 0"),
        ("name: x\nbase_url: u\nresources: {r: {type: Dataset, get: '/{id}', map: {id: a}, "
         "batch_get: {path: '/r:batchGet', id_field: id, size: 5}}}\n",
         "resources.r.batch_get: unknown key 'size'"),
    ],
)  # fmt: skip
def test_a_bad_yaml_connector_is_a_clear_error(
    schema: Schema, tmp_path: Path, body: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(ConnectorError) as err:
        load_declarative(path, schema)
    assert str(path) in str(err.value) and message in str(err.value)
