"""`mlgraph reindex` and `mlgraph search`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgraph.cli import app
from mlgraph.store import Store
from tests.builders import entity

runner = CliRunner()


@pytest.fixture
def configured(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store_url: str, store: Store
) -> Path:
    monkeypatch.setenv("MLGRAPH_STORE_URL", store_url)
    monkeypatch.setenv("MLGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    team = entity("Group", "personalization", name="Personalization")
    store.transact(upsert=[team, entity("Model", "ranking-model", owners=[team.uri])])
    return tmp_path / "data"


def test_reindex_then_search(configured: Path) -> None:
    result = runner.invoke(app, ["search", "ranking"])
    assert result.exit_code == 1 and "no search index yet" in result.output
    result = runner.invoke(app, ["reindex"])
    assert result.exit_code == 0, result.output
    assert "search index v000001 serves 2 entities (1 users and groups)" in result.output
    result = runner.invoke(app, ["search", "rankng model"])
    assert result.exit_code == 0, result.output
    assert "aip://model/test/ranking-model" in result.output and "1 hits" in result.output
    result = runner.invoke(app, ["search", "personalization", "--owners", "--json"])
    assert result.exit_code == 0
    assert [h["name"] for h in json.loads(result.output)["hits"]] == ["Personalization"]
    result = runner.invoke(app, ["reindex"])
    assert "it replaced v000001" in result.output


def test_a_bad_query_says_why(configured: Path) -> None:
    runner.invoke(app, ["reindex"])
    result = runner.invoke(app, ["search", "owner:"])
    assert result.exit_code == 1 and "owner: needs a value" in result.output


def test_search_with_a_filter(configured: Path, store: Store) -> None:
    store.transact(upsert=[entity("Model", "churn-model", tags={"team": "ads"})])
    runner.invoke(app, ["reindex"])
    result = runner.invoke(app, ["search", "model", "--filter", "tags.team == 'ads'", "--json"])
    assert result.exit_code == 0, result.output
    assert [h["name"] for h in json.loads(result.output)["hits"]] == ["churn-model"]
    result = runner.invoke(app, ["search", "--filter", "NOT tags.team EXISTS", "--json"])
    assert result.exit_code == 0, result.output
    assert {h["name"] for h in json.loads(result.output)["hits"]} == {
        "ranking-model",
        "Personalization",
    }
    result = runner.invoke(app, ["search", "--filter", "tags.team = 'ads'"])
    assert result.exit_code == 1 and "line 1, column" in result.output
