"""A new mapping at service start, `mlgraph reindex` and `mlgraph searches ...`."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgraph.cli import app
from mlgraph.config import Settings
from mlgraph.reverse import ReverseFollower, SavedSearches
from mlgraph.reverse.recompile import Recompiler
from mlgraph.runtime import Service
from mlgraph.store import Store
from tests.builders import entity

TYPES = Path(__file__).parents[2] / "src" / "mlgraph" / "catalog" / "types.yaml"
runner = CliRunner()


def said(output: str) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(output.split())


@pytest.fixture
def changed_schema(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, store_url: str, store: Store
) -> int:
    """Saved searches built with the built-in schema, then the schema loses `framework`;
    the id of the search that reads it."""
    saved = SavedSearches(store)
    torch = saved.save("alice", "torch models", "framework == 'torch'").id
    saved.save("bob", "models", "type == 'Model'")
    store.transact(upsert=[entity("Model", "ranking", attributes={"framework": "torch"})])
    ReverseFollower(store).catch_up()
    schema = tmp_path / "types.yaml"
    schema.write_text(TYPES.read_text().replace("      framework: string\n", ""))
    monkeypatch.setenv("MLGRAPH_STORE_URL", store_url)
    monkeypatch.setenv("MLGRAPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLGRAPH_SCHEMA_FILE", str(schema))
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    return torch


def test_recompile_dry_run_then_reindex(store: Store, changed_schema: int) -> None:
    result = runner.invoke(app, ["searches", "recompile", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "2 searches checked; 1 unchanged, 0 would be rebuilt, 1 would be newly invalid" in (
        said(result.output)
    )
    assert Recompiler(store).dead_letters() == []

    result = runner.invoke(app, ["reindex"])  # recompiles before the cut-over
    assert result.exit_code == 0, result.output
    assert [d.search for d in Recompiler(store).dead_letters()] == [changed_schema]

    result = runner.invoke(app, ["searches", "dead-letters"])
    assert result.exit_code == 0, result.output
    assert "torch models" in said(result.output) and "framework" in result.output

    result = runner.invoke(app, ["searches", "replay", str(changed_schema)])
    assert result.exit_code == 1 and "still invalid" in result.output
    result = runner.invoke(app, ["searches", "recompile"])
    assert result.exit_code == 0 and "0 searches checked" in said(result.output)


def test_recompile_reports_failures(changed_schema: int) -> None:
    result = runner.invoke(app, ["searches", "recompile"])
    assert result.exit_code == 1
    assert "1 were newly invalid" in said(result.output)
    assert f"search {changed_schema}:" in result.output and "framework" in result.output


def test_the_service_recompiles_at_start(store: Store, changed_schema: int) -> None:
    service = Service.open(Settings())
    try:
        [letter] = Recompiler(service.store).dead_letters()
        assert letter.search == changed_schema
        assert SavedSearches(store).require(changed_schema).invalid_reason == letter.reason
    finally:
        service.close()
