"""`mlgraph searches save|list|members|transitions|delete` against a real store."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgraph.catalog import Entity
from mlgraph.cli import app
from mlgraph.reverse import ReverseFollower, SavedSearches
from mlgraph.store import Store

runner = CliRunner()


@pytest.fixture
def configured(store: Store, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Store:
    monkeypatch.setenv("MLGRAPH_STORE_URL", store.engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("MLGRAPH_DATA_DIR", str(tmp_path / "data"))
    return store


def test_save_list_members_transitions_delete(configured: Store) -> None:
    store = configured
    saved = runner.invoke(app, ["searches", "save", "pii", "tags.pii == 'yes'", "--owner", "ann"])
    assert saved.exit_code == 0, saved.output
    (search,) = SavedSearches(store).all("ann")
    assert search.dsl == "tags.pii == 'yes'" and search.name == "pii"

    store.transact(upsert=[Entity(uri="aip://dataset/catalog/a", type="Dataset", name="a")])
    follower = ReverseFollower(store)
    follower.catch_up()  # builds the search (nothing matches yet)
    tagged = Entity(uri="aip://dataset/catalog/a", type="Dataset", name="a", tags={"pii": "yes"})
    store.transact(upsert=[tagged])
    follower.catch_up()

    listed = runner.invoke(app, ["searches", "list", "--owner", "ann"])
    assert listed.exit_code == 0 and "tags.pii == 'yes'" in listed.output
    members = runner.invoke(app, ["searches", "members", str(search.id)])
    assert members.exit_code == 0 and "aip://dataset/catalog/a" in members.stdout
    moves = runner.invoke(app, ["searches", "transitions", str(search.id)])
    assert moves.exit_code == 0 and "entered" in moves.output and "left" not in moves.output

    gone = runner.invoke(app, ["searches", "delete", str(search.id)])
    assert gone.exit_code == 0
    assert SavedSearches(store).all("ann") == []
    again = runner.invoke(app, ["searches", "delete", str(search.id)])
    assert again.exit_code == 1 and f"no saved search {search.id}" in again.output


def test_a_bad_filter_says_where_and_saves_nothing(configured: Store) -> None:
    result = runner.invoke(app, ["searches", "save", "x", "owners ANY 'alice'"])
    assert result.exit_code == 1
    assert "line 1, column" in result.output
    assert SavedSearches(configured).all() == []
    missing = runner.invoke(app, ["searches", "members", "999"])
    assert missing.exit_code == 1 and "999" in missing.output
