"""Seed 000's query and its reverse, verbatim, through a GraphQL client over real HTTP,
against the generated organisation hydrated from the reference sources."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.httpx import HTTPXTransport

from mlgraph.api import create_app
from mlgraph.api.server import ApiThread
from mlgraph.api.tokens import Tokens
from mlgraph.store import Store
from tests.e2e.harness import make_service, running_sources, settle

SEED_QUERY = """
query {
  model(id: "aip://model/registry/ranking-model-v5-20XX0101") {
    name
    owners { name }
    currentInstance {
      version
      pipeline {
        name
        owners { name }
      }
      features {
        edges {
          node {
            name
            data { edges { node { name } } }
          }
        }
      }
      associatedAbTests {
        name
        cells { number name }
      }
    }
  }
}
"""

REVERSE_QUERY = """
query {
  abTest(id: "aip://ab-test/experimentation/12345") {
    models { name }
    modelInstances { name }
  }
}
"""


@pytest.fixture
def served(store: Store) -> Iterator[tuple[str, str]]:
    """The API over the generated organisation, at a URL, with a read token."""
    with running_sources() as (_sources, _thread, urls):
        service = make_service(store, urls)
        asyncio.run(service.reconcile())  # every object of every source, hydrated
        settle(service)  # stubs hydrated, inferences made
    token = Tokens(store.engine).create("seed test", ["read"]).secret
    with ApiThread(create_app(service, workers=False)) as url:
        yield url, token


def client(url: str, token: str) -> Client:
    transport = HTTPXTransport(url=f"{url}/graphql", headers={"Authorization": f"Bearer {token}"})
    # Fetching the schema makes the client validate each query against it (introspection).
    return Client(transport=transport, fetch_schema_from_transport=True)


def names(items: list[dict[str, Any]]) -> list[str]:
    return sorted(i["name"] for i in items)


def test_the_seed_query_and_its_reverse(store: Store, served: tuple[str, str]) -> None:
    url, token = served
    with client(url, token) as session:
        model = session.execute(gql(SEED_QUERY))["model"]
        tested = session.execute(gql(REVERSE_QUERY))["abTest"]

    alice = store.get("aip://user/identity/alice")
    assert alice is not None and alice.name
    assert model["name"] == "ranking-model"
    assert model["owners"] == [{"name": alice.name}]
    current = model["currentInstance"]
    assert current["version"] == "5"
    assert current["pipeline"]["name"] == "weekly-ranking-trainer"
    assert {"name": alice.name} in current["pipeline"]["owners"]
    features = {e["node"]["name"]: e["node"]["data"] for e in current["features"]["edges"]}
    assert "user_click_through_rate_7d" in features and len(features) == 5
    for name, data in features.items():
        datasets = store.neighbors(f"aip://feature/featurestore/{name}", relationships=["data"])
        expected = [store.get(d.uri) for d in datasets]
        assert data["edges"], name
        assert sorted(e["node"]["name"] for e in data["edges"]) == sorted(
            e.name for e in expected if e is not None and e.name
        ), name
    assert current["associatedAbTests"] == [
        {
            "name": "Ranking Model v5 vs v4",
            "cells": [
                {"number": 1, "name": "control_ranking_v4"},
                {"number": 2, "name": "treatment_ranking_v5"},
            ],
        }
    ]

    # The reverse: what models are being tested in experiment 12345?
    assert tested["models"] == [{"name": "ranking-model"}]
    instances = names(tested["modelInstances"])
    assert len(instances) == 2 and instances[1] == "ranking-model-v5-20XX0101"
    assert instances[0].startswith("ranking-model-v4-")
