"""The reverse follower runs with the service's workers (and `mlgraph percolate` by hand).

An entity written through ``Store.transact`` while the service runs enters the
saved searches it matches, and leaves them when a later version stops
matching: seen through the REST API of the same service.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mlgraph.api import create_app
from mlgraph.cli import app as cli
from mlgraph.config import Settings
from mlgraph.connectors import load_connectors
from mlgraph.reverse import SavedSearches
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.builders import entity, uri

TEAM = "type == 'Model' AND tags.team == 'personalization'"
MODEL = uri("Model", "ranking")


def make_service(store: Store, tmp_path: Path, **settings: Any) -> Service:
    chosen = Settings(workers=True, data_dir=tmp_path, enrich=False, search=False, **settings)
    return Service(chosen, store, load_connectors(store.schema))


async def wait_for(check: Any, what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(check)
        if found:
            return found
        await asyncio.sleep(0.05)
    raise TimeoutError(what)


def test_the_running_service_records_entered_and_left(store: Store, tmp_path: Path) -> None:
    service = make_service(store, tmp_path)
    searches = SavedSearches(store)
    team = searches.save("alice", "team models", TEAM)
    other = searches.save("alice", "datasets", "type == 'Dataset'")

    def moves() -> list[tuple[str, str, int]]:
        return [(t.transition, t.uri, t.tx) for t in searches.transitions(team.id)]

    async def scenario() -> tuple[int, int]:
        async with service.running_workers():
            assert service.reverse is not None
            entered = await asyncio.to_thread(
                store.transact,
                upsert=[entity("Model", "ranking", tags={"team": "personalization"})],
            )
            await wait_for(lambda: moves(), "the entity never entered")
            assert searches.members(team.id) == [MODEL]
            left = await asyncio.to_thread(
                store.transact, upsert=[entity("Model", "ranking", tags={"team": "ads"})]
            )
            await wait_for(lambda: len(moves()) == 2, "the entity never left")
        assert service.reverse is None
        return entered.tx, left.tx

    entered, left = asyncio.run(scenario())
    assert moves() == [("entered", MODEL, entered), ("left", MODEL, left)]
    assert searches.members(team.id) == []
    assert searches.transitions(other.id) == []  # a model never matched the dataset search
    with TestClient(create_app(service, workers=False)) as client:
        body = client.get(f"/v1/saved-searches/{team.id}/transitions").json()
    assert [(t["transition"], t["tx"]) for t in body["items"]] == [
        ("entered", entered),
        ("left", left),
    ]


def test_the_follower_can_be_turned_off(store: Store, tmp_path: Path) -> None:
    service = make_service(store, tmp_path, reverse=False)
    searches = SavedSearches(store)
    team = searches.save("alice", "team models", TEAM)

    async def scenario() -> None:
        async with service.running_workers():
            assert service.reverse is None
            await asyncio.to_thread(
                store.transact,
                upsert=[entity("Model", "ranking", tags={"team": "personalization"})],
            )
            await asyncio.sleep(0.5)  # the follower would have handled it by now

    asyncio.run(scenario())
    assert searches.transitions(team.id) == []
    assert store.cursor("percolator") == 0


def test_percolate_catches_up_by_hand(
    store: Store, store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLGRAPH_STORE_URL", store_url)
    monkeypatch.setenv("MLGRAPH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    searches = SavedSearches(store)
    team = searches.save("alice", "team models", TEAM)
    store.transact(upsert=[entity("Model", "ranking", tags={"team": "personalization"})])
    result = CliRunner().invoke(cli, ["percolate"])
    assert result.exit_code == 0, result.output
    assert "1 saved searches: 1 entered, 0 left" in result.output
    assert searches.members(team.id) == [MODEL]
    again = CliRunner().invoke(cli, ["percolate"])
    assert "0 transactions" in again.output
