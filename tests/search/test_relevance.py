"""The judged queries of relevance.yaml, over a generated organisation, on both stores.

Each judgment says what a person typing the query expects at the top:
``first`` — the first hits, in this order; ``among`` — each within the first
``within`` hits; ``every`` — every hit on the first page satisfies a filter
(type, types, owner, tag, tag_key, state); ``total`` — the exact number of hits;
``absent`` — hits of these types never appear.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from mlgraph.catalog import Schema
from mlgraph.search import Discovery, Hit, SearchPage
from mlgraph.store import Store
from mlgraph.store.engine import create_engine
from mlgraph.store.tables import metadata
from tests.search.org import load_organisation

SIZE = 6
JUDGMENTS: list[dict[str, Any]] = yaml.safe_load(
    (Path(__file__).parent / "relevance.yaml").read_text()
)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def organisation(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, schema: Schema
) -> Iterator[Discovery]:
    """One organisation, loaded and indexed once per backend for all the judgments."""
    tmp = tmp_path_factory.mktemp(f"relevance-{request.param}")
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_database")
        Store.open(url, schema).close()
        engine = create_engine(url)
        with engine.begin() as conn:
            names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        engine.dispose()
    else:
        url = f"sqlite:///{tmp / 'store.db'}"
    with Store.open(url, schema) as store:
        load_organisation(store, SIZE)
        discovery = Discovery(tmp / "search", store)
        indexer = discovery.indexer()
        indexer.catch_up()
        indexer.close()
        yield discovery


def test_the_judged_set_is_large_enough() -> None:
    assert len(JUDGMENTS) >= 40
    assert len({j["q"] for j in JUDGMENTS}) == len(JUDGMENTS)


def _satisfies(hit: Hit, key: str, value: Any) -> bool:
    if key == "type":
        return bool(hit.type == value)
    if key == "types":
        return hit.type in list(value)
    if key == "owner":
        return any(o["uri"].rsplit("/", 1)[1] == value for o in hit.owners)
    if key == "tag":
        k, _, v = str(value).partition("=")
        return hit.tags.get(k) == v
    if key == "tag_key":
        return value in hit.tags
    if key == "state":
        return bool(hit.deprecated == (value == "deprecated"))
    raise AssertionError(f"unknown 'every' key {key}")


def _check(judgment: dict[str, Any], page: SearchPage) -> None:
    uris = [h.uri for h in page.hits]
    shown = "\n".join(f"  {h.score:10.3f} {h.type:14} {h.uri}" for h in page.hits[:10])
    where = f"{judgment['q']!r} ({judgment.get('why', '')}), got:\n{shown}"
    first = judgment.get("first", [])
    assert uris[: len(first)] == first, where
    within = judgment.get("within", 10)
    for uri in judgment.get("among", []):
        assert uri in uris[:within], f"{uri} not in the first {within} for {where}"
    for key, value in judgment.get("every", {}).items():
        assert page.hits, where
        for hit in page.hits:
            assert _satisfies(hit, key, value), f"{hit.uri} fails {key}={value} for {where}"
    if "total" in judgment:
        assert page.total == judgment["total"], where
    for type_ in judgment.get("absent", []):
        assert type_ not in {h.type for h in page.hits}, where


@pytest.mark.parametrize("judgment", JUDGMENTS, ids=[j["q"] for j in JUDGMENTS])
def test_judged_query(organisation: Discovery, judgment: dict[str, Any]) -> None:
    page = organisation.search(
        judgment["q"], limit=judgment.get("limit", 20), index=judgment.get("index", "entities")
    )
    _check(judgment, page)
