"""DataLoaders: the SQL statements a query issues follow its depth, not its results."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from mlgraph.store import Store
from tests.api.conftest import GraphQL
from tests.builders import entity, uri

WIDE_QUERY = """query($id: String!) { modelInstance(id: $id) {
  name lastHydratedAt owners(first: 5) { name }
  features(first: 50) { totalCount edges { node {
    name lastHydratedAt lastEnrichedAt owners(first: 5) { name }
    usedBy(first: 5) { name }
    data(first: 10) { edges { node {
      name owners(first: 5) { name } versions(first: 5) { name } } } }
  } } }
} }"""


def build(store: Store, instance: str, features: int, datasets_per_feature: int) -> str:
    """An instance using ``features`` features, each computed from its own datasets."""
    owner = uri("User", f"owner-of-{instance}")
    found = []
    for i in range(features):
        data = [uri("Dataset", f"{instance}-d{i}-{j}") for j in range(datasets_per_feature)]
        feature = entity("Feature", f"{instance}-f{i}", owners=[owner], references={"data": data})
        found.append(feature)
        found += [entity("Dataset", d.rsplit("/", 1)[1], owners=[owner]) for d in data]
    store.transact(upsert=[
        entity("User", f"owner-of-{instance}"),
        *found,
        entity("ModelInstance", instance, owners=[owner],
               references={"features": [f.uri for f in found if f.type == "Feature"]}),
    ])  # fmt: skip
    return uri("ModelInstance", instance)


@contextmanager
def counting(store: Store) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)


def test_statements_do_not_grow_with_the_results(store: Store, gql: GraphQL) -> None:
    narrow = build(store, "narrow", features=2, datasets_per_feature=1)
    wide = build(store, "wide", features=40, datasets_per_feature=5)
    gql("{ __typename }")  # the auth check's answer is cached for a few seconds: not counted
    counts, selects = {}, {}
    for name, instance in (("narrow", narrow), ("wide", wide)):
        with counting(store) as statements:
            body = gql(WIDE_QUERY, {"id": instance})
        assert "errors" not in body, body["errors"]
        features = body["data"]["modelInstance"]["features"]
        counts[name] = len(statements)
        selects[name] = sum(s.lstrip().upper().startswith("SELECT") for s in statements)
        if name == "wide":
            assert features["totalCount"] == 40 and len(features["edges"]) == 40
            datasets = [e for f in features["edges"] for e in f["node"]["data"]["edges"]]
            assert len(datasets) == 200
            assert all(d["node"]["owners"] == [{"name": "owner-of-wide"}] for d in datasets)
    # 200 datasets and 40 features cost what 2 and 2 do: one batch per field and level.
    assert counts["wide"] == counts["narrow"]
    # Four levels of entities, a handful of fields each: a small constant.
    assert selects["wide"] <= 16, selects
