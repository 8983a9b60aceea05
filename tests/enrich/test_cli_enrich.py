"""`mlgraph enrich`: catch up with the feed, and re-derive everything on demand."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlgraph.catalog import Entity
from mlgraph.cli import app
from mlgraph.store import Edge, Store

runner = CliRunner()
INSTANCE = "aip://model/registry/i1"
TEST = "aip://ab-test/experimentation/t1"


def chain() -> list[Entity]:
    run, cell = "aip://pipeline-run/orchestrator/r1", "aip://ab-test-cell/experimentation/t1-1"
    return [
        Entity(uri=TEST, type="AbTest", name="t1"),
        Entity(uri=cell, type="AbTestCell", name="c", references={"test": (TEST,)}),
        Entity(uri=run, type="PipelineRun", name="r1", references={"ab_test_cells": (cell,)}),
        Entity(uri=INSTANCE, type="ModelInstance", name="i1", references={"pipeline_run": (run,)}),
    ]


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("MLGRAPH_STORE_URL", url)
    monkeypatch.delenv("MLGRAPH_CONFIG", raising=False)
    opened = Store.open(url)
    opened.transact(upsert=chain())
    return opened


def associated(store: Store) -> set[str]:
    return {n.uri for n in store.neighbors(INSTANCE, relationships=["associated_ab_tests"])}


def test_enrich_catches_up_with_the_feed(store: Store) -> None:
    result = runner.invoke(app, ["enrich", "--no-hydrate"])
    assert result.exit_code == 0, result.output
    assert "inferred edges changed" in result.output
    assert associated(store) == {TEST}


def test_rederive_repairs_what_the_feed_did_not_tell(store: Store) -> None:
    runner.invoke(app, ["enrich", "--no-hydrate"])
    # An inferred edge written behind the enricher's back, with no support.
    other = "aip://ab-test/experimentation/t2"
    store.transact(upsert=[Entity(uri=other, type="AbTest", name="t2")])
    store.transact(assert_edges=[Edge(INSTANCE, "associated_ab_tests", other, "inferred")])
    dry = runner.invoke(app, ["enrich", "--rederive", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would change 1 inferred edges (+0 -1 ~0)" in dry.output
    assert associated(store) == {TEST, other}
    done = runner.invoke(app, ["enrich", "--rederive"])
    assert "changed 1 inferred edges" in done.output
    assert associated(store) == {TEST}
